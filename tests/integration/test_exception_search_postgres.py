"""Issue 16 item 3 on PostgreSQL: the search filters (the same table as the in-memory unit test),
the migration's back-fill of existing rows, and the index plans of the real search statements at
a realistic size (the repository's own SQL, captured as it runs, EXPLAINed as the app runs it: its
role, the tenant's transaction, row-level security; after ANALYZE, in a database of its own)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient
from sqlalchemy import event, text

from reckai.adapters.postgres import migrations
from reckai.adapters.postgres.engine import create_engine
from reckai.application.ports.workflow import ExceptionQuery
from reckai.bootstrap import Container, bootstrap
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.fixtures.postgres import (
    clone_database,
    create_tenant,
    development_master_keys,
    drop_database,
    libpq_url,
)
from tests.support.exception_search import load_exceptions
from tests.support.identity import bearer, login, onboard
from tests.unit.test_exception_search import FILTER_CASES, names_found, seed

pytestmark = pytest.mark.integration

BULK_ROWS = 300_000


@pytest.fixture(scope="module")
def search_database(pg_admin_url: str, pg_template: Any) -> Iterator[Any]:
    """A database of its own: its statistics (300,000 rows, ANALYZEd) must be this test's."""
    database = clone_database(pg_admin_url, pg_template)
    try:
        yield database
    finally:
        drop_database(pg_admin_url, database.name)


@pytest.fixture(scope="module")
def container(search_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root = tmp_path_factory.mktemp("exception-search")
    settings = Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=search_database.app_url, pool_size=4),
                        storage=StorageSettings(backend="filesystem", filesystem_root=root / "storage"),
                        mailer=MailerSettings(backend="file", outbox_dir=root / "mail"))
    built = bootstrap(settings)
    try:
        yield built
    finally:
        built.close()


def _job(container: Container, organization_id: uuid.UUID, user_id: uuid.UUID) -> uuid.UUID:
    job = uuid.uuid4()
    with container.database.unit_of_work(organization_id) as uow:
        uow.connection.execute(text(
            "INSERT INTO reconciliation_jobs (id, organization_id, name, status, created_by)"
            " VALUES (:id, :org, 'search', 'completed', :by)"), {"id": job, "org": organization_id, "by": user_id})
        uow.commit()
    return job


@pytest.fixture(scope="module")
def api(container: Container) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        organization_id, admin = onboard(client)
        seed(container, organization_id, _job(container, organization_id, admin.user_id))
        yield client, bearer(login(client, admin.org_code, admin.email, admin.password))


@pytest.mark.parametrize(("query", "expected"), FILTER_CASES)
def test_filters_on_postgresql(api: tuple[TestClient, dict[str, str]], query: str, expected: set[str]) -> None:
    client, headers = api
    assert names_found(client, headers, query) == expected


@pytest.fixture(scope="module")
def bulk_tenant(container: Container, search_database: Any) -> Any:
    """An organization with BULK_ROWS exceptions, ANALYZEd."""
    tenant = create_tenant(container.database.engine)
    job = _job(container, tenant.organization_id, tenant.admin_user_id)
    with container.database.unit_of_work(tenant.organization_id) as uow:
        load_exceptions(uow.connection, tenant.organization_id, job, BULK_ROWS)
        uow.commit()
    admin = create_engine(search_database.admin_url, pool_size=1)
    with admin.begin() as conn:
        conn.execute(text("ANALYZE exceptions"))
    admin.dispose()
    return tenant


def test_plans_use_the_search_indexes(container: Container, search_database: Any, bulk_tenant: Any) -> None:
    """Each search reads an index (one of those named, never the whole table), page and count."""
    tenant = bulk_tenant
    cases = [
        (ExceptionQuery(reference="000000104729"), ("idx_exceptions_org_reference",)),
        (ExceptionQuery(reference_prefix="00000010"), ("idx_exceptions_org_reference",)),
        (ExceptionQuery(reference="FT0000000100"), ("idx_exceptions_org_reference_other",)),
        (ExceptionQuery(secondary_reference="000042"), ("idx_exceptions_org_secondary_reference",)),
        (ExceptionQuery(secondary_reference_prefix="00004"), ("idx_exceptions_org_secondary_reference",)),
        (ExceptionQuery(masked_account="539983******0042"), ("idx_exceptions_org_masked_account",)),
        (ExceptionQuery(channels=("USSD",)), ("idx_exceptions_org_channel_created",)),
        # a quarter of the organization: its first page is the newest rows, read in order
        (ExceptionQuery(channels=("POS",)), ("idx_exceptions_org_channel_created", "idx_exceptions_org_created")),
        (ExceptionQuery(amount_min=Decimal("1500.00"), amount_max=Decimal("1509.99")),
         ("idx_exceptions_org_amount_cents",)),
        (ExceptionQuery(date_from=dt.date(2026, 2, 1), date_to=dt.date(2026, 2, 1)),
         ("idx_exceptions_org_transaction_date", "idx_exceptions_org_created")),
        (ExceptionQuery(reference_prefix="000000", channels=("POS",), date_from=dt.date(2026, 1, 5)),
         ("idx_exceptions_org_reference",)),
    ]
    statements: list[tuple[str, Any]] = []

    settings: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if "FROM exceptions" in statement and "organization_id = " in statement:
            statements.append((statement, parameters))
        elif "plan_cache_mode" in statement:
            settings.append(statement)

    engine = container.database.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        plans = []
        for query, indexes in cases:
            statements.clear()
            with container.database.unit_of_work(tenant.organization_id) as uow:
                page = uow.exceptions.list(query)
            assert page.items, query  # each query finds rows: the plan is the one a real search gets
            assert len(statements) == 2, statements  # the page and its bounded count
            # planned for the values, never a prepared statement's generic plan (see below)
            assert settings[-1] == "SET LOCAL plan_cache_mode = force_custom_plan"
            captured = list(statements)
            with container.database.unit_of_work(tenant.organization_id) as uow:
                plans.append((query, indexes, [_explain(uow.connection, s, p) for s, p in captured]))
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    for query, indexes, (page_plan, count_plan) in plans:
        print(query, page_plan, count_plan, sep="\n")
        assert any(index in page_plan for index in indexes), (query, page_plan)
        assert "Seq Scan" not in page_plan, (query, page_plan)
        if query.channels != ("POS",):
            # the capped count of a selective search reads the index too (a quarter of the
            # organization may be counted by a sequential scan: it stops at the 10,000th row)
            assert "Seq Scan" not in count_plan, (query, count_plan)


def _explain(connection: Any, statement: str, parameters: Any) -> str:
    """The plan as the app gets it: its role, in the tenant's transaction, under row-level security
    (which keeps operators that are not leakproof, numeric comparisons among them, out of index
    conditions: planned as the superuser, an index on abs(amount) looked used and never was)."""
    rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
    return "\n".join(row[0] for row in rows)


def test_a_generic_plan_would_walk_the_organization_for_a_rare_value(search_database: Any, bulk_tenant: Any) -> None:
    """Why the repository plans for the values (`SET LOCAL plan_cache_mode = force_custom_plan`):
    the generic plan of a channel search (PostgreSQL 16's EXPLAIN (GENERIC_PLAN), what a prepared
    statement may keep after five runs) walks the newest rows and filters, whatever the channel;
    for one held by 0.1 % of the rows the plan for the value reads the channel's index."""
    statement = ("SELECT id FROM exceptions WHERE organization_id = $1 AND channel IS NOT NULL"
                 " AND channel = ANY($2) ORDER BY created_at DESC, id DESC LIMIT 20")
    with psycopg.connect(libpq_url(search_database.admin_url)) as conn:
        generic = "\n".join(r[0] for r in conn.execute(f"EXPLAIN (GENERIC_PLAN) {statement}".encode()).fetchall())
        custom = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT id FROM exceptions WHERE organization_id = %s AND channel IS NOT NULL"
            " AND channel = ANY(%s) ORDER BY created_at DESC, id DESC LIMIT 20",
            (bulk_tenant.organization_id, ["USSD"])).fetchall())
    assert "idx_exceptions_org_created" in generic, generic
    assert "idx_exceptions_org_channel_created" in custom, custom


def test_the_migration_back_fills_the_reference_of_existing_rows(pg_database_factory: Any) -> None:
    database = pg_database_factory(migrate=False)
    migrations.upgrade(database.owner_url, "0013_login_sources", master_keys=development_master_keys())
    admin = create_engine(database.admin_url, pool_size=1)
    tenant = create_tenant(admin)
    job = uuid.uuid4()
    evidences = [{"reference": " ft2301ab "}, {"reference": ""}, {"rule": "x"}, {"reference": 12}, None]
    with admin.begin() as conn:
        conn.execute(text("INSERT INTO reconciliation_jobs (id, organization_id, name, status, created_by)"
                          " VALUES (:id, :org, 'old', 'completed', :by)"),
                     {"id": job, "org": tenant.organization_id, "by": tenant.admin_user_id})
        for number, evidence in enumerate(evidences):
            conn.execute(text(
                "INSERT INTO exceptions (organization_id, job_id, type, severity, status, description, evidence)"
                " VALUES (:org, :job, 'missing_entry', 'low', 'open', :d, CAST(:e AS jsonb))"),
                {"org": tenant.organization_id, "job": job, "d": str(number),
                 "e": None if evidence is None else json.dumps(evidence)})
    migrations.upgrade(database.owner_url, "head", master_keys=development_master_keys())
    with admin.connect() as conn:
        found = dict(conn.execute(text("SELECT description, reference FROM exceptions")).all())
    assert found == {"0": "FT2301AB", "1": None, "2": None, "3": None, "4": None}
    migrations.downgrade(database.owner_url, "0013_login_sources", master_keys=development_master_keys())  # and back: the columns go
    with admin.connect() as conn:
        columns = set(conn.execute(text("SELECT column_name FROM information_schema.columns"
                                        " WHERE table_name = 'exceptions'")).scalars())
    assert "reference" not in columns and "masked_account" not in columns
    admin.dispose()
