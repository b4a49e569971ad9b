"""The subject key repository contract over PostgreSQL (row-level security)
as the runtime role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reckai.adapters.postgres.unit_of_work import PostgresDatabase
from tests.contracts import subject_keys as contract
from tests.fixtures.postgres import create_tenant

pytestmark = pytest.mark.integration


@pytest.fixture
def tenants(app_engine: Any) -> contract.Tenants:
    a, b = create_tenant(app_engine), create_tenant(app_engine)
    return PostgresDatabase(app_engine), (a.organization_id, a.admin_user_id), (b.organization_id, b.admin_user_id)


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
def test_contract(tenants: contract.Tenants, check: Callable[[contract.Tenants], None]) -> None:
    check(tenants)
