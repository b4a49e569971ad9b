"""Content sniffing: what a file really is, decided from its bytes (the name is only a hint).

Pure functions, usable on an upload before it is stored. Order matters: binary content is detected
before any text decoding is tried, and an OOXML zip has its inflated size counted (by inflating it,
with a cap) before any spreadsheet reader is allowed near it. XML well-formedness needs defusedxml,
so it is checked by the adapter (`reckai.adapters.xml.safe_xml`); here XML is only recognised.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from reckai.domain.ingestion.errors import (
    ArchiveTooLarge,
    BinaryContent,
    ContentMismatch,
    EmptyFile,
    InvalidWorkbook,
    UndecodableText,
)

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
DEFAULT_MAX_INFLATED_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_COMPRESSION_RATIO = 200  # refused only once past 16 MiB inflated
_RATIO_FLOOR_BYTES = 16 * 1024 * 1024
_MAX_ZIP_ENTRIES = 10_000
_SNIFF_BYTES = 64 * 1024

# Magic numbers of common binary formats that are not spreadsheets, for a precise message.
_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"), (b"\x1f\x8b", "a gzip archive"), (b"MZ", "a Windows executable"),
    (b"\x7fELF", "an ELF executable"), (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"),
)

FORMAT_OF_KIND = {"csv": "csv", "tsv": "txt", "pipe": "txt", "semicolon": "csv", "txt": "txt",
                  "mt940": "txt", "mt942": "txt", "mt950": "txt", "xlsx": "excel", "xls": "excel",
                  "xml": "xml", "camt053": "xml", "camt052": "xml", "camt054": "xml", "bai2": "txt",
                  "ofx": "txt"}  # OFX 2.x (XML) is "xml": sniff_decoded decides
# A detected encoding is used only at this confidence or above; below it the file is refused with
# the candidates named (docs/file-formats.md, "Encodings"). The confidence is the detector's
# coherence (1 - its "chaos" ratio) times the share of the equally good candidates that decode the
# file to the same text: two bytes that every code page reads differently are no evidence.
ENCODING_CONFIDENCE_THRESHOLD = 0.6


@dataclass(frozen=True)
class EncodingGuess:
    encoding: str | None  # the best candidate (None when the detector has none)
    confidence: float  # 0..1
    candidates: tuple[str, ...] = ()  # every plausible encoding, best first


# An encoding detector (bytes -> guess): a library lives in an adapter; the domain only calls it.
EncodingDetector = Callable[[bytes], EncodingGuess]


@dataclass(frozen=True)
class ContentInfo:
    format: str  # the spec's reconciliation_files.format: excel | csv | txt | xml
    kind: str  # precise kind: csv, tsv, pipe, semicolon, txt, xlsx, xls, xml, mt940, camt053
    encoding: str | None = None  # text kinds: the encoding the bytes decode with
    # Set when the encoding was detected (neither a BOM, UTF-8, the windows-1252 fallback nor declared).
    encoding_confidence: float | None = None
    delimiter: str | None = None  # delimited kinds
    inflated_bytes: int | None = None  # xlsx: bytes actually inflated while checking


def _extension(filename: str | None) -> str:
    if not filename or "." not in filename:
        return ""
    return filename.rsplit(".", 1)[1].lower()


def looks_binary(head: bytes) -> str | None:
    """A description of the binary format if `head` is not text, else None (UTF-16 counts as text)."""
    for magic, description in _BINARY_MAGIC:
        if head.startswith(magic):
            return description
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _utf16_without_bom(head):
        return None
    if b"\x00" in head:
        return "binary data (NUL bytes)"
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 26, 27))
    if head and controls / len(head) > 0.05:
        return "binary data (control bytes)"
    return None


def _utf16_without_bom(head: bytes) -> str | None:
    sample = head[:4096]
    if len(sample) < 4:
        return None
    even_nul = sample[0::2].count(0) / max(1, len(sample[0::2]))
    odd_nul = sample[1::2].count(0) / max(1, len(sample[1::2]))
    if odd_nul > 0.9 and even_nul < 0.1:
        return "utf-16-le"
    if even_nul > 0.9 and odd_nul < 0.1:
        return "utf-16-be"
    return None


def decode_text(data: bytes, encoding: str | None = None,
                detector: EncodingDetector | None = None) -> tuple[str, str]:
    """Decode text bytes; return (text, encoding). Detection: BOM, utf-16 pattern, utf-8, windows-1252,
    then (when a `detector` is given and both failed) the detector's guess if confident enough.

    A BOM is removed from the text. An explicit `encoding` is used as is (its BOM still removed).
    """
    text, name, _ = decode_text_detected(data, encoding, detector)
    return text, name


def decode_text_detected(data: bytes, encoding: str | None = None,
                         detector: EncodingDetector | None = None) -> tuple[str, str, float | None]:
    """decode_text, also returning the detector's confidence when the encoding was detected."""
    if not data:
        raise EmptyFile("the file is empty (0 bytes)")
    if encoding is None:
        described = looks_binary(data[:_SNIFF_BYTES])
        if described:
            raise BinaryContent(f"the file is {described}, not text; export it as CSV or text",
                                detected=described)
    candidates: list[str]
    if encoding:
        candidates = [encoding]
    elif data.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    elif utf16 := _utf16_without_bom(data[:_SNIFF_BYTES]):
        candidates = [utf16]
    else:
        candidates = ["utf-8", "windows-1252"]
    last_error: UnicodeDecodeError | None = None
    for candidate in candidates:
        try:
            text = data.decode(candidate)
        except UnicodeDecodeError as exc:
            last_error = exc
            continue
        except LookupError as exc:
            raise UndecodableText(f"unknown encoding {candidate!r}", encoding=candidate) from exc
        return _checked_text(text, candidate), candidate, None
    position = last_error.start if last_error else None
    message = (f"the file is not valid text in {' or '.join(candidates)} (bad byte at offset {position}); "
               "save it as UTF-8 or give the encoding in the mapping's parse.encoding")
    if detector is not None and not encoding:
        guess = detector(data)
        if guess.encoding and guess.confidence >= ENCODING_CONFIDENCE_THRESHOLD:
            return _checked_text(data.decode(guess.encoding), guess.encoding), guess.encoding, guess.confidence
        named = ", ".join(guess.candidates[:6]) or "none"
        raise UndecodableText(
            f"{message}. The encoding could not be detected with confidence (best {guess.encoding or 'none'} "
            f"at {guess.confidence:.2f}, threshold {ENCODING_CONFIDENCE_THRESHOLD}); candidates: {named}",
            encodings=candidates, offset=position, candidates=list(guess.candidates),
            confidence=round(guess.confidence, 2)) from last_error
    raise UndecodableText(message, encodings=candidates, offset=position) from last_error


def _checked_text(text: str, encoding: str) -> str:
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        raise BinaryContent("the text contains NUL characters: it is binary or in another encoding",
                            encoding=encoding)
    return text


def check_ooxml_workbook(data: bytes, *, max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
                         max_ratio: int = DEFAULT_MAX_COMPRESSION_RATIO) -> int:
    """Check an .xlsx is a real OOXML spreadsheet zip and not a bomb; return the bytes inflated.

    Every member is inflated by streaming reads and the bytes actually produced are counted: the
    sizes written in the zip headers are attacker-controlled and never trusted.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidWorkbook("the file is not a valid .xlsx (not a readable zip archive)") from exc
    with archive:
        members = archive.infolist()
        names = {m.filename for m in members}
        if len(members) > _MAX_ZIP_ENTRIES:
            raise ArchiveTooLarge(f"the workbook has {len(members)} zip entries (limit {_MAX_ZIP_ENTRIES})")
        if "[Content_Types].xml" not in names or not any(n.startswith("xl/") for n in names):
            raise InvalidWorkbook("the zip file is not an Excel workbook (.xlsx): no OOXML spreadsheet "
                                  "parts inside")
        total = 0
        for member in members:
            if member.is_dir():
                continue
            total += _inflate_counting(data, member, total, max_inflated_bytes, max_ratio)
        return total


def _inflate_counting(data: bytes, member: zipfile.ZipInfo, total_before: int, max_inflated_bytes: int,
                      max_ratio: int) -> int:
    """Inflate one member's raw deflate stream in bounded steps; return the bytes it really produced.

    The declared sizes are not used to bound the work (zipfile's reader stops at the declared size,
    so a header that understates it would hide the bomb from a check built on zipfile.open); the
    declared size and CRC must then match what was inflated, or the workbook is refused as forged.
    """
    if member.flag_bits & 0x1:
        raise InvalidWorkbook("the workbook is encrypted; export it without a password")
    local = data[member.header_offset:member.header_offset + 30]
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise InvalidWorkbook(f"the workbook is corrupt (bad local header for {member.filename!r})")
    name_length = int.from_bytes(local[26:28], "little")
    extra_length = int.from_bytes(local[28:30], "little")
    start = member.header_offset + 30 + name_length + extra_length
    raw = memoryview(data)[start:start + member.compress_size]
    produced = 0
    crc = 0

    def count(chunk: bytes) -> None:
        nonlocal produced, crc
        produced += len(chunk)
        crc = zlib.crc32(chunk, crc)
        inflated = total_before + produced
        if inflated > max_inflated_bytes:
            raise ArchiveTooLarge(f"the workbook inflates to more than {max_inflated_bytes // (1024 * 1024)} "
                                  "MiB; refused as a possible zip bomb", limit_bytes=max_inflated_bytes)
        if inflated > _RATIO_FLOOR_BYTES and inflated > max_ratio * len(data):
            raise ArchiveTooLarge(f"the workbook's compression ratio passes {max_ratio}:1; refused as a "
                                  "possible zip bomb", compressed_bytes=len(data), inflated_so_far=inflated)

    if member.compress_type == zipfile.ZIP_STORED:
        count(bytes(raw))
    elif member.compress_type == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-15)
        position, step = 0, 64 * 1024
        try:
            while True:
                if inflater.unconsumed_tail:
                    chunk = inflater.decompress(inflater.unconsumed_tail, 1024 * 1024)
                elif position < len(raw) and not inflater.eof:
                    chunk = inflater.decompress(raw[position:position + step], 1024 * 1024)
                    position += step
                else:
                    break
                count(chunk)
        except zlib.error as exc:
            raise InvalidWorkbook(f"the workbook is corrupt (zip member {member.filename!r}: {exc})",
                                  member=member.filename) from exc
    else:
        raise InvalidWorkbook(f"the workbook uses zip compression method {member.compress_type}, which "
                              "Excel never writes; refused", member=member.filename)
    if produced != member.file_size or crc != member.CRC:
        raise InvalidWorkbook(f"the workbook is corrupt or forged: zip member {member.filename!r} declares "
                              f"{member.file_size} bytes but inflates to {produced}", member=member.filename)
    return produced


def check_ole2_workbook(data: bytes) -> None:
    if not data.startswith(OLE2_MAGIC) or len(data) < 512:
        raise InvalidWorkbook("the file is not a valid .xls (not an OLE2 compound document)")


MT940_PATTERN = re.compile(r"^\s*(?:\{[^\n]*\{4:)?\s*:20:.*$[\s\S]*^\s*:(25|28C?|60[FM]):", re.MULTILINE)
BAI2_PATTERN = re.compile(r"01,[^,\n]*,[^,\n]*,\d{6},\d{4},")
_CAMT_ROOTS = {"<BkToCstmrStmt": "camt053", "<BkToCstmrAcctRpt": "camt052", "<BkToCstmrDbtCdtNtfctn": "camt054"}


def classify_text(text: str) -> str:
    """The kind of a decoded text: xml, camt052/053/054, mt940/942/950, or 'delimited' (csv family)."""
    head = text[:4096].lstrip()
    if "OFXHEADER" in head[:1000]:
        return "ofx"
    if BAI2_PATTERN.match(head) and re.search(r"^\s*99,", text[-4096:], re.MULTILINE):
        return "bai2"
    if head.startswith("<"):
        window = text[:20000]
        for marker, kind in _CAMT_ROOTS.items():
            if marker in window or f"camt.{kind[4:]}" in window:
                return kind
        return "xml"
    if MT940_PATTERN.search(text[:20000]) and re.search(r"^\s*:61:", text[:200000], re.MULTILINE):
        envelope = re.search(r"\{2:[IO](9[45][02])", text[:2000])
        if envelope:
            return "mt" + envelope.group(1)
        window = text[:20000]
        if re.search(r"^\s*:(13D|34F):", window, re.MULTILINE) and not re.search(r"^\s*:60[FM]:", window,
                                                                                 re.MULTILINE):
            return "mt942"
        return "mt940"
    return "delimited"


# The head `sniff_ascii_head` decodes: at least this many bytes and lines (see its proof).
_HEAD_BYTES = 256 * 1024
_HEAD_LINES = 300
_DELIMITED_KINDS = ("csv", "semicolon", "pipe", "tsv")


def sniff_ascii_head(data: bytes, filename: str | None = None, *,
                     max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
                     detector: EncodingDetector | None = None) -> tuple[ContentInfo, str] | None:
    """What `sniff_decoded` gives for a large delimited ASCII file, having decoded only its head:
    (the same ContentInfo, the text of the head: whole lines, at least 256 KiB and 300 lines).
    None when that cannot be proven; the caller then decodes the whole file as before.

    The proof: ASCII without NUL has no BOM, cannot pass for UTF-16 (that needs NUL bytes), is no
    zip workbook (its magic is checked first) and decodes as UTF-8 to the same characters, one per
    byte, so character and byte offsets agree. Every decision `sniff_decoded` takes reads the
    first 200,000 characters at most (binary, XML and workbook checks 64 KiB, the kind 4096 and
    200,000, the delimiter the first 240 lines), except two, which are excluded here: an all-blank
    text (a head with text in it rules it out) and BAI2, whose trailer is looked for at the end.
    """
    if len(data) <= _HEAD_BYTES or data.startswith(ZIP_MAGIC):
        return None
    cut = data.find(b"\n", _HEAD_BYTES - 1)
    lines_in = data.count(b"\n", 0, cut + 1) if cut != -1 else 0
    while cut != -1 and lines_in < _HEAD_LINES:
        cut = data.find(b"\n", cut + 1)
        lines_in += 1
    if cut == -1 or cut + 1 >= len(data) or not data.isascii() or b"\x00" in data:
        return None
    head = data[:cut + 1]
    text = head.decode("ascii")
    if text.isspace() or BAI2_PATTERN.match(text[:4096].lstrip()):
        return None
    info, decoded = sniff_decoded(head, filename, max_inflated_bytes=max_inflated_bytes, detector=detector)
    if info.kind not in _DELIMITED_KINDS or decoded != text:
        return None
    return info, text


def sniff_content(data: bytes, filename: str | None = None, *,
                  max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
                  detector: EncodingDetector | None = None) -> ContentInfo:
    """Identify an upload from its content; raise a typed IngestionError when it is unusable.

    XML is recognised here but its well-formedness (with defusedxml) is checked by the adapter's
    `inspect_content`, which callers should use.
    """
    return sniff_decoded(data, filename, max_inflated_bytes=max_inflated_bytes, detector=detector)[0]


def sniff_decoded(data: bytes, filename: str | None = None, *,
                  max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES, encoding: str | None = None,
                  detector: EncodingDetector | None = None) -> tuple[ContentInfo, str | None]:
    """sniff_content, also returning the decoded text of text kinds (so it is decoded once)."""
    if not data:
        raise EmptyFile("the file is empty (0 bytes)")
    ext = _extension(filename)
    if data.startswith(ZIP_MAGIC):
        inflated = check_ooxml_workbook(data, max_inflated_bytes=max_inflated_bytes)
        return ContentInfo(format="excel", kind="xlsx", inflated_bytes=inflated), None
    if data.startswith(OLE2_MAGIC):
        check_ole2_workbook(data)
        return ContentInfo(format="excel", kind="xls"), None
    if ext in ("xlsx", "xlsm", "xls"):
        described = looks_binary(data[:_SNIFF_BYTES])
        raise ContentMismatch(f"the file is named .{ext} but is not an Excel workbook"
                              + (f" (it is {described})" if described else " (it is text)"),
                              extension=ext)
    if encoding is None and data.removeprefix(codecs.BOM_UTF8)[:_SNIFF_BYTES].lstrip().startswith(b"<"):
        # XML says its own encoding and the XML parser checks it: classify from the head, and
        # never hold a decoded copy of a large document (a 1M-entry camt.053 is ~430 MB).
        described = looks_binary(data[:_SNIFF_BYTES])
        if described:
            raise BinaryContent(f"the file is {described}, not text; export it as CSV or text",
                                detected=described)
        kind = classify_text(data[:_SNIFF_BYTES].decode("utf-8", "replace").removeprefix("\ufeff"))
        declared = re.match(rb"\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)", data.removeprefix(codecs.BOM_UTF8))
        xml_encoding = declared.group(1).decode("ascii").lower() if declared else "utf-8"
        return ContentInfo(format="xml", kind=kind if kind != "delimited" else "xml", encoding=xml_encoding), None
    text, encoding, confidence = decode_text_detected(data, encoding, detector)
    if not text or text.isspace():  # no copy of a large text
        raise EmptyFile("the file contains only blank lines")
    kind = classify_text(text)
    if kind != "delimited":
        fmt = "xml" if kind == "ofx" and text.lstrip().startswith("<") else FORMAT_OF_KIND[kind]
        return ContentInfo(format=fmt, kind=kind, encoding=encoding,
                           encoding_confidence=confidence), text
    from reckai.domain.ingestion.delimited import detect_delimiter

    delimiter = detect_delimiter(text)
    if delimiter is None:
        return ContentInfo(format="txt", kind="txt", encoding=encoding, encoding_confidence=confidence), text
    kind = {",": "csv", ";": "semicolon", "|": "pipe", "\t": "tsv"}[delimiter]
    fmt = "csv" if ext == "csv" or kind in ("csv", "semicolon") else "txt"
    return ContentInfo(format=fmt, kind=kind, encoding=encoding, delimiter=delimiter,
                       encoding_confidence=confidence), text
