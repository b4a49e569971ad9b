"""Health endpoints and logging against the real PostgreSQL (embedded pgserver via tests/fixtures/postgres.py)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from litestar import get
from litestar.testing import TestClient
from sqlalchemy import text

from reckai.bootstrap import bootstrap, bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from reckai.entrypoints.http.envelope import Success, ok
from reckai.logging_setup import configure_logging
from reckai.settings import DatabaseSettings, Mode, Settings, StorageSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("INFO", stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def test_health_db_is_200_against_the_real_database(pg_database) -> None:  # type: ignore[no-untyped-def]
    from reckai.adapters.postgres.database import database_health
    from reckai.adapters.postgres.engine import create_engine
    from reckai.adapters.postgres.unit_of_work import PostgresDatabase

    database = PostgresDatabase(create_engine(pg_database.app_url, pool_size=1, max_overflow=0))
    container = bootstrap_in_memory()
    container.health_checks["db"] = lambda: database_health(database)
    try:
        with TestClient(create_app(container)) as client:
            response = client.get("/health/db")
            summary = client.get("/health").json()["data"]
    finally:
        database.close()
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"status": "ok", "detail": "database answered SELECT 1"}
    assert summary["checks"]["db"]["status"] == "ok"


def test_health_db_is_503_when_the_database_does_not_answer() -> None:
    from reckai.adapters.postgres.database import database_health
    from reckai.adapters.postgres.engine import create_engine
    from reckai.adapters.postgres.unit_of_work import PostgresDatabase

    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    database = PostgresDatabase(
        create_engine("postgresql://reckai_app@127.0.0.1:9/reckai", pool_size=1, max_overflow=0)
    )
    container = bootstrap_in_memory()
    container.health_checks["db"] = lambda: database_health(database)
    try:
        with TestClient(create_app(container)) as client:
            response = client.get("/health/db")
    finally:
        database.close()
    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert body["error"]["details"][0]["field"] == "db"
    assert "127.0.0.1" not in response.text  # no connection string in a public answer


def test_a_slow_query_during_a_request_is_logged_with_the_request_id(
    pg_database, log_lines: io.StringIO
) -> None:  # type: ignore[no-untyped-def]
    from reckai.adapters.postgres.engine import create_engine

    engine = create_engine(pg_database.app_url, pool_size=1, max_overflow=0, slow_query_seconds=0.0)

    @get("/test/slow", opt={"public": True}, sync_to_thread=True)
    def slow() -> Success[int]:
        with engine.connect() as conn:
            return ok(int(conn.execute(text("SELECT 42")).scalar_one()))

    try:
        with TestClient(create_app(bootstrap_in_memory(), extra_route_handlers=[slow])) as client:
            response = client.get("/test/slow", headers={"X-Request-ID": "slow-req-1"})
    finally:
        engine.dispose()
    assert response.json()["data"] == 42
    entries = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    slow_queries = [entry for entry in entries if entry["action"] == "db.slow_query"]
    assert slow_queries, "the engine's slow-query log did not reach the JSON formatter"
    assert all(entry["level"] == "WARN" for entry in slow_queries)
    select = [entry for entry in slow_queries if "SELECT 42" in entry["metadata"]["statement"]]
    assert select and select[0]["metadata"]["request_id"] == "slow-req-1"


def test_the_full_embedded_container_answers_health_db(pg_database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """What `make run` serves, minus the embedded server start: every real builder, the real db."""
    settings = replace(
        Settings(mode=Mode.EMBEDDED),
        database=DatabaseSettings(url=pg_database.app_url),
        storage=StorageSettings(filesystem_root=tmp_path / "storage"),
    )
    container = bootstrap(settings)
    try:
        with TestClient(create_app(container)) as client:
            response = client.get("/health/db")
    finally:
        container.close()
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "ok"
