"""Contract of the stream schedule repository (application/ports/stream_schedules.py), run over the
in-memory adapter (tests/unit/test_stream_schedule_repositories.py) and PostgreSQL
(tests/integration/test_stream_schedule_repositories_postgres.py), so the fake cannot drift."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import uuid

import pytest

from reckai.application.ports.repositories import TenantIsolationViolation
from reckai.domain.streams.schedules import ScheduleSlot, SlotOutcome, StreamSchedule
from tests.contracts.stream_repositories import NOW, Tenants, stream_of

SLOT = dt.datetime(2026, 1, 3, 5, 0, tzinfo=dt.UTC)


def schedule_of(organization_id: uuid.UUID, stream_id: uuid.UUID, user_id: uuid.UUID) -> StreamSchedule:
    return StreamSchedule(id=uuid.uuid4(), organization_id=organization_id, stream_id=stream_id, cron="0 6 * * *",
                          expected_left=1, expected_right=2, grace_minutes=30, effective_from=NOW,
                          created_by=user_id, updated_by=user_id, created_at=NOW, updated_at=NOW)


def slot_of(schedule: StreamSchedule, slot: dt.datetime = SLOT,
            outcome: SlotOutcome = SlotOutcome.FILE_MISSING) -> ScheduleSlot:
    return ScheduleSlot(schedule_id=schedule.id, organization_id=schedule.organization_id,
                        stream_id=schedule.stream_id, slot=slot, outcome=outcome, decided_at=slot,
                        detail={"arrived": {"left": 0, "right": 1}})


def _with_schedule(tenants: Tenants, name: str) -> StreamSchedule:
    database, (org_a, user_a), _ = tenants
    stream = stream_of(org_a, user_a, name)
    schedule = schedule_of(org_a, stream.id, user_a)
    with database.unit_of_work(org_a) as uow:
        uow.streams.add(stream)
        assert uow.stream_schedules.put(schedule) == schedule
        uow.commit()
    return schedule


def check_put_replace_list_remove_and_isolation(tenants: Tenants) -> None:
    database, (org_a, user_a), (org_b, user_b) = tenants
    schedule = _with_schedule(tenants, "scheduled")
    with database.unit_of_work(org_a) as uow:
        assert uow.stream_schedules.get(schedule.stream_id) == schedule
        assert uow.stream_schedules.list_all() == [schedule]
        later = NOW + dt.timedelta(hours=2)
        replaced = dataclasses.replace(schedule, id=uuid.uuid4(), cron="30 7 * * 1-5", expected_left=0,
                                       grace_minutes=5, effective_from=later, updated_at=later,
                                       created_at=later)
        stored = uow.stream_schedules.put(replaced)
        uow.commit()
    # replacing keeps the schedule's id and creation; the rest is the new schedule's
    assert stored == dataclasses.replace(replaced, id=schedule.id, created_at=schedule.created_at)
    with database.unit_of_work(org_a) as uow:
        assert uow.stream_schedules.get(schedule.stream_id) == stored
        assert uow.stream_schedules.claim_slot(slot_of(stored))
        uow.commit()
    with database.unit_of_work(org_b) as uow:
        assert uow.stream_schedules.get(schedule.stream_id) is None
        assert uow.stream_schedules.list_all() == []
        assert uow.stream_schedules.recent_slots(schedule.stream_id, 10) == []
        assert uow.stream_schedules.slot(schedule.id, SLOT) is None
        with pytest.raises(TenantIsolationViolation):
            uow.stream_schedules.put(schedule_of(org_a, schedule.stream_id, user_a))
        with pytest.raises(TenantIsolationViolation):
            uow.stream_schedules.claim_slot(slot_of(stored, SLOT + dt.timedelta(days=1)))
        assert uow.stream_schedules.remove(schedule.stream_id) is False
    with database.unit_of_work(None) as uow:  # the tick, without a tenant
        organizations = uow.stream_schedules.organizations_with_schedules()
        assert org_a in organizations and org_b not in organizations
    with database.unit_of_work(org_a) as uow:
        assert uow.stream_schedules.remove(schedule.stream_id) is True
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.stream_schedules.get(schedule.stream_id) is None
        assert uow.stream_schedules.slot(schedule.id, SLOT) is None  # its slots went with it
        assert uow.stream_schedules.remove(schedule.stream_id) is False
    _ = user_b


def check_a_slot_is_claimed_once(tenants: Tenants) -> None:
    database, (org_a, _), _ = tenants
    schedule = _with_schedule(tenants, "claimed")
    first = slot_of(schedule)
    with database.unit_of_work(org_a) as uow:
        assert uow.stream_schedules.claim_slot(first) is True
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        # a second claim of the slot, whatever its outcome, is refused; another slot is free
        assert uow.stream_schedules.claim_slot(slot_of(schedule, outcome=SlotOutcome.RUN_REFUSED)) is False
        later = slot_of(schedule, SLOT + dt.timedelta(days=1), SlotOutcome.RUN_REFUSED)
        assert uow.stream_schedules.claim_slot(later) is True
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.stream_schedules.slot(schedule.id, SLOT) == first
        assert uow.stream_schedules.recent_slots(schedule.stream_id, 10) == [later, first]
        assert uow.stream_schedules.recent_slots(schedule.stream_id, 1) == [later]
    # A claim rolled back leaves the slot free.
    third = slot_of(schedule, SLOT + dt.timedelta(days=2))
    with database.unit_of_work(org_a) as uow:
        assert uow.stream_schedules.claim_slot(third) is True  # no commit
    with database.unit_of_work(org_a) as uow:
        assert uow.stream_schedules.slot(schedule.id, third.slot) is None


def check_a_concurrent_claim_waits_for_the_first(tenants: Tenants) -> None:
    """Two transactions claim one slot: the second waits until the first ends; it gets the slot
    only if the first rolled back."""
    database, (org_a, _), _ = tenants
    schedule = _with_schedule(tenants, "raced")
    for first_commits, slot in ((True, SLOT), (False, SLOT + dt.timedelta(days=1))):
        claimed = threading.Event()
        second: list[bool] = []

        def claim_second(moment: dt.datetime, claimed: threading.Event, second: list[bool]) -> None:
            claimed.wait(10)
            with database.unit_of_work(org_a) as other:
                second.append(other.stream_schedules.claim_slot(slot_of(schedule, moment)))
                other.commit()

        thread = threading.Thread(target=claim_second, args=(slot, claimed, second))
        thread.start()
        with database.unit_of_work(org_a) as uow:
            assert uow.stream_schedules.claim_slot(slot_of(schedule, slot)) is True
            claimed.set()
            thread.join(0.5)
            assert thread.is_alive() and second == []  # waiting for this transaction
            if first_commits:
                uow.commit()
        thread.join(10)
        assert second == [not first_commits]


CHECKS = [check_put_replace_list_remove_and_isolation, check_a_slot_is_claimed_once,
          check_a_concurrent_claim_waits_for_the_first]
