"""`alembic downgrade base && alembic upgrade head` round-trips to the same schema."""

from __future__ import annotations

import datetime as dt
import importlib.util
import itertools
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from reckai.adapters.postgres import migrations
from reckai.adapters.postgres.engine import create_engine
from tests.fixtures.postgres import development_master_keys

pytestmark = pytest.mark.integration

SNAPSHOT_QUERIES = {
    "tables": "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    "columns": "SELECT table_name || '.' || column_name || ':' || data_type || ':' || is_nullable"
    " || ':' || coalesce(column_default, '') FROM information_schema.columns WHERE table_schema = 'public'",
    "indexes": "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "constraints": "SELECT conrelid::regclass::text || ':' || pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE connamespace = 'public'::regnamespace",
    "policies": "SELECT tablename || ':' || policyname || ':' || qual || ':' || coalesce(with_check, '')"
    " FROM pg_policies WHERE schemaname = 'public'",
    "rls": "SELECT relname || ':' || relrowsecurity || ':' || relforcerowsecurity FROM pg_class"
    " WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'",
    "functions": "SELECT p.oid::regprocedure::text || ':' || pg_get_userbyid(p.proowner) || ':' || p.prosecdef"
    " FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace",
    "grants": "SELECT table_name || ':' || grantee || ':' || privilege_type FROM information_schema.table_privileges"
    " WHERE table_schema = 'public' AND grantee IN ('reckai_app', 'reckai_system')",
    "triggers": "SELECT tgrelid::regclass::text || ':' || tgname FROM pg_trigger WHERE NOT tgisinternal",
}


def _snapshot(url: str) -> dict[str, set[str]]:
    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return {name: set(conn.execute(text(query)).scalars()) for name, query in SNAPSHOT_QUERIES.items()}
    finally:
        engine.dispose()


def test_downgrade_base_then_upgrade_head_round_trips(pg_database_factory) -> None:  # type: ignore[no-untyped-def]
    database = pg_database_factory(migrate=True)
    at_head = _snapshot(database.owner_url)
    assert len(at_head["tables"]) >= 22 and at_head["policies"] and at_head["functions"]

    migrations.downgrade(database.owner_url, "base", master_keys=development_master_keys())
    at_base = _snapshot(database.owner_url)
    assert at_base["tables"] == {"alembic_version"}
    assert at_base["functions"] == set()
    assert at_base["policies"] == set() and at_base["grants"] == set() and at_base["triggers"] == set()
    assert migrations.current_revision(database.owner_url) is None

    migrations.upgrade(database.owner_url, "head", master_keys=development_master_keys())
    assert _snapshot(database.owner_url) == at_head


def test_upgrade_is_idempotent_and_records_the_revision(pg_database_factory) -> None:  # type: ignore[no-untyped-def]
    database = pg_database_factory(migrate=True)
    head = migrations.current_revision(database.owner_url)
    assert head is not None
    migrations.upgrade(database.owner_url, "head", master_keys=development_master_keys())  # nothing to do, no error
    assert migrations.current_revision(database.owner_url) == head


def _revision(name: str) -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plan(conn: Any, select: str) -> str:
    return "\n".join(conn.execute(text(f"EXPLAIN (VERBOSE) {select}")).scalars())


def test_the_earliest_date_is_inlined_and_dates_as_0019_did(pg_database) -> None:  # type: ignore[no-untyped-def]
    """0035_inline_earliest_date: the planner puts the function's expression into the query (no call
    per row in the rollup trigger), and it gives 0019's date for every kind of value, refusing the
    same impossible dates."""
    revision = _revision("0035_inline_earliest_date")
    side_values: list[Any] = [None, 20251211, "2025-12-11", "2025-12-09T23:59:59", "2025-12-13 08:00:00+01:00",
                              "0012-03-04", "11/12/2025", "2025-1-11", "20251211", "", " 2025-12-11", "x2025-12-11"]
    evidence = [json.dumps({key: {"date": value} for key, value in (("left", left), ("right", right))
                            if value is not None})
                for left, right in itertools.product(side_values, repeat=2)]
    evidence += [json.dumps({"left": "2025-12-01"}), json.dumps({"rule": "r"})]
    transaction_dates = [None, dt.date(2025, 12, 10), dt.date(2025, 12, 12)]
    cases = list(itertools.product(transaction_dates, evidence))
    engine = create_engine(pg_database.owner_url, pool_size=1)
    try:
        with engine.connect() as conn:
            conn.execute(text(revision.CALLED.replace("exceptions_earliest_date", "pg_temp.earliest_date_0019")))
            dated = conn.execute(text(
                "SELECT d, e, exceptions_earliest_date(d, e) AS now_, pg_temp.earliest_date_0019(d, e) AS before"
                " FROM unnest(CAST(:dates AS date[]), CAST(:evidence AS jsonb[])) AS v(d, e)"),
                {"dates": [d for d, _ in cases], "evidence": [e for _, e in cases]}).all()
            assert len(dated) == len(cases)
            assert [(r.d, r.e, r.now_) for r in dated] == [(r.d, r.e, r.before) for r in dated]
            assert {r.now_ for r in dated} >= {dt.date(2025, 12, 9), dt.date(12, 3, 4), dt.date(2025, 12, 10), None}
            for impossible in ("2025-02-30", "2025-13-01", "0000-01-01", "2025-12-00"):
                for function in ("exceptions_earliest_date", "pg_temp.earliest_date_0019"):
                    with pytest.raises(DBAPIError), conn.begin_nested():
                        conn.execute(text(f"SELECT {function}(NULL, CAST(:e AS jsonb))"),
                                     {"e": json.dumps({"right": {"date": impossible}})})
            # Over a table's columns (constants would be folded at planning either way).
            assert "exceptions_earliest_date" not in _plan(
                conn, "SELECT exceptions_earliest_date(transaction_date, evidence) FROM exceptions")
            assert "earliest_date_0019" in _plan(  # the check above would see a call
                conn, "SELECT pg_temp.earliest_date_0019(transaction_date, evidence) FROM exceptions")
    finally:
        engine.dispose()
