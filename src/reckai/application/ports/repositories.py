"""Repository ports for identity: organizations, quotas, users and sessions.

Every repository hangs off a unit of work bound to one organization (or to none). The contract,
common to the PostgreSQL and the in-memory adapter (tests/contracts/ runs the same tests on both):

- Reads see only the bound organization's rows; a unit of work bound to no organization sees no
  tenant row at all. A row of another organization is reported as absent (None / not listed),
  never as forbidden, so ids do not leak.
- Writing a row whose organization_id is not the bound one raises TenantIsolationViolation, and
  nothing is written.
- The methods marked *pre-tenant* or *system* are the only ones that cross tenants. They map to the
  named SECURITY DEFINER functions of docs/tenancy.md and do exactly one narrow thing each.
- Entities go in and come out as copies: changing an object after `add` changes nothing stored
  until `update` is called.
- Datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Protocol

from reckai.domain.identity.entities import (
    LoginCandidate,
    NewOrganization,
    Organization,
    OrganizationQuota,
    RecoveryCode,
    RefreshTokenFamily,
    User,
    UserSession,
    UserToken,
)


class RepositoryError(Exception):
    """The store failed in a way the caller cannot fix by changing its input."""


class DuplicateEntity(RepositoryError):
    """A unique value is taken (organization code, e-mail within an organization, token hash)."""

    def __init__(self, entity: str, field: str, value: object = None) -> None:
        super().__init__(f"{entity} with this {field} already exists")
        self.entity = entity
        self.field = field
        self.value = value


class EntityNotFound(RepositoryError):
    """The row does not exist in the bound organization (it may exist in another one)."""

    def __init__(self, entity: str, entity_id: object) -> None:
        super().__init__(f"{entity} {entity_id} not found")
        self.entity = entity
        self.entity_id = entity_id


class FrozenByClosedPeriod(RepositoryError):
    """The database refused to change a row a closed period of a stream froze (the trigger of
    migration 0024; the application's own check, application/exceptions/closed_periods.py, normally
    refuses first: this is the backstop, e.g. when a period closed meanwhile)."""

    code = "PERIOD_CLOSED"

    def __init__(self, entity: str) -> None:
        super().__init__(f"{entity}: the row belongs to a closed period of its stream; only an approved "
                         "period_adjustment changes it")
        self.entity = entity
        self.message = "this belongs to a closed period of its stream; only an approved period adjustment changes it"


class TenantIsolationViolation(RepositoryError):
    """A write for an organization other than the unit of work's (or with no organization bound)."""

    def __init__(self, entity: str, organization_id: object, bound_organization_id: object) -> None:
        super().__init__(
            f"{entity} of organization {organization_id} cannot be written by a unit of work bound to "
            f"{bound_organization_id or 'no organization'}"
        )
        self.entity = entity
        self.organization_id = organization_id
        self.bound_organization_id = bound_organization_id


class OrganizationRepository(Protocol):
    def get(self, organization_id: uuid.UUID) -> Organization | None:
        """The bound organization (None for any other id)."""
        ...

    def update(self, organization: Organization) -> None:
        """Store every field except id, created_at and code; sets updated_at. EntityNotFound if
        absent. Organizations are never deleted: deactivate with is_active=False."""
        ...

    def change_code(self, organization_id: uuid.UUID, code: str) -> None:
        """Offboarding only: replace the sign-in code (with its pseudonym; `update` never writes
        the code). EntityNotFound if absent; DuplicateEntity if the code is taken."""
        ...

    def find_id_by_code(self, code: str) -> uuid.UUID | None:
        """*Pre-tenant* (sign-up uniqueness): the id of the organization with exactly this code."""
        ...

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
        """*Pre-tenant* (sign-up): create the organization, its first admin (role admin, e-mail
        unverified), its quota row (from the organization's defaults) and the admin's first
        password-history entry, all in this unit of work. DuplicateEntity("organization", "code")
        when the code is taken."""
        ...


class QuotaRepository(Protocol):
    def get(self, organization_id: uuid.UUID) -> OrganizationQuota | None:
        """The bound organization's quota row."""
        ...

    def get_for_update(self, organization_id: uuid.UUID) -> OrganizationQuota | None:
        """As get, and lock the row until the unit of work ends: quota checks that count then
        insert (users, jobs, storage) serialise on it, so two requests cannot both take the last
        slot."""
        ...

    def update(self, quota: OrganizationQuota) -> None:
        """Store the limits and features; sets updated_at. EntityNotFound if absent."""
        ...


class UserRepository(Protocol):
    def get(self, user_id: uuid.UUID) -> User | None: ...

    def get_by_email(self, email: str) -> User | None:
        """The bound organization's user with this e-mail, compared trimmed and case-insensitively
        (`domain.identity.entities.normalized_email`; on PostgreSQL through the blind index)."""
        ...

    def add(self, user: User) -> User:
        """Insert; returns the stored user (defaults such as created_at filled in).
        DuplicateEntity("user", "email") if the e-mail is taken in the organization (in any case,
        with or without surrounding spaces)."""
        ...

    def update(self, user: User) -> None:
        """Store every field except id, organization_id and created_at; sets updated_at.
        EntityNotFound if absent. Users are never deleted: deactivate with is_active=False."""
        ...

    def list(self, *, is_active: bool | None = None, limit: int = 100, offset: int = 0,
             order_by: str = "created_at", descending: bool = False) -> Sequence[User]:
        """The organization's users ordered by `order_by` (`USER_ORDERS`: created_at, name
        case-insensitively, or the normalized e-mail), then id; `descending` reverses both.
        ValueError for another order."""
        ...

    def count(self, *, is_active: bool | None = None) -> int: ...

    def find_login_candidate(self, organization_code: str, email: str) -> LoginCandidate | None:
        """*Pre-tenant* (login): the user with this e-mail (trimmed, case-insensitive) in the
        organization with this code, whatever the unit of work is bound to; None if either does not
        exist."""
        ...

    def add_password_history(self, user_id: uuid.UUID, password_hash: str, created_at: dt.datetime) -> None:
        """Remember a password hash of a user of the bound organization (EntityNotFound otherwise)."""
        ...

    def recent_password_hashes(self, user_id: uuid.UUID, limit: int) -> Sequence[str]:
        """The user's last `limit` password hashes, newest first."""
        ...


class SessionRepository(Protocol):
    def add(self, session: UserSession) -> UserSession:
        """Insert; DuplicateEntity("user_session", "token_hash") if the hash exists (anywhere)."""
        ...

    def get(self, session_id: uuid.UUID) -> UserSession | None: ...

    def update(self, session: UserSession) -> None:
        """Store the mutable fields (expiry, activity, rotation, revocation). EntityNotFound."""
        ...

    def delete(self, session_id: uuid.UUID) -> bool:
        """Remove one session of the bound organization; False if there was none."""
        ...

    def list_for_user(self, user_id: uuid.UUID, *, include_revoked: bool = False) -> Sequence[UserSession]:
        """The user's sessions, newest first."""
        ...

    def find_by_token_hash(self, token_hash: str) -> UserSession | None:
        """*Pre-tenant* (refresh): the session holding this refresh-token hash, in any organization."""
        ...

    def add_family(self, family: RefreshTokenFamily) -> RefreshTokenFamily: ...

    def get_family(self, family_id: uuid.UUID) -> RefreshTokenFamily | None: ...

    def revoke_family(self, family_id: uuid.UUID, at: dt.datetime, reason: str) -> int:
        """Revoke the family and every session of it not yet revoked; returns how many sessions
        were revoked. EntityNotFound if the family is not the bound organization's."""
        ...

    def delete_expired(self) -> int:
        """*System* (sweeper): delete expired or long-revoked sessions of every organization;
        returns how many. Runs with or without a bound organization."""
        ...


class UserTokenRepository(Protocol):
    """Single-use mailed tokens (`user_tokens`): invitations and password resets."""

    def add(self, token: UserToken) -> UserToken:
        """Insert; DuplicateEntity("user_token", "token_hash") if the hash exists."""
        ...

    def find_by_hash(self, purpose: str, token_hash: str) -> UserToken | None:
        """*Pre-tenant* (accepting an invitation, resetting a password): the token with this purpose
        and hash in any organization, used or not."""
        ...

    def mark_used(self, token_id: uuid.UUID, at: dt.datetime) -> bool:
        """Mark a still-unused token of the bound organization used; False if it was already used
        (or is not there): the caller refuses, so a token works once even under a race."""
        ...

    def invalidate_for_user(self, user_id: uuid.UUID, purpose: str, at: dt.datetime) -> int:
        """Mark every unused token of this purpose of the user used (a newer one replaces them)."""
        ...


class MfaRepository(Protocol):
    """TOTP replay state (`users.mfa_last_used_step`, migration 0004) and recovery codes."""

    def last_totp_step(self, user_id: uuid.UUID) -> int | None: ...

    def advance_totp_step(self, user_id: uuid.UUID, step: int) -> bool:
        """Store `step` as the last used one only if it is later than the stored one (atomically);
        False when it is not: the code was already used (a replay, maybe concurrent)."""
        ...

    def reset_totp_step(self, user_id: uuid.UUID) -> None:
        """Forget the last used step (a new secret was enrolled)."""
        ...

    def replace_recovery_codes(self, user_id: uuid.UUID, code_hashes: Sequence[str], at: dt.datetime) -> None:
        """Delete the user's recovery codes and store these (hashed) ones."""
        ...

    def unused_recovery_codes(self, user_id: uuid.UUID) -> Sequence[RecoveryCode]: ...

    def use_recovery_code(self, code_id: uuid.UUID, at: dt.datetime) -> bool:
        """Mark an unused code used; False if it was used already (by a concurrent request)."""
        ...
