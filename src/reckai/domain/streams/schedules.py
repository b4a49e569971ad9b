"""A stream's schedule: when its run is due and what it waits for (issue 15 item 5; docs/streams.md).

Standard library only. The cron expression itself is read by an adapter (the `CronCalendar` port,
application/ports/stream_schedules.py); here are the schedule, the record of one decided slot, and
the decision a tick takes for a slot: start the run when the expected files have arrived, wait
while the grace period runs, else alert once (`expected_file_missing`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

MAX_EXPECTED_FILES = 100  # per side and slot
MAX_GRACE_MINUTES = 7 * 24 * 60
MAX_CRON_LENGTH = 255


class InvalidSchedule(ValueError):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field_name = field_name
        self.reason = reason


class SlotOutcome(str, Enum):
    RUN_STARTED = "run_started"  # the expected files had arrived: the slot's run started
    FILE_MISSING = "expected_file_missing"  # the grace period passed without them: the alert went out
    RUN_REFUSED = "run_refused"  # the files had arrived but the run was refused (quota, a run in progress)


class Decision(str, Enum):
    START_RUN = "start_run"
    WAIT = "wait"  # within the grace period, files still missing
    ALERT = "alert"  # grace period over, files still missing


@dataclass(frozen=True)
class StreamSchedule:
    id: uuid.UUID
    organization_id: uuid.UUID
    stream_id: uuid.UUID
    cron: str  # five fields, read in the organization's time zone
    expected_left: int
    expected_right: int
    grace_minutes: int
    # Slots before this moment are not this schedule's (set when the schedule is set or replaced):
    # a new schedule never fires for a time that passed before it existed.
    effective_from: dt.datetime
    created_by: uuid.UUID
    updated_by: uuid.UUID
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    @property
    def expected(self) -> dict[str, int]:
        return {"left": self.expected_left, "right": self.expected_right}

    @property
    def grace(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.grace_minutes)


@dataclass(frozen=True)
class ScheduleSlot:
    """One decided slot of a schedule: at most one per (schedule, slot), whatever the number of
    schedulers (the database's primary key says so)."""

    schedule_id: uuid.UUID
    organization_id: uuid.UUID
    stream_id: uuid.UUID
    slot: dt.datetime  # the cron time, UTC
    outcome: SlotOutcome
    decided_at: dt.datetime
    run_number: int | None = None
    job_id: uuid.UUID | None = None
    detail: dict[str, object] = field(default_factory=dict)  # expected/arrived files, a refusal's reason


def check_cron_shape(expression: str) -> str:
    """Five fields (minute hour day-of-month month day-of-week); the calendar checks their values."""
    cleaned = " ".join((expression or "").split())
    if not cleaned:
        raise InvalidSchedule("cron", "is required, e.g. \"0 6 * * 1-5\" (06:00 on weekdays)")
    if len(cleaned) > MAX_CRON_LENGTH:
        raise InvalidSchedule("cron", f"is longer than {MAX_CRON_LENGTH} characters")
    if len(cleaned.split(" ")) != 5:
        raise InvalidSchedule("cron", "must have five fields: minute hour day-of-month month day-of-week "
                                      "(no seconds, no @aliases), e.g. \"0 6 * * 1-5\"")
    return cleaned


def check_expected(left: int, right: int) -> tuple[int, int]:
    for name, value in (("expected_files.left", left), ("expected_files.right", right)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_EXPECTED_FILES:
            raise InvalidSchedule(name, f"must be a whole number from 0 to {MAX_EXPECTED_FILES}")
    if left + right < 1:
        raise InvalidSchedule("expected_files", "expect at least one file on one side")
    return left, right


def check_grace(minutes: int, shortest_gap: dt.timedelta | None) -> int:
    """The grace period ends before the next slot begins: a slot is decided before the next one is due."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 <= minutes <= MAX_GRACE_MINUTES:
        raise InvalidSchedule("grace_minutes", f"must be a whole number of minutes from 0 to {MAX_GRACE_MINUTES}")
    if shortest_gap is not None and dt.timedelta(minutes=minutes) >= shortest_gap:
        raise InvalidSchedule("grace_minutes", f"must be shorter than the time between two slots of the schedule "
                                               f"({int(shortest_gap.total_seconds() // 60)} minutes)")
    return minutes


def arrived_enough(expected: Mapping[str, int], arrived: Mapping[str, int]) -> bool:
    return all(arrived.get(side, 0) >= count for side, count in expected.items())


def decide(schedule: StreamSchedule, slot: dt.datetime, now: dt.datetime, arrived: Mapping[str, int]) -> Decision:
    """What a tick at `now` does for `slot` (a slot not decided yet), given the files per side that
    arrived since the stream's last run. Files that arrive during the grace period still start the
    slot's run (late); after it, the alert."""
    if arrived_enough(schedule.expected, arrived):
        return Decision.START_RUN
    if now >= slot + schedule.grace:
        return Decision.ALERT
    return Decision.WAIT


def is_schedules_slot(schedule: StreamSchedule, slot: dt.datetime | None) -> bool:
    return slot is not None and slot >= schedule.effective_from
