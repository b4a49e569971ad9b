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
