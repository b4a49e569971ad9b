"""PostgreSQL repository of stream schedules (application/ports/stream_schedules.py; migration
0025_stream_schedules). One decision per slot is the primary key of stream_schedule_slots:
`claim_slot` is INSERT ... ON CONFLICT DO NOTHING, so concurrent schedulers wait for the first
claim's transaction and then find the slot taken."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Row

from reckai.adapters.postgres.repository import PostgresRepository
from reckai.application.ports.stream_schedules import StreamScheduleRepository
from reckai.domain.streams.schedules import ScheduleSlot, SlotOutcome, StreamSchedule

_COLUMNS = ("id, organization_id, stream_id, cron, expected_left, expected_right, grace_minutes, effective_from,"
            " created_by, updated_by, created_at, updated_at")


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC)


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.astimezone(dt.UTC).replace(tzinfo=None)


def _schedule(row: Row[Any]) -> StreamSchedule:
    return StreamSchedule(id=row.id, organization_id=row.organization_id, stream_id=row.stream_id, cron=row.cron,
                          expected_left=row.expected_left, expected_right=row.expected_right,
                          grace_minutes=row.grace_minutes, effective_from=_aware(row.effective_from),
                          created_by=row.created_by, updated_by=row.updated_by, created_at=_aware(row.created_at),
                          updated_at=_aware(row.updated_at))


def _slot(row: Row[Any]) -> ScheduleSlot:
    return ScheduleSlot(schedule_id=row.schedule_id, organization_id=row.organization_id, stream_id=row.stream_id,
                        slot=_aware(row.slot), outcome=SlotOutcome(row.outcome), decided_at=_aware(row.decided_at),
                        run_number=row.run_number, job_id=row.job_id, detail=dict(row.detail or {}))


class PostgresStreamScheduleRepository(PostgresRepository):
    entity_name = "stream_schedule"

    def get(self, stream_id: uuid.UUID) -> StreamSchedule | None:
        row = self._conn.execute(text(f"SELECT {_COLUMNS} FROM stream_schedules WHERE stream_id = :s"),
                                 {"s": stream_id}).first()
        return _schedule(row) if row else None

    def put(self, schedule: StreamSchedule) -> StreamSchedule:
        self._check_tenant(schedule.organization_id)
        with self._write():
            row = self._conn.execute(text(
                f"INSERT INTO stream_schedules ({_COLUMNS}) VALUES (:id, :org, :stream, :cron, :left, :right, :grace,"
                " :effective, :created_by, :updated_by, coalesce(:created_at, now() AT TIME ZONE 'UTC'),"
                " coalesce(:updated_at, now() AT TIME ZONE 'UTC'))"
                " ON CONFLICT (stream_id) DO UPDATE SET cron = EXCLUDED.cron, expected_left = EXCLUDED.expected_left,"
                " expected_right = EXCLUDED.expected_right, grace_minutes = EXCLUDED.grace_minutes,"
                " effective_from = EXCLUDED.effective_from, updated_by = EXCLUDED.updated_by,"
                f" updated_at = EXCLUDED.updated_at RETURNING {_COLUMNS}"),
                {"id": schedule.id, "org": schedule.organization_id, "stream": schedule.stream_id,
                 "cron": schedule.cron, "left": schedule.expected_left, "right": schedule.expected_right,
                 "grace": schedule.grace_minutes, "effective": _naive(schedule.effective_from),
                 "created_by": schedule.created_by, "updated_by": schedule.updated_by,
                 "created_at": _naive(schedule.created_at), "updated_at": _naive(schedule.updated_at)}).one()
        return _schedule(row)

    def remove(self, stream_id: uuid.UUID) -> bool:
        with self._write():
            result = self._conn.execute(text("DELETE FROM stream_schedules WHERE stream_id = :s"), {"s": stream_id})
        return bool(result.rowcount)

    def list_all(self) -> list[StreamSchedule]:
        rows = self._conn.execute(text(f"SELECT {_COLUMNS} FROM stream_schedules ORDER BY created_at, id")).all()
        return [_schedule(row) for row in rows]

    def claim_slot(self, slot: ScheduleSlot) -> bool:
        self._check_tenant(slot.organization_id)
        with self._write():
            result = self._conn.execute(text(
                "INSERT INTO stream_schedule_slots (organization_id, schedule_id, stream_id, slot, outcome,"
                " run_number, job_id, detail, decided_at) VALUES (:org, :schedule, :stream, :slot, :outcome, :run,"
                " :job, CAST(:detail AS jsonb), :at) ON CONFLICT (schedule_id, slot) DO NOTHING"),
                {"org": slot.organization_id, "schedule": slot.schedule_id, "stream": slot.stream_id,
                 "slot": _naive(slot.slot), "outcome": slot.outcome.value, "run": slot.run_number, "job": slot.job_id,
                 "detail": json.dumps(slot.detail), "at": _naive(slot.decided_at)})
        return result.rowcount == 1

    def slot(self, schedule_id: uuid.UUID, slot: dt.datetime) -> ScheduleSlot | None:
        row = self._conn.execute(text("SELECT * FROM stream_schedule_slots WHERE schedule_id = :s AND slot = :slot"),
                                 {"s": schedule_id, "slot": _naive(slot)}).first()
        return _slot(row) if row else None

    def recent_slots(self, stream_id: uuid.UUID, limit: int) -> list[ScheduleSlot]:
        rows = self._conn.execute(text("SELECT * FROM stream_schedule_slots WHERE stream_id = :s"
                                       " ORDER BY slot DESC LIMIT :limit"), {"s": stream_id, "limit": limit}).all()
        return [_slot(row) for row in rows]

    def organizations_with_schedules(self) -> Sequence[uuid.UUID]:
        rows = self._conn.execute(text("SELECT * FROM stream_schedule_organizations()")).all()
        return sorted((r[0] for r in rows), key=str)


_check: type[StreamScheduleRepository] = PostgresStreamScheduleRepository
