"""Table writers: a table (typed columns, rows as Python values) written as CSV or Excel bytes, in
bounded memory, for exports and reports.

Every text cell passes through the formula-injection rule (domain/exports/cells.py). Amounts are
`Decimal` in major units: CSV writes their exact text; Excel writes them as numeric cells with a
number format showing their decimal places (an Excel cell is a binary float by the file format's
definition; the exact amount is also in the CSV export).

Adapters: `adapters/spreadsheets` (csv module; xlsxwriter in constant_memory mode).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol


class ColumnKind(str, Enum):
    TEXT = "text"
    AMOUNT = "amount"  # Decimal, major units
    INTEGER = "integer"
    DECIMAL = "decimal"  # a ratio or a confidence: Decimal, not money
    DATE = "date"
    DATETIME = "datetime"  # aware; written in UTC


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind = ColumnKind.TEXT


class TableWriter(Protocol):
    media_type: str
    extension: str

    def chunks(self, columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
        """The table (a header row, then `rows`) as bytes chunks. Consumes `rows` lazily and holds
        a bounded amount in memory whatever the number of rows; temporary files it needs are
        removed when the iterator finishes or is closed."""
        ...


@dataclass(frozen=True)
class TableWriters:
    csv: TableWriter
    excel: TableWriter

    def of(self, export_format: str) -> TableWriter:
        return self.excel if export_format == "excel" else self.csv
