"""Builders shared by the matching tests: transactions, profiles, and comparable result views."""

from __future__ import annotations

import datetime as dt
from typing import Any

from reckai.domain.ingestion.canonical import CanonicalTransaction, Direction, TransactionStatus
from reckai.domain.reconciliation.profile import ReconciliationProfile, parse_profile
from reckai.domain.reconciliation.results import ReconciliationResult

NO_MAPPING: dict[str, Any] = {"fields": {"amount": {"column": "amount"}, "direction": {"constant": "debit"},
                                         "currency": {"constant": "NGN"},
                                         "transaction_date": {"column": "date", "formats": ["%Y-%m-%d"]}}}


def txn(row: int, amount: int, when: dt.datetime | str, reference: str | None = None, *,
        direction: str = "debit", status: str = "success", description: str | None = None,
        counterparty: str | None = None, channel: str | None = None, currency: str = "NGN",
        raw: dict[str, str | None] | None = None) -> CanonicalTransaction:
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when)
    return CanonicalTransaction(
        row_number=row, amount_minor=amount, direction=Direction(direction), currency=currency,
        transaction_date=when, has_time=True, reference=reference, description=description,
        counterparty=counterparty, channel=channel, status=TransactionStatus(status), raw=raw or {})


def profile(rules: list[dict[str, Any]], **extra: Any) -> ReconciliationProfile:
    raw: dict[str, Any] = {
        "name": "test",
        "currency": "NGN",
        "reference_label": "RRN",
        "left": {"label": "Bank", "direction": extra.pop("left_direction", None), "mapping": NO_MAPPING},
        "right": {"label": "Switch", "direction": extra.pop("right_direction", None), "mapping": NO_MAPPING},
        "rules": rules,
    }
    raw.update(extra)
    return parse_profile(raw)


def view(result: ReconciliationResult) -> dict[str, Any]:
    """Everything both engines must agree on, in a comparable form."""
    def records(items: list[Any]) -> list[tuple[Any, ...]]:
        return sorted((m.left_row, m.right_row, m.rule, m.rule_version, m.status.value, m.confidence_bp,
                       m.group_id, m.evidence) for m in items)

    return {
        "matches": records(result.matches),
        "suggestions": records(result.suggestions),
        "exceptions": sorted((e.type.value, e.facts.left_row or 0, e.facts.right_row or 0, e.facts.amount_minor,
                              e.facts.currency, e.severity, e.description, e.explanation, e.ai_confidence_bp,
                              e.suggested_action) for e in result.exceptions),
        "reversals": sorted(result.reversals),
    }
