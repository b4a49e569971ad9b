"""In-memory repository of stream schedules (same contract as adapters/postgres/stream_schedules.py;
tests/contracts/stream_schedule_repositories.py runs over both). `claim_slot` holds the slot's row
lock until the transaction ends, as PostgreSQL's unique index does for a pending INSERT."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence

from reckai.adapters.memory.store import MemoryTransaction
from reckai.application.ports.repositories import TenantIsolationViolation
from reckai.application.ports.stream_schedules import StreamScheduleRepository
from reckai.domain.streams.schedules import ScheduleSlot, StreamSchedule

SCHEDULES = "stream_schedules"
SLOTS = "stream_schedule_slots"


class MemoryStreamScheduleRepository:
    entity_name = "stream_schedule"

    def __init__(self, uow: MemoryTransaction) -> None:
        self._uow = uow

    def _check_tenant(self, organization_id: uuid.UUID) -> None:
        if organization_id != self._uow.organization_id:
            raise TenantIsolationViolation(self.entity_name, organization_id, self._uow.organization_id)

    def get(self, stream_id: uuid.UUID) -> StreamSchedule | None:
        found: StreamSchedule | None = self._uow.get(SCHEDULES, stream_id)
        return found

    def put(self, schedule: StreamSchedule) -> StreamSchedule:
        self._check_tenant(schedule.organization_id)
        now = self._uow.now()
        current = self.get(schedule.stream_id)
        if current is None:
            stored = dataclasses.replace(schedule, created_at=schedule.created_at or now,
                                         updated_at=schedule.updated_at or now)
        else:
            stored = dataclasses.replace(
                current, cron=schedule.cron, expected_left=schedule.expected_left,
                expected_right=schedule.expected_right, grace_minutes=schedule.grace_minutes,
                effective_from=schedule.effective_from, updated_by=schedule.updated_by,
                updated_at=schedule.updated_at or now)
        self._uow.put(SCHEDULES, schedule.stream_id, stored)
        return stored

    def remove(self, stream_id: uuid.UUID) -> bool:
        current = self.get(stream_id)
        if current is None:
            return False
        self._uow.remove(SCHEDULES, stream_id)
        for key, slot in list(self._uow.rows(SLOTS)):
            if slot.schedule_id == current.id:
                self._uow.remove(SLOTS, key)
        return True

    def list_all(self) -> list[StreamSchedule]:
        found = [schedule for _, schedule in self._uow.rows(SCHEDULES)]
        return sorted(found, key=lambda s: (s.created_at or dt.datetime.min.replace(tzinfo=dt.UTC), str(s.id)))

    def claim_slot(self, slot: ScheduleSlot) -> bool:
        self._check_tenant(slot.organization_id)
        key = (slot.schedule_id, slot.slot)
        self._uow.lock_row(SLOTS, key)  # a concurrent claim waits here until this transaction ends
        if self._uow.get(SLOTS, key) is not None:
            return False
        self._uow.put(SLOTS, key, slot)
        return True

    def slot(self, schedule_id: uuid.UUID, slot: dt.datetime) -> ScheduleSlot | None:
        found: ScheduleSlot | None = self._uow.get(SLOTS, (schedule_id, slot))
        return found

    def recent_slots(self, stream_id: uuid.UUID, limit: int) -> list[ScheduleSlot]:
        found = [slot for _, slot in self._uow.rows(SLOTS) if slot.stream_id == stream_id]
        return sorted(found, key=lambda s: s.slot, reverse=True)[:limit]

    def organizations_with_schedules(self) -> Sequence[uuid.UUID]:
        return sorted({schedule.organization_id for _, schedule in self._uow.all_rows(SCHEDULES)}, key=str)


_check: type[StreamScheduleRepository] = MemoryStreamScheduleRepository
