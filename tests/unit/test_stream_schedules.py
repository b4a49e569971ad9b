"""Stream schedules over the in-memory adapters (the same scenarios run on PostgreSQL in
tests/integration/test_stream_schedules_postgres.py), plus the alert mail's text."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import pytest

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.bootstrap import bootstrap_in_memory
from tests.support import stream_schedule_scenarios as scenarios
from tests.support.streams import StreamWorld, stream_world


@pytest.fixture
def world() -> StreamWorld:
    return stream_world(bootstrap_in_memory(scanner=InMemoryScanner()))


def test_cron_is_read_in_the_organizations_time_zone(world: StreamWorld) -> None:
    scenarios.cron_in_the_organizations_time_zone(world)


def test_files_arrived_start_the_run(world: StreamWorld) -> None:
    scenarios.files_arrived_start_the_run(world)


def test_files_arriving_within_the_grace_period_start_the_run_late(world: StreamWorld) -> None:
    scenarios.files_arriving_within_the_grace_period_start_the_run_late(world)


def test_missing_files_alert_once_after_the_grace_period(world: StreamWorld) -> None:
    recipients = scenarios.missing_files_alert_once_after_the_grace_period(world)
    sent = world.container.mailer.sent
    assert sorted(m.to for m in sent) == sorted(u.email for u in recipients)
    mail = sent[0]
    assert mail.subject == "ReckAI: expected files missing for stream 'missing'"
    assert "2026-03-02 06:00 (Africa/Lagos)" in mail.text_body
    assert "Expected files: left 1, right 1; arrived: left 1, right 0." in mail.text_body


def test_a_refused_run_is_recorded_once(world: StreamWorld) -> None:
    scenarios.a_refused_run_is_recorded_once(world)
    [mail] = world.container.mailer.sent
    assert mail.subject == "ReckAI: the scheduled run of stream 'refused' was refused"
    assert "(STREAM_RUN_IN_PROGRESS): run 1 of this stream" in mail.text_body


def test_concurrent_schedulers_start_one_run_per_slot(world: StreamWorld) -> None:
    scenarios.concurrent_schedulers_start_one_run_per_slot(world)


def test_a_schedule_that_no_longer_reads_does_not_stop_the_others(world: StreamWorld) -> None:
    broken = scenarios.scheduled_stream(world, "broken")
    fine = scenarios.scheduled_stream(world, "fine")
    scenarios.day_files(world, fine, "1")
    with world.container.database.unit_of_work(world.organization_id) as uow:
        stored = uow.stream_schedules.get(broken.id)
        uow.stream_schedules.put(dataclasses.replace(stored, cron="0 6 31 2 *"))  # as if written by hand
        uow.commit()
    report = scenarios.tick(world, scenarios.SLOT)
    assert report.started == [(fine.id, scenarios.SLOT, 1)]
    assert scenarios.slots(world, broken) == []


def test_the_worker_ticks_on_its_own() -> None:
    """The embedded worker's scheduler enqueues `tick_stream_schedules` (periodic, every minute); the
    job starts the due run and the worker completes it: nothing but the clock is given."""
    now = scenarios.SLOT + dt.timedelta(seconds=30)
    container = bootstrap_in_memory(scanner=InMemoryScanner(), clock=lambda: now)
    world = stream_world(container)
    stream = scenarios.scheduled_stream(world, "by the worker")
    scenarios.day_files(world, stream, "1")
    container.worker_runner.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            runs = scenarios.runs(world, stream)
            if runs and runs[0].figures is not None:  # completed: the figures are written
                break
            assert time.monotonic() < deadline, runs
            time.sleep(0.05)
    finally:
        container.worker_runner.stop()
    assert [r.run_number for r in runs] == [1]
    assert [(s.slot, s.outcome.value) for s in scenarios.slots(world, stream)] == [(scenarios.SLOT, "run_started")]
