"""Row-level tenancy, proven against the real server as the runtime role reckai_app.

audit_logs rows are written through the audit writer (its chain trigger refuses hand-made rows),
so its isolation is tested with the audit log; here only its RLS flags and grants are.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, ProgrammingError

from reckai.adapters.postgres.engine import create_engine
from reckai.adapters.postgres.roles import UnsafeDatabaseRole, assert_safe_app_role
from reckai.adapters.security.personal_data import WrappedDataKey, development_keys
from reckai.application.ports.repositories import DuplicateEntity
from tests.fixtures.postgres import PgDatabase, Tenant, create_tenant

pytestmark = pytest.mark.integration

# docs/tenancy.md lists the functions of 0001_schema; a feature adding one documents it in its own
# docs/*.md as `name(args)`. An undocumented bypass of the policies fails the test below.
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _as_tenant(conn: Connection, organization_id: uuid.UUID | None) -> None:
    conn.execute(text("SELECT set_config('app.current_org_id', :org, true)"), {"org": str(organization_id or "")})


def _seed(engine: Engine, tenant: Tenant) -> dict[str, uuid.UUID]:
    """One row in several tenant tables, written as that tenant."""
    with engine.begin() as conn:
        _as_tenant(conn, tenant.organization_id)
        params = {"org": tenant.organization_id, "user": tenant.admin_user_id}
        job = conn.execute(
            text("INSERT INTO reconciliation_jobs (organization_id, name, status, created_by)"
                 " VALUES (:org, 'job', 'pending', :user) RETURNING id"), params).scalar_one()
        file = conn.execute(
            text("INSERT INTO reconciliation_files (organization_id, job_id, name, original_filename, file_type,"
                 " format, size_bytes, storage_path, status, uploaded_by)"
                 " VALUES (:org, :job, 'f', 'f.csv', 'bank', 'csv', 10, 'k', 'uploaded', :user) RETURNING id"),
            {**params, "job": job}).scalar_one()
        exception = conn.execute(
            text("INSERT INTO exceptions (organization_id, job_id, type, severity, status, description)"
                 " VALUES (:org, :job, 'duplicate', 'low', 'open', 'd') RETURNING id"),
            {**params, "job": job}).scalar_one()
        comment = conn.execute(
            text("INSERT INTO exception_comments (organization_id, exception_id, user_id, content)"
                 " VALUES (:org, :exc, :user, 'c') RETURNING id"), {**params, "exc": exception}).scalar_one()
        report = conn.execute(
            text("INSERT INTO reports (organization_id, type, format, job_id, storage_path, generated_by, parameters)"
                 " VALUES (:org, 'aging', 'csv', :job, :path, :user, '{}') RETURNING id"),
            {**params, "job": job, "path": f"organizations/{tenant.organization_id}/reports/{uuid.uuid4()}.zip"}
        ).scalar_one()
        # The stream tables (0021_streams): a stream, its file, its run, a row key and an exception link.
        stream = conn.execute(
            text("INSERT INTO streams (organization_id, name, left_file_type, right_file_type, left_mapping,"
                 " right_mapping, rules, currency, owner_id, created_by)"
                 " VALUES (:org, 'stream', 'bank', 'switch', '{}', '{}', '[]', 'NGN', :user, :user) RETURNING id"),
            params).scalar_one()
        stream_params = {**params, "stream": stream, "file": file, "job": job, "exc": exception}
        conn.execute(text("INSERT INTO stream_files (organization_id, stream_id, file_id, side, checksum, added_by)"
                          " VALUES (:org, :stream, :file, 'left', 'c', :user)"), stream_params)
        conn.execute(text("INSERT INTO stream_runs (organization_id, stream_id, run_number, job_id, created_by)"
                          " VALUES (:org, :stream, 1, :job, :user)"), stream_params)
        conn.execute(text("INSERT INTO stream_rows (organization_id, stream_id, side, fingerprint, occurrence, seq,"
                          " file_id, row_number, run_number) VALUES (:org, :stream, 'left', 'f', 0, 1, :file, 1, 1)"),
                     stream_params)
        conn.execute(text("INSERT INTO stream_exceptions (organization_id, stream_id, exception_id, left_seq,"
                          " first_run) VALUES (:org, :stream, :exc, 1, 1)"), stream_params)
        # Its schedule and a decided slot (0025_stream_schedules).
        schedule = conn.execute(text(
            "INSERT INTO stream_schedules (organization_id, stream_id, cron, expected_left, expected_right,"
            " grace_minutes, effective_from, created_by, updated_by) VALUES (:org, :stream, '0 6 * * *', 1, 1, 60,"
            " now(), :user, :user) RETURNING id"), stream_params).scalar_one()
        conn.execute(text("INSERT INTO stream_schedule_slots (organization_id, schedule_id, stream_id, slot, outcome)"
                          " VALUES (:org, :schedule, :stream, '2026-03-02 05:00', 'expected_file_missing')"),
                     {**stream_params, "schedule": schedule})
        # A file's normalized versions and a job's link recording the version it read (0027_file_versions).
        conn.execute(text("INSERT INTO normalized_files (file_id, organization_id, storage_path, version, mapping,"
                          " created_by) VALUES (:file, :org, 'v1', 1, '{}', :user)"), stream_params)
        version = conn.execute(
            text("INSERT INTO normalized_files (file_id, organization_id, storage_path, version, mapping, created_by)"
                 " VALUES (:file, :org, 'v2', 2, '{}', :user) RETURNING id"), stream_params).scalar_one()
        conn.execute(text("INSERT INTO reconciliation_job_files (job_id, file_id, organization_id, side, file_version)"
                          " VALUES (:job, :file, :org, 'left', 1)"), stream_params)
        # A closed period of the stream (0024_period_close): its snapshot, an item, a run and an adjustment.
        approval = conn.execute(text(
            "INSERT INTO approvals (organization_id, type, status, title, description, requested_by, metadata)"
            " VALUES (:org, 'period_close', 'approved', 't', 'd', :user, '{}') RETURNING id"), params).scalar_one()
        period_params = {**stream_params, "approval": approval}
        conn.execute(text("INSERT INTO stream_periods (organization_id, stream_id, period_key, granularity, status,"
                          " timezone, figures, closed_at, closed_by, close_approved_by, close_approval_id)"
                          " VALUES (:org, :stream, '2025-12-31', 'day', 'reopened', 'Africa/Lagos', '{}', now(),"
                          " :user, :user, :approval)"), period_params)
        conn.execute(text("INSERT INTO stream_period_items (organization_id, stream_id, period_key, exception_id,"
                          " carried, status_at_close) VALUES (:org, :stream, '2025-12-31', :exc, false, 'resolved')"),
                     period_params)
        conn.execute(text("INSERT INTO stream_period_runs (organization_id, stream_id, period_key, run_number,"
                          " job_id) VALUES (:org, :stream, '2025-12-31', 1, :job)"), period_params)
        conn.execute(text("INSERT INTO stream_period_adjustments (id, organization_id, stream_id, period_key,"
                          " approval_id, action, exception_ids, reason, requested_by, approved_by, applied_at)"
                          " VALUES (gen_random_uuid(), :org, :stream, '2025-12-31', :approval, 'reopen',"
                          " ARRAY[CAST(:exc AS uuid)], 'r', :user, :user, now())"), period_params)
        # A person's data export (0028_data_exports).
        export = conn.execute(text(
            "INSERT INTO data_exports (organization_id, scope, subject_user_id, requested_by, status, storage_path)"
            " VALUES (:org, 'user', :user, :user, 'pending', :path) RETURNING id"),
            {**params, "path": f"organizations/{tenant.organization_id}/exports/{uuid.uuid4()}.zip"}).scalar_one()
        # A person's audit key (0031_data_erasure).
        subject_key = conn.execute(text(
            "INSERT INTO subject_keys (id, organization_id, subject_id, wrapped_key)"
            " VALUES (gen_random_uuid(), :org, :user, 'v1:k:wrapped') RETURNING id"), params).scalar_one()
    return {
        "reconciliation_jobs": job, "reconciliation_files": file, "exceptions": exception,
        "exception_comments": comment, "users": tenant.admin_user_id, "reports": report,
        "organizations": tenant.organization_id, "streams": stream, "normalized_files": version,
        "data_exports": export, "subject_keys": subject_key,
    }


@pytest.fixture(scope="module")
def two_tenants(app_engine: Engine) -> tuple[Tenant, Tenant, dict[str, uuid.UUID], dict[str, uuid.UUID]]:
    a, b = create_tenant(app_engine), create_tenant(app_engine)
    return a, b, _seed(app_engine, a), _seed(app_engine, b)


def test_every_table_holding_organization_id_has_rls_enabled_and_forced(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        tables = set(conn.execute(text(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public'"
            " AND column_name = 'organization_id'")).scalars()) | {"organizations"}
        state = {
            r.relname: r for r in conn.execute(text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
                " (SELECT count(*) FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = c.relname"
                "   AND p.qual LIKE '%app.current_org_id%' AND p.with_check LIKE '%app.current_org_id%') AS policies"
                " FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')"))
        }
    assert len(tables) >= 20
    for table in sorted(tables):
        assert state[table].relrowsecurity, f"{table}: RLS not enabled"
        assert state[table].relforcerowsecurity, f"{table}: RLS not forced"
        assert state[table].policies >= 1, f"{table}: no tenant policy in USING and WITH CHECK"


def test_app_role_cannot_bypass(app_engine: Engine, owner_engine: Engine, pg_database: PgDatabase) -> None:
    with app_engine.connect() as conn:
        row = conn.execute(text(
            "SELECT current_user, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles"
            " WHERE rolname = current_user")).one()
        owned = conn.execute(text(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = 'reckai_app')"
        )).scalar_one()
        functions_owned = conn.execute(text(
            "SELECT count(*) FROM pg_proc WHERE proowner = (SELECT oid FROM pg_roles WHERE rolname = 'reckai_app')"
        )).scalar_one()
    assert row.current_user == "reckai_app"
    assert (row.rolsuper, row.rolbypassrls, row.rolcreaterole, row.rolcreatedb) == (False, False, False, False)
    assert owned == 0 and functions_owned == 0
    assert_safe_app_role(app_engine)  # does not raise
    with pytest.raises(UnsafeDatabaseRole, match="owns"):
        assert_safe_app_role(owner_engine)
    admin = create_engine(pg_database.admin_url, pool_size=1)
    try:
        with pytest.raises(UnsafeDatabaseRole, match="superuser"):
            assert_safe_app_role(admin)
    finally:
        admin.dispose()


def test_app_role_cannot_turn_row_security_off(app_engine: Engine, two_tenants) -> None:  # type: ignore[no-untyped-def]
    with app_engine.connect() as conn, pytest.raises(DBAPIError):
        conn.execute(text("ALTER TABLE reconciliation_jobs DISABLE ROW LEVEL SECURITY"))
    with app_engine.connect() as conn:
        # row_security=off makes a query that a policy would filter fail rather than see everything.
        conn.execute(text("SET LOCAL row_security = off"))
        with pytest.raises(DBAPIError, match="row-level security"):
            conn.execute(text("SELECT count(*) FROM reconciliation_jobs")).scalar_one()


TABLES_UNDER_TEST = ("reconciliation_jobs", "reconciliation_files", "exceptions", "exception_comments",
                     "users", "organizations", "reports", "streams", "normalized_files", "data_exports")
# Tables of a stream without an `id` of their own: walked by their stream_id.
STREAM_TABLES = ("stream_files", "stream_runs", "stream_rows", "stream_exceptions", "stream_schedules",
                 "stream_schedule_slots", "stream_periods", "stream_period_items", "stream_period_runs",
                 "stream_period_adjustments")


def test_org_a_cannot_read_destroy_or_plant_org_b_subject_keys(app_engine: Engine, two_tenants) -> None:  # type: ignore[no-untyped-def]
    """subject_keys (0031_data_erasure): the app role may SELECT, INSERT and DELETE, never UPDATE,
    and only its own organization's keys."""
    a, b, rows_a, rows_b = two_tenants
    with app_engine.connect() as conn:
        _as_tenant(conn, a.organization_id)
        assert conn.execute(text("SELECT count(*) FROM subject_keys WHERE id = :id"),
                            {"id": rows_a["subject_keys"]}).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM subject_keys WHERE id = :id"),
                            {"id": rows_b["subject_keys"]}).scalar_one() == 0
        assert conn.execute(text("DELETE FROM subject_keys WHERE id = :id"),
                            {"id": rows_b["subject_keys"]}).rowcount == 0
        conn.commit()
    with app_engine.connect() as conn, pytest.raises(ProgrammingError, match="row-level security"):
        _as_tenant(conn, a.organization_id)
        conn.execute(text("INSERT INTO subject_keys (id, organization_id, subject_id, wrapped_key)"
                          " VALUES (gen_random_uuid(), :org, :user, 'v1:k:planted')"),
                     {"org": b.organization_id, "user": b.admin_user_id})
    with app_engine.connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
        _as_tenant(conn, a.organization_id)
        conn.execute(text("UPDATE subject_keys SET wrapped_key = 'x' WHERE id = :id"), {"id": rows_a["subject_keys"]})
    with app_engine.connect() as conn:
        _as_tenant(conn, b.organization_id)
        assert conn.execute(text("SELECT wrapped_key FROM subject_keys WHERE id = :id"),
                            {"id": rows_b["subject_keys"]}).scalar_one() == "v1:k:wrapped"


@pytest.mark.parametrize("table", TABLES_UNDER_TEST)
def test_org_a_cannot_read_or_change_org_b_rows(app_engine: Engine, two_tenants, table: str) -> None:  # type: ignore[no-untyped-def]
    a, b, rows_a, rows_b = two_tenants
    with app_engine.connect() as conn:
        _as_tenant(conn, a.organization_id)
        visible = set(conn.execute(text(f"SELECT id FROM {table}")).scalars())
        assert rows_a[table] in visible
        assert rows_b[table] not in visible
        assert conn.execute(text(f"SELECT count(*) FROM {table} WHERE id = :id"), {"id": rows_b[table]}).scalar_one() == 0
        column = "name" if table in ("reconciliation_jobs", "reconciliation_files", "users", "organizations",
                                     "streams") else (
            "description" if table == "exceptions" else "error_message" if table in ("reports", "data_exports") else
            "storage_path" if table == "normalized_files" else "content")
        updated = conn.execute(text(f"UPDATE {table} SET {column} = 'hijacked' WHERE id = :id"),
                               {"id": rows_b[table]})
        assert updated.rowcount == 0
        if table not in ("users", "organizations", "data_exports"):  # the app role deletes none of these
            deleted = conn.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": rows_b[table]})
            assert deleted.rowcount == 0
        conn.commit()
    with app_engine.connect() as conn:
        _as_tenant(conn, b.organization_id)
        assert conn.execute(text(f"SELECT count(*) FROM {table} WHERE id = :id"), {"id": rows_b[table]}).scalar_one() == 1
        if table in ("reconciliation_jobs", "users", "organizations", "streams"):
            assert conn.execute(text(f"SELECT name FROM {table} WHERE id = :id"), {"id": rows_b[table]}).scalar_one() != "hijacked"


@pytest.mark.parametrize("table", STREAM_TABLES)
def test_org_a_cannot_read_or_change_org_b_stream_rows(app_engine: Engine, two_tenants, table: str) -> None:  # type: ignore[no-untyped-def]
    a, b, rows_a, rows_b = two_tenants
    with app_engine.connect() as conn:
        _as_tenant(conn, a.organization_id)
        visible = set(conn.execute(text(f"SELECT stream_id FROM {table}")).scalars())
        assert rows_a["streams"] in visible and rows_b["streams"] not in visible
        if table in ("stream_files", "stream_runs", "stream_schedules", "stream_periods"):  # the app may UPDATE these
            column = {"stream_files": "job_id", "stream_runs": "carry_key", "stream_schedules": "cron",
                      "stream_periods": "reopened_at"}[table]
            value = "'* * * * *'" if table == "stream_schedules" else "NULL"
            updated = conn.execute(text(f"UPDATE {table} SET {column} = {value} WHERE stream_id = :s"),
                                   {"s": rows_b["streams"]})
            assert updated.rowcount == 0  # not B's
        if table in ("stream_schedules", "stream_period_items", "stream_period_runs"):  # and may DELETE these
            assert conn.execute(text(f"DELETE FROM {table} WHERE stream_id = :s"),
                                {"s": rows_b["streams"]}).rowcount == 0
        with pytest.raises(ProgrammingError) as caught:  # a row claiming B is refused by WITH CHECK
            conn.execute(text(_foreign_insert(table)), {"b": b.organization_id, "s": rows_a["streams"],
                                                        "ub": b.admin_user_id})
        assert isinstance(caught.value.orig, psycopg.errors.InsufficientPrivilege)
        conn.rollback()
    with app_engine.connect() as conn:
        _as_tenant(conn, b.organization_id)
        assert rows_b["streams"] in set(conn.execute(text(f"SELECT stream_id FROM {table}")).scalars())
        _as_tenant(conn, None)
        assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0


def _foreign_insert(table: str) -> str:
    """An insert of a row claiming organization B, made as tenant A."""
    return {
        "stream_files": "INSERT INTO stream_files (organization_id, stream_id, file_id, side, checksum, added_by)"
                        " SELECT :b, :s, id, 'left', 'x', :ub FROM reconciliation_files LIMIT 1",
        "stream_runs": "INSERT INTO stream_runs (organization_id, stream_id, run_number, job_id, created_by)"
                       " SELECT :b, :s, 9, id, :ub FROM reconciliation_jobs LIMIT 1",
        "stream_rows": "INSERT INTO stream_rows (organization_id, stream_id, side, fingerprint, occurrence, seq,"
                       " file_id, row_number, run_number) VALUES (:b, :s, 'left', 'g', 0, 9, :s, 1, 1)",
        "stream_exceptions": "INSERT INTO stream_exceptions (organization_id, stream_id, exception_id, left_seq,"
                             " first_run) SELECT :b, :s, gen_random_uuid(), 1, 1",
        "stream_schedules": "INSERT INTO stream_schedules (organization_id, stream_id, cron, expected_left,"
                            " expected_right, grace_minutes, effective_from, created_by, updated_by)"
                            " VALUES (:b, :s, '0 6 * * *', 1, 1, 0, now(), :ub, :ub)",
        "stream_schedule_slots": "INSERT INTO stream_schedule_slots (organization_id, schedule_id, stream_id, slot,"
                                 " outcome) SELECT :b, id, :s, '2026-03-03 05:00', 'expected_file_missing'"
                                 " FROM stream_schedules LIMIT 1",
        "stream_periods": "INSERT INTO stream_periods (organization_id, stream_id, period_key, granularity, status,"
                          " timezone, figures, closed_at, closed_by, close_approved_by, close_approval_id)"
                          " SELECT :b, :s, '2026-01-01', 'day', 'closed', 'UTC', '{}', now(), :ub, :ub, id"
                          " FROM approvals LIMIT 1",
        "stream_period_items": "INSERT INTO stream_period_items (organization_id, stream_id, period_key,"
                               " exception_id, carried, status_at_close)"
                               " SELECT :b, :s, '2025-12-31', id, true, 'open' FROM exceptions LIMIT 1",
        "stream_period_runs": "INSERT INTO stream_period_runs (organization_id, stream_id, period_key, run_number,"
                              " job_id) SELECT :b, :s, '2025-12-31', 7, id FROM reconciliation_jobs LIMIT 1",
        "stream_period_adjustments": "INSERT INTO stream_period_adjustments (id, organization_id, stream_id,"
                                     " period_key, approval_id, action, exception_ids, reason, requested_by,"
                                     " approved_by, applied_at) SELECT gen_random_uuid(), :b, :s, '2025-12-31',"
                                     " gen_random_uuid(), 'reopen', '{}', 'r', :ub, :ub, now()",
    }[table]


def test_org_a_cannot_read_or_change_org_b_file_versions_or_job_links(app_engine: Engine, two_tenants) -> None:  # type: ignore[no-untyped-def]
    """The versions of a file and the version a job recorded (0027_file_versions) are the tenant's:
    another tenant sees none, and its updates of the recorded version touch nothing."""
    a, b, rows_a, rows_b = two_tenants
    with app_engine.connect() as conn:
        _as_tenant(conn, a.organization_id)
        versions = conn.execute(text("SELECT file_id, version FROM normalized_files ORDER BY version")).all()
        assert versions == [(rows_a["reconciliation_files"], 1), (rows_a["reconciliation_files"], 2)]
        links = conn.execute(text("SELECT job_id, file_version FROM reconciliation_job_files")).all()
        assert links == [(rows_a["reconciliation_jobs"], 1)]
        updated = conn.execute(text("UPDATE reconciliation_job_files SET file_version = 2 WHERE job_id = :job"),
                               {"job": rows_b["reconciliation_jobs"]})
        assert updated.rowcount == 0
        conn.commit()
    with app_engine.connect() as conn:
        _as_tenant(conn, b.organization_id)
        assert conn.execute(text("SELECT file_version FROM reconciliation_job_files WHERE job_id = :job"),
                            {"job": rows_b["reconciliation_jobs"]}).scalar_one() == 1


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO reconciliation_jobs (organization_id, name, status, created_by) VALUES (:b, 'x', 'pending', :ub)",
        ("INSERT INTO users (organization_id, email, email_index, password_hash, name, role)"
         " VALUES (:b, 'x@y.z', 'i', 'h', 'x', 'admin')"),
        # Another tenant's data key (0034_pii_encryption): refused before its primary key is even checked.
        ("INSERT INTO organization_data_keys (organization_id, key_id, wrapped_key, master_key_id)"
         " VALUES (:b, 'dk-x', '\\x00', 'm')"),
        "INSERT INTO outbox_messages (organization_id, queue, actor_name, payload) VALUES (:b, 'low', 'a', '{}')",
        # Moving one's own row into another tenant is refused by WITH CHECK.
        "UPDATE reconciliation_jobs SET organization_id = :b WHERE organization_id = :a",
        # A normalized version claiming another tenant (0027_file_versions).
        ("INSERT INTO normalized_files (file_id, organization_id, storage_path, version)"
         " SELECT id, :b, 'x', 9 FROM reconciliation_files LIMIT 1"),
    ],
)
def test_org_a_cannot_write_rows_for_org_b(app_engine: Engine, two_tenants, statement: str) -> None:  # type: ignore[no-untyped-def]
    a, b, _, _ = two_tenants
    with app_engine.connect() as conn:
        _as_tenant(conn, a.organization_id)
        with pytest.raises(ProgrammingError) as caught:
            conn.execute(text(statement), {"a": a.organization_id, "b": b.organization_id, "ub": b.admin_user_id})
        assert isinstance(caught.value.orig, psycopg.errors.InsufficientPrivilege)
        assert "row-level security" in str(caught.value.orig)


def test_without_a_tenant_no_tenant_row_is_visible(app_engine: Engine, two_tenants) -> None:  # type: ignore[no-untyped-def]
    with app_engine.connect() as conn:
        for table in TABLES_UNDER_TEST:
            assert conn.execute(text(f"SELECT count(*) FROM {table} WHERE organization_id IS NOT NULL"
                                     if table != "organizations" else "SELECT count(*) FROM organizations")
                                ).scalar_one() == 0, table


def test_pooled_connection_reused_after_commit_sees_no_tenant_rows(pg_database: PgDatabase, two_tenants) -> None:  # type: ignore[no-untyped-def]
    a = two_tenants[0]
    engine = create_engine(pg_database.app_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            _as_tenant(conn, a.organization_id)
            assert conn.execute(text("SELECT count(*) FROM reconciliation_jobs")).scalar_one() >= 1
            conn.commit()
            # Same connection, next transaction: the setting was transaction-local.
            assert conn.execute(text("SELECT count(*) FROM reconciliation_jobs")).scalar_one() == 0
            conn.commit()
        with engine.connect() as conn:  # back from the pool
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid
            assert conn.execute(text("SELECT current_setting('app.current_org_id', true)")).scalar_one() in ("", None)
            for table in TABLES_UNDER_TEST:
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0, table
    finally:
        engine.dispose()


ROLLUP_INSERTS = {
    "exception_backlog_rollup": "INSERT INTO exception_backlog_rollup (organization_id, severity, item_count)"
                                " VALUES (:org, 'low', 1)",
    "exception_type_rollup": "INSERT INTO exception_type_rollup (organization_id, type, item_count)"
                             " VALUES (:org, 'duplicate', 1)",
    "exception_due_rollup": "INSERT INTO exception_due_rollup (organization_id, due_hour, item_count)"
                            " VALUES (:org, '2030-01-01 00:00', 1)",
}


@pytest.mark.parametrize("table", sorted(ROLLUP_INSERTS))
def test_the_dashboard_rollups_are_isolated(app_engine: Engine, two_tenants, table: str) -> None:  # type: ignore[no-untyped-def]
    """The rollups (migration 0019) hold no id column: they are walked by organization. Each
    tenant's seeded exception put a row in both, through the triggers, as that tenant."""
    a, b, _, _ = two_tenants
    with app_engine.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0  # no tenant: nothing
        _as_tenant(conn, a.organization_id)
        assert set(conn.execute(text(f"SELECT DISTINCT organization_id FROM {table}")).scalars()) == {a.organization_id}
        deleted = conn.execute(text(f"DELETE FROM {table} WHERE organization_id = :b"), {"b": b.organization_id})
        assert deleted.rowcount == 0
        with pytest.raises(ProgrammingError) as caught:
            conn.execute(text(ROLLUP_INSERTS[table]), {"org": b.organization_id})
        assert "row-level security" in str(caught.value.orig)
        conn.rollback()
    with app_engine.connect() as conn:
        _as_tenant(conn, b.organization_id)
        assert conn.execute(text(f"SELECT sum(item_count) FROM {table}")).scalar_one() == 1


@pytest.mark.parametrize("table", ["users", "organizations"])
def test_app_role_cannot_delete_users_or_organizations(app_engine: Engine, two_tenants, table: str) -> None:  # type: ignore[no-untyped-def]
    a, _, rows_a, _ = two_tenants
    with app_engine.connect() as conn:
        _as_tenant(conn, a.organization_id)
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": rows_a[table]})


def test_app_role_privileges_are_narrow(app_engine: Engine) -> None:
    with app_engine.connect() as conn:
        def has(table: str, privilege: str) -> bool:
            return bool(conn.execute(text("SELECT has_table_privilege('reckai_app', :t, :p)"),
                                     {"t": table, "p": privilege}).scalar_one())

        tables = conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )).scalars().all()
        for table in tables:
            assert not has(table, "TRUNCATE"), table
            assert not has(table, "TRIGGER"), table
            assert not has(table, "REFERENCES"), table
        assert not has("audit_logs", "UPDATE") and not has("audit_logs", "DELETE")
        assert has("audit_logs", "INSERT") and has("audit_logs", "SELECT")
        assert not has("users", "DELETE") and not has("organizations", "DELETE")
        assert not has("organizations", "INSERT")
        assert not has("data_exports", "DELETE") and has("data_exports", "UPDATE")
        assert not has("approvals", "DELETE")  # retention deletes through retention_delete_approval (0033)
        assert not has("alembic_version", "SELECT")


# --- SECURITY DEFINER functions ----------------------------------------------------------------

EXPECTED_FUNCTIONS = {
    "auth_find_login_candidate_by_index", "auth_find_organization_data_key", "auth_find_session_by_token_hash",
    "auth_find_user_token", "signup_find_organization_by_code", "signup_create_organization_encrypted",
    "outbox_claim_due", "outbox_mark_done", "outbox_mark_failed", "sweep_expired_sessions", "audit_chain_head_hashes",
    "pii_data_keys_to_rewrap",
}


def test_security_definer_functions_are_the_documented_ones(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        functions = conn.execute(text(
            "SELECT p.proname, r.rolname AS owner, p.prosecdef, p.proconfig,"
            " has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec,"
            " has_function_privilege('reckai_app', p.oid, 'EXECUTE') AS app_exec,"
            " p.prorettype = 'trigger'::regtype AS is_trigger"
            " FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner"
            " WHERE p.pronamespace = 'public'::regnamespace")).all()
    documented = {
        name for doc in DOCS.rglob("*.md") for name in re.findall(r"`([a-z_]+)\(", doc.read_text())
    }
    definers = {f.proname for f in functions if f.prosecdef}
    owned_by_system = {f.proname for f in functions if f.owner == "reckai_system"}
    assert EXPECTED_FUNCTIONS <= owned_by_system
    # Only reckai_system owns SECURITY DEFINER functions, and it owns nothing else.
    assert definers == owned_by_system
    assert owned_by_system <= documented, owned_by_system - documented
    for function in functions:
        if function.owner == "reckai_system":
            assert function.prosecdef
            assert any(c.startswith("search_path=") for c in function.proconfig or []), function.proname
            assert not function.public_exec, function.proname
            # Trigger functions fire without EXECUTE; callable ones are granted to the app only.
            assert function.app_exec or function.is_trigger, function.proname
    with owner_engine.connect() as conn:
        relations = conn.execute(text(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = 'reckai_system')"
        )).scalar_one()
        login, bypass = conn.execute(text(
            "SELECT rolcanlogin, rolbypassrls FROM pg_roles WHERE rolname = 'reckai_system'")).one()
    assert relations == 0 and not login and bypass


def test_signup_and_login_lookup_functions(app_engine: Engine) -> None:
    code = f"acme-{uuid.uuid4().hex[:6]}"
    tenant = create_tenant(app_engine, code=code, admin_email="Ada@Example.com")
    keys = development_keys()
    with app_engine.connect() as conn:
        assert conn.execute(text("SELECT signup_find_organization_by_code(:c)"), {"c": code}).scalar_one() == (
            tenant.organization_id)
        assert conn.execute(text("SELECT signup_find_organization_by_code('no-such-org')")).scalar_one() is None
        # The wrapped data key by organization code (pre-tenant), for the blind index of the address typed.
        wrapped = conn.execute(text("SELECT * FROM auth_find_organization_data_key(:c)"), {"c": code}).one()
        assert wrapped.organization_id == tenant.organization_id and wrapped.master_key_id == "dev-1"
        assert conn.execute(text("SELECT count(*) FROM auth_find_organization_data_key('other-org')")).scalar_one() == 0
        key = keys.organization_key(WrappedDataKey(wrapped.organization_id, wrapped.key_id,
                                                   bytes(wrapped.wrapped_key), wrapped.master_key_id))
        found = conn.execute(text("SELECT * FROM auth_find_login_candidate_by_index(:c, :i)"),
                             {"c": code, "i": key.blind_index(" ada@EXAMPLE.com")}).all()
        assert [(r.user_id, r.organization_id, r.role, r.organization_is_active) for r in found] == [
            (tenant.admin_user_id, tenant.organization_id, "admin", True)]
        # Stored encrypted: the address is nowhere in the row, and decrypts as typed at sign-up.
        assert "ada" not in found[0].email.lower() and key.decrypt("email", found[0].email) == "Ada@Example.com"
        assert conn.execute(text("SELECT count(*) FROM auth_find_login_candidate_by_index('other-org', :i)"),
                            {"i": key.blind_index("ada@example.com")}).scalar_one() == 0
        # Sign-up wrote the quota row, the password history and organizations.created_by.
        _as_tenant(conn, tenant.organization_id)
        assert conn.execute(text("SELECT max_users FROM organization_quotas")).scalar_one() == 10
        assert conn.execute(text("SELECT count(*) FROM password_history")).scalar_one() == 1
        assert conn.execute(text("SELECT created_by FROM organizations")).scalar_one() == tenant.admin_user_id
        conn.rollback()
    with pytest.raises(DuplicateEntity) as caught:
        create_tenant(app_engine, code=code)
    assert (caught.value.entity, caught.value.field) == ("organization", "code")


def test_org_a_cannot_read_or_change_org_b_data_key(app_engine: Engine, two_tenants) -> None:  # type: ignore[no-untyped-def]
    """organization_data_keys (0034_pii_encryption): a tenant sees, re-wraps and deletes its own key only;
    the rotation's listing function gives ids, nothing of the keys."""
    a, b, _, _ = two_tenants
    with app_engine.connect() as conn:
        _as_tenant(conn, a.organization_id)
        assert set(conn.execute(text("SELECT organization_id FROM organization_data_keys")).scalars()) == {
            a.organization_id}
        updated = conn.execute(text("UPDATE organization_data_keys SET master_key_id = 'hijacked'"
                                    " WHERE organization_id = :b"), {"b": b.organization_id})
        assert updated.rowcount == 0
        # Offboarding shreds the tenant's own key: another tenant's is out of reach.
        assert conn.execute(text("DELETE FROM organization_data_keys WHERE organization_id = :b"),
                            {"b": b.organization_id}).rowcount == 0
        assert conn.execute(text("DELETE FROM organization_data_keys")).rowcount == 1  # a's own
        conn.rollback()
        _as_tenant(conn, None)
        assert conn.execute(text("SELECT count(*) FROM organization_data_keys")).scalar_one() == 0
        stale = conn.execute(text("SELECT * FROM pii_data_keys_to_rewrap('another-master', 1000)")).all()
        assert {a.organization_id, b.organization_id} <= {row[0] for row in stale}
        assert all(len(row) == 1 for row in stale)
        assert conn.execute(text("SELECT count(*) FROM pii_data_keys_to_rewrap('dev-1', 1000)")).scalar_one() == 0
        conn.rollback()
    with app_engine.connect() as conn:
        _as_tenant(conn, b.organization_id)
        assert conn.execute(text("SELECT master_key_id FROM organization_data_keys")).scalar_one() == "dev-1"


@pytest.fixture
def own_app_engine(pg_fresh_database: PgDatabase) -> Iterator[Engine]:
    """reckai_app on a database of the test's own: the session sweeper and the outbox relay act for
    every tenant, so on the shared database they would meet (and change) what other tests left."""
    engine = create_engine(pg_fresh_database.app_url, pool_size=2, max_overflow=2)
    yield engine
    engine.dispose()


def test_session_lookup_and_sweeper_functions(own_app_engine: Engine) -> None:
    a, b = create_tenant(own_app_engine), create_tenant(own_app_engine)
    for tenant, suffix in ((a, "a"), (b, "b")):
        with own_app_engine.begin() as conn:
            _as_tenant(conn, tenant.organization_id)
            conn.execute(text(
                "INSERT INTO user_sessions (organization_id, user_id, token_hash, expires_at) VALUES"
                " (:org, :user, :live, now() + interval '1 day'), (:org, :user, :dead, now() - interval '1 minute')"),
                {"org": tenant.organization_id, "user": tenant.admin_user_id,
                 "live": f"live-{suffix}-{tenant.code}", "dead": f"dead-{suffix}-{tenant.code}"})
    with own_app_engine.begin() as conn:
        session = conn.execute(text("SELECT * FROM auth_find_session_by_token_hash(:h)"),
                               {"h": f"live-b-{b.code}"}).one()
        assert (session.organization_id, session.user_id) == (b.organization_id, b.admin_user_id)
        swept = conn.execute(text("SELECT sweep_expired_sessions()")).scalar_one()
        assert swept == 2  # the two expired sessions above, nothing else exists
        for tenant, suffix in ((a, "a"), (b, "b")):
            assert conn.execute(text("SELECT count(*) FROM auth_find_session_by_token_hash(:h)"),
                                {"h": f"dead-{suffix}-{tenant.code}"}).scalar_one() == 0
            assert conn.execute(text("SELECT count(*) FROM auth_find_session_by_token_hash(:h)"),
                                {"h": f"live-{suffix}-{tenant.code}"}).scalar_one() == 1


def test_user_token_lookup_function(app_engine: Engine) -> None:
    tenant = create_tenant(app_engine)
    token_hash = f"reset-{tenant.code}"
    with app_engine.begin() as conn:
        _as_tenant(conn, tenant.organization_id)
        conn.execute(text("INSERT INTO user_tokens (organization_id, user_id, purpose, token_hash, expires_at)"
                          " VALUES (:org, :user, 'password_reset', :h, now() + interval '1 hour')"),
                     {"org": tenant.organization_id, "user": tenant.admin_user_id, "h": token_hash})
    with app_engine.connect() as conn:
        found = conn.execute(text("SELECT * FROM auth_find_user_token('password_reset', :h)"), {"h": token_hash}).one()
        assert (found.user_id, found.organization_id) == (tenant.admin_user_id, tenant.organization_id)
        # The purpose is part of the key: a reset token is not an invitation.
        assert conn.execute(text("SELECT count(*) FROM auth_find_user_token('invitation', :h)"),
                            {"h": token_hash}).scalar_one() == 0


def test_outbox_functions_claim_and_finish_messages(own_app_engine: Engine) -> None:
    tenant = create_tenant(own_app_engine)
    with own_app_engine.begin() as conn:
        _as_tenant(conn, tenant.organization_id)
        ids = conn.execute(text(
            "INSERT INTO outbox_messages (organization_id, queue, actor_name, payload, max_attempts) VALUES"
            " (:org, 'critical', 'test_actor', '{\"n\": 1}', 2), (:org, 'low', 'test_actor', '{\"n\": 2}', 2)"
            " RETURNING id"), {"org": tenant.organization_id}).scalars().all()
    with own_app_engine.begin() as conn:
        # The relay runs without a tenant: it cannot see the rows directly...
        assert conn.execute(text("SELECT count(*) FROM outbox_messages WHERE id = ANY(:ids)"),
                            {"ids": ids}).scalar_one() == 0
        # ...only through the function, which claims them once.
        claimed = conn.execute(text("SELECT * FROM outbox_claim_due(1000)")).all()
        assert sorted(m.id for m in claimed) == sorted(ids)  # and nothing else: the database is the test's own
        assert all(m.status == "dispatched" and m.attempts == 1 for m in claimed)
        again = conn.execute(text("SELECT id FROM outbox_claim_due(1000)")).scalars().all()
        assert again == []
        assert conn.execute(text("SELECT outbox_mark_done(:id)"), {"id": ids[0]}).scalar_one() is True
        assert conn.execute(text("SELECT outbox_mark_done(:id)"), {"id": ids[0]}).scalar_one() is False
        assert conn.execute(text("SELECT outbox_mark_failed(:id, 'boom', 0)"), {"id": ids[1]}).scalar_one() == "pending"
        retried = conn.execute(text("SELECT * FROM outbox_claim_due(1000)")).all()
        assert [(m.id, m.attempts) for m in retried] == [(ids[1], 2)]
        assert conn.execute(text("SELECT outbox_mark_failed(:id, 'boom again', 0)"), {"id": ids[1]}).scalar_one() == (
            "failed")
    with own_app_engine.begin() as conn:
        _as_tenant(conn, tenant.organization_id)
        rows = dict(conn.execute(text("SELECT id, status FROM outbox_messages WHERE id = ANY(:ids)"),
                                 {"ids": ids}).all())
        assert rows == {ids[0]: "done", ids[1]: "failed"}


def test_the_head_hashes_function_gives_every_chain_head_and_no_row_content(app_engine: Engine) -> None:
    """audit_chain_head_hashes() (0020; the head checkpoints read it without a tenant): chain key,
    last sequence and hash of every chain, nothing else, while audit_chain_heads itself stays
    invisible to a connection without a tenant."""
    from reckai.adapters.postgres.audit import PostgresAuditLog
    from reckai.domain.audit.chain import AuditSigner
    from reckai.domain.audit.events import AuditEvent

    audit_log = PostgresAuditLog(app_engine, AuditSigner("rls", "rls-test-key-000000000000000000000000"))
    tenants = [create_tenant(app_engine).organization_id for _ in range(2)]
    written = {org: audit_log.record_independently(AuditEvent(action="test.rls", organization_id=org))
               for org in tenants}
    with app_engine.begin() as conn:
        result = conn.execute(text("SELECT * FROM audit_chain_head_hashes()"))
        assert list(result.keys()) == ["chain_key", "last_sequence", "last_hash"]
        heads = result.all()
        direct = conn.execute(text("SELECT count(*) FROM audit_chain_heads WHERE organization_id IS NOT NULL")).scalar_one()
    assert direct == 0
    by_chain = {h.chain_key: (h.last_sequence, h.last_hash) for h in heads}
    for org, record in written.items():
        assert by_chain[org] == (record.sequence_number, record.hash)
