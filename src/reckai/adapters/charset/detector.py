"""Encoding detection with charset-normalizer, for text that is neither UTF-8 nor windows-1252.

Only the code pages banks' exports are written in are tried (Latin, Central European, Cyrillic,
DOS, Mac, UTF-16): left free, charset-normalizer reads a Hungarian cp852 statement, mostly ASCII,
as Korean cp949. The confidence (domain.ingestion.sniffing.ENCODING_CONFIDENCE_THRESHOLD) is the
best match's coherence (1 - chaos) times the share of the equally good matches (chaos within
0.02) that decode the file to the same text.
"""

from __future__ import annotations

from reckai.domain.ingestion.sniffing import EncodingDetector, EncodingGuess

BANK_CODE_PAGES = ("cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1257", "cp850", "cp852", "cp866",
                   "cp437", "iso8859_2", "iso8859_5", "iso8859_15", "koi8_r", "mac_roman", "mac_latin2",
                   "utf_16", "utf_8")
_EQUALLY_GOOD = 0.02
_SAMPLE_BYTES = 4 * 1024 * 1024


def detect_encoding(data: bytes) -> EncodingGuess:
    # Imported here: only a file that is neither UTF-8 nor windows-1252 comes this far, and the
    # library's import (~15 ms) would otherwise be paid by every `reckai reconcile` of ASCII files.
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data[:_SAMPLE_BYTES], cp_isolation=list(BANK_CODE_PAGES)))
    if not matches:
        return EncodingGuess(encoding=None, confidence=0.0)
    best = matches[0]
    near = [m for m in matches if m.chaos - best.chaos <= _EQUALLY_GOOD]
    best_text = str(best)
    agreeing = sum(1 for m in near if str(m) == best_text)
    confidence = (1.0 - best.chaos) * agreeing / len(near)
    return EncodingGuess(encoding=best.encoding, confidence=round(confidence, 3),
                         candidates=tuple(m.encoding for m in matches))


_check: EncodingDetector = detect_encoding
