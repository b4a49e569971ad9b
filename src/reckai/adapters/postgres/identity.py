"""PostgreSQL repositories for organizations, quotas, users and sessions (SQLAlchemy Core).

Tenant reads rely on row-level security (the unit of work set the tenant); writes also check the
organization id first so the caller gets TenantIsolationViolation with both ids, the policy being
the backstop. Pre-tenant and system methods call the SECURITY DEFINER functions of 0001_schema and
0034_pii_encryption. Users' e-mail addresses and names are stored encrypted (docs/privacy.md).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from collections.abc import Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.engine import Row

from reckai.adapters.postgres import tables as t
from reckai.adapters.postgres.personal_data import login_key, organization_key, translate_personal_data_errors
from reckai.adapters.postgres.repository import PostgresRepository, translate_errors
from reckai.adapters.security.personal_data import OrganizationKey
from reckai.application.ports.repositories import (
    EntityNotFound,
    OrganizationRepository,
    QuotaRepository,
    SessionRepository,
    TenantIsolationViolation,
    UserRepository,
)
from reckai.domain.identity.entities import (
    LoginCandidate,
    NewOrganization,
    Organization,
    OrganizationQuota,
    RefreshTokenFamily,
    User,
    UserSession,
    user_sort_key,
    user_sort_text,
)

_USER_FIELDS = tuple(f.name for f in fields(User))
_NO_INDEX = "-"  # never a blind index (those are 43 base64url characters)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

E = TypeVar("E", bound="DataclassInstance")

def _to_entity(cls: type[E], row: Row[Any]) -> E:
    mapping = row._mapping
    values = {f.name: mapping[f.name] for f in fields(cls) if f.name in mapping}
    if "ip_address" in values and isinstance(values["ip_address"], ipaddress.IPv4Address | ipaddress.IPv6Address):
        values["ip_address"] = str(values["ip_address"])
    return cls(**values)


def _values(entity: Any, table: Table, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Column values of an entity; None for server-defaulted columns means "use the default"."""
    values = {}
    for f in fields(entity):
        if f.name in table.c and f.name not in exclude:
            value = getattr(entity, f.name)
            if value is None and table.c[f.name].server_default is not None:
                continue
            values[f.name] = value
    return values


class PostgresOrganizationRepository(PostgresRepository):
    entity_name = "organization"

    def get(self, organization_id: uuid.UUID) -> Organization | None:
        row = self._conn.execute(select(t.organizations).where(t.organizations.c.id == organization_id)).first()
        return _to_entity(Organization, row) if row else None

    def update(self, organization: Organization) -> None:
        self._check_tenant(organization.id)
        values = _values(organization, t.organizations, exclude=("id", "code", "created_at", "updated_at"))
        with self._write():
            result = self._conn.execute(
                update(t.organizations)
                .where(t.organizations.c.id == organization.id)
                .values(**values, updated_at=func.now())
            )
        if result.rowcount == 0:
            raise EntityNotFound("organization", organization.id)

    def change_code(self, organization_id: uuid.UUID, code: str) -> None:
        self._check_tenant(organization_id)
        with self._write():
            result = self._conn.execute(update(t.organizations).where(t.organizations.c.id == organization_id)
                                        .values(code=code, updated_at=func.now()))
        if result.rowcount == 0:
            raise EntityNotFound("organization", organization_id)

    def find_id_by_code(self, code: str) -> uuid.UUID | None:
        with translate_errors(self.entity_name):
            found: uuid.UUID | None = self._conn.execute(
                text("SELECT signup_find_organization_by_code(:code)"), {"code": code}
            ).scalar_one()
        return found

    def create_with_admin(
        self,
        *,
        name: str,
        code: str,
        domain: str | None,
        admin_email: str,
        admin_name: str,
        admin_password_hash: str,
    ) -> NewOrganization:
        # Validate as the entities would, so both adapters refuse the same input the same way.
        Organization(id=uuid.uuid4(), name=name, code=code, domain=domain)
        User(id=uuid.uuid4(), organization_id=uuid.uuid4(), email=admin_email, password_hash=admin_password_hash,
             name=admin_name, role="admin")
        # The organization's id, its data key and the admin's encrypted fields are made here: the
        # ciphertexts are bound to the organization, and no key ever reaches the database unwrapped.
        organization_id = uuid.uuid4()
        wrapped, key = self._uow.personal_data.master.new_data_key(organization_id)
        with self._write():
            row = self._conn.execute(
                text("SELECT * FROM signup_create_organization_encrypted(:id, :name, :code, :domain, :email,"
                     " :email_index, :admin_name, :hash, :key_id, :wrapped_key, :master_key_id)"),
                {"id": organization_id, "name": name, "code": code, "domain": domain,
                 "email": key.encrypt("email", admin_email), "email_index": key.blind_index(admin_email),
                 "admin_name": key.encrypt("name", admin_name), "hash": admin_password_hash,
                 "key_id": wrapped.key_id, "wrapped_key": wrapped.wrapped_key,
                 "master_key_id": wrapped.master_key_id},
            ).one()
        return NewOrganization(organization_id=row.organization_id, admin_user_id=row.user_id)


class PostgresQuotaRepository(PostgresRepository):
    entity_name = "organization_quota"

    def get(self, organization_id: uuid.UUID) -> OrganizationQuota | None:
        query = select(t.organization_quotas).where(t.organization_quotas.c.organization_id == organization_id)
        row = self._conn.execute(query).first()
        return _to_entity(OrganizationQuota, row) if row else None

    def get_for_update(self, organization_id: uuid.UUID) -> OrganizationQuota | None:
        query = (
            select(t.organization_quotas)
            .where(t.organization_quotas.c.organization_id == organization_id)
            .with_for_update()
        )
        with translate_errors(self.entity_name):
            row = self._conn.execute(query).first()
        return _to_entity(OrganizationQuota, row) if row else None

    def update(self, quota: OrganizationQuota) -> None:
        self._check_tenant(quota.organization_id)
        values = _values(quota, t.organization_quotas, exclude=("organization_id", "updated_at"))
        with self._write():
            result = self._conn.execute(
                update(t.organization_quotas)
                .where(t.organization_quotas.c.organization_id == quota.organization_id)
                .values(**values, updated_at=func.now())
            )
        if result.rowcount == 0:
            raise EntityNotFound("organization_quota", quota.organization_id)


class PostgresUserRepository(PostgresRepository):
    """Users, their e-mail address and name encrypted under the organization's data key
    (adapters/postgres/personal_data.py): written encrypted with the blind index of the address,
    decrypted on every read. Finding by address compares blind indexes."""

    entity_name = "user"

    def _key(self, organization_id: uuid.UUID | None = None) -> OrganizationKey:
        bound = organization_id or self._uow.organization_id
        if bound is None:
            raise TenantIsolationViolation(self.entity_name, None, None)
        return organization_key(self._uow, bound)

    def _user(self, row: Row[Any]) -> User:
        mapping = row._mapping
        values = {name: mapping[name] for name in _USER_FIELDS if name in mapping}
        key = self._key(values["organization_id"])
        with translate_personal_data_errors():
            values["email"] = key.decrypt("email", values["email"])
            values["name"] = key.decrypt("name", values["name"])
        return User(**values)

    def _encrypted(self, user: User, values: dict[str, Any]) -> dict[str, Any]:
        key = self._key(user.organization_id)
        return {**values, "email": key.encrypt("email", user.email), "name": key.encrypt("name", user.name),
                "email_index": key.blind_index(user.email)}

    def get(self, user_id: uuid.UUID) -> User | None:
        row = self._conn.execute(select(t.users_current).where(t.users_current.c.id == user_id)).first()
        return self._user(row) if row else None

    def get_by_email(self, email: str) -> User | None:
        if self._uow.organization_id is None:
            return None
        index = self._key().blind_index(email)
        row = self._conn.execute(select(t.users_current).where(t.users_current.c.email_index == index)).first()
        return self._user(row) if row else None

    def add(self, user: User) -> User:
        self._check_tenant(user.organization_id)
        values = self._encrypted(user, _values(user, t.users_current))
        with self._write():
            row = self._conn.execute(insert(t.users_current).values(**values).returning(t.users_current)).one()
        return self._user(row)

    def update(self, user: User) -> None:
        self._check_tenant(user.organization_id)
        values = self._encrypted(user, _values(user, t.users_current,
                                               exclude=("id", "organization_id", "created_at", "updated_at")))
        with self._write():
            result = self._conn.execute(
                update(t.users_current).where(t.users_current.c.id == user.id).values(**values, updated_at=func.now())
            )
        if result.rowcount == 0:
            raise EntityNotFound("user", user.id)

    def list(self, *, is_active: bool | None = None, limit: int = 100, offset: int = 0,
             order_by: str = "created_at", descending: bool = False) -> Sequence[User]:
        user_sort_key(order_by)  # ValueError for an order users do not have
        query = select(t.users_current)
        if is_active is not None:
            query = query.where(t.users_current.c.is_active.is_(is_active))
        if order_by == "created_at":
            columns = (t.users_current.c.created_at, t.users_current.c.id)
            query = query.order_by(*(column.desc() if descending else column.asc() for column in columns))
            return [self._user(row) for row in self._conn.execute(query.limit(limit).offset(offset))]
        # Name and e-mail are ciphertext: SQL cannot order them. The one column is read and decrypted
        # for every user of the organization and sorted here, then only the page's rows are read
        # whole (docs/privacy.md, "Listing users by name or e-mail").
        column = t.users_current.c[order_by]
        narrow = query.with_only_columns(t.users_current.c.id, column)
        key = self._key()
        with translate_personal_data_errors():
            ordered = sorted(((user_sort_text(order_by, key.decrypt(order_by, value)), str(user_id), user_id)
                              for user_id, value in self._conn.execute(narrow)), reverse=descending)
        page = [user_id for _, _, user_id in ordered[offset : offset + limit]]
        if not page:
            return []
        rows = {row.id: row for row in self._conn.execute(select(t.users_current)
                                                          .where(t.users_current.c.id.in_(page)))}
        users = [self._user(rows[user_id]) for user_id in page if user_id in rows]
        return users

    def count(self, *, is_active: bool | None = None) -> int:
        query = select(func.count()).select_from(t.users_current)
        if is_active is not None:
            query = query.where(t.users_current.c.is_active.is_(is_active))
        return int(self._conn.execute(query).scalar_one())

    def find_login_candidate(self, organization_code: str, email: str) -> LoginCandidate | None:
        key = login_key(self._uow, organization_code)
        # An unknown organization still runs the candidate query (with an index nothing has), so the
        # number of round trips does not tell whether the code exists.
        index = key.blind_index(email) if key is not None else _NO_INDEX
        with translate_errors(self.entity_name):
            row = self._conn.execute(
                text("SELECT * FROM auth_find_login_candidate_by_index(:code, :email_index)"),
                {"code": organization_code, "email_index": index},
            ).first()
        if row is None or key is None:
            return None
        values = dict(row._mapping)
        values["id"] = values.pop("user_id")
        organization_is_active = bool(values.pop("organization_is_active"))
        with translate_personal_data_errors():
            values["email"] = key.decrypt("email", values["email"])
            values["name"] = key.decrypt("name", values["name"])
        for name in ("locked_until", "password_changed_at", "last_login_at"):
            if values[name] is not None:
                values[name] = values[name].replace(tzinfo=dt.UTC)
        return LoginCandidate(user=User(**values), organization_is_active=organization_is_active)

    def add_password_history(self, user_id: uuid.UUID, password_hash: str, created_at: dt.datetime) -> None:
        if self._uow.organization_id is None or self.get(user_id) is None:
            raise EntityNotFound("user", user_id)
        with self._write():
            self._conn.execute(
                insert(t.password_history).values(
                    organization_id=self._uow.organization_id,
                    user_id=user_id,
                    password_hash=password_hash,
                    created_at=created_at,
                )
            )

    def recent_password_hashes(self, user_id: uuid.UUID, limit: int) -> Sequence[str]:
        query = (
            select(t.password_history.c.password_hash)
            .where(t.password_history.c.user_id == user_id)
            .order_by(t.password_history.c.created_at.desc(), t.password_history.c.id)
            .limit(limit)
        )
        return list(self._conn.execute(query).scalars())


_SESSION_MUTABLE = (
    "expires_at", "absolute_expires_at", "last_activity_at", "rotated_at", "replaced_by", "revoked_at",
    "revoked_reason", "ip_address", "user_agent", "fingerprint_hash",
)


class PostgresSessionRepository(PostgresRepository):
    entity_name = "user_session"

    def add(self, session: UserSession) -> UserSession:
        self._check_tenant(session.organization_id)
        with self._write():
            row = self._conn.execute(
                insert(t.user_sessions).values(**_values(session, t.user_sessions)).returning(t.user_sessions)
            ).one()
        return _to_entity(UserSession, row)

    def get(self, session_id: uuid.UUID) -> UserSession | None:
        row = self._conn.execute(select(t.user_sessions).where(t.user_sessions.c.id == session_id)).first()
        return _to_entity(UserSession, row) if row else None

    def update(self, session: UserSession) -> None:
        self._check_tenant(session.organization_id)
        values = {name: getattr(session, name) for name in _SESSION_MUTABLE}
        with self._write():
            result = self._conn.execute(
                update(t.user_sessions).where(t.user_sessions.c.id == session.id).values(**values)
            )
        if result.rowcount == 0:
            raise EntityNotFound("user_session", session.id)

    def delete(self, session_id: uuid.UUID) -> bool:
        with self._write():
            result = self._conn.execute(delete(t.user_sessions).where(t.user_sessions.c.id == session_id))
        return bool(result.rowcount)

    def list_for_user(self, user_id: uuid.UUID, *, include_revoked: bool = False) -> Sequence[UserSession]:
        query = (
            select(t.user_sessions)
            .where(t.user_sessions.c.user_id == user_id)
            .order_by(t.user_sessions.c.created_at.desc(), t.user_sessions.c.id.desc())
        )
        if not include_revoked:
            query = query.where(t.user_sessions.c.revoked_at.is_(None))
        return [_to_entity(UserSession, row) for row in self._conn.execute(query)]

    def find_by_token_hash(self, token_hash: str) -> UserSession | None:
        with translate_errors(self.entity_name):
            row = self._conn.execute(
                text("SELECT * FROM auth_find_session_by_token_hash(:token_hash)").columns(
                    **{c.name: c.type for c in t.user_sessions.columns}
                ),
                {"token_hash": token_hash},
            ).first()
        return _to_entity(UserSession, row) if row else None

    def add_family(self, family: RefreshTokenFamily) -> RefreshTokenFamily:
        self._check_tenant(family.organization_id)
        table = t.refresh_token_families
        with self._write():
            row = self._conn.execute(insert(table).values(**_values(family, table)).returning(table)).one()
        return _to_entity(RefreshTokenFamily, row)

    def get_family(self, family_id: uuid.UUID) -> RefreshTokenFamily | None:
        table = t.refresh_token_families
        row = self._conn.execute(select(table).where(table.c.id == family_id)).first()
        return _to_entity(RefreshTokenFamily, row) if row else None

    def revoke_family(self, family_id: uuid.UUID, at: dt.datetime, reason: str) -> int:
        families, sessions = t.refresh_token_families, t.user_sessions
        with self._write():
            found = self._conn.execute(
                update(families)
                .where(families.c.id == family_id)
                .values(
                    revoked_at=func.coalesce(families.c.revoked_at, at),
                    revoked_reason=func.coalesce(families.c.revoked_reason, reason),
                )
            ).rowcount
            if not found:
                raise EntityNotFound("refresh_token_family", family_id)
            revoked = self._conn.execute(
                update(sessions)
                .where(sessions.c.family_id == family_id, sessions.c.revoked_at.is_(None))
                .values(revoked_at=at, revoked_reason=reason)
            ).rowcount
        return int(revoked)

    def delete_expired(self) -> int:
        with self._write():
            return int(self._conn.execute(text("SELECT sweep_expired_sessions()")).scalar_one())


_checks: tuple[type[OrganizationRepository], type[QuotaRepository], type[UserRepository], type[SessionRepository]] = (
    PostgresOrganizationRepository,
    PostgresQuotaRepository,
    PostgresUserRepository,
    PostgresSessionRepository,
)
