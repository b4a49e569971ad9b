"""Retention (issue 17 item 7) in memory: the repository contract, and the use case's dry run
against its real run. The same on PostgreSQL: tests/integration/test_retention_postgres.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reckai.adapters.memory.unit_of_work import MemoryDatabase
from tests.contracts import retention as contract
from tests.contracts.identity_repositories import signup


@pytest.fixture
def tenants() -> contract.Tenants:
    database = MemoryDatabase()
    a, _ = signup(database)
    b, _ = signup(database)
    return database, (a.organization_id, a.admin_user_id), (b.organization_id, b.admin_user_id)


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
def test_contract(tenants: contract.Tenants, check: Callable[[contract.Tenants], None]) -> None:
    check(tenants)


def test_dry_run_then_real_run_in_memory() -> None:
    from reckai.bootstrap import bootstrap_in_memory

    contract.check_dry_run_reports_and_the_real_run_deletes_rows_objects_and_audits(bootstrap_in_memory())


def test_jobs_past_the_results_period_in_memory() -> None:
    from reckai.bootstrap import bootstrap_in_memory

    contract.check_jobs_past_the_results_period_go_with_their_exceptions_and_outputs(bootstrap_in_memory())


def test_a_legal_hold_stops_the_run_for_its_organization_until_its_day_ends() -> None:
    import dataclasses
    import datetime as dt

    from reckai.application.context import RequestInfo
    from reckai.application.identity.organizations import onboard_organization
    from reckai.application.retention import apply_retention
    from reckai.bootstrap import bootstrap_in_memory
    from reckai.domain.retention import LegalHold
    from tests.contracts.files_repositories import new_file
    from tests.support.identity import DEFAULT_PASSWORD

    container = bootstrap_in_memory()
    created = onboard_organization(
        container.identity, name="Held Bank", code="held-bank", domain=None, subscription_tier="standard",
        admin_email="held@example.com", admin_name="Hal Held", admin_password=DEFAULT_PASSWORD,
        request=RequestInfo(), public=False)
    org = created.organization_id
    with container.database.unit_of_work(org) as uow:
        organization = uow.organizations.get(org)
        assert organization is not None
        organization.settings = {**(organization.settings or {}), "retention": {
            "legal_hold": {"until": "2029-06-01", "reason": "litigation 2029/17"}}}
        uow.organizations.update(organization)
        uow.files.add(dataclasses.replace(new_file(org, created.admin_user_id), uploaded_at=contract.OLD))
        uow.commit()
    last_held_moment = dt.datetime(2029, 6, 1, 23, 59, tzinfo=dt.UTC)
    for dry_run in (True, False):
        [held] = apply_retention(container.retention, dry_run=dry_run, organization_id=org, now=last_held_moment)
        assert held.legal_hold == LegalHold(dt.date(2029, 6, 1), "litigation 2029/17")
        assert held.deleted_files == [] and held.kept_files == []
    [after] = apply_retention(container.retention, dry_run=False, organization_id=org,
                              now=last_held_moment + dt.timedelta(minutes=1))
    assert after.legal_hold is None and len(after.deleted_files) == 1


@pytest.mark.parametrize("value, problem", [
    ({"until": "someday", "reason": "x"}, "until must be a date"),
    ({"until": "2030-01-01"}, "reason is required"),
    ({"until": "2030-01-01", "reason": "two\nlines"}, "reason is required"),
    ({"until": "2030-01-01", "reason": "x", "by": "me"}, "unknown keys"),
])
def test_a_legal_hold_setting_is_checked_by_the_registry(value: dict[str, str], problem: str) -> None:
    from reckai.domain.settings_registry import OperatorValues, SettingInvalid, validate_org_value

    with pytest.raises(SettingInvalid) as refused:
        validate_org_value(OperatorValues(), "retention.legal_hold", value)
    assert problem in refused.value.message
    assert validate_org_value(OperatorValues(), "retention.legal_hold", {}) == {}


def test_decided_approvals_and_ended_sessions_in_memory() -> None:
    from reckai.bootstrap import bootstrap_in_memory

    contract.check_decided_approvals_and_ended_sessions_go_in_the_run_audited(bootstrap_in_memory())
