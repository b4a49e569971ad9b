"""The file repository contract over PostgreSQL (migrated to head, 0005_files included), as reckai_app."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine

import reckai.adapters.postgres.files  # noqa: F401  registers the repositories
from reckai.adapters.postgres import tables as t
from reckai.adapters.postgres.unit_of_work import PostgresDatabase
from tests.contracts.files_repositories import *

pytestmark = pytest.mark.integration


@pytest.fixture
def database(app_engine: Engine) -> PostgresDatabase:
    return PostgresDatabase(app_engine)


@pytest.fixture
def add_job() -> Any:
    def add(database: PostgresDatabase, organization_id: uuid.UUID, user_id: uuid.UUID, status: str) -> uuid.UUID:
        job_id = uuid.uuid4()
        with database.unit_of_work(organization_id) as uow:
            uow.connection.execute(insert(t.reconciliation_jobs).values(
                id=job_id, organization_id=organization_id, name="job", status=status, created_by=user_id))
            uow.commit()
        return job_id

    return add
