"""The user-token and MFA repository contract over PostgreSQL, as the runtime role reckai_app."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from reckai.adapters.postgres.unit_of_work import PostgresDatabase
from tests.contracts.account_security import *

pytestmark = pytest.mark.integration


@pytest.fixture
def database(app_engine: Engine) -> PostgresDatabase:
    return PostgresDatabase(app_engine)
