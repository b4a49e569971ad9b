"""Stream schedule scenarios, run over the in-memory container (tests/unit/test_stream_schedules.py)
and PostgreSQL (tests/integration/test_stream_schedules_postgres.py): the same assertions on both.

Time is a fixed clock (the services' clock port and the tick's `now`); the organization's time zone
is Africa/Lagos (UTC+1, no daylight saving) unless a scenario says otherwise, and the schedule is
"0 6 * * *": the slot of 2 March 2026 is 06:00 in Lagos, 05:00 UTC.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import uuid
from typing import Any

from sqlalchemy import text

from reckai.application.ports.audit import AuditQuery
from reckai.application.ports.jobs import JobDelivery
from reckai.application.reconciliations.worker import run_reconciliation_attempt
from reckai.application.streams.commands import start_stream_run
from reckai.application.streams.schedules import (
    NOTIFY_STREAM_SCHEDULE,
    ScheduleRequest,
    TickReport,
    get_schedule,
    set_schedule,
    tick_organization,
    tick_schedules,
)
from reckai.domain.identity.entities import User
from reckai.domain.streams.schedules import SlotOutcome
from reckai.domain.streams.streams import Stream
from tests.support.stream_scenarios import DAY1_BANK, DAY1_SWITCH
from tests.support.streams import StreamWorld, bank_csv, switch_csv

UTC = dt.UTC
SET_AT = dt.datetime(2026, 3, 1, 20, 0, tzinfo=UTC)  # the schedule is set the evening before
SLOT = dt.datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 06:00 in Lagos
DAILY_AT_SIX = ScheduleRequest(cron="0 6 * * *", expected_left=1, expected_right=1, grace_minutes=60)


def at(world: StreamWorld, moment: dt.datetime) -> Any:
    """The stream services with the clock fixed at `moment`."""
    return dataclasses.replace(world.services, clock=lambda: moment)


def set_timezone(world: StreamWorld, timezone: str) -> None:
    with world.container.database.unit_of_work(world.organization_id) as uow:
        organization = uow.organizations.get(world.organization_id)
        organization.settings = {**(organization.settings or {}), "timezone": timezone}
        uow.organizations.update(organization)
        uow.commit()


def add_user(world: StreamWorld, role: str, *, active: bool = True) -> User:
    now = dt.datetime.now(UTC)
    user = User(id=uuid.uuid4(), organization_id=world.organization_id, email=f"{role}.{uuid.uuid4().hex[:6]}@x.test",
                password_hash="$2b$04$not-a-real-hash", name=role.title(), role=role, is_active=active,
                created_at=now, updated_at=now, password_changed_at=now)
    with world.container.database.unit_of_work(world.organization_id) as uow:
        stored: User = uow.users.add(user)
        uow.commit()
    return stored


def outbox(world: StreamWorld, actor_name: str) -> list[dict[str, Any]]:
    """Payloads of this organization's outbox messages of one job type, oldest first."""
    store = world.container.job_outbox
    if hasattr(store, "records"):
        return [r.payload for r in store.records()
                if r.actor_name == actor_name and r.organization_id == world.organization_id]
    with world.container.database.unit_of_work(world.organization_id) as uow:
        rows = uow.connection.execute(text(
            "SELECT payload FROM outbox_messages WHERE actor_name = :name ORDER BY created_at, id"),
            {"name": actor_name}).all()
    return [dict(r.payload) for r in rows]


def scheduled_stream(world: StreamWorld, name: str, *, timezone: str = "Africa/Lagos",
                     request: ScheduleRequest = DAILY_AT_SIX, owner: uuid.UUID | None = None) -> Stream:
    set_timezone(world, timezone)
    left = world.upload(bank_csv(DAY1_BANK), f"{name}-template-b.csv", "bank", normalize=False)
    right = world.upload(switch_csv(DAY1_SWITCH), f"{name}-template-s.csv", "switch", normalize=False)
    stream = world.create(left, right, name=name)
    if owner is not None:
        from reckai.application.streams.commands import UpdateStreamRequest, update_stream

        stream = update_stream(world.services, world.caller, stream.id, UpdateStreamRequest(owner_id=owner))
    set_schedule(at(world, SET_AT), world.caller, stream.id, request)
    return stream


def day_files(world: StreamWorld, stream: Stream, tag: str, *, left: bool = True, right: bool = True) -> None:
    if left:
        world.add(stream, world.upload(bank_csv(DAY1_BANK, balance=f"{tag}.00"), f"b-{tag}.csv", "bank"))
    if right:
        world.add(stream, world.upload(switch_csv(DAY1_SWITCH, note=tag), f"s-{tag}.csv", "switch"))


def slots(world: StreamWorld, stream: Stream) -> list[Any]:
    with world.container.database.unit_of_work(world.organization_id) as uow:
        return uow.stream_schedules.recent_slots(stream.id, 50)


def runs(world: StreamWorld, stream: Stream) -> list[Any]:
    with world.container.database.unit_of_work(world.organization_id) as uow:
        return uow.streams.runs(stream.id)


def audited(world: StreamWorld, action: str, stream: Stream) -> list[Any]:
    page = world.container.audit_log.list_records(world.organization_id, AuditQuery(
        action=action, resource_type="stream", resource_id=stream.id))
    return [record.event for record in page.records]


def tick(world: StreamWorld, moment: dt.datetime) -> TickReport:
    """One organization's tick (other tests' organizations share the PostgreSQL database)."""
    return tick_organization(at(world, moment), world.organization_id, moment)


# --- the scenarios ---------------------------------------------------------------------------


def cron_in_the_organizations_time_zone(world: StreamWorld) -> None:
    """The slot and the next slot are read in the organization's zone: 06:00 in Lagos is 05:00 UTC;
    in Tokyo (UTC+9) it is 21:00 UTC the day before."""
    stream = scheduled_stream(world, "lagos")
    view = get_schedule(at(world, SLOT - dt.timedelta(minutes=1)), world.caller, stream.id)
    assert view is not None and view.timezone == "Africa/Lagos"
    assert view.next_slot == SLOT
    assert view.description == "At 06:00 every day"
    view = get_schedule(at(world, SLOT), world.caller, stream.id)
    assert view is not None and view.next_slot == SLOT + dt.timedelta(days=1)  # strictly after now
    set_timezone(world, "Asia/Tokyo")
    view = get_schedule(at(world, SLOT), world.caller, stream.id)
    assert view is not None and view.next_slot == dt.datetime(2026, 3, 2, 21, 0, tzinfo=UTC)


def files_arrived_start_the_run(world: StreamWorld) -> None:
    stream = scheduled_stream(world, "arrived")
    day_files(world, stream, "1")
    # Before the slot: nothing is due (the previous slot, 1 March 06:00, is before the schedule).
    assert tick(world, SLOT - dt.timedelta(seconds=1)) == TickReport()
    report = tick(world, SLOT + dt.timedelta(seconds=30))
    assert report.started == [(stream.id, SLOT, 1)]
    [run] = runs(world, stream)
    [slot] = slots(world, stream)
    assert (slot.slot, slot.outcome, slot.run_number, slot.job_id) == (SLOT, SlotOutcome.RUN_STARTED, 1, run.job_id)
    assert slot.detail["arrived"] == {"left": 1, "right": 1}
    assert run.created_by == stream.owner_id
    [event] = [e for e in audited(world, "stream.run_started", stream) if e.metadata.get("slot")]
    assert event.user_id is None and event.metadata["slot"] == SLOT.isoformat() and event.metadata["run_number"] == 1
    # The same slot again (a second tick, a late worker): nothing more.
    assert tick(world, SLOT + dt.timedelta(minutes=5)).started == []
    assert len(runs(world, stream)) == 1
    # The run is an ordinary stream run: the worker step completes it.
    assert run_reconciliation_attempt(world.services, world.organization_id, run.job_id, 1, "pytest") == "completed"
    with world.container.database.unit_of_work(world.organization_id) as uow:
        job = uow.reconciliation_jobs.get(run.job_id)
        assert job is not None and job.created_by == stream.owner_id
        assert uow.streams.waiting_files(stream.id) == []
    # Next day, no file by the slot: the tick waits; one file of two after the grace period: the alert.
    next_slot = SLOT + dt.timedelta(days=1)
    assert tick(world, next_slot).waiting == 1
    day_files(world, stream, "2", right=False)
    assert tick(world, next_slot + dt.timedelta(minutes=59)).waiting == 1
    assert tick(world, next_slot + dt.timedelta(minutes=60)).alerted == [(stream.id, next_slot)]


def files_arriving_within_the_grace_period_start_the_run_late(world: StreamWorld) -> None:
    stream = scheduled_stream(world, "late")
    day_files(world, stream, "1", right=False)
    assert tick(world, SLOT).waiting == 1 and slots(world, stream) == []
    day_files(world, stream, "1", left=False)
    assert tick(world, SLOT + dt.timedelta(minutes=40)).started == [(stream.id, SLOT, 1)]
    assert tick(world, SLOT + dt.timedelta(minutes=61)) == TickReport()  # decided: no alert after all
    assert outbox(world, NOTIFY_STREAM_SCHEDULE.name) == []


def missing_files_alert_once_after_the_grace_period(world: StreamWorld) -> list[User]:
    """The owner (an analyst) and every active admin get one mail job each, once per slot; the mail
    job sends one mail (the caller checks its transport). Returns the expected recipients."""
    owner = add_user(world, "analyst")
    second_admin = add_user(world, "admin")
    add_user(world, "admin", active=False)
    add_user(world, "auditor")
    stream = scheduled_stream(world, "missing", owner=owner.id)
    day_files(world, stream, "1", right=False)  # one of the two expected files
    assert tick(world, SLOT + dt.timedelta(minutes=30)).waiting == 1
    assert outbox(world, NOTIFY_STREAM_SCHEDULE.name) == []
    report = tick(world, SLOT + dt.timedelta(minutes=60))
    assert report.alerted == [(stream.id, SLOT)] and report.started == []
    for later in (61, 90, 120):
        assert tick(world, SLOT + dt.timedelta(minutes=later)) == TickReport()
    mails = outbox(world, NOTIFY_STREAM_SCHEDULE.name)
    with world.container.database.unit_of_work(world.organization_id) as uow:
        first_admin = uow.users.get(world.caller.user_id)
    assert first_admin is not None
    expected = [owner, first_admin, second_admin]
    assert sorted(m["recipient"] for m in mails) == sorted(str(u.id) for u in expected)
    assert {(m["event"], m["slot"], m["stream_id"]) for m in mails} == {
        ("expected_file_missing", SLOT.isoformat(), str(stream.id))}
    assert mails[0]["expected"] == {"left": 1, "right": 1} and mails[0]["arrived"] == {"left": 1, "right": 0}
    [slot] = slots(world, stream)
    assert slot.outcome is SlotOutcome.FILE_MISSING and slot.job_id is None
    [event] = audited(world, "stream.expected_file_missing", stream)
    assert event.user_id is None and event.metadata["slot"] == SLOT.isoformat()
    assert sorted(event.metadata["recipients"]) == sorted(m["recipient"] for m in mails)
    assert runs(world, stream) == []
    # The mail jobs, as the worker runs them.
    handler = world.container.job_handlers.get(NOTIFY_STREAM_SCHEDULE.name)
    for payload in mails:
        handler.run(JobDelivery(uuid.uuid4(), 1, world.organization_id, NOTIFY_STREAM_SCHEDULE.name, payload))
    return expected


def a_refused_run_is_recorded_once(world: StreamWorld) -> None:
    """The files arrived but a run is still in progress at the slot: the slot is `run_refused`, once."""
    stream = scheduled_stream(world, "refused")
    day_files(world, stream, "1")
    start_stream_run(world.services, world.caller, stream.id)  # pending: never executed here
    day_files(world, stream, "2")
    report = tick(world, SLOT)
    assert report.refused == [(stream.id, SLOT, "STREAM_RUN_IN_PROGRESS")]
    assert tick(world, SLOT + dt.timedelta(minutes=90)) == TickReport()
    [slot] = slots(world, stream)
    assert slot.outcome is SlotOutcome.RUN_REFUSED and slot.detail["error"]["code"] == "STREAM_RUN_IN_PROGRESS"
    assert len(runs(world, stream)) == 1
    # the owner (here the one admin) is told once, with the reason
    [mail] = outbox(world, NOTIFY_STREAM_SCHEDULE.name)
    assert (mail["event"], mail["recipient"], mail["error"]["code"]) == (
        "run_refused", str(world.caller.user_id), "STREAM_RUN_IN_PROGRESS")
    world.container.job_handlers.get(NOTIFY_STREAM_SCHEDULE.name).run(
        JobDelivery(uuid.uuid4(), 1, world.organization_id, NOTIFY_STREAM_SCHEDULE.name, mail))


def concurrent_schedulers_start_one_run_per_slot(world: StreamWorld, schedulers: int = 6) -> None:
    """N schedulers tick the same slot at once (every organization, as the periodic job does): one
    run; the same for the alert of another stream's slot: one set of mails."""
    started = scheduled_stream(world, "concurrent-run")
    day_files(world, started, "1")
    missing = scheduled_stream(world, "concurrent-alert")
    day_files(world, missing, "1", left=False)

    def race(moment: dt.datetime) -> list[TickReport]:
        barrier = threading.Barrier(schedulers)
        reports: list[TickReport] = []
        errors: list[BaseException] = []

        def scheduler() -> None:
            try:
                barrier.wait(30)
                reports.append(tick_schedules(at(world, moment), moment))
            except BaseException as exc:  # noqa: BLE001 - surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=scheduler) for _ in range(schedulers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        assert len(reports) == schedulers
        return reports

    reports = race(SLOT + dt.timedelta(seconds=5))
    started_here = [s for r in reports for s in r.started if s[0] == started.id]
    assert started_here == [(started.id, SLOT, 1)]
    assert [r.run_number for r in runs(world, started)] == [1]
    assert [(s.slot, s.outcome) for s in slots(world, started)] == [(SLOT, SlotOutcome.RUN_STARTED)]
    assert not [r for r in reports if any(s[0] == started.id for s in r.refused)]
    assert slots(world, missing) == []  # within its grace period

    reports = race(SLOT + dt.timedelta(minutes=60))
    assert [a for r in reports for a in r.alerted if a[0] == missing.id] == [(missing.id, SLOT)]
    assert [(s.slot, s.outcome) for s in slots(world, missing)] == [(SLOT, SlotOutcome.FILE_MISSING)]
    mails = [m for m in outbox(world, NOTIFY_STREAM_SCHEDULE.name) if m["stream_id"] == str(missing.id)]
    assert len(mails) == 1  # the one admin (owner and admin at once)
    assert runs(world, missing) == []
