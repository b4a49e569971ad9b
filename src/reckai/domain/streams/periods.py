"""A stream's periods: a day or a month in the organization's time zone, closed by a checker
(docs/streams.md, "Periods"; docs/decisions/period-close.md).

Standard library only. A period is named by its key: `YYYY-MM-DD` is a day, `YYYY-MM` a month; a
stream's periods are all of one granularity. A run belongs to the period its start falls in (in
the organization's time zone). Closing a period snapshots its figures and freezes what it
settled: the exceptions of the period that are closed (resolved or ignored) at close become
read-only (a database trigger refuses changes to them outside an approved adjustment); the
exceptions still open carry into the next period, their age still counted from their earliest
transaction date.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from reckai.domain.exceptions.aging import BUCKET_LABELS, NO_DATE, age_bucket

GRANULARITIES = ("day", "month")
CLOSED = "closed"
REOPENED = "reopened"
OPEN = "open"  # a period with runs that was never closed (not stored)
ADJUSTMENT_ACTIONS = ("reopen", "resolve", "ignore", "link")
MAX_LINKED_ROWS = 50
CLOSED_ITEM_STATUSES = ("resolved", "ignored")
MAX_ADJUSTED_EXCEPTIONS = 500
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class InvalidPeriod(ValueError):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field_name = field_name
        self.reason = reason


@dataclass(frozen=True)
class Period:
    """A day (`2025-12-31`) or a month (`2025-12`): [first_day, last_day] in a time zone."""

    key: str
    granularity: str
    first_day: dt.date
    last_day: dt.date

    @classmethod
    def parse(cls, key: str) -> Period:
        day = _DAY.match(key or "")
        month = _MONTH.match(key or "")
        try:
            if day:
                first = dt.date(int(day[1]), int(day[2]), int(day[3]))
                return cls(first.isoformat(), "day", first, first)
            if month:
                first = dt.date(int(month[1]), int(month[2]), 1)
                return cls(first.strftime("%Y-%m"), "month", first, _next_month(first) - dt.timedelta(days=1))
        except ValueError:  # an impossible date (2026-02-30): the same refusal as a malformed one
            pass
        raise InvalidPeriod("period", "must be a day YYYY-MM-DD or a month YYYY-MM")

    @classmethod
    def containing(cls, moment: dt.datetime, granularity: str, timezone: str) -> Period:
        local = moment.astimezone(ZoneInfo(timezone)).date()
        return cls.parse(local.isoformat() if granularity == "day" else local.strftime("%Y-%m"))

    def start(self, timezone: str) -> dt.datetime:
        return dt.datetime.combine(self.first_day, dt.time(), ZoneInfo(timezone)).astimezone(dt.UTC)

    def end(self, timezone: str) -> dt.datetime:
        """The first instant after the period (exclusive), UTC."""
        after = self.last_day + dt.timedelta(days=1)
        return dt.datetime.combine(after, dt.time(), ZoneInfo(timezone)).astimezone(dt.UTC)

    def contains(self, moment: dt.datetime, timezone: str) -> bool:
        return self.start(timezone) <= moment < self.end(timezone)

    def has_ended(self, now: dt.datetime, timezone: str) -> bool:
        return now >= self.end(timezone)

    def next(self) -> Period:
        if self.granularity == "day":
            return Period.parse((self.first_day + dt.timedelta(days=1)).isoformat())
        return Period.parse(_next_month(self.first_day).strftime("%Y-%m"))


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)


@dataclass(frozen=True)
class StreamPeriod:
    """A period of a stream that was closed at least once (status closed, or reopened)."""

    organization_id: uuid.UUID
    stream_id: uuid.UUID
    key: str
    granularity: str
    status: str
    timezone: str
    figures: dict[str, Any]
    closed_at: dt.datetime
    closed_by: uuid.UUID  # who asked for the close
    close_approved_by: uuid.UUID
    close_approval_id: uuid.UUID
    times_closed: int = 1
    reopened_at: dt.datetime | None = None
    reopened_by: uuid.UUID | None = None
    reopen_approval_id: uuid.UUID | None = None

    @property
    def period(self) -> Period:
        return Period.parse(self.key)

    @property
    def is_closed(self) -> bool:
        return self.status == CLOSED


@dataclass(frozen=True)
class PeriodItem:
    """An exception of a closed period, as it stood at close: `carried` (still open, into the next
    period) or settled (closed at close: frozen while the period is closed)."""

    exception_id: uuid.UUID
    carried: bool
    status_at_close: str


@dataclass(frozen=True)
class PeriodAdjustment:
    """A change to exceptions of a closed period, approved by a checker (`period_adjustment`)."""

    id: uuid.UUID
    stream_id: uuid.UUID
    period_key: str
    approval_id: uuid.UUID
    action: str
    exception_ids: tuple[uuid.UUID, ...]
    reason: str
    requested_by: uuid.UUID
    approved_by: uuid.UUID
    applied_at: dt.datetime
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemFacts:
    """What the figures need of one exception of the period."""

    exception_id: uuid.UUID
    type: str
    status: str
    currency: str
    amount_minor: int  # absolute, in minor units
    earliest: dt.date | None  # earliest transaction date of its rows (domain/exceptions/aging.py)
    carried_in: bool  # it came into the period open from an earlier one
    resolution_code: str | None = None


RUN_SUMS = ("matched_pairs", "carried_rows_matched", "closed_by_later_match", "new_exceptions",
            "exceptions_found_again")
RUN_SIDE_SUMS = ("new_rows", "repeated_rows", "carried_rows", "settled_since_last_run")


def run_figures(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The period's runs added up (each run's `figures`, docs/streams.md)."""
    out: dict[str, Any] = {"runs": [int(r["run_number"]) for r in runs if "run_number" in r]}
    for key in RUN_SUMS:
        out[key] = sum(int(r.get(key) or 0) for r in runs)
    for key in RUN_SIDE_SUMS:
        out[key] = {side: sum(int((r.get(key) or {}).get(side) or 0) for r in runs) for side in ("left", "right")}
    out["open_rows_after"] = dict(runs[-1].get("open_rows_after") or {}) if runs else {"left": 0, "right": 0}
    matched: dict[str, dict[str, int]] = {}
    for run in runs:
        for currency, sides in (run.get("matched_amounts") or {}).items():
            total = matched.setdefault(currency, {"left": 0, "right": 0})
            for side in ("left", "right"):
                total[side] += int(sides.get(side) or 0)
    out["matched_amounts"] = dict(sorted(matched.items()))
    return out


def item_figures(items: Iterable[ItemFacts], as_of: dt.date) -> dict[str, Any]:
    """Open items by break type and age bucket (age on `as_of`, from the earliest transaction
    date), closed items, and amounts per currency in minor units."""
    open_by_type: Counter[str] = Counter()
    open_by_age: Counter[str] = Counter({label: 0 for label in BUCKET_LABELS})
    by_type_and_age: dict[str, Counter[str]] = defaultdict(Counter)
    closed: Counter[str] = Counter()
    amounts: dict[str, Counter[str]] = defaultdict(Counter)
    carried_in = open_count = 0
    for item in items:
        carried_in += item.carried_in
        if item.status in CLOSED_ITEM_STATUSES:
            closed[item.status] += 1
            if item.resolution_code == "matched_in_later_run":
                closed["closed_by_later_match"] += 1
            amounts[item.currency]["closed_minor"] += item.amount_minor
            continue
        open_count += 1
        bucket = age_bucket(item.earliest, as_of)
        open_by_type[item.type] += 1
        open_by_age[bucket] += 1
        by_type_and_age[item.type][bucket] += 1
        amounts[item.currency]["open_minor"] += item.amount_minor
    if not open_by_age.get(NO_DATE):
        open_by_age.pop(NO_DATE, None)
    return {
        "as_of": as_of.isoformat(),
        "carried_in": carried_in,
        "open_items": {"count": open_count, "by_type": dict(sorted(open_by_type.items())),
                       "by_age": {label: open_by_age[label] for label in open_by_age},
                       "by_type_and_age": {t: dict(c) for t, c in sorted(by_type_and_age.items())}},
        "closed_items": {"count": closed["resolved"] + closed["ignored"], "resolved": closed["resolved"],
                         "ignored": closed["ignored"], "closed_by_later_match": closed["closed_by_later_match"]},
        "carried_out": open_count,
        "amounts": {currency: {"open_minor": c["open_minor"], "closed_minor": c["closed_minor"]}
                    for currency, c in sorted(amounts.items())},
    }


def check_reason(reason: str | None, field_name: str = "reason", limit: int = 4000) -> str:
    cleaned = (reason or "").strip()
    if not cleaned:
        raise InvalidPeriod(field_name, "is required")
    if len(cleaned) > limit:
        raise InvalidPeriod(field_name, f"is longer than {limit} characters")
    return cleaned
