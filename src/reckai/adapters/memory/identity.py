"""In-memory repositories for organizations, quotas, users and sessions (same contract as
reckai.adapters.postgres.identity; tests/contracts/ run over both)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from reckai.adapters.memory.store import MemoryTransaction
from reckai.application.ports.repositories import (
    DuplicateEntity,
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
    normalized_email,
    user_sort_key,
)

_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass
class PasswordHistoryEntry:
    id: uuid.UUID
    organization_id: uuid.UUID
    user_id: uuid.UUID
    password_hash: str
    created_at: dt.datetime


class _Repository:
    entity_name = "entity"

    def __init__(self, uow: MemoryTransaction) -> None:
        self._uow = uow

    def _check_tenant(self, organization_id: uuid.UUID) -> None:
        if self._uow.organization_id is None or organization_id != self._uow.organization_id:
            raise TenantIsolationViolation(self.entity_name, organization_id, self._uow.organization_id)


class MemoryOrganizationRepository(_Repository):
    entity_name = "organization"

    def get(self, organization_id: uuid.UUID) -> Organization | None:
        found: Organization | None = self._uow.get("organizations", organization_id)
        return found

    def update(self, organization: Organization) -> None:
        self._check_tenant(organization.id)
        stored = self.get(organization.id)
        if stored is None:
            raise EntityNotFound("organization", organization.id)
        updated = dataclasses.replace(
            organization, code=stored.code, created_at=stored.created_at, updated_at=self._uow.now()
        )
        self._uow.put("organizations", organization.id, updated)

    def change_code(self, organization_id: uuid.UUID, code: str) -> None:
        self._check_tenant(organization_id)
        stored = self.get(organization_id)
        if stored is None:
            raise EntityNotFound("organization", organization_id)
        if self.find_id_by_code(code) not in (None, organization_id):
            raise DuplicateEntity("organization", "code", code)
        self._uow.put("organizations", organization_id,
                      dataclasses.replace(stored, code=code, updated_at=self._uow.now()))

    def find_id_by_code(self, code: str) -> uuid.UUID | None:
        for _, row in self._uow.all_rows("organizations"):
            organization: Organization = row
            if organization.code == code:
                return organization.id
        return None

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
        now = self._uow.now()
        organization = Organization(id=uuid.uuid4(), name=name, code=code, domain=domain, created_at=now, updated_at=now)
        admin = User(
            id=uuid.uuid4(), organization_id=organization.id, email=admin_email, password_hash=admin_password_hash,
            name=admin_name, role="admin", password_changed_at=now, created_at=now, updated_at=now,
        )
        if self.find_id_by_code(code) is not None:
            raise DuplicateEntity("organization", "code", code)
        organization.created_by = admin.id
        quota = OrganizationQuota(
            organization_id=organization.id, max_users=organization.max_users,
            max_storage_gb=organization.max_storage_gb, updated_at=now,
        )
        history = PasswordHistoryEntry(uuid.uuid4(), organization.id, admin.id, admin_password_hash, now)
        self._uow.put("organizations", organization.id, organization, system=True)
        self._uow.put("users", admin.id, admin, system=True)
        self._uow.put("organization_quotas", organization.id, quota, system=True)
        self._uow.put("password_history", history.id, history, system=True)
        return NewOrganization(organization_id=organization.id, admin_user_id=admin.id)


class MemoryQuotaRepository(_Repository):
    entity_name = "organization_quota"

    def get(self, organization_id: uuid.UUID) -> OrganizationQuota | None:
        found: OrganizationQuota | None = self._uow.get("organization_quotas", organization_id)
        return found

    def get_for_update(self, organization_id: uuid.UUID) -> OrganizationQuota | None:
        if self.get(organization_id) is None:
            return None
        self._uow.lock_row("organization_quotas", organization_id)
        return self.get(organization_id)

    def update(self, quota: OrganizationQuota) -> None:
        self._check_tenant(quota.organization_id)
        if self.get(quota.organization_id) is None:
            raise EntityNotFound("organization_quota", quota.organization_id)
        self._uow.put("organization_quotas", quota.organization_id, dataclasses.replace(quota, updated_at=self._uow.now()))


class MemoryUserRepository(_Repository):
    entity_name = "user"

    def get(self, user_id: uuid.UUID) -> User | None:
        found: User | None = self._uow.get("users", user_id)
        return found

    def get_by_email(self, email: str) -> User | None:
        for _, row in self._uow.rows("users"):
            user: User = row
            if normalized_email(user.email) == normalized_email(email):
                return user
        return None

    def add(self, user: User) -> User:
        self._check_tenant(user.organization_id)
        for _, other in self._uow.all_rows("users"):
            if other.id == user.id:
                raise DuplicateEntity("user", "id", user.id)
            if other.organization_id == user.organization_id and \
                    normalized_email(other.email) == normalized_email(user.email):
                raise DuplicateEntity("user", "email")
        now = self._uow.now()
        stored = dataclasses.replace(
            user,
            created_at=user.created_at or now,
            updated_at=user.updated_at or now,
            password_changed_at=user.password_changed_at or now,
        )
        self._uow.put("users", user.id, stored)
        return dataclasses.replace(stored)

    def update(self, user: User) -> None:
        self._check_tenant(user.organization_id)
        stored = self.get(user.id)
        if stored is None:
            raise EntityNotFound("user", user.id)
        for _, other in self._uow.rows("users"):
            if other.id != user.id and normalized_email(other.email) == normalized_email(user.email):
                raise DuplicateEntity("user", "email")
        self._uow.put("users", user.id, dataclasses.replace(user, created_at=stored.created_at, updated_at=self._uow.now()))

    def _matching(self, is_active: bool | None) -> list[User]:
        return [u for _, u in self._uow.rows("users") if is_active is None or u.is_active is is_active]

    def list(self, *, is_active: bool | None = None, limit: int = 100, offset: int = 0,
             order_by: str = "created_at", descending: bool = False) -> Sequence[User]:
        users = sorted(self._matching(is_active), key=user_sort_key(order_by), reverse=descending)
        return users[offset : offset + limit]

    def count(self, *, is_active: bool | None = None) -> int:
        return len(self._matching(is_active))

    def find_login_candidate(self, organization_code: str, email: str) -> LoginCandidate | None:
        organizations = {o.id: o for _, o in self._uow.all_rows("organizations")}
        for _, user in self._uow.all_rows("users"):
            organization = organizations.get(user.organization_id)
            if organization and organization.code == organization_code and \
                    normalized_email(user.email) == normalized_email(email):
                return LoginCandidate(user=user, organization_is_active=bool(organization.is_active))
        return None

    def add_password_history(self, user_id: uuid.UUID, password_hash: str, created_at: dt.datetime) -> None:
        if self._uow.organization_id is None or self.get(user_id) is None:
            raise EntityNotFound("user", user_id)
        entry = PasswordHistoryEntry(uuid.uuid4(), self._uow.organization_id, user_id, password_hash, created_at)
        self._uow.put("password_history", entry.id, entry)

    def recent_password_hashes(self, user_id: uuid.UUID, limit: int) -> Sequence[str]:
        entries = [e for _, e in self._uow.rows("password_history") if e.user_id == user_id]
        entries.sort(key=lambda e: (e.created_at, str(e.id)), reverse=True)
        return [e.password_hash for e in entries[:limit]]


class MemorySessionRepository(_Repository):
    entity_name = "user_session"

    def add(self, session: UserSession) -> UserSession:
        self._check_tenant(session.organization_id)
        for _, other in self._uow.all_rows("user_sessions"):
            if other.token_hash == session.token_hash:
                raise DuplicateEntity("user_session", "token_hash")
            if other.id == session.id:
                raise DuplicateEntity("user_session", "id")
        now = self._uow.now()
        stored = dataclasses.replace(
            session, created_at=session.created_at or now, last_activity_at=session.last_activity_at or now
        )
        self._uow.put("user_sessions", session.id, stored)
        return dataclasses.replace(stored)

    def get(self, session_id: uuid.UUID) -> UserSession | None:
        found: UserSession | None = self._uow.get("user_sessions", session_id)
        return found

    def update(self, session: UserSession) -> None:
        self._check_tenant(session.organization_id)
        stored = self.get(session.id)
        if stored is None:
            raise EntityNotFound("user_session", session.id)
        # Only the mutable fields change, as in the SQL adapter.
        updated = dataclasses.replace(
            stored,
            expires_at=session.expires_at,
            absolute_expires_at=session.absolute_expires_at,
            last_activity_at=session.last_activity_at,
            rotated_at=session.rotated_at,
            replaced_by=session.replaced_by,
            revoked_at=session.revoked_at,
            revoked_reason=session.revoked_reason,
            ip_address=session.ip_address,
            user_agent=session.user_agent,
            fingerprint_hash=session.fingerprint_hash,
        )
        self._uow.put("user_sessions", session.id, updated)

    def delete(self, session_id: uuid.UUID) -> bool:
        if self.get(session_id) is None:
            return False
        self._uow.remove("user_sessions", session_id)
        return True

    def list_for_user(self, user_id: uuid.UUID, *, include_revoked: bool = False) -> Sequence[UserSession]:
        sessions = [
            s for _, s in self._uow.rows("user_sessions")
            if s.user_id == user_id and (include_revoked or s.revoked_at is None)
        ]
        sessions.sort(key=lambda s: (s.created_at or _EPOCH, str(s.id)), reverse=True)
        # Ties on created_at: SQL orders id ascending within the same instant.
        return sessions

    def find_by_token_hash(self, token_hash: str) -> UserSession | None:
        for _, row in self._uow.all_rows("user_sessions"):
            session: UserSession = row
            if session.token_hash == token_hash:
                return session
        return None

    def add_family(self, family: RefreshTokenFamily) -> RefreshTokenFamily:
        self._check_tenant(family.organization_id)
        if any(k == family.id for k, _ in self._uow.all_rows("refresh_token_families")):
            raise DuplicateEntity("refresh_token_family", "id")
        stored = dataclasses.replace(family, created_at=family.created_at or self._uow.now())
        self._uow.put("refresh_token_families", family.id, stored)
        return dataclasses.replace(stored)

    def get_family(self, family_id: uuid.UUID) -> RefreshTokenFamily | None:
        found: RefreshTokenFamily | None = self._uow.get("refresh_token_families", family_id)
        return found

    def revoke_family(self, family_id: uuid.UUID, at: dt.datetime, reason: str) -> int:
        family = self.get_family(family_id)
        if family is None:
            raise EntityNotFound("refresh_token_family", family_id)
        family.revoked_at = family.revoked_at or at
        family.revoked_reason = family.revoked_reason or reason
        self._uow.put("refresh_token_families", family.id, family)
        revoked = 0
        for _, session in self._uow.rows("user_sessions"):
            if session.family_id == family_id and session.revoked_at is None:
                session.revoked_at, session.revoked_reason = at, reason
                self._uow.put("user_sessions", session.id, session)
                revoked += 1
        return revoked

    def delete_expired(self) -> int:
        now = self._uow.now()
        deleted = 0
        for key, session in list(self._uow.all_rows("user_sessions")):
            if (
                session.expires_at < now
                or (session.absolute_expires_at is not None and session.absolute_expires_at < now)
                or (session.revoked_at is not None and session.revoked_at < now - dt.timedelta(days=1))
            ):
                self._uow.remove("user_sessions", key)
                deleted += 1
        remaining_families = {s.family_id for _, s in self._uow.all_rows("user_sessions")}
        for key, family in list(self._uow.all_rows("refresh_token_families")):
            if family.absolute_expires_at < now and family.id not in remaining_families:
                self._uow.remove("refresh_token_families", key)
        return deleted


_checks: tuple[type[OrganizationRepository], type[QuotaRepository], type[UserRepository], type[SessionRepository]] = (
    MemoryOrganizationRepository,
    MemoryQuotaRepository,
    MemoryUserRepository,
    MemorySessionRepository,
)
