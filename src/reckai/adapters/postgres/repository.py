"""The base of every PostgreSQL repository: the unit of work's connection, the tenant check before
a write, and writes inside a savepoint with driver errors translated into port errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from reckai.application.ports.repositories import (
    DuplicateEntity,
    FrozenByClosedPeriod,
    RepositoryError,
    TenantIsolationViolation,
)

if TYPE_CHECKING:
    from reckai.adapters.postgres.transaction import PostgresTransaction

CLOSED_PERIOD_SQLSTATE = "RK001"  # raised by the freeze triggers of migration 0024_period_close

# Unique constraint / index name -> (entity, field) for DuplicateEntity.
_UNIQUE_FIELDS = {
    "organizations_code_key": ("organization", "code"),
    "users_organization_id_email_key": ("user", "email"),
    "uq_users_org_lower_email": ("user", "email"),
    "uq_users_org_email_index": ("user", "email"),  # 0034_pii_encryption: the blind index
    "user_sessions_token_hash_key": ("user_session", "token_hash"),
    "user_sessions_pkey": ("user_session", "id"),
    "users_pkey": ("user", "id"),
    "refresh_token_families_pkey": ("refresh_token_family", "id"),
    "user_tokens_token_hash_key": ("user_token", "token_hash"),
    "normalized_files_file_version_key": ("normalized_file", "version"),
}


@contextmanager
def translate_errors(entity: str) -> Iterator[None]:
    """Driver errors become port errors (the cause chained)."""
    try:
        yield
    except DBAPIError as exc:
        orig = exc.orig
        if isinstance(orig, psycopg.errors.UniqueViolation):
            constraint = orig.diag.constraint_name or ""
            dup_entity, field = _UNIQUE_FIELDS.get(constraint, (entity, constraint or "key"))
            raise DuplicateEntity(dup_entity, field) from exc
        if getattr(orig, "sqlstate", None) == CLOSED_PERIOD_SQLSTATE:  # 0024_period_close's freeze
            raise FrozenByClosedPeriod(entity) from exc
        if isinstance(orig, psycopg.errors.InsufficientPrivilege) and "row-level security" in str(orig):
            raise TenantIsolationViolation(entity, None, None) from exc
        raise RepositoryError(f"{entity}: database error ({type(orig).__name__})") from exc


class PostgresRepository:
    entity_name = "entity"

    def __init__(self, uow: PostgresTransaction) -> None:
        self._uow = uow

    @property
    def _conn(self) -> Connection:
        return self._uow.connection

    def _check_tenant(self, organization_id: uuid.UUID) -> None:
        """Writes name their organization: another tenant's is refused with both ids (row-level
        security is the backstop)."""
        if self._uow.organization_id is None or organization_id != self._uow.organization_id:
            raise TenantIsolationViolation(self.entity_name, organization_id, self._uow.organization_id)

    @contextmanager
    def _write(self) -> Iterator[None]:
        # A savepoint, so a refused write leaves the unit of work usable and nothing half-written.
        with translate_errors(self.entity_name), self._conn.begin_nested():
            yield
