"""Ports of stream schedules (issue 15 item 5; docs/streams.md "Schedules").

`CronCalendar` reads cron expressions (adapters/cronsim/calendar.py). `StreamScheduleRepository`
stores schedules and their decided slots; its contract (tests/contracts/stream_schedule_repositories.py,
run over PostgreSQL and memory): reads see only the bound organization's rows; `claim_slot` is the
one-per-slot guarantee: of any number of transactions claiming the same (schedule, slot) at once,
exactly one gets True, and only once it commits do the others learn it was taken (they wait for it;
if it rolls back, one of them takes the slot). Datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Protocol

from reckai.domain.streams.schedules import ScheduleSlot, StreamSchedule


class InvalidCron(ValueError):
    """The calendar cannot read the expression; `reason` says why (shown to the person who gave it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CronCalendar(Protocol):
    def check(self, expression: str) -> None:
        """Raise InvalidCron when the expression is not a valid five-field cron expression."""
        ...

    def previous(self, expression: str, at: dt.datetime, timezone: str) -> dt.datetime | None:
        """The latest slot at or before `at`, the expression read in `timezone` (IANA name), as UTC."""
        ...

    def following(self, expression: str, after: dt.datetime, timezone: str, count: int = 1) -> list[dt.datetime]:
        """The next `count` slots strictly after `after`, as UTC (fewer when the calendar ends)."""
        ...

    def describe(self, expression: str) -> str:
        """The expression in words ("At 06:00 on Monday through Friday")."""
        ...


class StreamScheduleRepository(Protocol):
    def get(self, stream_id: uuid.UUID) -> StreamSchedule | None:
        """The stream's schedule (a stream has at most one)."""
        ...

    def put(self, schedule: StreamSchedule) -> StreamSchedule:
        """Insert the stream's schedule, or replace it (same id; cron, expected files, grace,
        effective_from, updated_by and updated_at change)."""
        ...

    def remove(self, stream_id: uuid.UUID) -> bool:
        """Delete the stream's schedule and its slots; False when it had none."""
        ...

    def list_all(self) -> list[StreamSchedule]:
        """The bound organization's schedules."""
        ...

    def claim_slot(self, slot: ScheduleSlot) -> bool:
        """Record the slot's decision unless one is recorded already (INSERT ... ON CONFLICT DO
        NOTHING): True when this transaction took it."""
        ...

    def slot(self, schedule_id: uuid.UUID, slot: dt.datetime) -> ScheduleSlot | None: ...

    def recent_slots(self, stream_id: uuid.UUID, limit: int) -> list[ScheduleSlot]:
        """The stream's decided slots, newest first."""
        ...

    def organizations_with_schedules(self) -> Sequence[uuid.UUID]:
        """*System* (no tenant bound): the ids of organizations with at least one schedule."""
        ...


class StreamScheduleUnitOfWork(Protocol):
    @property
    def stream_schedules(self) -> StreamScheduleRepository: ...
