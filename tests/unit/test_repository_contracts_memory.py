"""The identity repository contract over the in-memory adapter (no service needed)."""

from __future__ import annotations

import pytest

from reckai.adapters.memory.unit_of_work import MemoryDatabase
from tests.contracts.identity_repositories import *


@pytest.fixture
def database() -> MemoryDatabase:
    return MemoryDatabase()
