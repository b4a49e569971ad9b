"""Organization data keys on PostgreSQL (`organization_data_keys`, migration 0034_pii_encryption):
the key a unit of work encrypts its organization's personal data with, the pre-tenant key for the
login's blind index, and the re-wrap of `reckai keys rotate` (docs/privacy.md)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from reckai.adapters.postgres import tables as t
from reckai.adapters.postgres.repository import PostgresRepository, translate_errors
from reckai.adapters.security.personal_data import (
    FieldUndecryptable,
    OrganizationKey,
    PersonalDataError,
    WrappedDataKey,
)
from reckai.application.ports.personal_data import (
    DataKeyRepository,
    DataKeyUnavailable,
    PersonalDataUnreadable,
)
from reckai.application.ports.repositories import TenantIsolationViolation

if TYPE_CHECKING:
    from reckai.adapters.postgres.transaction import PostgresTransaction

_keys = t.organization_data_keys


def _wrapped(row: Any) -> WrappedDataKey:
    return WrappedDataKey(row.organization_id, row.key_id, bytes(row.wrapped_key), row.master_key_id)


def _open(uow: PostgresTransaction, wrapped: WrappedDataKey) -> OrganizationKey:
    try:
        return uow.personal_data.organization_key(wrapped)
    except PersonalDataError as exc:
        raise DataKeyUnavailable(str(exc)) from exc


@contextmanager
def translate_personal_data_errors() -> Iterator[None]:
    """A field that does not decrypt becomes the port's PersonalDataUnreadable (the cause chained)."""
    try:
        yield
    except FieldUndecryptable as exc:
        raise PersonalDataUnreadable(str(exc)) from exc


def organization_key(uow: PostgresTransaction, organization_id: uuid.UUID) -> OrganizationKey:
    """The bound organization's data key, unwrapped (created on first use for an organization that
    has none yet: one made outside sign-up). Another organization's: TenantIsolationViolation."""
    found = uow.organization_keys.get(organization_id)
    if found is not None:
        return found
    if uow.organization_id is None or organization_id != uow.organization_id:
        raise TenantIsolationViolation("organization_data_key", organization_id, uow.organization_id)
    connection = uow.connection
    row = connection.execute(select(_keys).where(_keys.c.organization_id == organization_id)).first()
    if row is None:
        wrapped, _ = uow.personal_data.master.new_data_key(organization_id)
        with translate_errors("organization_data_key"), connection.begin_nested():
            connection.execute(insert(_keys).values(
                organization_id=organization_id, key_id=wrapped.key_id, wrapped_key=wrapped.wrapped_key,
                master_key_id=wrapped.master_key_id).on_conflict_do_nothing(index_elements=["organization_id"]))
        row = connection.execute(select(_keys).where(_keys.c.organization_id == organization_id)).one()
    key = _open(uow, _wrapped(row))
    uow.organization_keys[organization_id] = key
    return key


def login_key(uow: PostgresTransaction, organization_code: str) -> OrganizationKey | None:
    """*Pre-tenant* (login, password reset): the data key of the organization with this code, for
    the blind index of the address typed; None when there is no such organization."""
    with translate_errors("organization_data_key"):
        row = uow.connection.execute(text("SELECT * FROM auth_find_organization_data_key(:code)"),
                                     {"code": organization_code}).first()
    return None if row is None else _open(uow, _wrapped(row))


class PostgresDataKeyRepository(PostgresRepository):
    entity_name = "organization_data_key"

    def stale_organizations(self, limit: int) -> Sequence[uuid.UUID]:
        active = self._uow.personal_data.master.active_key_id
        with translate_errors(self.entity_name):
            return list(self._conn.execute(text("SELECT pii_data_keys_to_rewrap(:master, :limit)"),
                                           {"master": active, "limit": limit}).scalars())

    def rewrap(self) -> bool:
        organization_id = self._uow.organization_id
        if organization_id is None:
            raise TenantIsolationViolation(self.entity_name, None, None)
        master = self._uow.personal_data.master
        with translate_errors(self.entity_name):
            row = self._conn.execute(
                select(_keys).where(_keys.c.organization_id == organization_id).with_for_update()).first()
        if row is None or row.master_key_id == master.active_key_id:
            return False
        try:
            rewrapped = master.rewrap(_wrapped(row))
        except PersonalDataError as exc:
            raise DataKeyUnavailable(str(exc)) from exc
        with self._write():
            self._conn.execute(update(_keys).where(_keys.c.organization_id == organization_id).values(
                wrapped_key=rewrapped.wrapped_key, master_key_id=rewrapped.master_key_id, rewrapped_at=func.now()))
        return True

    def shred(self) -> int:
        organization_id = self._uow.organization_id
        if organization_id is None:
            raise TenantIsolationViolation(self.entity_name, None, None)
        with self._write():
            deleted = self._conn.execute(delete(_keys).where(_keys.c.organization_id == organization_id)).rowcount
        self._uow.organization_keys.pop(organization_id, None)
        return int(deleted or 0)


_check: type[DataKeyRepository] = PostgresDataKeyRepository
