"""The outbox contract over PostgreSQL (the same tests as the in-memory adapter), as the app role:
enqueue through row-level security, relay through the reckai_system functions."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import Engine

from reckai.adapters.postgres.engine import create_engine
from reckai.adapters.postgres.outbox import PostgresJobQueue, PostgresOutboxStore
from reckai.adapters.postgres.roles import drop_database, libpq_url
from reckai.adapters.postgres.unit_of_work import PostgresDatabase
from reckai.bootstrap import bootstrap
from reckai.domain.identity.entities import UserSession
from reckai.settings import DatabaseSettings, JobSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.fixtures.postgres import PgDatabase, _new_database, create_tenant
from tests.unit.test_jobs_outbox_contract import KNOWN_JOBS, OutboxContract, OutboxEnv

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def jobs_database(pg_admin_url: str) -> Iterator[PgDatabase]:
    """A database of this module's own: the contract needs an outbox nobody else writes to."""
    database = _new_database(pg_admin_url, migrate=True)
    try:
        yield database
    finally:
        drop_database(pg_admin_url, database.name)


@pytest.fixture(scope="module")
def jobs_engine(jobs_database: PgDatabase) -> Iterator[Engine]:
    engine = create_engine(jobs_database.app_url, pool_size=6, max_overflow=4)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def tenants(jobs_engine: Engine) -> tuple[uuid.UUID, uuid.UUID]:
    return create_tenant(jobs_engine).organization_id, create_tenant(jobs_engine).organization_id


def _empty_outbox(jobs_database: PgDatabase) -> None:
    # As the superuser: the app role may not delete outbox rows, and should not be able to.
    with psycopg.connect(libpq_url(jobs_database.admin_url), autocommit=True) as conn:
        conn.execute("TRUNCATE outbox_messages")


class TestPostgresOutbox(OutboxContract):
    @pytest.fixture
    def env(self, jobs_database: PgDatabase, jobs_engine: Engine,
            tenants: tuple[uuid.UUID, uuid.UUID]) -> Iterator[OutboxEnv]:
        _empty_outbox(jobs_database)
        database = PostgresDatabase(jobs_engine)
        yield OutboxEnv(PostgresJobQueue(KNOWN_JOBS), PostgresOutboxStore(database), database.unit_of_work, *tenants)
        _empty_outbox(jobs_database)

    def test_app_role_cannot_move_outbox_rows_itself(self, env: OutboxEnv, jobs_engine: Engine) -> None:
        """Only the narrow system functions change a row's status; the app role cannot."""
        from sqlalchemy import text
        from sqlalchemy.exc import ProgrammingError

        from tests.unit.test_jobs_outbox_contract import SWEEP, enqueue

        outbox_id = enqueue(env, SWEEP.request())
        with jobs_engine.connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("UPDATE outbox_messages SET status = 'done' WHERE id = :id"), {"id": outbox_id})
        with jobs_engine.connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("DELETE FROM outbox_messages WHERE id = :id"), {"id": outbox_id})


def test_embedded_container_runs_jobs_in_process_on_postgres(
    jobs_database: PgDatabase, jobs_engine: Engine, tmp_path: Path,
) -> None:
    """`make run`'s shape: PostgreSQL outbox, no Redis, the in-process worker started by `serve`."""
    _empty_outbox(jobs_database)
    tenant = create_tenant(jobs_engine)
    settings = Settings(
        mode=Mode.EMBEDDED,
        database=DatabaseSettings(url=jobs_database.app_url, pool_size=4),
        storage=StorageSettings(filesystem_root=tmp_path / "storage"),
        mailer=MailerSettings(outbox_dir=tmp_path / "mail"),
        jobs=JobSettings(relay_interval_seconds=0.05),
    )
    container = bootstrap(settings)
    try:
        now = dt.datetime.now(dt.UTC)
        expired = UserSession(id=uuid.uuid4(), organization_id=tenant.organization_id, user_id=tenant.admin_user_id,
                              token_hash=uuid.uuid4().hex, expires_at=now - dt.timedelta(minutes=1))
        live = UserSession(id=uuid.uuid4(), organization_id=tenant.organization_id, user_id=tenant.admin_user_id,
                           token_hash=uuid.uuid4().hex, expires_at=now + dt.timedelta(hours=1))
        with container.database.unit_of_work(tenant.organization_id) as uow:
            uow.sessions.add(expired)
            uow.sessions.add(live)
            uow.commit()
        assert not container.health_checks["queue"]().ok  # not started yet
        container.worker_runner.start()
        assert container.health_checks["queue"]().ok

        def remaining() -> set[uuid.UUID]:
            with container.database.unit_of_work(tenant.organization_id) as uow:
                return {s.id for s in uow.sessions.list_for_user(tenant.admin_user_id, include_revoked=True)}

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and expired.id in remaining():
            time.sleep(0.05)
        assert remaining() == {live.id}  # the scheduler enqueued the sweeper, the in-process worker ran it
    finally:
        container.close()
    assert not container.health_checks["queue"]().ok
