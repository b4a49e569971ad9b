"""The identity repository contract over PostgreSQL, as the runtime role reckai_app."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from reckai.adapters.postgres.unit_of_work import PostgresDatabase
from tests.contracts.identity_repositories import *

pytestmark = pytest.mark.integration


@pytest.fixture
def database(app_engine: Engine) -> PostgresDatabase:
    # Shares the session's engine (not closed here); every test signs up its own organizations.
    return PostgresDatabase(app_engine)
