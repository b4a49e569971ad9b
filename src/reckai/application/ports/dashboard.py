"""The dashboard's reader (issue 14 §3; docs/reports.md "Dashboard").

Every method answers for the unit of work's organization only, from stored data, grouped so the
answer is small whatever the number of exceptions (PostgreSQL reads the rollup tables that
triggers on `exceptions` keep, migration 0019; the in-memory twin counts its rows). "Active"
exceptions are those still needing work: open, in_progress, escalated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from reckai.application.ports.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class BacklogGroup:
    """Active exceptions of one severity whose earliest transaction date is `earliest_date`
    (None: no date recorded)."""

    severity: str
    earliest_date: dt.date | None
    count: int


@dataclass(frozen=True)
class CurrencyAmount:
    """Exceptions of one currency (None: none recorded): how many, and the sum of their absolute
    amounts in major units (exact; an exception without an amount adds 0)."""

    currency: str | None
    count: int
    amount_total: Decimal


@dataclass(frozen=True)
class Backlog:
    """Active exceptions, counted two ways."""

    groups: Sequence[BacklogGroup]  # per (severity, earliest transaction date); groups of 0 left out
    amounts: Sequence[CurrencyAmount]  # per currency; currencies with none left out


@dataclass(frozen=True)
class TypeCurrencyAmount:
    type: str
    currency: str | None
    count: int
    amount_total: Decimal


@dataclass(frozen=True)
class JobDay:
    """Reconciliation jobs created on one local day: all of them, the completed and failed ones,
    and the rows and matched rows of the completed ones."""

    day: dt.date
    created: int
    completed: int
    failed: int
    total_rows: int
    matched_rows: int


class DashboardReader(Protocol):
    def active_backlog(self, not_before: dt.date, not_after: dt.date) -> Backlog:
        """Active exceptions counted per (severity, earliest transaction date), and counted with
        their absolute amounts summed per currency. Dates before `not_before` are counted under
        `not_before`, dates after `not_after` under `not_after` (beyond those, age no longer
        changes the bucket: the answer stays small however old the backlog)."""
        ...

    def overdue_count(self, now: dt.datetime) -> int:
        """Active exceptions whose `due_at` is at or before `now` (aware)."""
        ...

    def break_types(self, date_from: dt.date, date_to: dt.date) -> Sequence[TypeCurrencyAmount]:
        """Exceptions of any status whose earliest transaction date is within [date_from, date_to],
        counted and their absolute amounts summed, per (type, currency)."""
        ...

    def job_days(self, start: dt.datetime, end: dt.datetime, timezone: str) -> Sequence[JobDay]:
        """Jobs created in [start, end) (aware), grouped by their creation day in `timezone` (IANA)."""
        ...

    def pending_approvals(self) -> Mapping[str, int]:
        """Pending approvals counted per type; types with none left out."""
        ...


class DashboardUnitOfWork(UnitOfWork, Protocol):
    @property
    def dashboard(self) -> DashboardReader: ...
