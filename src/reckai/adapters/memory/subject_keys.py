"""In-memory twin of adapters/postgres/subject_keys.py (the contract tests run on both)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping

from reckai.adapters.memory.store import MemoryTransaction
from reckai.application.ports.repositories import TenantIsolationViolation
from reckai.application.ports.subject_keys import SubjectKey, SubjectKeyRepository

TABLE = "subject_keys"


class MemorySubjectKeyRepository:
    def __init__(self, uow: MemoryTransaction) -> None:
        self._uow = uow

    def get(self, subject_id: uuid.UUID) -> SubjectKey | None:
        row: SubjectKey | None = self._uow.get(TABLE, subject_id)
        return row

    def get_many(self, subject_ids: Iterable[uuid.UUID]) -> Mapping[uuid.UUID, SubjectKey]:
        found = {subject: self.get(subject) for subject in set(subject_ids)}
        return {subject: key for subject, key in found.items() if key is not None}

    def add_if_absent(self, key: SubjectKey) -> SubjectKey:
        if self._uow.organization_id is None or key.organization_id != self._uow.organization_id:
            raise TenantIsolationViolation("subject_key", key.organization_id, self._uow.organization_id)
        with self._uow.store.lock:
            existing = self.get(key.subject_id)
            if existing is not None:
                return existing
            self._uow.put(TABLE, key.subject_id, key)
        return key

    def destroy(self, subject_id: uuid.UUID) -> bool:
        if self.get(subject_id) is None:
            return False
        self._uow.remove(TABLE, subject_id)
        return True


_check: type[SubjectKeyRepository] = MemorySubjectKeyRepository
