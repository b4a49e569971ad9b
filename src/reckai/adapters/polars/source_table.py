"""`SourceTable`: what every reader makes of a source file, and what the normalizer reads.

A polars frame whose columns are the source columns (all `String`), plus `__row_number` (1-based
data row) and `__line_number` (1-based physical line, or sheet row) in front. Its own module so that
the dispatcher (`readers.py`) and the format readers it calls all import it from here, not from each
other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from reckai.domain.ingestion.errors import RowError, SourceWarning
from reckai.domain.ingestion.sniffing import ContentInfo
from reckai.domain.ingestion.statements import StatementIdentity

ROW_NUMBER = "__row_number"
LINE_NUMBER = "__line_number"


@dataclass
class SourceTable:
    frame: pl.DataFrame  # __row_number, __line_number, then one String column per source column
    columns: list[str]
    content: ContentInfo
    row_errors: list[RowError] = field(default_factory=list)  # ragged rows, never in `frame`
    skipped_lines: list[tuple[int, str]] = field(default_factory=list)  # (line, why): preamble, trailer
    header_line: int | None = None
    warnings: list[SourceWarning] = field(default_factory=list)  # rows still loaded (MT940 continuity, ...)
    statement_count: int | None = None  # MT940 / camt: the statements (reports, notifications) read
    statements: list[StatementIdentity] = field(default_factory=list)  # those with an identity
    # True when no cell holds a character that JSON must escape (quote, backslash, control
    # character) and no cell is null: the normalizer may then build `raw` by concatenation.
    json_safe_cells: bool = False
    sheet_name: str | None = None  # a workbook: the sheet read (its rows are the LINE_NUMBER column)

    @property
    def total_rows(self) -> int:
        return self.frame.height + len(self.row_errors)
