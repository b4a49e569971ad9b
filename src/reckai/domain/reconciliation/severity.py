"""Severity of a break from configurable rules: amount bands, break type, age.

Defaults (amounts in the organization's currency, major units):
- amount bands: >= 1,000,000 critical; >= 100,000 high; >= 10,000 medium; otherwise low. The
  amount is the difference for an amount mismatch, the row's amount for every other break.
- type floors: non_settlement at least high (a customer was charged for nothing); duplicate at
  least medium. Type caps: timing_difference at most low (it clears by itself next period).
- age: a break dated `age_escalation_days` (60) or more before the period end goes up one level
  (never above a cap). Without a period there is no age.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from reckai.domain.reconciliation.rules import RuleError

SEVERITY_LEVELS = ("low", "medium", "high", "critical")


def _rank(level: str) -> int:
    return SEVERITY_LEVELS.index(level)


@dataclass(frozen=True)
class SeverityPolicy:
    # (minimum amount in major units, level), highest first; the first band reached applies.
    amount_bands: tuple[tuple[Decimal, str], ...] = (
        (Decimal(1000000), "critical"), (Decimal(100000), "high"), (Decimal(10000), "medium"))
    default: str = "low"
    type_floor: dict[str, str] = field(default_factory=lambda: {"non_settlement": "high", "duplicate": "medium"})
    type_cap: dict[str, str] = field(default_factory=lambda: {"timing_difference": "low"})
    age_escalation_days: int | None = 60
    currency_exponent: int = 2

    def amount_bands_minor(self) -> tuple[tuple[int, str], ...]:
        """`amount_bands` in minor units: |amount_minor| >= the integer exactly when the major amount
        reaches the band (for evaluating the bands over a column of integer amounts)."""
        return tuple((int(minimum.scaleb(self.currency_exponent).to_integral_value(rounding=ROUND_CEILING)), level)
                     for minimum, level in self.amount_bands)

    def severity(self, break_type: str, amount_minor: int, age_days: int | None) -> str:
        major = Decimal(abs(amount_minor)).scaleb(-self.currency_exponent)
        level = self.default
        for minimum, band_level in self.amount_bands:
            if major >= minimum:
                level = band_level
                break
        floor = self.type_floor.get(break_type)
        if floor is not None and _rank(level) < _rank(floor):
            level = floor
        if self.age_escalation_days is not None and age_days is not None and age_days >= self.age_escalation_days:
            level = SEVERITY_LEVELS[min(_rank(level) + 1, len(SEVERITY_LEVELS) - 1)]
        cap = self.type_cap.get(break_type)
        if cap is not None and _rank(level) > _rank(cap):
            level = cap
        return level


def severity_age_days(break_date: dt.datetime | None, period_end: dt.date | None) -> int | None:
    if break_date is None or period_end is None:
        return None
    return (period_end - break_date.date()).days


def parse_severity_policy(raw: Any, path: str, currency_exponent: int) -> SeverityPolicy:
    if raw is None:
        return SeverityPolicy(currency_exponent=currency_exponent)
    if not isinstance(raw, dict) or set(raw) - {"amount_bands", "default", "type_floor", "type_cap",
                                                "age_escalation_days"}:
        raise RuleError(path, "must be an object with amount_bands, default, type_floor, type_cap, "
                              "age_escalation_days")
    defaults = SeverityPolicy(currency_exponent=currency_exponent)
    bands = defaults.amount_bands
    if "amount_bands" in raw:
        if not isinstance(raw["amount_bands"], list):
            raise RuleError(f"{path}.amount_bands", "must be a list of {min, severity}")
        parsed = []
        for index, band in enumerate(raw["amount_bands"]):
            band_path = f"{path}.amount_bands[{index}]"
            if not isinstance(band, dict) or set(band) != {"min", "severity"}:
                raise RuleError(band_path, "must be an object with min and severity")
            try:
                minimum = Decimal(str(band["min"]))
            except InvalidOperation:
                raise RuleError(f"{band_path}.min", "must be a number") from None
            parsed.append((minimum, _level(band["severity"], f"{band_path}.severity")))
        bands = tuple(sorted(parsed, key=lambda item: item[0], reverse=True))
    age = raw.get("age_escalation_days", defaults.age_escalation_days)
    if age is not None and (isinstance(age, bool) or not isinstance(age, int) or age < 1):
        raise RuleError(f"{path}.age_escalation_days", "must be a positive integer or null")
    return SeverityPolicy(
        amount_bands=bands,
        default=_level(raw.get("default", defaults.default), f"{path}.default"),
        type_floor=_levels_by_type(raw.get("type_floor", defaults.type_floor), f"{path}.type_floor"),
        type_cap=_levels_by_type(raw.get("type_cap", defaults.type_cap), f"{path}.type_cap"),
        age_escalation_days=age,
        currency_exponent=currency_exponent,
    )


def _level(value: Any, path: str) -> str:
    if value not in SEVERITY_LEVELS:
        raise RuleError(path, f"must be one of {list(SEVERITY_LEVELS)}")
    return str(value)


def _levels_by_type(value: Any, path: str) -> dict[str, str]:
    from reckai.domain.reconciliation.results import BreakType

    if not isinstance(value, dict):
        raise RuleError(path, "must be an object of break type -> severity")
    types = {t.value for t in BreakType}
    for key in value:
        if key not in types:
            raise RuleError(path, f"unknown break type {key!r}")
    return {key: _level(level, f"{path}.{key}") for key, level in value.items()}
