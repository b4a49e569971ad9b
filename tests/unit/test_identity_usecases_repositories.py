"""The user-token and MFA repository contract over the in-memory adapter."""

from __future__ import annotations

import pytest

from reckai.adapters.memory.unit_of_work import MemoryDatabase
from tests.contracts.account_security import *


@pytest.fixture
def database() -> MemoryDatabase:
    return MemoryDatabase()
