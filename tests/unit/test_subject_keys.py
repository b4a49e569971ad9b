"""The subject key repository contract over the in-memory adapter."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reckai.adapters.memory.unit_of_work import MemoryDatabase
from tests.contracts import subject_keys as contract
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
