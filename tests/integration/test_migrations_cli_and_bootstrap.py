"""The commands and the composition root around the database: `reckai db setup-roles`,
`reckai migrate`, `reckai db check-role`, open_database in both modes, the health check, the
slow-query log and the embedded server."""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from reckai.adapters.postgres.database import database_health, open_database
from reckai.adapters.postgres.engine import create_engine
from reckai.adapters.postgres.roles import APP_ROLE, OWNER_ROLE, UnsafeDatabaseRole, role_url
from reckai.entrypoints.cli.main import main as cli
from reckai.settings import DatabaseSettings, Mode, Settings
from tests.fixtures.postgres import PgDatabase
from tests.support.identity import DEVELOPMENT_SECRETS_ENV

pytestmark = pytest.mark.integration


def test_setup_roles_migrate_and_check_role_commands(pg_admin_url: str, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # `reckai migrate` loads the settings for the master key (0034_pii_encryption): the development
    # values, so no var/secrets.json is written in the working directory.
    for variable, value in DEVELOPMENT_SECRETS_ENV.items():
        monkeypatch.setenv(variable, value)
    name = f"reckai_cli_{uuid.uuid4().hex[:8]}"
    try:
        assert cli(["db", "setup-roles", "--admin-url", pg_admin_url, "--database", name]) == 0
        assert cli(["db", "setup-roles", "--admin-url", pg_admin_url, "--database", name]) == 0  # idempotent
        owner_url, app_url = role_url(pg_admin_url, OWNER_ROLE, name), role_url(pg_admin_url, APP_ROLE, name)
        assert cli(["migrate", "--url", owner_url]) == 0
        assert "database at revision" in capsys.readouterr().out
        assert cli(["db", "check-role", "--url", app_url]) == 0
        assert cli(["db", "check-role", "--url", owner_url]) == 1
        assert "owns" in capsys.readouterr().err
        assert cli(["migrate", "--url", owner_url, "--downgrade", "--revision", "base"]) == 0
        assert "revision base" in capsys.readouterr().out
        assert cli(["migrate", "--url", app_url]) == 2  # the app role may not create tables
        err = capsys.readouterr().err
        assert "failed" in err and "Traceback" not in err
    finally:
        from reckai.adapters.postgres.roles import drop_database

        drop_database(pg_admin_url, name)


def test_production_refuses_a_role_that_can_bypass_rls(pg_database: PgDatabase) -> None:
    settings = Settings(mode=Mode.PRODUCTION, database=DatabaseSettings(url=pg_database.owner_url))
    with pytest.raises(UnsafeDatabaseRole):
        open_database(settings)
    settings = Settings(mode=Mode.PRODUCTION, database=DatabaseSettings(url=pg_database.admin_url))
    with pytest.raises(UnsafeDatabaseRole, match="superuser"):
        open_database(settings)
    database = open_database(Settings(mode=Mode.PRODUCTION, database=DatabaseSettings(url=pg_database.app_url)))
    try:
        assert database_health(database).ok
        with database.unit_of_work() as uow:
            assert uow.users.count() == 0
    finally:
        database.close()


def test_embedded_mode_with_urls_migrates_and_reports_health(pg_database_factory) -> None:  # type: ignore[no-untyped-def]
    fresh = pg_database_factory(migrate=False)
    settings = Settings(database=DatabaseSettings(url=fresh.app_url, migration_url=fresh.owner_url))
    database = open_database(settings)
    try:
        report = database_health(database)
        assert report.ok and "SELECT 1" in report.detail
        with database.unit_of_work() as uow:
            created = uow.organizations.create_with_admin(
                name="Boot", code=f"boot-{uuid.uuid4().hex[:6]}", domain=None, admin_email="a@b.c",
                admin_name="A", admin_password_hash="h")
            uow.commit()
        with database.unit_of_work(created.organization_id) as uow:
            assert uow.users.count() == 1
    finally:
        database.close()


def test_health_reports_an_unreachable_database_without_raising(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://reckai_app@/reckai?host={tmp_path}&port=1"
    from reckai.adapters.postgres.unit_of_work import PostgresDatabase

    database = PostgresDatabase(create_engine(url, pool_size=1))
    try:
        report = database_health(database)
    finally:
        database.close()
    assert not report.ok
    assert "unreachable" in report.detail and str(tmp_path) not in report.detail


def test_slow_queries_are_logged_with_duration_and_statement_but_no_parameters(
    pg_database: PgDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(pg_database.app_url, pool_size=1, slow_query_seconds=0.05)
    try:
        with caplog.at_level(logging.WARNING, logger="reckai.db"), engine.connect() as conn:
            conn.execute(text("SELECT :secret_value AS v, pg_sleep(0.1)"), {"secret_value": "hunter2-secret"})
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    records = [r for r in caplog.records if r.name == "reckai.db"]
    assert len(records) == 1
    payload = json.loads(records[0].getMessage())
    assert payload["event"] == "slow_query" and payload["duration_ms"] >= 100
    assert "pg_sleep" in payload["statement"]
    assert "hunter2" not in records[0].getMessage()


def test_embedded_server_starts_and_a_second_start_is_quick(tmp_path_factory: pytest.TempPathFactory) -> None:
    from reckai.adapters.postgres.embedded import start_embedded

    data_dir = Path("/tmp") / f"reckai-emb-{uuid.uuid4().hex[:8]}"
    first = start_embedded(data_dir, cleanup_mode="delete")
    try:
        started = time.perf_counter()
        second = start_embedded(data_dir, cleanup_mode="delete")
        assert time.perf_counter() - started < 15.0  # reuses the running server: no initdb (~6 s+)
        assert second.urls == first.urls
        engine = create_engine(first.urls.app_url, pool_size=1)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT current_user, current_database()")).one() == ("reckai_app", "reckai")
        finally:
            engine.dispose()
    finally:
        first.stop()
    assert not data_dir.exists()
