"""Conversions between canonical transactions and normalized frames (CANONICAL_COLUMNS)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

import polars as pl

from reckai.domain.ingestion.canonical import (
    CANONICAL_COLUMNS,
    CanonicalTransaction,
    Direction,
    TransactionStatus,
)
from reckai.domain.reconciliation.profile import ReconciliationPeriod, ReconciliationProfile
from reckai.domain.reconciliation.results import ReconciliationResult

_DTYPES: dict[str, pl.DataType] = {
    "Int64": pl.Int64(), "String": pl.String(), "Datetime": pl.Datetime("us"), "Boolean": pl.Boolean(),
    "Date": pl.Date(),
}
CANONICAL_SCHEMA = {name: _DTYPES[dtype] for name, dtype in CANONICAL_COLUMNS}


def _text(value: object) -> object:
    return getattr(value, "value", value)


def frame_from_transactions(transactions: Sequence[CanonicalTransaction]) -> pl.DataFrame:
    columns: dict[str, list[object]] = {name: [] for name, _ in CANONICAL_COLUMNS}
    for txn in transactions:
        for name, _ in CANONICAL_COLUMNS:
            value = getattr(txn, name)
            if name == "raw":
                value = json.dumps(value, ensure_ascii=False, sort_keys=True)
            columns[name].append(_text(value))
    return pl.DataFrame(columns, schema=CANONICAL_SCHEMA)


def transactions_from_frame(frame: pl.DataFrame) -> list[CanonicalTransaction]:
    transactions = []
    for row in frame.select([name for name, _ in CANONICAL_COLUMNS]).iter_rows(named=True):
        raw = json.loads(row["raw"]) if row["raw"] else {}
        transactions.append(CanonicalTransaction(
            row_number=row["row_number"], amount_minor=row["amount_minor"], direction=Direction(row["direction"]),
            currency=row["currency"], transaction_date=row["transaction_date"], has_time=bool(row["has_time"]),
            value_date=row["value_date"], reference=row["reference"],
            secondary_reference=row["secondary_reference"], description=row["description"],
            channel=row["channel"], account=row["account"],
            status=TransactionStatus(row["status"] or "unknown"), counterparty=row["counterparty"],
            raw={str(k): (None if v is None else str(v)) for k, v in raw.items()},
            source_line=row["source_line"], source_sheet=row["source_sheet"]))
    return transactions


class ReferenceFrameMatcher:
    """The reference matcher (domain/reconciliation/reference_matcher.py) over normalized frames:
    `reckai reconcile --engine reference`, and the engine-agreement tests."""

    def reconcile(self, left: pl.DataFrame, right: pl.DataFrame, profile: ReconciliationProfile,
                  period: ReconciliationPeriod | None = None,
                  excluded_pairs: Collection[tuple[int, int]] = ()) -> ReconciliationResult:
        # the slow engine, imported when used
        from reckai.domain.reconciliation.reference_matcher import ReferenceMatcher

        return ReferenceMatcher().reconcile(transactions_from_frame(left), transactions_from_frame(right),
                                            profile, period, excluded_pairs)
