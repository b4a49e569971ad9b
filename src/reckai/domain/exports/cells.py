"""Spreadsheet formula injection: the one rule every CSV and Excel writer of the product applies.

OWASP's CSV-injection guidance: a cell whose text starts with `=`, `+`, `-`, `@`, a tab or a
carriage return may be run as a formula by a spreadsheet (`=HYPERLINK(...)`, `+cmd|' /C calc'!A0`).
Such a cell is written with a leading apostrophe, so the spreadsheet shows it as text. A plain
numeric literal (`-16704.50`, `+12`, `-3`) is left as it is: a spreadsheet reads it as the number
it is, which is what a reader of an amount column expects, and it cannot call anything.

`FORMULA_TRIGGER` and `NUMERIC_LITERAL` are the rule's two patterns; the polars writers apply the
same patterns column-wise (adapters/polars), and a property test holds them equal to
`neutralise_cell`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_TRIGGER = r"^[=+\-@\t\r]"
NUMERIC_LITERAL = r"^[+-]?[0-9]+(\.[0-9]+)?$"
_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PREFIX = "'"


def _is_numeric_literal(text: str) -> bool:
    body = text[1:] if text[:1] in ("+", "-") else text
    whole, dot, fraction = body.partition(".")
    return (whole.isascii() and whole.isdigit()) and (not dot or (fraction.isascii() and fraction.isdigit()))


def neutralise_cell(value: Any) -> Any:
    """`value` as a spreadsheet must receive it: text that could start a formula gets a leading
    apostrophe; anything else (numbers, None, safe text, numeric literals) is returned unchanged."""
    if isinstance(value, str) and value.startswith(_TRIGGERS) and not _is_numeric_literal(value):
        return PREFIX + value
    return value


def neutralise_row(row: Iterable[Any]) -> list[Any]:
    return [neutralise_cell(value) for value in row]


class _Writer(Protocol):
    def writerow(self, row: Iterable[Any], /) -> Any: ...


class SafeCsvWriter:
    """`csv.writer` whose every cell passes through `neutralise_cell`."""

    def __init__(self, writer: _Writer) -> None:
        self._writer = writer

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow(neutralise_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def safe_csv_writer(handle: Any, **options: Any) -> SafeCsvWriter:
    """`csv.writer(handle, **options)` that neutralises formula triggers (see module docstring)."""
    return SafeCsvWriter(csv.writer(handle, **options))
