"""The dashboard's reader in memory (application/ports/dashboard.py): counts the stored rows
directly, so the contract tests compare the PostgreSQL rollup with a plain count."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from zoneinfo import ZoneInfo

from reckai.adapters.memory.store import MemoryTransaction
from reckai.application.ports.dashboard import (
    Backlog,
    BacklogGroup,
    CurrencyAmount,
    DashboardReader,
    JobDay,
    TypeCurrencyAmount,
)
from reckai.domain.approvals.workflow import Approval, ApprovalStatus
from reckai.domain.exceptions.aging import earliest_transaction_date
from reckai.domain.exceptions.lifecycle import ACTIVE_STATUSES, ExceptionItem
from reckai.domain.reconciliation.jobs import JobStatus, ReconciliationJob


class MemoryDashboardReader:
    def __init__(self, uow: MemoryTransaction) -> None:
        self.uow = uow

    def _exceptions(self) -> list[ExceptionItem]:
        return [row for _, row in self.uow.rows("exceptions")]

    def _active(self) -> list[ExceptionItem]:
        return [row for row in self._exceptions() if row.status in ACTIVE_STATUSES]

    def active_backlog(self, not_before: dt.date, not_after: dt.date) -> Backlog:
        active = self._active()

        def day(row: ExceptionItem) -> dt.date | None:
            earliest = earliest_transaction_date(row.transaction_date, row.evidence)
            return None if earliest is None else min(max(earliest, not_before), not_after)

        groups = Counter((row.severity, day(row)) for row in active)
        counts: Counter[str | None] = Counter()
        totals: defaultdict[str | None, Decimal] = defaultdict(Decimal)
        for row in active:
            counts[row.currency] += 1
            totals[row.currency] += abs(row.amount or Decimal(0))
        return Backlog(groups=[BacklogGroup(severity, day, n) for (severity, day), n in groups.items()],
                       amounts=[CurrencyAmount(currency, n, totals[currency]) for currency, n in counts.items()])

    def overdue_count(self, now: dt.datetime) -> int:
        return sum(1 for row in self._active() if row.due_at <= now)

    def break_types(self, date_from: dt.date, date_to: dt.date) -> Sequence[TypeCurrencyAmount]:
        counts: Counter[tuple[str, str | None]] = Counter()
        totals: defaultdict[tuple[str, str | None], Decimal] = defaultdict(Decimal)
        for row in self._exceptions():
            day = earliest_transaction_date(row.transaction_date, row.evidence)
            if day is not None and date_from <= day <= date_to:
                counts[(row.type, row.currency)] += 1
                totals[(row.type, row.currency)] += abs(row.amount or Decimal(0))
        return [TypeCurrencyAmount(kind, currency, n, totals[(kind, currency)]) for (kind, currency), n in counts.items()]

    def job_days(self, start: dt.datetime, end: dt.datetime, timezone: str) -> Sequence[JobDay]:
        zone = ZoneInfo(timezone)
        days: dict[dt.date, list[ReconciliationJob]] = defaultdict(list)
        for _, job in self.uow.rows("reconciliation_jobs"):
            if job.created_at is not None and start <= job.created_at < end:
                days[job.created_at.astimezone(zone).date()].append(job)
        result = []
        for day in sorted(days):
            jobs = days[day]
            completed = [j for j in jobs if j.status is JobStatus.COMPLETED]
            result.append(JobDay(day, len(jobs), len(completed), sum(1 for j in jobs if j.status is JobStatus.FAILED),
                                 sum(j.total_rows for j in completed), sum(j.matched_rows for j in completed)))
        return result

    def pending_approvals(self) -> Mapping[str, int]:
        approvals: list[Approval] = [row for _, row in self.uow.rows("approvals")]
        return dict(Counter(a.type.value for a in approvals if a.status is ApprovalStatus.PENDING))


_check: type[DashboardReader] = MemoryDashboardReader
