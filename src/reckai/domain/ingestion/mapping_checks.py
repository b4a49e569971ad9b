"""Mapping guardrails: what a mapping made of a file, summed up, and the signs that it is wrong.

A mapping can read every row without an error and still be wrong: the switch file's unsigned
amounts read "from sign" are all credits, and a job that keeps only debits then matches nothing.
`MappingStatistics` is what the normalized rows add up to (the adapter aggregates them
column-wise); `mapping_warnings` turns it into warnings a person can act on before confirming the
mapping (`POST /api/files/:id/map?dry_run=true`, `reckai inspect`; docs/mapping.md "Dry run").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from reckai.domain.ingestion.mapping import Mapping

# Fields whose values should differ from row to row: one value in every row means the mapping
# points at the wrong column (a currency, a status or a channel may well be the same everywhere).
VARYING_FIELDS = ("amount_minor", "transaction_date", "reference", "secondary_reference", "account")
# A handful of rows may honestly share a value; below this many rows no "constant column" warning.
CONSTANT_COLUMN_MIN_ROWS = 10


@dataclass(frozen=True)
class MappingStatistics:
    """What the normalized rows of a file add up to (every row that passed, not a sample)."""

    row_count: int
    filled: dict[str, int]  # canonical field -> rows with a value
    distinct: dict[str, int]  # canonical field -> distinct non-null values
    direction_counts: dict[str, int]  # debit / credit -> rows
    currency_counts: dict[str, int]  # ISO code -> rows
    zero_amounts: int  # rows whose amount is 0
    transaction_days: dict[dt.date, int] = field(default_factory=dict)  # date -> rows

    def fill_rates(self) -> dict[str, float]:
        """Share of rows with a value, per canonical field, 0..1 rounded to 4 places."""
        if not self.row_count:
            return {name: 0.0 for name in self.filled}
        return {name: round(count / self.row_count, 4) for name, count in self.filled.items()}

    def to_dict(self) -> dict[str, Any]:
        days = sorted(self.transaction_days)
        return {"rows": self.row_count, "fill_rates": self.fill_rates(),
                "direction_counts": dict(self.direction_counts), "currency_counts": dict(self.currency_counts),
                "zero_amounts": self.zero_amounts,
                "transaction_dates": {"first": days[0].isoformat() if days else None,
                                      "last": days[-1].isoformat() if days else None}}


@dataclass(frozen=True)
class MappingWarning:
    """A sign that a mapping reads the file wrongly; the rows still load."""

    code: str  # ONE_DIRECTION | ALL_AMOUNTS_ZERO | DATES_OUTSIDE_PERIOD | CONSTANT_COLUMN
    message: str
    field: str | None = None  # the canonical field concerned
    rows: int | None = None  # how many rows it concerns

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "field": self.field, "rows": self.rows, "message": self.message}


def mapping_warnings(stats: MappingStatistics, *, column_fields: frozenset[str] | set[str],
                     period: tuple[dt.date, dt.date] | None = None) -> list[MappingWarning]:
    """`column_fields`: the canonical fields the mapping reads from a source column (a constant is
    meant to be the same everywhere). `period`: the declared period, both ends included."""
    warnings: list[MappingWarning] = []
    rows = stats.row_count
    if not rows:
        return warnings
    directions = {name: count for name, count in stats.direction_counts.items() if count}
    if len(directions) == 1:
        (only, _), = directions.items()
        warnings.append(MappingWarning(
            "ONE_DIRECTION", f"all {rows} rows are {only}s. If the file lists both debits and credits, the "
            "direction is not read right (unsigned amounts read 'from sign' are all credits); if it lists one "
            "kind only, say so with a constant direction and check it is the one a job's side keeps",
            field="direction", rows=rows))
    if stats.zero_amounts == rows:
        warnings.append(MappingWarning(
            "ALL_AMOUNTS_ZERO", f"the amount of all {rows} rows is zero: the amount is probably read from the "
            "wrong column, or with the wrong scale or separators", field="amount_minor", rows=rows))
    if period is not None and stats.transaction_days:
        start, end = period
        outside = sum(count for day, count in stats.transaction_days.items() if day < start or day > end)
        if outside:
            days = sorted(stats.transaction_days)
            warnings.append(MappingWarning(
                "DATES_OUTSIDE_PERIOD", f"{outside} of {rows} rows have a transaction date outside the declared "
                f"period {start.isoformat()} to {end.isoformat()} (the file's dates run from "
                f"{days[0].isoformat()} to {days[-1].isoformat()}); check the date column and its format "
                "(day and month swapped?)", field="transaction_date", rows=outside))
    if rows >= CONSTANT_COLUMN_MIN_ROWS:
        for name in VARYING_FIELDS:
            if name == "amount_minor" and stats.zero_amounts == rows:
                continue  # said already: all amounts zero
            if name in column_fields and stats.filled.get(name, 0) == rows and stats.distinct.get(name) == 1:
                warnings.append(MappingWarning(
                    "CONSTANT_COLUMN", f"{name} has the same value in all {rows} rows: the column it is read from "
                    "looks constant; map it to the column that differs from row to row", field=name, rows=rows))
    return warnings


def column_fields(mapping: Mapping) -> frozenset[str]:
    """The canonical fields a mapping reads from a source column (not from a constant)."""
    names = {"amount_minor"} if mapping.amount.source_columns() else set()
    names.update(name for name, spec in mapping.fields.items() if spec.source_columns())
    return frozenset(names)
