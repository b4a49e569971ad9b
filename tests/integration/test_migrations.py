"""`alembic downgrade base && alembic upgrade head` round-trips to the same schema."""

from __future__ import annotations

import pytest
from sqlalchemy import text

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
