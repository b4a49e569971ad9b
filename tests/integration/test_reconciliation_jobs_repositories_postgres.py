"""The reconciliation repository contract over PostgreSQL (row-level security, COPY, the SECURITY
DEFINER functions) as the runtime role."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import reckai.adapters.postgres.files
import reckai.adapters.postgres.reconciliations  # noqa: F401  registers the repositories
from reckai.adapters.postgres.engine import create_engine
from reckai.adapters.postgres.unit_of_work import PostgresDatabase
from tests.contracts import reconciliation_repositories as contract
from tests.fixtures.postgres import PgDatabase, create_tenant
from tests.unit.test_reconciliation_jobs_repositories import file_adder

pytestmark = pytest.mark.integration


def _tenants(engine: Any) -> contract.Tenants:
    a, b = create_tenant(engine), create_tenant(engine)
    return PostgresDatabase(engine), (a.organization_id, a.admin_user_id), (b.organization_id, b.admin_user_id)


@pytest.fixture
def tenants(app_engine: Any) -> contract.Tenants:
    return _tenants(app_engine)


@pytest.fixture
def own_tenants(pg_fresh_database: PgDatabase) -> Iterator[contract.Tenants]:
    """`tenants` on a database of the test's own: find_stuck lists the stuck jobs of every tenant
    (oldest first, up to a limit), so on the shared database other tests' jobs would be in it."""
    engine = create_engine(pg_fresh_database.app_url, pool_size=2, max_overflow=2)
    try:
        yield _tenants(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
def test_contract(tenants: contract.Tenants, check: Callable[[contract.Tenants], None]) -> None:
    check(tenants)


def test_delete_links_and_stuck(own_tenants: contract.Tenants) -> None:
    contract.check_delete_links_and_stuck(own_tenants, file_adder(own_tenants[0]))


def test_forced_job_inherits_by_key(tenants: contract.Tenants) -> None:
    contract.check_forced_job_inherits_by_key(tenants, file_adder(tenants[0]))


def test_bulk_exceptions_get_the_due_at_the_trigger_would_give_and_ordered_ids(tenants: contract.Tenants) -> None:
    """The bulk insert computes due_at itself (the trigger then does not fire: 0009_bulk_persist);
    the SLA is exactly the one a single insert gets from exceptions_set_due_at."""
    import uuid

    from sqlalchemy import text

    database, (org, user), _ = tenants
    sla = {"critical": 2, "high": 10, "medium": 30, "low": 100}
    with database.unit_of_work(org) as uow:
        uow.connection.execute(text(
            "UPDATE organizations SET settings = jsonb_set(coalesce(settings, '{}'), '{workflow}',"
            " CAST(:w AS jsonb)) WHERE id = :org"), {"w": '{"sla_hours": {"critical": 2, "high": 10, "medium": 30,'
                                                          ' "low": 100}}', "org": org})
        uow.commit()
    job = contract._processing(database, org, user)
    rows = b"".join(contract.EXCEPTION.replace(b"low", severity.encode()).replace(b"{l}", str(n).encode())
                    for n, severity in enumerate(("low", "medium", "high", "critical"), start=1))
    with database.unit_of_work(org) as uow:
        assert uow.reconciliation_results.replace_results(job.id, 1, [], [rows]) == (0, 4)
        # one row the ordinary way: the trigger fills due_at
        uow.connection.execute(text(
            "INSERT INTO exceptions (organization_id, job_id, type, severity, status, description)"
            " VALUES (:org, :job, 'duplicate', 'high', 'open', 'single')"), {"org": org, "job": job.id})
        stored = uow.connection.execute(text(
            "SELECT id, severity, description, created_at, due_at FROM exceptions WHERE job_id = :job"
            " ORDER BY left_row NULLS LAST"), {"job": job.id}).all()
        uow.commit()
    for row in stored:
        assert row.due_at - row.created_at == dt.timedelta(hours=sla[row.severity]), row
    bulk = [uuid.UUID(str(row.id)) for row in stored if row.description != "single"]
    assert [u.version for u in bulk] == [7, 7, 7, 7] and bulk == sorted(bulk)


def test_unassigned_unresolved_exceptions_stay_out_of_the_assignee_indexes(pg_database: Any) -> None:
    """0012: a job's exceptions (no assignee, no resolver) add no entry to these two indexes, and a
    lookup by a value still uses them. Planned as the superuser, so neither the row-level security
    filter nor what other tests stored decides which index the planner prefers."""
    import uuid

    from sqlalchemy import text

    from reckai.adapters.postgres.engine import create_engine

    admin_engine = create_engine(pg_database.admin_url, pool_size=1)
    with admin_engine.connect() as conn:
        definitions = dict(conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN"
            " ('idx_exceptions_assigned', 'idx_exceptions_resolved_by')")).all())
        assert definitions["idx_exceptions_assigned"].endswith("WHERE (assigned_to IS NOT NULL)")
        assert definitions["idx_exceptions_resolved_by"].endswith("WHERE (resolved_by IS NOT NULL)")
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        for column, index in (("assigned_to", "idx_exceptions_assigned"), ("resolved_by", "idx_exceptions_resolved_by")):
            plan = "\n".join(conn.execute(text(f"EXPLAIN SELECT id FROM exceptions WHERE {column} = :user"),
                                          {"user": uuid.uuid4()}).scalars())
            assert index in plan, plan
    admin_engine.dispose()
