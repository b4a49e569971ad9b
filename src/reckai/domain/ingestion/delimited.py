"""Delimited-text layout decisions made on a sample: delimiter, header line, trailer lines.

The bulk reading is done by the polars adapter; these functions only look at the first (or last)
few dozen lines, so they stay pure Python and cheap.
"""

from __future__ import annotations

import csv
import re
from collections import Counter

from reckai.domain.ingestion.errors import HeaderNotFound
from reckai.domain.ingestion.mapping import DEFAULT_FOOTER_PATTERN

CANDIDATE_DELIMITERS = (",", ";", "|", "\t")
_SAMPLE_LINES = 60
_NUMBER_LIKE = re.compile(r"^[\s(+-]*[₦$€£]?\s*[0-9][0-9,.\s]*\)?-?$")
_DATE_LIKE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?$|^\d{1,2}:\d{2}(:\d{2})?$")
_HAS_LETTER = re.compile(r"[^\W\d_]")


def sample_records(text: str, delimiter: str, limit: int = _SAMPLE_LINES) -> list[tuple[int, list[str]]]:
    """The first `limit` non-blank records as (1-based start line, cells), quotes respected."""
    end = -1
    for _ in range(4 * limit):  # slice the head first: split(maxsplit) would copy the whole rest
        end = text.find("\n", end + 1)
        if end == -1:
            break
    lines = (text if end == -1 else text[:end]).split("\n")
    records: list[tuple[int, list[str]]] = []
    reader = csv.reader((line + "\n" for line in lines), delimiter=delimiter, quotechar='"', strict=False)
    start = 1
    try:
        for row in reader:
            if row and any(cell.strip() for cell in row):
                records.append((start, row))
                if len(records) >= limit:
                    break
            start = reader.line_num + 1
    except csv.Error:
        pass  # a sample cut inside a quoted field: what was read is enough
    return records


def detect_delimiter(text: str) -> str | None:
    """The delimiter among , ; | TAB that splits the sample most consistently; None if none does."""
    best: tuple[int, int, int] | None = None
    best_delimiter: str | None = None
    for preference, delimiter in enumerate(CANDIDATE_DELIMITERS):
        widths = [len(cells) for _, cells in sample_records(text, delimiter)]
        if not widths:
            continue
        width, count = Counter(widths).most_common(1)[0]
        if width < 2:
            continue
        score = (count, width, -preference)
        if best is None or score > best:
            best, best_delimiter = score, delimiter
    return best_delimiter


def is_label(cell: str) -> bool:
    value = cell.strip()
    return bool(value) and bool(_HAS_LETTER.search(value)) and not _DATE_LIKE.match(value) \
        and not _NUMBER_LIKE.match(value)


def is_value_like(cell: str) -> bool:
    value = cell.strip()
    return bool(_NUMBER_LIKE.match(value) or _DATE_LIKE.match(value))


def modal_width(records: list[tuple[int, list[str]]]) -> int:
    return Counter(len(cells) for _, cells in records).most_common(1)[0][0] if records else 0


def find_header(records: list[tuple[int, list[str]]]) -> tuple[int, list[str]]:
    """The header record (1-based line, cells): the first record as wide as the data that reads as labels.

    Preamble lines ("Account Statement for ...", "Period: ...") are narrower or mostly empty, so they
    are passed over. The data's width is the most common one; when no record of that width reads as
    labels (narrow summary lines such as "BALANCE B/F,5,018,500.00" outnumbering the transactions
    of a short statement), the wider widths are tried, the more common first: the data is never
    narrower than such lines. Raise HeaderNotFound when nothing looks like a header.
    """
    counts = Counter(len(cells) for _, cells in records)
    width = modal_width(records)
    wider = sorted((w for w in counts if w > width), key=lambda w: (-counts[w], w))
    for candidate in (width, *wider):
        found = _labels_row(records, candidate)
        if found is not None:
            return found
    raise HeaderNotFound("no header row found in the first lines (a row of column names as wide as the "
                         "data); give parse.header_row in the mapping", width=width)


def _labels_row(records: list[tuple[int, list[str]]], width: int) -> tuple[int, list[str]] | None:
    for line, cells in records:
        if len(cells) != width:
            continue
        filled = [c for c in cells if c.strip()]
        labels = sum(1 for c in filled if is_label(c))
        values = sum(1 for c in filled if is_value_like(c))
        if len(filled) >= 0.8 * width and labels >= 0.6 * width and values <= 0.1 * width:
            return line, cells
    return None


def header_names(cells: list[str]) -> list[str]:
    """Trimmed, unique column names; blanks become column_N and repeats get a _2, _3 suffix."""
    names: list[str] = []
    seen: Counter[str] = Counter()
    for i, cell in enumerate(cells):
        name = cell.strip().strip('"').strip() or f"column_{i + 1}"
        seen[name] += 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return names


def footer_regex(pattern: str | None) -> re.Pattern[str]:
    return re.compile(pattern or DEFAULT_FOOTER_PATTERN)
