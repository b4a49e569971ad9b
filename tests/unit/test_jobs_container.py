"""The jobs wiring of `bootstrap_in_memory()`: the real cleanup job end to end through the outbox
and the in-process workers, the scheduler, the queue health check, and enqueue-time refusals."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest

from reckai.application.job_types import CLEANUP_EXPIRED_SESSIONS
from reckai.application.ports.jobs import InvalidJob, JobType, OutboxStatus, Queue
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.domain.identity.entities import UserSession
from reckai.settings import JobSettings, Mode, Settings


@pytest.fixture
def container() -> Iterator[Container]:
    settings = Settings(mode=Mode.EMBEDDED, jobs=JobSettings(relay_interval_seconds=0.05))
    container = bootstrap_in_memory(settings)
    yield container
    container.close()


def _session(organization_id: uuid.UUID, expires_in: dt.timedelta) -> UserSession:
    return UserSession(
        id=uuid.uuid4(),
        organization_id=organization_id,
        user_id=uuid.uuid4(),
        token_hash=uuid.uuid4().hex,
        expires_at=dt.datetime.now(dt.UTC) + expires_in,
    )


def _session_ids(container: Container, organization_id: uuid.UUID) -> set[uuid.UUID]:
    with container.database.unit_of_work(organization_id) as uow:
        return {key for key, _ in uow.rows("user_sessions")}


def _wait_done(container: Container, outbox_id: uuid.UUID, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = container.job_outbox.get(outbox_id, None)
        if record is not None and record.status in (OutboxStatus.DONE, OutboxStatus.FAILED):
            assert record.status is OutboxStatus.DONE, record.last_error
            return
        time.sleep(0.02)
    raise AssertionError(f"job {outbox_id} did not finish: {container.job_outbox.get(outbox_id, None)}")


def test_cleanup_job_deletes_expired_sessions_and_keeps_live_ones(container: Container) -> None:
    org = uuid.uuid4()
    expired = [_session(org, dt.timedelta(minutes=-5)) for _ in range(3)]
    live = _session(org, dt.timedelta(days=1))
    with container.database.unit_of_work(org) as uow:
        for session in [*expired, live]:
            uow.sessions.add(session)
        uow.commit()
    container.worker_runner.start()
    with container.database.unit_of_work(None) as uow:
        outbox_id = container.job_queue.enqueue(uow, CLEANUP_EXPIRED_SESSIONS.request())
        uow.commit()
    _wait_done(container, outbox_id)
    assert _session_ids(container, org) == {live.id}


def test_scheduler_enqueues_the_sweeper_once_per_period_through_the_outbox(container: Container) -> None:
    org = uuid.uuid4()
    with container.database.unit_of_work(org) as uow:
        uow.sessions.add(_session(org, dt.timedelta(seconds=-1)))
        uow.commit()
    container.worker_runner.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _session_ids(container, org):
        time.sleep(0.05)
    assert _session_ids(container, org) == set()
    # A second runner on the same database (another process) does not add a second job this period.
    second = replace_runner(container)
    second.start()
    time.sleep(0.3)
    second.stop()
    sweeps = [r for r in container.job_outbox.records() if r.actor_name == CLEANUP_EXPIRED_SESSIONS.name]
    assert len(sweeps) == 1 and sweeps[0].status is OutboxStatus.DONE


def replace_runner(container: Container) -> object:
    from reckai.adapters.dramatiq.runner import JobWorkerRunner

    runner: JobWorkerRunner = container.worker_runner
    return JobWorkerRunner(
        runner.runtime, runner.store, runner.job_queue, threads={}, relay=False,
        schedule=container.job_handlers.schedule, open_system_uow=lambda: container.database.unit_of_work(None),
    )


def test_queue_health_follows_the_in_process_worker(container: Container) -> None:
    report = container.health_checks["queue"]()
    assert not report.ok and "not running" in report.detail
    container.worker_runner.start()
    report = container.health_checks["queue"]()
    assert report.ok and "critical,high,medium,low" in report.detail
    container.worker_runner.stop()
    assert not container.health_checks["queue"]().ok


def test_enqueue_refuses_job_types_no_worker_handles(container: Container) -> None:
    with container.database.unit_of_work(None) as uow:
        with pytest.raises(InvalidJob, match="no worker handles"):
            container.job_queue.enqueue(uow, JobType("reticulate_splines", Queue.LOW).request())
        with pytest.raises(InvalidJob, match="runs on queue 'low'"):
            wrong_queue = replace(CLEANUP_EXPIRED_SESSIONS, queue=Queue.CRITICAL)
            container.job_queue.enqueue(uow, wrong_queue.request())
        uow.commit()
    assert container.job_outbox.records() == []
