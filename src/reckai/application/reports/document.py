"""What a report is before it is a file: a cover, tables and charts. The renderers
(adapters/reports) write the same document as a zip of CSVs, an Excel workbook or a PDF, so the
figures are the same in every format.

Amounts in tables are `Decimal` in major units of the row's currency (converted from integer minor
units once, exactly); a table never holds a sum across currencies: each money row names its currency.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reckai.application.ports.exports import Column


@dataclass(frozen=True)
class ReportTable:
    name: str  # also the CSV file name and the Excel sheet name: [a-z0-9_], at most 31 characters
    title: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[Any]]
    note: str | None = None  # e.g. "the 50 oldest of 1,234"


@dataclass(frozen=True)
class ReportChart:
    """A chart over one table: `category` column on the x axis, one series per `values` column;
    kind `line`, `column` or `stacked_column`."""

    title: str
    table: str
    category: str
    values: Sequence[str]
    kind: str = "column"


@dataclass(frozen=True)
class ReportCover:
    title: str
    organization: str
    period: str
    data_as_of: dt.datetime
    generated_by: str
    generated_at: dt.datetime
    jobs: Sequence[str] = ()  # "name (id)" of the jobs the report covers
    facts: Sequence[tuple[str, str]] = ()  # further label -> value lines (filters, verification)


@dataclass(frozen=True)
class ReportDocument:
    cover: ReportCover
    tables: Sequence[ReportTable]
    charts: Sequence[ReportChart] = field(default_factory=tuple)

    def table(self, name: str) -> ReportTable:
        return next(t for t in self.tables if t.name == name)
