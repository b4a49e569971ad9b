"""Retention (issue 17 item 7) on PostgreSQL as the runtime role: the repository contract (row-level
security, the SECURITY DEFINER `retention_organizations`), the dry run against the real run over
the filesystem storage (rows, objects, audit rows), and the `reckai retention run` command."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reckai.adapters.postgres.unit_of_work import PostgresDatabase
from reckai.bootstrap import Container, bootstrap
from reckai.settings import DatabaseSettings, MailerSettings, Mode, RedisSettings, Settings, StorageSettings
from tests.contracts import retention as contract
from tests.fixtures.postgres import create_tenant

pytestmark = pytest.mark.integration


@pytest.fixture
def tenants(app_engine: Any) -> contract.Tenants:
    a, b = create_tenant(app_engine), create_tenant(app_engine)
    return PostgresDatabase(app_engine), (a.organization_id, a.admin_user_id), (b.organization_id, b.admin_user_id)


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
def test_contract(tenants: contract.Tenants, check: Callable[[contract.Tenants], None]) -> None:
    check(tenants)


@pytest.fixture
def container(pg_database: Any, redis_test_url: str, tmp_path: Path) -> Iterator[Container]:
    settings = Settings(
        mode=Mode.EMBEDDED,
        database=DatabaseSettings(url=pg_database.app_url, pool_size=4),
        redis=RedisSettings(url=redis_test_url),
        storage=StorageSettings(backend="filesystem", filesystem_root=tmp_path / "storage"),
        mailer=MailerSettings(backend="file", outbox_dir=tmp_path / "mail"),
    )
    built = bootstrap(settings)
    try:
        yield built
    finally:
        built.close()


def test_dry_run_reports_and_the_real_run_deletes_rows_objects_and_audits_on_postgres(container: Container) -> None:
    contract.check_dry_run_reports_and_the_real_run_deletes_rows_objects_and_audits(container)


def test_jobs_past_the_results_period_go_with_their_exceptions_and_outputs_on_postgres(
        container: Container) -> None:
    contract.check_jobs_past_the_results_period_go_with_their_exceptions_and_outputs(container)


def test_the_cli_dry_run_lists_and_the_real_run_deletes(container: Container) -> None:
    """`reckai retention run --dry-run` then `reckai retention run`, through the command's own function."""
    import argparse
    import io

    from reckai.application.retention import RetentionServices
    from reckai.entrypoints.cli.retention import run_command
    from tests.contracts.files_repositories import new_file

    org = create_tenant_via(container)
    with container.database.unit_of_work(org.organization_id) as uow:
        old = uow.files.add(dataclasses.replace(new_file(org.organization_id, org.admin_user_id),
                                                uploaded_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=800)))
        uow.commit()
    container.storage.put(old.storage_path, [b"old bytes"])
    services: RetentionServices = container.retention
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(dry_run=True, org=org.code, batch_size=100)
    assert run_command(services, container, args, out, err) == 0
    assert f"WOULD DELETE file {old.id}" in out.getvalue() and "DRY RUN organization" in out.getvalue()
    assert container.storage.exists(old.storage_path)
    out = io.StringIO()
    assert run_command(services, container, argparse.Namespace(dry_run=False, org=org.code, batch_size=100),
                       out, err) == 0
    assert f"DELETE file {old.id}" in out.getvalue() and "1 files deleted" in out.getvalue()
    assert not container.storage.exists(old.storage_path)
    assert run_command(services, container, argparse.Namespace(dry_run=True, org="no-such-org", batch_size=100),
                       io.StringIO(), err) == 2
    assert "no organization with code 'no-such-org'" in err.getvalue()


def create_tenant_via(container: Container) -> Any:
    from reckai.application.context import RequestInfo
    from reckai.application.identity.organizations import onboard_organization
    from tests.support.identity import DEFAULT_PASSWORD

    code = f"cli-{uuid.uuid4().hex[:8]}"
    created = onboard_organization(
        container.identity, name="CLI Bank", code=code, domain=None, subscription_tier="standard",
        admin_email="cli.admin@example.com", admin_name="Cli Admin", admin_password=DEFAULT_PASSWORD,
        request=RequestInfo(), public=False)
    return created


def test_decided_approvals_and_ended_sessions_on_postgres(container: Container) -> None:
    contract.check_decided_approvals_and_ended_sessions_go_in_the_run_audited(container)


def test_approvals_are_deleted_only_through_the_narrow_function(app_engine: Any) -> None:
    """The runtime role cannot DELETE an approval itself; `retention_delete_approval` refuses a
    cutoff less than 365 days ago and deletes nothing of another tenant or without one."""
    import sqlalchemy.exc
    from sqlalchemy import text

    from reckai.domain.approvals.workflow import Approval, ApprovalStatus, ApprovalType

    tenant, other = create_tenant(app_engine), create_tenant(app_engine)
    database = PostgresDatabase(app_engine)
    at = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
    approval = dataclasses.replace(Approval.request(
        organization_id=tenant.organization_id, type=ApprovalType.SYSTEM_SETTING, title="t", description="d",
        metadata={}, requested_by=tenant.admin_user_id, at=at), status=ApprovalStatus.CANCELLED,
        reviewed_by=tenant.admin_user_id, reviewed_at=at)
    with database.unit_of_work(tenant.organization_id) as uow:
        uow.approvals.add(approval)
        uow.commit()

    def as_tenant(conn: Any, org: Any) -> None:
        conn.execute(text("SELECT set_config('app.current_org_id', :o, true)"), {"o": str(org) if org else ""})

    with app_engine.connect() as conn, conn.begin():
        as_tenant(conn, tenant.organization_id)
        with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied"):
            conn.execute(text("DELETE FROM approvals WHERE id = :id"), {"id": approval.id})
    with app_engine.connect() as conn, conn.begin():
        as_tenant(conn, tenant.organization_id)
        with pytest.raises(sqlalchemy.exc.IntegrityError, match="at least 365 days ago"):
            conn.execute(text("SELECT retention_delete_approval(:id, now()::timestamp - interval '30 days')"),
                         {"id": approval.id})
    for org in (other.organization_id, None):
        with app_engine.connect() as conn, conn.begin():
            as_tenant(conn, org)
            assert conn.execute(text("SELECT retention_delete_approval(:id, TIMESTAMP '2020-01-01')"),
                                {"id": approval.id}).scalar_one() is False
    with app_engine.connect() as conn, conn.begin():
        as_tenant(conn, tenant.organization_id)
        assert conn.execute(text("SELECT retention_delete_approval(:id, TIMESTAMP '2020-01-01')"),
                            {"id": approval.id}).scalar_one() is True
        assert conn.execute(text("SELECT count(*) FROM approvals WHERE id = :id"), {"id": approval.id}).scalar_one() == 0
