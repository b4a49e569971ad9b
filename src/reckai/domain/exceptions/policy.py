"""Per-organization workflow settings: SLA hours by severity, the resolution amount that needs a
checker, and which requests the organization routes through maker-checker.

Stored in `organizations.settings["workflow"]` (docs/workflow.md):

    {"sla_hours": {"critical": 4, "high": 24, "medium": 72, "low": 168},
     "resolution_approval_threshold": {"NGN": "1000000.00", "*": "5000.00"},
     "approval_required_for": ["user_onboarding", "system_setting"],
     "checker_cooling_off_days": 7}

Every key is optional; a missing key takes the default. A malformed value is refused, never
clamped or ignored: a typo must not silently switch a control off.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from reckai.domain.approvals.separation import (
    DEFAULT_COOLING_OFF_DAYS,
    MAX_COOLING_OFF_DAYS,
    MIN_COOLING_OFF_DAYS,
)
from reckai.domain.exceptions.errors import InvalidWorkflowSettings

SEVERITIES = ("low", "medium", "high", "critical")

DEFAULT_SLA_HOURS: Mapping[str, int] = {"critical": 4, "high": 24, "medium": 72, "low": 168}
MAX_SLA_HOURS = 24 * 366

# Types whose effect is otherwise applied directly when the organization does not require a
# checker for them (the other four always go through an approval).
OPTIONAL_APPROVAL_TYPES = frozenset({"user_onboarding", "system_setting"})
# SETTINGS-REGISTRY (issue 14): report generation needs a checker when `report_generation` (every
# report type) or `report_generation:<type>` is listed.
REPORT_GENERATION = "report_generation"
REPORT_TYPES_NEEDING_APPROVAL = ("daily", "aging", "sla", "channel_trend", "audit")
OPTIONAL_REPORT_APPROVALS = frozenset({REPORT_GENERATION} | {f"{REPORT_GENERATION}:{kind}"
                                                              for kind in REPORT_TYPES_NEEDING_APPROVAL})
# The identity feature's own switch for user_onboarding (organizations.settings, PUT /api/settings).
USER_ONBOARDING_FLAG = "user_onboarding_requires_approval"

_KEYS = {"sla_hours", "resolution_approval_threshold", "approval_required_for", "checker_cooling_off_days"}

# What a new organization starts with (onboarding): a resolution of a break of this amount or
# more needs a checker. NGN is the platform's home currency; "*" covers any other currency
# (about the same value in USD, EUR or GBP). docs/workflow.md explains the choice.
DEFAULT_RESOLUTION_APPROVAL_THRESHOLD: Mapping[str, str] = {"NGN": "100000.00", "*": "100.00"}


@dataclass(frozen=True)
class SlaPolicy:
    hours: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_SLA_HOURS))

    def due_at(self, created_at: dt.datetime, severity: str) -> dt.datetime:
        return created_at + dt.timedelta(hours=self.hours[severity])


@dataclass(frozen=True)
class WorkflowSettings:
    sla: SlaPolicy = field(default_factory=SlaPolicy)
    # currency (or "*" for any other) -> amount in major units at or above which a resolution
    # needs a checker. Empty: no resolution needs one.
    resolution_thresholds: Mapping[str, Decimal] = field(default_factory=dict)
    approval_required_for: frozenset[str] = frozenset()
    # A user the requester created or last changed may not check their requests for this long
    # (domain/approvals/separation.py).
    checker_cooling_off: dt.timedelta = dt.timedelta(days=DEFAULT_COOLING_OFF_DAYS)

    def threshold_for(self, currency: str | None) -> Decimal | None:
        return self.resolution_thresholds.get((currency or "").upper(), self.resolution_thresholds.get("*"))

    def requires_approval(self, approval_type: str) -> bool:
        return approval_type in self.approval_required_for

    def report_requires_approval(self, report_type: str) -> bool:
        return bool({REPORT_GENERATION, f"{REPORT_GENERATION}:{report_type}"} & self.approval_required_for)


@dataclass(frozen=True)
class StakedAmount:
    """One stored amount a closing settles (a row's, or an exception's), in major units of its currency."""

    amount: Decimal
    currency: str | None

    @classmethod
    def of_minor(cls, amount_minor: int, currency: str | None, exponent: int) -> StakedAmount:
        return cls(Decimal(amount_minor).scaleb(-exponent), currency)


@dataclass(frozen=True)
class ClosingDecision:
    """What `closing_needs_checker` decided, with the amount that decided it (for the request's title,
    audit and amount band)."""

    needs_checker: bool
    amount: Decimal | None = None  # the larger absolute stored amount, in `currency`
    currency: str | None = None
    threshold: Decimal | None = None


class Closer(str, Enum):
    """Who closes: a person (any API path), or the matching engine of a stream's later run that
    matched the exception's own row (docs/streams.md)."""

    PERSON = "person"
    LATER_MATCH = "later_match"


def closing_needs_checker(settings: WorkflowSettings, amounts: Iterable[StakedAmount],
                          closer: Closer = Closer.PERSON) -> ClosingDecision:
    """THE rule for every way out of the open set (resolve, ignore, bulk resolve, manual link,
    confirming a suggestion; docs/workflow.md "Closing an exception"; and a stream's later match,
    docs/streams.md): a closing by a person needs a checker when the larger absolute stored amount of
    the rows and exceptions it settles reaches the threshold of their currency (falling back to
    "*"). Amounts are the stored ones, never a client's.

    With several currencies each is compared with its own threshold; any reaching it decides.

    A closing by a later match (`Closer.LATER_MATCH`) never needs one: no person decides anything;
    the engine matched the row under the stream's pinned, approved rules, exactly as it matches the
    rows that never became an exception (a clean match is not subject to the threshold either)."""
    if closer is Closer.LATER_MATCH:
        return ClosingDecision(False)
    largest: dict[str | None, Decimal] = {}
    for staked in amounts:
        currency = (staked.currency or "").upper() or None
        largest[currency] = max(largest.get(currency, Decimal(0)), abs(staked.amount))
    if not largest:
        return ClosingDecision(False)
    deciding: ClosingDecision | None = None
    for currency, amount in sorted(largest.items(), key=lambda kv: (kv[0] or "", kv[1])):
        threshold = settings.threshold_for(currency)
        reaches = threshold is not None and amount >= threshold
        if reaches and (deciding is None or amount > (deciding.amount or 0)):
            deciding = ClosingDecision(True, amount, currency, threshold)
    if deciding is not None:
        return deciding
    currency, amount = max(largest.items(), key=lambda kv: kv[1])
    return ClosingDecision(False, amount, currency, settings.threshold_for(currency))


# Bands for the approval mail (docs/workflow.md "Amount bands"): the checker learns the order of
# magnitude, not the amount, from a message that may be forwarded or read on a phone.
AMOUNT_BANDS = (Decimal(10_000), Decimal(100_000), Decimal(1_000_000), Decimal(10_000_000), Decimal(100_000_000))


def amount_band(amount: Decimal | None, currency: str | None) -> str:
    if amount is None:
        return "no amount"
    value, prefix = abs(amount), f"{currency} " if currency else ""
    lower = None
    for bound in AMOUNT_BANDS:
        if value < bound:
            return f"{prefix}under {bound:,.0f}" if lower is None else f"{prefix}{lower:,.0f} to {bound:,.0f}"
        lower = bound
    return f"{prefix}{AMOUNT_BANDS[-1]:,.0f} or more"


def approval_required(organization_settings: Mapping[str, Any] | None, approval_type: str) -> bool:
    """Whether the organization routes this optional request type through a checker: listed in
    `workflow.approval_required_for`, or (user_onboarding) the identity flag is on. A malformed
    workflow setting raises InvalidWorkflowSettings rather than switching the control off."""
    if approval_type == "user_onboarding" and (organization_settings or {}).get(USER_ONBOARDING_FLAG):
        return True
    return parse_workflow_settings(organization_settings).requires_approval(approval_type)


def parse_workflow_settings(organization_settings: Mapping[str, Any] | None) -> WorkflowSettings:
    raw = (organization_settings or {}).get("workflow")
    if raw is None:
        return WorkflowSettings()
    if not isinstance(raw, Mapping):
        raise InvalidWorkflowSettings("", "must be an object")
    unknown = set(raw) - _KEYS
    if unknown:
        raise InvalidWorkflowSettings(min(unknown), "unknown key")
    return WorkflowSettings(
        sla=_parse_sla(raw.get("sla_hours")),
        resolution_thresholds=_parse_thresholds(raw.get("resolution_approval_threshold")),
        approval_required_for=_parse_required(raw.get("approval_required_for")),
        checker_cooling_off=_parse_cooling_off(raw.get("checker_cooling_off_days")),
    )


def _parse_cooling_off(raw: Any) -> dt.timedelta:
    if raw is None:
        return dt.timedelta(days=DEFAULT_COOLING_OFF_DAYS)
    if isinstance(raw, bool) or not isinstance(raw, int) or not MIN_COOLING_OFF_DAYS <= raw <= MAX_COOLING_OFF_DAYS:
        raise InvalidWorkflowSettings("checker_cooling_off_days",
                                      f"must be a whole number of days from {MIN_COOLING_OFF_DAYS} "
                                      f"to {MAX_COOLING_OFF_DAYS}")
    return dt.timedelta(days=raw)


def _parse_sla(raw: Any) -> SlaPolicy:
    if raw is None:
        return SlaPolicy()
    if not isinstance(raw, Mapping):
        raise InvalidWorkflowSettings("sla_hours", "must be an object of severity -> hours")
    hours = dict(DEFAULT_SLA_HOURS)
    for severity, value in raw.items():
        if severity not in SEVERITIES:
            raise InvalidWorkflowSettings(f"sla_hours.{severity}", "unknown severity")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SLA_HOURS:
            raise InvalidWorkflowSettings(f"sla_hours.{severity}", f"must be an integer from 1 to {MAX_SLA_HOURS}")
        hours[severity] = value
    return SlaPolicy(hours)


def _parse_thresholds(raw: Any) -> dict[str, Decimal]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raw = {"*": raw}
    thresholds = {}
    for currency, value in raw.items():
        if not isinstance(currency, str) or not (currency == "*" or (len(currency) == 3 and currency.isalpha())):
            raise InvalidWorkflowSettings(f"resolution_approval_threshold.{currency}", "key must be a currency or *")
        thresholds[currency.upper()] = parse_amount(value, f"resolution_approval_threshold.{currency}")
    return thresholds


def parse_amount(value: Any, path: str) -> Decimal:
    """A non-negative money amount in major units with at most 2 decimals; floats go through
    their shortest text form, never their binary value."""
    if isinstance(value, bool) or not isinstance(value, int | str | float | Decimal):
        raise InvalidWorkflowSettings(path, "must be a decimal string such as \"1000000.00\"")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidWorkflowSettings(path, f"not a number: {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise InvalidWorkflowSettings(path, "must be a non-negative amount with at most 2 decimals")
    return amount


def _parse_required(raw: Any) -> frozenset[str]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise InvalidWorkflowSettings("approval_required_for", "must be a list of approval types")
    unknown = set(raw) - OPTIONAL_APPROVAL_TYPES - OPTIONAL_REPORT_APPROVALS
    if unknown:
        raise InvalidWorkflowSettings(
            "approval_required_for", f"only {sorted(OPTIONAL_APPROVAL_TYPES)} and report_generation or "
                                     f"report_generation:<report type> are optional; got {sorted(unknown)}")
    return frozenset(raw)
