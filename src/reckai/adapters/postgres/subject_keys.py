"""PostgreSQL side of application/ports/subject_keys.py: the `subject_keys` rows (migration
0031_data_erasure; row-level security forced, the app role may SELECT, INSERT and DELETE)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Row

from reckai.adapters.postgres.repository import PostgresRepository, translate_errors
from reckai.application.ports.subject_keys import SubjectKey, SubjectKeyRepository

_SELECT = "SELECT id, organization_id, subject_id, wrapped_key, created_at FROM subject_keys"


def _key(row: Row[Any]) -> SubjectKey:
    return SubjectKey(id=row.id, organization_id=row.organization_id, subject_id=row.subject_id,
                      wrapped_key=row.wrapped_key, created_at=row.created_at.replace(tzinfo=dt.UTC))


class PostgresSubjectKeyRepository(PostgresRepository):
    entity_name = "subject_key"

    def get(self, subject_id: uuid.UUID) -> SubjectKey | None:
        with translate_errors(self.entity_name):
            row = self._conn.execute(text(f"{_SELECT} WHERE subject_id = :subject"), {"subject": subject_id}).first()
        return _key(row) if row is not None else None

    def get_many(self, subject_ids: Iterable[uuid.UUID]) -> Mapping[uuid.UUID, SubjectKey]:
        wanted = sorted(set(subject_ids), key=str)
        if not wanted:
            return {}
        query = text(f"{_SELECT} WHERE subject_id IN :subjects").bindparams(bindparam("subjects", expanding=True))
        with translate_errors(self.entity_name):
            rows = self._conn.execute(query, {"subjects": wanted}).all()
        return {row.subject_id: _key(row) for row in rows}

    def add_if_absent(self, key: SubjectKey) -> SubjectKey:
        self._check_tenant(key.organization_id)
        with self._write():
            # A concurrent writer's key wins the race: ON CONFLICT waits for its transaction, then
            # the SELECT below reads the one key the subject has.
            self._conn.execute(text(
                "INSERT INTO subject_keys (id, organization_id, subject_id, wrapped_key, created_at)"
                " VALUES (:id, :org, :subject, :wrapped, :created_at) ON CONFLICT (subject_id) DO NOTHING"),
                {"id": key.id, "org": key.organization_id, "subject": key.subject_id, "wrapped": key.wrapped_key,
                 "created_at": key.created_at.astimezone(dt.UTC).replace(tzinfo=None)})
        stored = self.get(key.subject_id)
        if stored is None:  # the subject's key belongs to another organization (RLS hides it)
            raise RuntimeError(f"subject {key.subject_id} has a key this organization cannot see")
        return stored

    def destroy(self, subject_id: uuid.UUID) -> bool:
        with self._write():
            deleted = self._conn.execute(text("DELETE FROM subject_keys WHERE subject_id = :subject"),
                                         {"subject": subject_id})
        return bool(deleted.rowcount)


_check: type[SubjectKeyRepository] = PostgresSubjectKeyRepository
