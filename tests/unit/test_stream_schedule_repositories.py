"""The stream schedule repository contract over the in-memory adapter."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reckai.adapters.memory.unit_of_work import MemoryDatabase
from tests.contracts import stream_schedule_repositories as contract
from tests.contracts.identity_repositories import signup
from tests.contracts.stream_repositories import Tenants


@pytest.fixture
def tenants() -> Tenants:
    database = MemoryDatabase()
    a, _ = signup(database)
    b, _ = signup(database)
    return database, (a.organization_id, a.admin_user_id), (b.organization_id, b.admin_user_id)


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
def test_contract(tenants: Tenants, check: Callable[[Tenants], None]) -> None:
    check(tenants)
