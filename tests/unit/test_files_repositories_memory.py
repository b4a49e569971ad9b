"""The file repository contract over the in-memory adapter."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

import reckai.adapters.memory.files  # noqa: F401  registers the repositories
from reckai.adapters.memory.unit_of_work import MemoryDatabase
from tests.contracts.files_repositories import *


@dataclass
class _Job:
    id: uuid.UUID
    organization_id: uuid.UUID
    status: str


@pytest.fixture
def database() -> MemoryDatabase:
    return MemoryDatabase()


@pytest.fixture
def add_job() -> Any:
    def add(database: MemoryDatabase, organization_id: uuid.UUID, user_id: uuid.UUID, status: str) -> uuid.UUID:
        job = _Job(uuid.uuid4(), organization_id, status)
        with database.unit_of_work(organization_id) as uow:
            uow.put("reconciliation_jobs", job.id, job)
            uow.commit()
        return job.id

    return add
