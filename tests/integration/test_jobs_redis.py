"""Jobs end to end on real services: PostgreSQL (outbox, sessions) and a real Redis with real
Dramatiq Workers on RedisBroker, including `reckai worker` as separate processes."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.engine import Engine

from reckai.adapters.dramatiq.runtime import redis_broker_factory
from reckai.adapters.memory.jobs import InMemoryOutbox
from reckai.adapters.memory.unit_of_work import MemoryDatabase
from reckai.adapters.postgres.engine import create_engine
from reckai.adapters.postgres.roles import drop_database, libpq_url
from reckai.adapters.redis.connection import redis_client
from reckai.application.job_types import CLEANUP_EXPIRED_SESSIONS
from reckai.application.outbox import relay_until_drained
from reckai.application.ports.jobs import OutboxStatus, Queue
from reckai.bootstrap import Container, bootstrap, build_worker_runner
from reckai.domain.identity.entities import UserSession
from reckai.settings import (
    DatabaseSettings,
    JobSettings,
    MailerSettings,
    Mode,
    RedisSettings,
    Settings,
    StorageSettings,
)
from tests.fixtures.postgres import PgDatabase, Tenant, _new_database, create_tenant
from tests.support.identity import DEVELOPMENT_SECRETS_ENV
from tests.unit.test_jobs_runtime import Recorder, assert_critical_is_not_starved, known_jobs, start_machinery

pytestmark = pytest.mark.integration

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sessions_database(pg_admin_url: str) -> Iterator[PgDatabase]:
    """A database of this module's own: the sweeper deletes expired sessions of every tenant."""
    database = _new_database(pg_admin_url, migrate=True)
    try:
        yield database
    finally:
        drop_database(pg_admin_url, database.name)


@pytest.fixture(scope="module")
def sessions_engine(sessions_database: PgDatabase) -> Iterator[Engine]:
    engine = create_engine(sessions_database.app_url, pool_size=2, max_overflow=2)
    yield engine
    engine.dispose()


@pytest.fixture
def tenant(sessions_engine: Engine) -> Tenant:
    return create_tenant(sessions_engine)


def _settings(database: PgDatabase, redis_url: str, namespace: str, tmp_path: Path) -> Settings:
    return Settings(
        mode=Mode.EMBEDDED,
        database=DatabaseSettings(url=database.app_url, pool_size=4),
        redis=RedisSettings(url=redis_url),
        storage=StorageSettings(filesystem_root=tmp_path / "storage"),
        mailer=MailerSettings(outbox_dir=tmp_path / "mail"),
        jobs=JobSettings(redis_namespace=namespace, relay_interval_seconds=0.05),
    )


@pytest.fixture
def container(sessions_database: PgDatabase, redis_test_url: str, redis_namespace: str,
              tmp_path: Path) -> Iterator[Container]:
    # Each test starts with an empty outbox: the scheduler enqueues a sweeper only once a period.
    with psycopg.connect(libpq_url(sessions_database.admin_url), autocommit=True) as conn:
        conn.execute("TRUNCATE outbox_messages")
    container = bootstrap(_settings(sessions_database, redis_test_url, redis_namespace, tmp_path))
    yield container
    container.close()


def _add_sessions(container: Container, tenant: Tenant, expires_in: list[dt.timedelta]) -> list[uuid.UUID]:
    now = dt.datetime.now(dt.UTC)
    ids = []
    with container.database.unit_of_work(tenant.organization_id) as uow:
        for delta in expires_in:
            session = UserSession(id=uuid.uuid4(), organization_id=tenant.organization_id,
                                  user_id=tenant.admin_user_id, token_hash=uuid.uuid4().hex, expires_at=now + delta)
            uow.sessions.add(session)
            ids.append(session.id)
        uow.commit()
    return ids


def _session_ids(container: Container, tenant: Tenant) -> set[uuid.UUID]:
    with container.database.unit_of_work(tenant.organization_id) as uow:
        return {session.id for session in uow.sessions.list_for_user(tenant.admin_user_id, include_revoked=True)}


def _wait_status(container: Container, outbox_id: uuid.UUID, timeout: float = 15.0) -> OutboxStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = container.job_outbox.get(outbox_id, None)
        if record is not None and record.status in (OutboxStatus.DONE, OutboxStatus.FAILED):
            return record.status
        time.sleep(0.05)
    raise AssertionError(f"job {outbox_id} not finished: {container.job_outbox.get(outbox_id, None)}")


def test_cleanup_job_runs_end_to_end_through_outbox_redis_and_a_dramatiq_worker(
    container: Container, tenant: Tenant, redis_test_url: str, redis_namespace: str,
) -> None:
    expired = _add_sessions(container, tenant, [dt.timedelta(minutes=-10), dt.timedelta(seconds=-1)])
    live = _add_sessions(container, tenant, [dt.timedelta(days=7)])
    assert _session_ids(container, tenant) == {*expired, *live}

    # A rolled-back unit of work leaves no job behind.
    with container.database.unit_of_work(None) as uow:
        container.job_queue.enqueue(uow, CLEANUP_EXPIRED_SESSIONS.request())
        uow.rollback()
    assert relay_until_drained(container.job_outbox, container.job_runtime) == 0

    with container.database.unit_of_work(None) as uow:
        outbox_id = container.job_queue.enqueue(uow, CLEANUP_EXPIRED_SESSIONS.request())
        uow.commit()
    assert relay_until_drained(container.job_outbox, container.job_runtime) == 1

    # The message sits in Redis, under this test's namespace, until a worker takes it.
    client = redis.Redis.from_url(redis_test_url)
    try:
        assert client.hlen(f"{redis_namespace}:{Queue.LOW.value}.msgs") == 1
    finally:
        client.close()
    record = container.job_outbox.get(outbox_id, None)
    assert record is not None and record.status is OutboxStatus.DISPATCHED
    assert _session_ids(container, tenant) == {*expired, *live}

    container.job_runtime.start_workers({Queue.LOW: 1})  # a real dramatiq.Worker on RedisBroker
    assert _wait_status(container, outbox_id) is OutboxStatus.DONE
    assert _session_ids(container, tenant) == set(live)
    record = container.job_outbox.get(outbox_id, None)
    assert record is not None and record.attempts == 1 and record.completed_at is not None


def test_worker_runner_schedules_relays_and_runs_the_sweeper_by_itself(
    container: Container, tenant: Tenant,
) -> None:
    expired = _add_sessions(container, tenant, [dt.timedelta(minutes=-1)])
    live = _add_sessions(container, tenant, [dt.timedelta(hours=1)])
    runner = build_worker_runner(container, {Queue.CRITICAL: 1, Queue.LOW: 1})  # what `reckai worker` runs
    runner.start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and set(expired) & _session_ids(container, tenant):
            time.sleep(0.05)
        assert _session_ids(container, tenant) == set(live)
        assert runner.health().ok, runner.health().detail
    finally:
        runner.stop(timeout_seconds=10)


def test_queue_health_pings_redis(container: Container, sessions_database: PgDatabase,
                                  redis_namespace: str, tmp_path: Path) -> None:
    report = container.health_checks["queue"]()
    assert report.ok and "jobs run in `reckai worker` processes" in report.detail

    dead_port = _closed_port()
    broken = bootstrap(_settings(sessions_database, f"redis://127.0.0.1:{dead_port}/0", redis_namespace, tmp_path))
    try:
        report = broken.health_checks["queue"]()
        assert not report.ok and "unreachable" in report.detail
    finally:
        broken.close()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_low_priority_flood_does_not_starve_critical_on_redis(redis_test_url: str, redis_namespace: str) -> None:
    recorder = Recorder(slow_seconds=1.0)
    database = MemoryDatabase()
    outbox = InMemoryOutbox(database, known_jobs=known_jobs(recorder.handlers()))
    factory = redis_broker_factory(lambda: redis_client(redis_test_url), redis_namespace)
    machinery = start_machinery(factory, outbox, database.unit_of_work, {Queue.CRITICAL: 1, Queue.LOW: 2}, recorder)
    try:
        latency = assert_critical_is_not_starved(machinery, low_jobs=10, bound_seconds=1.0)
        print(f"critical latency behind a low flood on Redis: {latency * 1000:.0f} ms")
    finally:
        machinery.runner.stop(timeout_seconds=10)


# --- `reckai worker` as real processes ------------------------------------------------------


def _children(pid: int) -> set[int]:
    """Live worker processes of the supervisor `pid` (not multiprocessing's resource tracker)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    found = set()
    for child in path.read_text().split() if path.exists() else []:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"spawn_main" in cmdline and state != "Z":
            found.add(int(child))
    return found


def _wait(predicate, timeout: float, message: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(message)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc to find child processes")
def test_reckai_worker_processes_run_jobs_restart_dead_children_and_stop_on_sigterm(
    container: Container, tenant: Tenant, sessions_database: PgDatabase, redis_test_url: str,
    redis_namespace: str, tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        **DEVELOPMENT_SECRETS_ENV,
        "RECKAI_MODE": "embedded",
        "DATABASE_URL": sessions_database.app_url,
        "REDIS_URL": redis_test_url,
        "JOBS_REDIS_NAMESPACE": redis_namespace,
        "JOBS_RELAY_INTERVAL_SECONDS": "0.1",
        "STORAGE_ROOT": str(tmp_path / "storage"),
        "MAIL_OUTBOX_DIR": str(tmp_path / "mail"),
        "LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "reckai.entrypoints.cli.main", "worker", "--processes", "2", "--threads", "1"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        _wait(lambda: len(_children(worker.pid)) >= 2, 30, "the supervisor did not start 2 worker processes")
        first_children = _children(worker.pid)

        expired = _add_sessions(container, tenant, [dt.timedelta(minutes=-3)])
        live = _add_sessions(container, tenant, [dt.timedelta(hours=2)])
        # The workers' scheduler enqueues the sweeper on start; the cleanup happens without us.
        _wait(lambda: not set(expired) & _session_ids(container, tenant), 60,
              "the worker processes never ran the session sweeper")
        assert set(live) <= _session_ids(container, tenant)

        # Kill both original processes, one after the other: only replacements are left.
        for victim in sorted(first_children):
            os.kill(victim, signal.SIGKILL)
            _wait(lambda victim=victim: len(_children(worker.pid) - {victim}) >= 2, 30,
                  "a killed worker process was not replaced")
        assert not _children(worker.pid) & first_children

        # The replacements take jobs from Redis.
        more_expired = _add_sessions(container, tenant, [dt.timedelta(minutes=-4)])
        with container.database.unit_of_work(None) as uow:
            outbox_id = container.job_queue.enqueue(uow, CLEANUP_EXPIRED_SESSIONS.request())
            uow.commit()
        assert _wait_status(container, outbox_id, timeout=30) is OutboxStatus.DONE
        assert not set(more_expired) & _session_ids(container, tenant)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise
        stderr = worker.stderr.read().decode(errors="replace") if worker.stderr else ""
    assert code == 0, stderr[-2000:]
    assert stderr.count("restarting in") == 2, stderr[-2000:]
    assert _children(worker.pid) == set()
