"""The canonical transaction: what every source row becomes after mapping and normalization.

This is the contract between file ingestion (which produces it) and matching (which consumes it).
A normalized file is a table (Parquet / polars frame) with exactly these columns, in this order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum


class Direction(str, Enum):
    DEBIT = "debit"
    CREDIT = "credit"


class TransactionStatus(str, Enum):
    SUCCESS = "success"
    FAILED = "failed"
    REVERSED = "reversed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CanonicalTransaction:
    row_number: int  # 1-based data row in the source file (header and preamble excluded)
    amount_minor: int  # magnitude in the currency's ISO 4217 minor units (kobo for NGN); never negative
    direction: Direction
    currency: str  # ISO 4217 alphabetic code
    # Kept as given, no time-zone conversion: a date-only source gives midnight and has_time False.
    transaction_date: dt.datetime | None
    has_time: bool = False
    value_date: dt.date | None = None
    reference: str | None = None
    secondary_reference: str | None = None
    description: str | None = None
    channel: str | None = None
    account: str | None = None
    status: TransactionStatus = TransactionStatus.UNKNOWN
    counterparty: str | None = None
    raw: dict[str, str | None] = field(default_factory=dict)  # the source row's values by column name
    # Where a person finds the row: the 1-based physical line of a text file (MT940, XML: the line
    # the transaction starts on), or the spreadsheet row of `source_sheet`. None when unknown.
    source_line: int | None = None
    source_sheet: str | None = None


# Column names and polars dtypes (as strings, so the domain imports no polars) of a normalized frame.
# `raw` is a JSON object text of the source row, kept so that rules may compare raw source columns.
CANONICAL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("row_number", "Int64"),
    ("amount_minor", "Int64"),
    ("direction", "String"),
    ("currency", "String"),
    ("transaction_date", "Datetime"),
    ("has_time", "Boolean"),
    ("value_date", "Date"),
    ("reference", "String"),
    ("secondary_reference", "String"),
    ("description", "String"),
    ("channel", "String"),
    ("account", "String"),
    ("status", "String"),
    ("counterparty", "String"),
    ("raw", "String"),
    ("source_line", "Int64"),
    ("source_sheet", "String"),
)
# Columns added after the first normalized files were written: a Parquet file without them is
# read with them null (normalize.read_parquet_bytes).
LATER_CANONICAL_COLUMNS: tuple[str, ...] = ("source_line", "source_sheet")

CANONICAL_FIELD_NAMES: tuple[str, ...] = tuple(name for name, _ in CANONICAL_COLUMNS)

# ISO 4217 minor-unit exponents for the currencies we meet first; default 2.
MINOR_UNIT_EXPONENTS: dict[str, int] = {"NGN": 2, "USD": 2, "EUR": 2, "GBP": 2, "GHS": 2, "KES": 2,
                                        "ZAR": 2, "XOF": 0, "XAF": 0, "JPY": 0, "KWD": 3, "BHD": 3}


def minor_unit_exponent(currency: str) -> int:
    return MINOR_UNIT_EXPONENTS.get(currency.upper(), 2)
