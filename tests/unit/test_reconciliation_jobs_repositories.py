"""The reconciliation repository contract over the in-memory adapter."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

import reckai.adapters.memory.files
import reckai.adapters.memory.reconciliations  # noqa: F401  registers the repositories
from reckai.adapters.memory.unit_of_work import MemoryDatabase
from reckai.application.ports.files import ReconciliationFile
from tests.contracts import reconciliation_repositories as contract
from tests.contracts.identity_repositories import signup


@pytest.fixture
def tenants() -> contract.Tenants:
    database = MemoryDatabase()
    a, _ = signup(database)
    b, _ = signup(database)
    return database, (a.organization_id, a.admin_user_id), (b.organization_id, b.admin_user_id)


def file_adder(database: Any) -> Callable[[uuid.UUID, uuid.UUID], uuid.UUID]:
    def add(organization_id: uuid.UUID, user_id: uuid.UUID) -> uuid.UUID:
        file_id = uuid.uuid4()
        with database.unit_of_work(organization_id) as uow:
            uow.files.add(ReconciliationFile(
                id=file_id, organization_id=organization_id, name="f.csv", original_filename="f.csv",
                file_type="bank", format="csv", size_bytes=1, storage_path=f"organizations/{organization_id}/x",
                status="normalized", uploaded_by=user_id))
            uow.commit()
        return file_id

    return add


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
def test_contract(tenants: contract.Tenants, check: Callable[[contract.Tenants], None]) -> None:
    check(tenants)


def test_delete_links_and_stuck(tenants: contract.Tenants) -> None:
    contract.check_delete_links_and_stuck(tenants, file_adder(tenants[0]))


def test_forced_job_inherits_by_key(tenants: contract.Tenants) -> None:
    contract.check_forced_job_inherits_by_key(tenants, file_adder(tenants[0]))
