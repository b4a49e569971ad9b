"""Readers: any accepted source file into a table of string cells with source line numbers.

Every kind (delimited text, xlsx/xls, xml, MT940, camt.053) becomes a `SourceTable`
(`source_table.py`): delimited text is read here, the other kinds by the format readers this module
dispatches to. Nothing is dropped without a record: ragged rows become `RowError`s, preamble,
trailer and blank lines are listed in `skipped_lines`.
"""

from __future__ import annotations

import codecs
import csv
import io
import re

import polars as pl

from reckai.adapters.charset.detector import detect_encoding
from reckai.adapters.polars.non_transactions import skip_non_transactions
from reckai.adapters.polars.readers_excel import read_workbook
from reckai.adapters.polars.source_table import LINE_NUMBER, ROW_NUMBER, SourceTable
from reckai.adapters.xml.safe_xml import check_xml
from reckai.domain.ingestion.delimited import (
    detect_delimiter,
    find_header,
    footer_regex,
    header_names,
    sample_records,
)
from reckai.domain.ingestion.errors import (
    HeaderNotFound,
    IngestionError,
    NoDataRows,
    RowError,
    UnsupportedContent,
)
from reckai.domain.ingestion.mapping import ParseSettings
from reckai.domain.ingestion.sniffing import (
    DEFAULT_MAX_INFLATED_BYTES,
    ContentInfo,
    decode_text,
    sniff_ascii_head,
    sniff_content,
    sniff_decoded,
)
from reckai.domain.ingestion.statements import XML_FORMATS

_TRAILER_LOOKBACK = 50
MT_KINDS = ("mt940", "mt942", "mt950")
# A reader's records: the table, its ragged rows, and the (line, why) of the lines it skipped.
_Records = tuple[pl.DataFrame, list[RowError], list[tuple[int, str]]]


def inspect_content(data: bytes, filename: str | None = None, *,
                    max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES) -> ContentInfo:
    """Identify and validate an upload by content before it is stored; raise a typed IngestionError.

    Workbooks are checked for zip bombs / OLE2 structure, text for encoding, XML for well-formedness
    with defusedxml (entity declarations and external entities refused).
    """
    info = sniff_content(data, filename, max_inflated_bytes=max_inflated_bytes, detector=detect_encoding)
    if info.format == "xml":
        check_xml(data)
    return info


def read_table(data: bytes, settings: ParseSettings | None = None, filename: str | None = None, *,
               max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES) -> SourceTable:
    """Read any accepted file into a SourceTable, honouring the mapping's parse settings."""
    settings = settings or ParseSettings()
    if settings.encoding and settings.format in (None, "csv", "txt"):
        text, encoding = decode_text(data, settings.encoding)
        info = ContentInfo(format="csv" if settings.format != "txt" else "txt", kind="csv",
                           encoding=encoding, delimiter=settings.delimiter)
        return read_delimited_text(text, info, settings)
    wanted = settings.format
    if settings.encoding is None and wanted in (None, "csv", "txt"):
        # A large ASCII file: the same sniffing from its head, and no decoded copy of the whole
        # (the delimited reader reads the bytes; it decodes them only for its slower paths).
        sniffed = sniff_ascii_head(data, filename, max_inflated_bytes=max_inflated_bytes, detector=detect_encoding)
        if sniffed is not None:
            info, head = sniffed
            return read_delimited_text(head, info, settings, region_bytes=data, text_is_head=True)
    info, decoded = sniff_decoded(data, filename, max_inflated_bytes=max_inflated_bytes,
                                  encoding=settings.encoding, detector=detect_encoding)
    if wanted in ("xlsx", "xls") and info.kind not in ("xlsx", "xls"):
        raise UnsupportedContent(f"the mapping expects an Excel workbook but the file is {info.kind}",
                                 expected=wanted, found=info.kind)
    if info.kind in ("xlsx", "xls"):
        return read_workbook(data, info, settings)
    if info.kind == "ofx" or wanted == "ofx":
        # Imported here: ofxtools builds ~400 model classes at import (about 0.3 s of CPU), which
        # every CSV reconciliation (`reckai reconcile`, each worker start) would otherwise pay.
        from reckai.adapters.polars.readers_bank_files import read_ofx_table

        return read_ofx_table(data, info)
    # The statement formats' readers are imported when a file needs them (~25 ms at import, which
    # every CSV reconciliation would otherwise pay).
    if info.format == "xml" or wanted in XML_FORMATS:
        from reckai.adapters.xml.statements import read_xml_table

        return read_xml_table(data, info, settings)
    text = decoded if decoded is not None else decode_text(data, settings.encoding, detect_encoding)[0]
    if info.kind == "bai2" or wanted == "bai2":
        from reckai.adapters.polars.readers_bank_files import read_bai2_table

        return read_bai2_table(text, info)
    if info.kind in MT_KINDS or wanted == "mt940":
        from reckai.adapters.polars.readers_mt940 import read_mt940_table

        return read_mt940_table(text, info)
    return read_delimited_text(text, info, settings, region_bytes=data)


def _normalise_newlines(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text and "\n" not in text:
            text = text.replace("\r", "\n")
    return text


def read_delimited_text(text: str, info: ContentInfo, settings: ParseSettings,
                        region_bytes: bytes | None = None, *, text_is_head: bool = False) -> SourceTable:
    """Delimited text to a SourceTable. `region_bytes`: the original bytes, when `text` decodes them.

    `text_is_head`: `text` is only the head of `region_bytes` as `sniff_ascii_head` decoded it (ASCII:
    a character per byte, at least 300 whole lines, more than the layout decisions below read); the
    rest is decoded only when a path needs the text."""
    if text_is_head:
        assert region_bytes is not None
        if b"\r" in region_bytes:
            text, text_is_head = region_bytes.decode("ascii"), False
    if "\r" in text:
        text = _normalise_newlines(text)
        region_bytes = None
    delimiter = settings.delimiter or info.delimiter or detect_delimiter(text)
    if delimiter is None:
        raise HeaderNotFound("no column delimiter found (tried , ; | and tab); give parse.delimiter")
    info = ContentInfo(format=info.format, kind=info.kind, encoding=info.encoding, delimiter=delimiter)
    records = sample_records(text, delimiter)
    if not records:
        raise NoDataRows("the file has no rows")
    if settings.header_row is not None:
        found = [r for r in records if r[0] == settings.header_row]
        if not found:
            raise HeaderNotFound(f"parse.header_row {settings.header_row} is not a non-blank line among "
                                 "the first lines of the file", header_row=settings.header_row)
        header_line, header_cells = found[0]
    else:
        header_line, header_cells = find_header(records)
    columns = header_names(header_cells)
    skipped = [(line, "preamble") for line, _ in records if line < header_line]
    header_start = _offset_of_line(text, header_line)
    # The header may span lines when a quoted name holds a newline: find where its record ends.
    header_end = header_line
    header_text = text[header_start:_offset_of_line(text, header_line + 20, header_start, header_line)]
    if '"' in header_text.split("\n", 1)[0]:
        reader = csv.reader(io.StringIO(header_text), delimiter=delimiter)
        next(reader, None)
        header_end = header_line - 1 + reader.line_num
    region_start = _offset_of_line(text, header_end + 1, header_start, header_line)
    first_line = header_end + 1
    footer = footer_regex(settings.skip_footer_pattern)
    if region_bytes is not None and info.encoding in ("utf-8", "utf-8-sig"):
        bom = 3 if region_bytes.startswith(codecs.BOM_UTF8) else 0
        buffer, start = region_bytes, bom + len(text[:region_start].encode("utf-8"))
    else:
        buffer, start = text[region_start:].encode("utf-8"), 0
    # find, not `in text[region_start:]`: no copy of the text
    if text_is_head:  # ASCII: the same offset in the bytes
        quoted = buffer.find(b'"', start) != -1
    else:
        quoted = text.find('"', region_start) != -1
    if not quoted:
        native = _native_records(buffer, start, first_line, delimiter, columns, footer)
    else:  # quotes that only enclose whole fields need no csv module either
        # When the lines before the data hold no quote, polars skips them unchanged and reads the
        # data in place after them (no copy of the region first); otherwise the region is read alone.
        region, at = (buffer, start) if b'"' not in buffer[:start] else (buffer[start:], 0)
        native = _native_records(region, at, first_line, delimiter, columns, footer, quoted=True)
        if native is None:  # quotes polars cannot be shown to read alike: drop the `""` ones, read the rest
            unquoted = _without_empty_quoted_fields(region, delimiter)
            native = None if unquoted is None else _native_records(unquoted, at, first_line, delimiter, columns,
                                                                   footer)
    if native is not None:
        table, json_safe = native
    else:
        if text_is_head:
            assert region_bytes is not None
            text = region_bytes.decode("ascii")
        lines = _lines_series(buffer[start:], text[region_start:])
        by_line = _plain_records(lines, first_line, delimiter, columns, footer)
        if by_line is None:  # a quoted field holds a newline: only the csv module follows records
            table = _quoted_records(text[region_start:].split("\n"), first_line, delimiter, columns, footer)
            json_safe = False
        else:
            table, json_safe = by_line, _json_safe(by_line[0], columns)
    frame, row_errors, more_skipped = table
    skipped.extend(more_skipped)
    source = skip_non_transactions(SourceTable(
        frame=frame, columns=columns, content=info, row_errors=row_errors, skipped_lines=skipped,
        header_line=header_line, json_safe_cells=json_safe), settings, delimiter)
    if source.frame.height == 0 and not source.row_errors:
        raise NoDataRows("the file has a header but no data rows", header_line=header_line)
    return source


def _offset_of_line(text: str, line: int, start: int = 0, start_line: int = 1) -> int:
    """Character offset where 1-based `line` begins (len(text) when the text is shorter)."""
    offset = start
    for _ in range(line - start_line):
        found = text.find("\n", offset)
        if found == -1:
            return len(text)
        offset = found + 1
    return offset


def _lines_series(raw: bytes, region: str) -> pl.Series:
    """The region's lines as a String series, split by polars' multi-threaded reader when possible."""
    separator = next((c for c in ("\x1f", "\x1e", "\x01") if c.encode() not in raw), None)
    if separator is None or b"\r" in raw:
        lines = region.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return pl.Series("text", lines, dtype=pl.String)
    if not raw.strip(b"\n"):
        return pl.Series("text", [""] * raw.count(b"\n"), dtype=pl.String)
    frame = pl.read_csv(raw, has_header=False, separator=separator, quote_char=None,
                        schema={"text": pl.String}, empty_string_is_null=False)
    return frame.get_column("text")


def _tail_lines(buffer: bytes, start: int, count: int) -> list[tuple[int, str]]:
    """The last `count` lines of buffer[start:] as (byte offset, text); a final newline ends the last."""
    end = len(buffer)
    if end > start and buffer[end - 1] == 0x0A:
        end -= 1
    lines: list[tuple[int, str]] = []
    while len(lines) < count:
        newline = buffer.rfind(b"\n", start, end)
        line_start = newline + 1 if newline != -1 else start
        lines.append((line_start, buffer[line_start:end].decode("utf-8")))
        if newline == -1:
            break
        end = newline
    lines.reverse()
    return lines


def _native_records(buffer: bytes, start: int, first_line: int, delimiter: str, columns: list[str],
                    footer: re.Pattern[str], *, quoted: bool = False) -> tuple[_Records, bool] | None:
    """No quotes (or, `quoted`, quotes around whole fields only) and every line exactly as wide as
    the header: polars' own CSV reader in string mode.

    Returns None whenever that cannot be proven, and the caller takes the line-by-line path, which
    reports ragged rows. The proof: polars refuses a line with more fields than the schema
    (`truncate_ragged_lines=False`), and pads a short one; so the data has no short line exactly
    when the delimiter count is (width - 1) per row, and no line was skipped or merged exactly when
    the cell bytes, delimiters and newlines add up to the region's length. Also returns whether the
    cells are JSON-safe (no backslash, control character or quote in a cell).

    `quoted`: the data holds quotes, and polars follows them (`quote_char='"'`). The same sum then
    counts the quote bytes too, and it holds only when every quote opens or closes a whole field
    and no cell holds a delimiter, a newline or an escaped quote (`""` inside a field): polars
    keeps such a byte in the cell, where the count of the raw bytes has it already, so the sum
    comes out larger. The lines are then exactly the records (the newlines are counted as well),
    and a quoted field without those bytes reads as the csv module reads it (`"abc"` and `""`:
    abc and the empty string). A bank statement that writes an empty reference `""` on 5 % of its
    lines is read this way, with no copy of the file (tests/unit/test_ingestion_fast_paths.py
    holds it to the record reader).
    """
    width = len(columns)
    delimiter_byte = delimiter.encode("utf-8")
    if width < 2 or len(delimiter_byte) != 1 or start >= len(buffer):
        return None
    tail = _tail_lines(buffer, start, _TRAILER_LOOKBACK + 20)
    blank_line = re.compile(f"[{_class_escape(delimiter)} \t]*")
    # (with quotes: a line of empty quoted fields is blank, as the record reader sees it)
    tail_blank = [blank_line.fullmatch(text.replace('"', "") if quoted else text) is not None for _, text in tail]
    trailer = sorted(_trailer_indices([text for _, text in tail], footer, tail_blank))
    # Blank lines after the first trailer go with it (unlisted), as on the line path.
    end = tail[trailer[0]][0] if trailer else len(buffer)
    if end <= start:
        return None
    keep_special = _NOT_SPECIAL.replace(delimiter_byte, b"")
    if quoted:  # the quotes and the newlines are counted too
        keep_special = keep_special.replace(b'"', b"").replace(b"\n", b"")
    if end == len(buffer) and buffer.endswith(b"\n") and (start == 0 or (
            buffer[start - 1] == 0x0A and b"\r" not in buffer[:start])):
        # The data runs to the end: polars skips the lines before it (`skip_lines`, quotes not
        # followed), so the buffer is read in place instead of copying the body (~0.05 s of CPU and
        # as many fresh pages per 100 MB).
        source, skip, head = buffer, buffer.count(b"\n", 0, start), buffer[:start]
    else:
        source, skip, head = buffer[start:end], 0, b""
        if not source.endswith(b"\n"):
            # polars refuses a line wider than the schema, except a last one without its newline that
            # ends in a delimiter (",1," read as two fields): with the newline it refuses that one too.
            source += b"\n"
    body_length = len(source) - len(head)
    names = [f"c{i}" for i in range(width)]
    try:
        frame = pl.read_csv(source, has_header=False, separator=delimiter, schema={name: pl.String for name in names},
                            quote_char='"' if quoted else None, skip_lines=skip,
                            empty_string_is_null=False, truncate_ragged_lines=False, raise_if_empty=True)
    except pl.exceptions.PolarsError:
        return None
    # Delimiters, backslashes and control characters other than the newline, in one pass (the
    # skipped lines' own are taken off).
    special = source.translate(None, keep_special)
    head_special = head.translate(None, keep_special)
    delimiters = special.count(delimiter_byte) - head_special.count(delimiter_byte)
    newlines = frame.height  # the body ends with a newline
    quotes = special.count(b'"') - head_special.count(b'"') if quoted else 0
    if quoted and special.count(b"\n") - head_special.count(b"\n") != newlines:
        return None  # a quoted field held a newline (or a record was lost): not one record per line
    cell_bytes = frame.select(pl.sum_horizontal(pl.col(n).str.len_bytes().sum() for n in names)).item()
    if delimiters != (width - 1) * frame.height or cell_bytes + delimiters + newlines + quotes != body_length:
        return None
    # The body ends where the first trailer line starts, so that line's index is the row count.
    skipped = [(first_line + frame.height + i - trailer[0], "trailer") for i in trailer]
    frame = frame.rename(dict(zip(names, columns))).with_row_index("idx")
    line_number = (pl.col("idx").cast(pl.Int64) + first_line).alias(LINE_NUMBER)
    # A blank line (only spaces, tabs and delimiters) has a first cell that is empty or starts with
    # a space or a tab: only when one does are whole lines looked at (half the CPU of a regex over
    # the first column, on a file that has none).
    first = pl.col(columns[0])
    if frame.select(((first.str.len_bytes() == 0) | first.str.starts_with(" ") | first.str.starts_with("\t")).any()
                    ).item():
        blank = pl.all_horizontal(pl.col(c).str.contains("^[ \t]*$") for c in columns)
        frame = frame.with_columns(blank.alias("blank"))
        blank_lines = frame.filter(pl.col("blank")).select(line_number)
        skipped.extend((int(n), "blank line") for n in blank_lines[LINE_NUMBER].to_list())
        if blank_lines.height:
            frame = frame.filter(~pl.col("blank"))
    # Left in polars' per-thread chunks: normalize_file makes them one buffer when it reads every
    # column again (docs/ingestion-performance.md).
    records = frame.select(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_NUMBER), line_number,
                           *columns)
    counted = delimiters + quotes + (newlines if quoted else 0)
    return (records, [], skipped), len(special) - len(head_special) == counted


_NOT_SPECIAL = bytes(b for b in range(256) if b >= 0x20 and b != ord("\\") or b == 0x0A)


def _without_empty_quoted_fields(region: bytes, delimiter: str) -> bytes | None:
    """The region with every whole-field `""` (an empty quoted field, as polars and many exporters
    write an empty string) made a bare empty field; None when any other quote remains.

    An empty quoted field reads as an empty cell, exactly as an empty bare field does, and no
    newline or delimiter moves, so the result reads as the region does (line numbers included).
    A bank statement with empty references written `""` then takes polars' reader instead of the
    csv module's line by line. Only `""` between delimiters or line ends is touched: a quote inside
    a field (`x""y`, `"a""b"`) is left, and the caller keeps the slower path for that file. A last
    line of just `""` without its newline gives None too (made empty, that line would vanish).

    The quotes are visited one by one (`find` skips to the next quote, a rare byte): replacing the
    four delimiter/newline patterns of `""` cost 0.1-0.2 s per 100 MB, the delimiter being frequent.
    """
    separator = delimiter.encode("utf-8")
    if len(separator) != 1:
        return None
    bounds = (separator[0], 0x0A)
    size = len(region)
    view = memoryview(region)
    pieces: list[memoryview] = []
    copied = 0  # region[copied:] is not yet in `pieces`
    quote = region.find(b'"')
    while quote != -1:
        end = quote + 2
        if end > size or region[quote + 1] != 0x22:
            return None
        if quote and region[quote - 1] not in bounds or end < size and region[end] not in bounds:
            return None  # not a whole field
        if end == size and quote and region[quote - 1] == 0x0A:
            return None
        pieces.append(view[copied:quote])
        copied = end
        quote = region.find(b'"', end)
    if not pieces:
        return region
    pieces.append(view[copied:])
    return b"".join(pieces)


def _ragged_error(row_number: int, line: int, width: int, found: int, text: str) -> RowError:
    return RowError(row_number=row_number, column=None, value=text[:500], line_number=line,
                    reason=f"expected {width} fields, found {found}")


def _trailer_indices(texts: list[str], footer: re.Pattern[str], blank: list[bool]) -> set[int]:
    """Indices (into texts) of the trailing block of trailer lines, walking back from the end."""
    trailer: set[int] = set()
    checked = 0
    for i in range(len(texts) - 1, -1, -1):
        if blank[i]:
            continue
        candidate = texts[i].replace('"', "").strip()
        if footer.search(candidate):
            trailer.add(i)
            checked += 1
            if checked >= _TRAILER_LOOKBACK:
                break
            continue
        break
    return trailer


def _plain_records(region: pl.Series, first_line: int, delimiter: str, columns: list[str],
                   footer: re.Pattern[str]) -> _Records | None:
    """One line is one record: everything is vectorised but the lines holding a quote character,
    which the csv module reads one by one (a few per cent of a bank statement's lines, say those
    with an empty quoted reference). Returns None when a quoted field spans lines (or a quote is
    unbalanced): only the record-following reader `_quoted_records` can read that file.

    The result is what `_quoted_records` gives for the same lines: a line that is a whole record
    on its own is read the same way alone or in the stream, and by induction every line is."""
    width = len(columns)
    lines = pl.DataFrame({"text": region}).with_row_index("idx")
    lines = lines.with_columns(
        (pl.col("idx").cast(pl.Int64) + first_line).alias(LINE_NUMBER),
        pl.col("text").str.contains(f"^[{_class_escape(delimiter)} \t]*$").alias("blank"),
        (pl.col("text").str.count_matches(delimiter, literal=True) + 1).alias("width"))
    quoted = lines.filter(pl.col("text").str.contains('"', literal=True)).select("idx", "text")
    parsed = _one_line_records(quoted["text"].to_list(), delimiter) if quoted.height else []
    if parsed is None:
        return None
    if parsed:
        read = pl.DataFrame({
            "idx": quoted["idx"],
            "q_blank": pl.Series([not any(cell.strip() for cell in row) for row in parsed], dtype=pl.Boolean),
            "q_width": pl.Series([len(row) for row in parsed], dtype=pl.UInt32),
        })
        lines = lines.join(read, on="idx", how="left", maintain_order="left").with_columns(
            pl.coalesce("q_blank", "blank").alias("blank"),
            pl.coalesce("q_width", "width").alias("width")).drop("q_blank", "q_width")
    tail = lines.tail(_TRAILER_LOOKBACK + 20)
    tail_trailer = _trailer_indices(tail["text"].to_list(), footer, tail["blank"].to_list())
    offset = lines.height - tail.height
    trailer_idx = sorted(offset + i for i in tail_trailer)
    skipped: list[tuple[int, str]] = [(first_line + i, "trailer") for i in trailer_idx]
    keep = ~pl.col("blank")
    if trailer_idx:
        keep = keep & ~pl.col("idx").is_in(trailer_idx)
    blank_lines = lines.filter(pl.col("blank") & (pl.col("idx") < (trailer_idx[0] if trailer_idx else
                                                                  lines.height)))
    skipped.extend((int(n), "blank line") for n in blank_lines[LINE_NUMBER].to_list())
    records = lines.filter(keep).with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_NUMBER))
    cells_of = dict(zip(quoted["idx"].to_list(), parsed, strict=True))
    ragged = records.filter(pl.col("width") != width)
    row_errors = [_ragged_error(r, ln, width, w, delimiter.join(cells_of[i]) if i in cells_of else t)
                  for i, r, ln, w, t in ragged.select("idx", ROW_NUMBER, LINE_NUMBER, "width", "text").iter_rows()]
    good = records.filter(pl.col("width") == width)
    if cells_of:
        is_quoted = pl.col("idx").is_in(quoted["idx"].implode())
        plain, quoted_good = good.filter(~is_quoted), good.filter(is_quoted)
    else:
        plain, quoted_good = good, good.clear()
    split = plain.select(
        ROW_NUMBER, LINE_NUMBER,
        pl.col("text").str.split_exact(delimiter, width - 1).struct.rename_fields(columns).alias("cells"),
    ).unnest("cells") if width > 1 else plain.select(ROW_NUMBER, LINE_NUMBER, pl.col("text").alias(columns[0]))
    if quoted_good.height:
        rows = [cells_of[i] for i in quoted_good["idx"].to_list()]
        from_csv = pl.DataFrame(
            {ROW_NUMBER: quoted_good[ROW_NUMBER], LINE_NUMBER: quoted_good[LINE_NUMBER],
             **{name: pl.Series(name, list(values), dtype=pl.String)
                for name, values in zip(columns, zip(*rows, strict=True), strict=True)}})
        split = pl.concat([split, from_csv]).sort(ROW_NUMBER)
    return split.rechunk(), row_errors, skipped


def _one_line_records(texts: list[str], delimiter: str) -> list[list[str]] | None:
    """Each text read by the csv module as one whole record, or None when one is not (its quoted
    field goes on past the line end, or the quoting is malformed)."""
    reader = csv.reader((text + "\n" for text in texts), delimiter=delimiter, quotechar='"', strict=True)
    rows: list[list[str]] = []
    try:
        for row in reader:
            if reader.line_num != len(rows) + 1:
                return None
            rows.append(row)
    except csv.Error:
        return None
    return rows if len(rows) == len(texts) else None


def _json_safe(frame: pl.DataFrame, columns: list[str]) -> bool:
    """No cell holds a character JSON must escape (quote, backslash, control character)."""
    if frame.height == 0:
        return False
    special = pl.any_horizontal(pl.col(c).str.contains(r'["\\\x00-\x1f]').any() for c in columns)
    return not frame.select(special).item()


def _class_escape(char: str) -> str:
    return "\\t" if char == "\t" else "\\" + char if char in "|^]\\-[" else char


def _quoted_records(region: list[str], first_line: int, delimiter: str, columns: list[str],
                    footer: re.Pattern[str]) -> _Records:
    """Quoted fields (embedded delimiters, quotes, newlines): the csv module tracks record lines."""
    width = len(columns)
    reader = csv.reader((line + "\n" for line in region), delimiter=delimiter, quotechar='"',
                        strict=True)
    starts: list[int] = []
    rows: list[list[str]] = []
    next_start = first_line
    try:
        for row in reader:
            starts.append(next_start)
            rows.append(row)
            next_start = first_line + reader.line_num
    except csv.Error as exc:
        raise IngestionError(f"line {next_start}: malformed quoted field ({exc}); check the quoting",
                             line=next_start) from exc
    blank = [not any(cell.strip() for cell in row) for row in rows]
    texts = [delimiter.join(row) for row in rows[-(_TRAILER_LOOKBACK + 20):]]
    offset = len(rows) - len(texts)
    trailer = {offset + i for i in _trailer_indices(texts, footer, blank[offset:])}
    skipped: list[tuple[int, str]] = [(starts[i], "trailer") for i in sorted(trailer)]
    last_data = min(trailer) if trailer else len(rows)
    # The empty string after a final newline is no line of the file.
    artefact = len(rows) - 1 if region and region[-1] == "" else -1
    skipped.extend((starts[i], "blank line") for i in range(last_data) if blank[i] and i != artefact)
    row_errors: list[RowError] = []
    good_rows: list[list[str]] = []
    good_lines: list[int] = []
    good_numbers: list[int] = []
    row_number = 0
    for i in range(len(rows)):
        if blank[i] or i in trailer:
            continue
        row_number += 1
        row = rows[i]
        if len(row) != width:
            row_errors.append(_ragged_error(row_number, starts[i], width, len(row), delimiter.join(row)))
            continue
        good_rows.append(row)
        good_lines.append(starts[i])
        good_numbers.append(row_number)
    data: dict[str, pl.Series] = {
        ROW_NUMBER: pl.Series(ROW_NUMBER, good_numbers, dtype=pl.Int64),
        LINE_NUMBER: pl.Series(LINE_NUMBER, good_lines, dtype=pl.Int64),
    }
    cells = list(zip(*good_rows)) if good_rows else [()] * width
    for name, values in zip(columns, cells):
        data[name] = pl.Series(name, list(values), dtype=pl.String)
    return pl.DataFrame(data), row_errors, skipped
