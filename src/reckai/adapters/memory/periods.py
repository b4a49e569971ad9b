"""In-memory repository of stream periods (same contract as adapters/postgres/periods.py;
tests/contracts/period_repositories.py runs over both). The freeze trigger of PostgreSQL has no
twin here: the application's check (application/exceptions/closed_periods.py) is what the memory
adapter enforces."""

from __future__ import annotations

import builtins
import dataclasses
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from reckai.adapters.memory.store import MemoryTransaction
from reckai.application.ports.periods import ExceptionFacts, FrozenIn, StreamPeriodRepository
from reckai.application.ports.repositories import DuplicateEntity, TenantIsolationViolation
from reckai.domain.exceptions.aging import earliest_transaction_date
from reckai.domain.streams.periods import CLOSED, PeriodAdjustment, PeriodItem, StreamPeriod

PERIODS = "stream_periods"
ITEMS = "stream_period_items"
RUNS = "stream_period_runs"
ADJUSTMENTS = "stream_period_adjustments"


@dataclasses.dataclass(frozen=True)
class _Owned:
    organization_id: uuid.UUID
    stream_id: uuid.UUID
    period_key: str
    value: Any


class MemoryStreamPeriodRepository:
    entity_name = "stream_period"

    def __init__(self, uow: MemoryTransaction) -> None:
        self._uow = uow
        self._adjusting: PeriodAdjustment | None = None

    @property
    def _org(self) -> uuid.UUID:
        if self._uow.organization_id is None:
            raise TenantIsolationViolation(self.entity_name, None, None)
        return self._uow.organization_id

    def get(self, stream_id: uuid.UUID, period_key: str) -> StreamPeriod | None:
        found: StreamPeriod | None = self._uow.get(PERIODS, (stream_id, period_key))
        return found

    def list(self, stream_id: uuid.UUID) -> builtins.list[StreamPeriod]:
        return sorted((p for _, p in self._uow.rows(PERIODS) if p.stream_id == stream_id), key=lambda p: p.key)

    def save(self, period: StreamPeriod) -> None:
        if period.organization_id != self._uow.organization_id:
            raise TenantIsolationViolation(self.entity_name, period.organization_id, self._uow.organization_id)
        self._uow.put(PERIODS, (period.stream_id, period.key), period)

    def replace_items(self, stream_id: uuid.UUID, period_key: str, items: Sequence[PeriodItem],
                      runs: Sequence[tuple[int, uuid.UUID]]) -> None:
        for table in (ITEMS, RUNS):
            for key, row in builtins.list(self._uow.rows(table)):
                if row.stream_id == stream_id and row.period_key == period_key:
                    self._uow.remove(table, key)
        for item in items:
            self._uow.put(ITEMS, (stream_id, period_key, item.exception_id),
                          _Owned(self._org, stream_id, period_key, item))
        for run_number, job_id in runs:
            self._uow.put(RUNS, (stream_id, period_key, run_number),
                          _Owned(self._org, stream_id, period_key, (run_number, job_id)))

    def items(self, stream_id: uuid.UUID, period_key: str) -> builtins.list[PeriodItem]:
        found = [row.value for _, row in self._uow.rows(ITEMS)
                 if row.stream_id == stream_id and row.period_key == period_key]
        return sorted(found, key=lambda i: str(i.exception_id))

    def _frozen_rows(self) -> builtins.list[_Owned]:
        closed = {(p.stream_id, p.key) for _, p in self._uow.rows(PERIODS) if p.status == CLOSED}
        return [row for _, row in self._uow.rows(ITEMS)
                if (row.stream_id, row.period_key) in closed and not row.value.carried]

    def frozen(self, exception_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, FrozenIn]:
        wanted = set(exception_ids)
        return {row.value.exception_id: FrozenIn(row.stream_id, row.period_key) for row in self._frozen_rows()
                if row.value.exception_id in wanted}

    def frozen_in_stream(self, stream_id: uuid.UUID) -> set[uuid.UUID]:
        return {row.value.exception_id for row in self._frozen_rows() if row.stream_id == stream_id}

    def exception_facts(self, stream_id: uuid.UUID) -> builtins.list[ExceptionFacts]:
        found = []
        for _, link in self._uow.rows("stream_exceptions"):
            item = self._uow.get("exceptions", link.exception_id) if link.stream_id == stream_id else None
            if item is None:
                continue
            found.append(ExceptionFacts(item.id, link.first_run, item.type, item.status.value, item.currency,
                                        item.amount_minor, item.amount,
                                        earliest_transaction_date(item.transaction_date, item.evidence),
                                        item.resolution_code))
        return sorted(found, key=lambda f: str(f.exception_id))

    def begin_adjustment(self, adjustment: PeriodAdjustment) -> None:
        if any(row.value.approval_id == adjustment.approval_id for _, row in self._uow.rows(ADJUSTMENTS)):
            raise DuplicateEntity("stream_period_adjustment", "approval_id")
        self._uow.put(ADJUSTMENTS, adjustment.id,
                      _Owned(self._org, adjustment.stream_id, adjustment.period_key, adjustment))
        self._adjusting = adjustment

    def adjusting(self) -> PeriodAdjustment | None:
        return self._adjusting

    def adjustments(self, stream_id: uuid.UUID, period_key: str) -> builtins.list[PeriodAdjustment]:
        found = [row.value for _, row in self._uow.rows(ADJUSTMENTS)
                 if row.stream_id == stream_id and row.period_key == period_key]
        return sorted(found, key=lambda a: (a.applied_at, str(a.id)))


_check: type[StreamPeriodRepository] = MemoryStreamPeriodRepository
