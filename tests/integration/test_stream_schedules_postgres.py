"""Stream schedules on PostgreSQL (row-level security, the slot claim of 0025_stream_schedules):
the scenarios of tests/support/stream_schedule_scenarios.py, which also run in memory
(tests/unit/test_stream_schedules.py); concurrent schedulers in threads and in `reckai streams tick`
processes; the alert mail through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reckai.bootstrap import Container, bootstrap
from reckai.domain.streams.schedules import SlotOutcome
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.support import stream_schedule_scenarios as scenarios
from tests.support.identity import DEVELOPMENT_SECRETS_ENV
from tests.support.streams import StreamWorld, stream_world

pytestmark = pytest.mark.integration
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _settings(pg_database: Any, root: Path, mailer: MailerSettings | None = None) -> Settings:
    return Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=pg_database.app_url, pool_size=8),
                    storage=StorageSettings(backend="filesystem", filesystem_root=root / "storage"),
                    mailer=mailer or MailerSettings(backend="file", outbox_dir=root / "mail"))


@pytest.fixture(scope="module")
def container(pg_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    built = bootstrap(_settings(pg_database, tmp_path_factory.mktemp("schedules")))
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def world(container: Container) -> StreamWorld:
    return stream_world(container)


def test_cron_is_read_in_the_organizations_time_zone(world: StreamWorld) -> None:
    scenarios.cron_in_the_organizations_time_zone(world)


def test_files_arrived_start_the_run(world: StreamWorld) -> None:
    scenarios.files_arrived_start_the_run(world)


def test_files_arriving_within_the_grace_period_start_the_run_late(world: StreamWorld) -> None:
    scenarios.files_arriving_within_the_grace_period_start_the_run_late(world)


def test_a_refused_run_is_recorded_once(world: StreamWorld) -> None:
    scenarios.a_refused_run_is_recorded_once(world)


def test_concurrent_schedulers_start_one_run_per_slot(world: StreamWorld) -> None:
    scenarios.concurrent_schedulers_start_one_run_per_slot(world, schedulers=6)


def test_missing_files_alert_once_by_smtp(pg_database: Any, smtp_server: Any, tmp_path: Path) -> None:
    """Exactly one alert per recipient for the slot, delivered by the mail job through SMTP."""
    mailer = MailerSettings(backend="smtp", smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                            sender="reckai@test.local")
    container = bootstrap(_settings(pg_database, tmp_path, mailer))
    try:
        recipients = scenarios.missing_files_alert_once_after_the_grace_period(stream_world(container))
    finally:
        container.close()
    assert sorted(e.rcpt_tos for e in smtp_server.envelopes) == sorted((u.email,) for u in recipients)
    subjects = {str(m["Subject"]) for m in smtp_server.messages}
    assert subjects == {"ReckAI: expected files missing for stream 'missing'"}
    body = smtp_server.messages[0].get_content()
    assert "2026-03-02 06:00 (Africa/Lagos)" in body and "arrived: left 1, right 0" in body


def test_concurrent_tick_processes_start_one_run(world: StreamWorld, pg_database: Any, tmp_path: Path) -> None:
    """Four `reckai streams tick --at <slot>` processes at once, on the same database: one run."""
    stream = scenarios.scheduled_stream(world, "processes")
    scenarios.day_files(world, stream, "1")
    moment = (scenarios.SLOT.replace(second=10)).isoformat()
    env = {**os.environ, **DEVELOPMENT_SECRETS_ENV, "DATABASE_URL": pg_database.app_url, "RECKAI_MODE": "embedded",
           "RECKAI_VAR_DIR": str(tmp_path), "STORAGE_BACKEND": "filesystem", "STORAGE_ROOT": str(tmp_path / "storage"),
           "MAILER_BACKEND": "file", "MAIL_OUTBOX_DIR": str(tmp_path / "mail"), "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    processes = [subprocess.Popen([sys.executable, "-m", "reckai.entrypoints.cli.main", "streams", "tick", "--at",
                                   moment], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
    outputs = [p.communicate(timeout=180) for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, outputs
    started = [line for out, _ in outputs for line in out.splitlines() if line.startswith(f"STARTED stream {stream.id}")]
    assert started == [f"STARTED stream {stream.id} slot {scenarios.SLOT.isoformat()}: run 1"]
    assert [r.run_number for r in scenarios.runs(world, stream)] == [1]
    assert [(s.slot, s.outcome) for s in scenarios.slots(world, stream)] == [(scenarios.SLOT, SlotOutcome.RUN_STARTED)]
