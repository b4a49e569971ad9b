"""A reconciliation profile: both files' mappings, which side leads, the rules, severity policy.

The JSON format is documented in docs/profile.md. Unknown keys are refused, so a typo never turns
into a silently ignored option.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from reckai.domain.ingestion.canonical import minor_unit_exponent
from reckai.domain.ingestion.errors import InvalidMapping
from reckai.domain.ingestion.mapping import parse_mapping
from reckai.domain.reconciliation.rules import MatchingRule, RuleError, parse_rule
from reckai.domain.reconciliation.severity import SeverityPolicy, parse_severity_policy

ProfileError = RuleError


@dataclass(frozen=True)
class SideSpec:
    label: str  # "Bank", "Switch": used in explanations
    direction: str | None  # only rows with this direction take part in matching; None = any
    # the file's mapping (docs/mapping.md); None = detect it from the file when reconciling
    mapping: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def auto_mapping(self) -> bool:
        return self.mapping is None


MAX_CUTOFF_DAYS = 3660  # ten years


@dataclass(frozen=True)
class CutOff:
    """The window at the end of the period where a leading-side row may still be in transit."""

    days: int = 1  # the last N days of the period
    time: dt.time = dt.time(0, 0)  # on the first of those days, from this time

    def window(self, period_end: dt.date) -> tuple[dt.datetime, dt.datetime]:
        first_day = period_end - dt.timedelta(days=self.days - 1)
        return (dt.datetime.combine(first_day, self.time),
                dt.datetime.combine(period_end + dt.timedelta(days=1), dt.time(0, 0)))


@dataclass(frozen=True)
class ReconciliationPeriod:
    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ProfileError("period", f"ends ({self.end}) before it starts ({self.start})")


@dataclass(frozen=True)
class ReconciliationProfile:
    name: str
    left: SideSpec
    right: SideSpec
    rules: tuple[MatchingRule, ...]
    currency: str = "NGN"  # the organization's currency: tolerances and severity bands are in it
    leading_side: str | None = None  # "left" | "right": the side whose counterpart posts later
    settlement_side: str | None = None  # "left" | "right": that side is the settlement of the other
    cutoff: CutOff = CutOff()
    reference_label: str = "reference"  # how explanations name the reference ("RRN")
    severity: SeverityPolicy = field(default_factory=SeverityPolicy)

    @property
    def passes(self) -> tuple[MatchingRule, ...]:
        """Active rules in the order they run: ascending priority, then name."""
        return tuple(sorted((r for r in self.rules if r.is_active), key=lambda r: (r.priority, r.name)))

    def label(self, side: str) -> str:
        return self.left.label if side == "left" else self.right.label

    def raw_fields(self) -> set[str]:
        """Source columns the rules read through `raw.<column>` (matching, conditions, grouping):
        when there are none, a reader need not keep the source row beside the canonical fields."""
        names: set[str] = set()
        for rule in self.rules:
            for mapping in rule.field_mappings:
                names.update((mapping.left, mapping.right))
            for condition in (*rule.left_conditions, *rule.right_conditions):
                names.add(condition.field)
            if rule.group is not None:
                names.update(rule.group.by)
        return {name[4:] for name in names if name.startswith("raw.")}


_PROFILE_KEYS = {"name", "currency", "left", "right", "leading_side", "settlement_side", "cutoff",
                 "reference_label", "rules", "severity"}


def parse_profile(raw: Any) -> ReconciliationProfile:
    if not isinstance(raw, dict):
        raise ProfileError("profile", "must be a JSON object")
    unknown = set(raw) - _PROFILE_KEYS
    if unknown:
        raise ProfileError("profile", f"unknown key(s) {sorted(unknown)}")
    currency = raw.get("currency", "NGN")
    if not isinstance(currency, str) or len(currency) != 3:
        raise ProfileError("currency", "must be an ISO 4217 code such as NGN")
    currency = currency.upper()
    exponent = minor_unit_exponent(currency)
    rules_raw = raw.get("rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        raise ProfileError("rules", "must be a non-empty list of rules")
    rules = tuple(parse_rule(rule, f"rules[{index}]", exponent) for index, rule in enumerate(rules_raw))
    names = [rule.name for rule in rules]
    if len(set(names)) != len(names):
        raise ProfileError("rules", "rule names must be unique")
    for key in ("leading_side", "settlement_side"):
        if raw.get(key) not in (None, "left", "right"):
            raise ProfileError(key, "must be left, right or null")
    name = raw.get("name", "profile")
    if not isinstance(name, str):
        raise ProfileError("name", "must be a string")
    reference_label = raw.get("reference_label", "reference")
    if not isinstance(reference_label, str) or not reference_label:
        raise ProfileError("reference_label", "must be a non-empty string")
    return ReconciliationProfile(
        name=name,
        left=_parse_side(raw.get("left"), "left", "Left"),
        right=_parse_side(raw.get("right"), "right", "Right"),
        rules=rules,
        currency=currency,
        leading_side=raw.get("leading_side"),
        settlement_side=raw.get("settlement_side"),
        cutoff=_parse_cutoff(raw.get("cutoff")),
        reference_label=reference_label,
        severity=parse_severity_policy(raw.get("severity"), "severity", exponent),
    )


def _parse_side(raw: Any, path: str, default_label: str) -> SideSpec:
    if not isinstance(raw, dict):
        raise ProfileError(path, "must be an object with label, direction and mapping")
    unknown = set(raw) - {"label", "direction", "mapping"}
    if unknown:
        raise ProfileError(path, f"unknown key(s) {sorted(unknown)}")
    direction = raw.get("direction")
    if direction not in (None, "debit", "credit"):
        raise ProfileError(f"{path}.direction", "must be debit, credit or null")
    mapping = raw.get("mapping", "auto")
    if mapping == "auto":
        mapping = None
    elif not isinstance(mapping, dict):
        raise ProfileError(f"{path}.mapping", 'must be the file\'s mapping JSON (docs/mapping.md) or "auto"')
    else:
        try:
            parse_mapping(mapping)
        except InvalidMapping as exc:
            raise ProfileError(f"{path}.mapping", exc.message) from exc
    label = raw.get("label", default_label)
    if not isinstance(label, str) or not label:
        raise ProfileError(f"{path}.label", "must be a non-empty string")
    return SideSpec(label=label, direction=direction, mapping=mapping)


def _parse_cutoff(raw: Any) -> CutOff:
    if raw is None:
        return CutOff()
    if not isinstance(raw, dict) or set(raw) - {"days", "time"}:
        raise ProfileError("cutoff", "must be an object with days and/or time")
    days = raw.get("days", 1)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_CUTOFF_DAYS:
        # bounded: the window is a date range, and a day count past a date's range overflowed
        raise ProfileError("cutoff.days", f"must be an integer from 1 to {MAX_CUTOFF_DAYS}")
    time_text = raw.get("time")
    cut_time = dt.time(0, 0)
    if time_text is not None:
        try:
            cut_time = dt.time.fromisoformat(time_text)
        except (TypeError, ValueError):
            raise ProfileError("cutoff.time", "must be HH:MM or HH:MM:SS") from None
    return CutOff(days=days, time=cut_time)
