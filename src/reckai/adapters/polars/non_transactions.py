"""Statement lines that are not transactions: skipped and counted, never row errors (issue 16).

Bank statements carry lines such as "Opening balance", "Balance brought forward" after a page
break, page totals and "Closing balance". A reader sees them as data rows; the normalizer would
then reject them (no amount, no date) or, worse, read a page total as a transaction. After a
reader has built its `SourceTable` (delimited text and workbooks), `skip_non_transactions` drops:

- every row one of whose cells is a non-transaction phrase (`DEFAULT_NON_TRANSACTION_PATTERN`,
  docs/mapping.md), wherever it is; ragged rows (a different number of fields) whose fields hold
  one are dropped too, rather than reported as ragged;
- the leading block of rows right after the header whose text matches the mapping's
  `parse.skip_header_pattern` (the header-side twin of `skip_footer_pattern`, which the readers
  apply to the trailing block).

Each dropped line is listed in `skipped_lines` ("not a transaction: <text>"), and the rows left
are numbered again from 1 in file order, so row numbers stay those of the transactions.
"""

from __future__ import annotations

import bisect
import dataclasses
import re

import polars as pl

from reckai.adapters.polars.source_table import LINE_NUMBER, ROW_NUMBER, SourceTable
from reckai.domain.ingestion.errors import RowError
from reckai.domain.ingestion.mapping import (
    DEFAULT_NON_TRANSACTION_PATTERN,
    NON_TRANSACTION_PHRASES,
    ParseSettings,
)

SKIPPED_REASON = "not a transaction"
_LEADING_LOOKAHEAD = 50  # the header-side block is looked for among this many first rows
_PHRASE = re.compile(DEFAULT_NON_TRANSACTION_PATTERN)
_TEXT_LIMIT = 80
_SAMPLE_ROWS = 2000
# Bytes in the shortest text the pattern can match: a phrase with its hyphens optional ("subtotal").
_SHORTEST_PHRASE = min(len(phrase.replace("-", "")) for phrase in NON_TRANSACTION_PHRASES)


def skip_non_transactions(table: SourceTable, settings: ParseSettings, delimiter: str | None = None) -> SourceTable:
    columns = [c for c in table.columns if c in table.frame.columns]
    frame = table.frame
    searched = _worded_columns(frame, columns)
    dropped: dict[int, tuple[int, str]] = {}  # row number -> (line, text)
    if frame.height and searched:
        phrase = pl.any_horizontal([pl.col(c).str.contains(DEFAULT_NON_TRANSACTION_PATTERN).fill_null(False)
                                    for c in searched])
        flagged = frame.select(phrase).to_series()
        if flagged.any():  # most files have none: the table is then neither widened nor filtered
            for row_number, line_number, *cells in frame.filter(flagged).select(
                    ROW_NUMBER, LINE_NUMBER, *columns).iter_rows():
                dropped[row_number] = (line_number, _joined(cells))
    ragged_kept: list[RowError] = []
    for error in table.row_errors:
        cells = _fields(error.value, delimiter) if error.column is None else []
        if any(_PHRASE.search(cell.strip()) for cell in cells):
            dropped[error.row_number] = (error.line_number or 0, _joined(cells))
        else:
            ragged_kept.append(error)
    if settings.skip_header_pattern:
        _leading_block(frame, columns, table.row_errors, re.compile(settings.skip_header_pattern), delimiter,
                       dropped)
    if not dropped:
        return table
    gone = sorted(dropped)
    kept = frame.filter(~pl.col(ROW_NUMBER).is_in(gone))
    # The rows left are numbered again in file order: dropped rows leave no gap.
    renumber = pl.Series(ROW_NUMBER, [r - bisect.bisect_left(gone, r) for r in kept[ROW_NUMBER].to_list()],
                         dtype=pl.Int64)
    kept = kept.with_columns(renumber)
    errors = [dataclasses.replace(e, row_number=e.row_number - bisect.bisect_left(gone, e.row_number))
              for e in ragged_kept if e.row_number not in dropped]
    skipped = list(table.skipped_lines) + [(line, f"{SKIPPED_REASON}: {text[:_TEXT_LIMIT]}")
                                           for line, text in (dropped[r] for r in gone)]
    skipped.sort(key=lambda item: item[0])
    return dataclasses.replace(table, frame=kept, row_errors=errors, skipped_lines=skipped)


def _worded_columns(frame: pl.DataFrame, columns: list[str]) -> list[str]:
    """The columns worth searching: the first (a line's label often leads it) and those with a
    letter in their first rows (narration, currency, a date written 01-Dec-2025). Amount, balance,
    reference and numeric date columns are not searched: searching every cell of a million-row
    file costs a good part of reading it. A phrase in such a column further down is not
    recognised (in a date or amount column its row then fails as a row error, as before)."""
    sample = frame.head(_SAMPLE_ROWS)
    worded = [c for c in columns if sample.get_column(c).str.contains("[A-Za-z]").any()]
    searched = list(dict.fromkeys(columns[:1] + worded))
    # A column whose longest cell is shorter than the shortest phrase holds none (a currency code,
    # a channel "POS"): not searched, whatever its first rows say (its longest cell is exact).
    if not searched or frame.height == 0:
        return searched
    longest = frame.select(pl.col(c).str.len_bytes().max() for c in searched).row(0)
    return [c for c, size in zip(searched, longest, strict=True) if size is not None and size >= _SHORTEST_PHRASE]


def skipped_non_transactions(skipped_lines: list[tuple[int, str]]) -> int:
    """How many of a table's skipped lines were statement lines that are not transactions."""
    return sum(1 for _, why in skipped_lines if why.startswith(SKIPPED_REASON))


def _leading_block(frame: pl.DataFrame, columns: list[str], row_errors: list[RowError], pattern: re.Pattern[str],
                   delimiter: str | None, dropped: dict[int, tuple[int, str]]) -> None:
    """Rows from the first one on, while their text matches `pattern` (the header side's block)."""
    first = {r: (ln, _joined(cells)) for r, ln, *cells in
             frame.sort(ROW_NUMBER).head(_LEADING_LOOKAHEAD).select(ROW_NUMBER, LINE_NUMBER, *columns).iter_rows()}
    for error in row_errors:
        if error.column is None and error.row_number <= _LEADING_LOOKAHEAD:
            first.setdefault(error.row_number, (error.line_number or 0, _joined(_fields(error.value, delimiter))))
    for row_number in sorted(first):
        line, text = first[row_number]
        if row_number in dropped or pattern.search(text):
            dropped[row_number] = (line, text)
            continue
        break


def _fields(value: str | None, delimiter: str | None) -> list[str]:
    text = (value or "").replace('"', "")
    return text.split(delimiter) if delimiter else [text]


def _joined(cells: list[str | None] | list[str]) -> str:
    return " ".join(c.strip() for c in cells if c and c.strip())
