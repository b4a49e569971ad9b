"""In-memory twin of adapters/postgres/personal_data.py's `DataKeyRepository`. The in-memory
adapters store personal data in plain text (docs/privacy.md, "Personal data at rest"), so there
is no organization data key here: none to re-wrap, none to shred."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from reckai.adapters.memory.store import MemoryTransaction
from reckai.application.ports.personal_data import DataKeyRepository
from reckai.application.ports.repositories import TenantIsolationViolation


class MemoryDataKeyRepository:
    def __init__(self, uow: MemoryTransaction) -> None:
        self._uow = uow

    def stale_organizations(self, limit: int) -> Sequence[uuid.UUID]:
        return []

    def rewrap(self) -> bool:
        self._bound()
        return False

    def shred(self) -> int:
        self._bound()
        return 0

    def _bound(self) -> None:
        if self._uow.organization_id is None:
            raise TenantIsolationViolation("organization_data_key", None, None)


_check: type[DataKeyRepository] = MemoryDataKeyRepository
