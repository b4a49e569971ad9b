"""Identity entities as stored: organizations, their quotas, users, sessions and token families.

Plain dataclasses; the rules that change them (lockout, rotation, password policy) live in the
other modules of this package. Datetimes are timezone-aware UTC. `__post_init__` checks only the
invariants the database also enforces, so an in-memory adapter and PostgreSQL refuse the same
things.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

USER_ROLES = frozenset({"admin", "analyst", "auditor", "supervisor"})  # spec §1 users.role CHECK


class InvalidEntity(ValueError):
    """A value the schema would refuse; `field` names it. Over HTTP it is a 400 VALIDATION_ERROR
    (`code`, `message`, `details` below; routes/organizations.py declares the status): one that
    gets past a use case's checks is bad input, not a crash."""

    code = "VALIDATION_ERROR"

    def __init__(self, entity: str, field_name: str, message: str) -> None:
        super().__init__(f"{entity}.{field_name}: {message}")
        self.entity = entity
        self.field = field_name
        self.message = "Invalid input"
        self.details = {field_name: message}


def _require_aware(entity: str, **values: dt.datetime | None) -> None:
    for name, value in values.items():
        if value is not None and value.tzinfo is None:
            raise InvalidEntity(entity, name, "must be a timezone-aware datetime (UTC)")


def _require_length(entity: str, name: str, value: str | None, limit: int, required: bool = True) -> None:
    if value is None:
        if required:
            raise InvalidEntity(entity, name, "is required")
        return
    if required and not value.strip():
        raise InvalidEntity(entity, name, "must not be empty")
    if len(value) > limit:
        raise InvalidEntity(entity, name, f"is longer than {limit} characters")


# What ends a line for a mail header (CR, LF) or a log viewer (str.splitlines: VT, FF, FS, GS, RS,
# NEL, U+2028, U+2029). Names that reach mail headers or log lines refuse all of them.
LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
LINE_BREAK_MESSAGE = "must be one line: no CR, LF or other line break"


def has_line_break(text: str) -> bool:
    return not LINE_BREAKS.isdisjoint(text)


def normalized_email(email: str) -> str:
    """What sign-in and the one-address-per-organization rule compare: the address trimmed and
    lower-cased. Stored encrypted, an address is found through the blind index of this form."""
    return email.strip().lower()


# How a list of users may be ordered: created_at in SQL; name and e-mail, stored encrypted, are
# sorted after decryption (docs/privacy.md, "Listing users by name or e-mail").
USER_ORDERS = ("created_at", "name", "email")


def user_sort_text(order_by: str, value: str) -> str:
    """How a name (case-insensitively) or an address (as sign-in compares it) sorts."""
    return normalized_email(value) if order_by == "email" else value.casefold()


def user_sort_key(order_by: str) -> Callable[[User], tuple[Any, ...]]:
    """The key that orders users by `order_by` (one of USER_ORDERS), ties broken by id."""
    if order_by == "name":
        return lambda user: (user_sort_text("name", user.name), str(user.id))
    if order_by == "email":
        return lambda user: (user_sort_text("email", user.email), str(user.id))
    if order_by == "created_at":
        return lambda user: (user.created_at or _EPOCH, str(user.id))
    raise ValueError(f"users cannot be ordered by {order_by!r}; one of {', '.join(USER_ORDERS)}")


_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass
class Organization:
    id: uuid.UUID
    name: str
    code: str
    domain: str | None = None
    subscription_tier: str = "standard"
    max_users: int = 10
    max_storage_gb: int = 100
    is_active: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    created_by: uuid.UUID | None = None

    def __post_init__(self) -> None:
        _require_length("organization", "name", self.name, 255)
        _require_length("organization", "code", self.code, 50)
        _require_length("organization", "domain", self.domain, 255, required=False)
        _require_length("organization", "subscription_tier", self.subscription_tier, 50)
        _require_aware("organization", created_at=self.created_at, updated_at=self.updated_at)


@dataclass
class OrganizationQuota:
    """Spec §3.2: the source of truth for an organization's limits."""

    organization_id: uuid.UUID
    max_users: int = 10
    max_storage_gb: int = 100
    max_jobs_per_month: int = 1000
    max_file_size_mb: int = 100
    features: dict[str, Any] = field(default_factory=dict)
    updated_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        for name in ("max_users", "max_storage_gb", "max_jobs_per_month", "max_file_size_mb"):
            if getattr(self, name) < 0:
                raise InvalidEntity("organization_quota", name, "must not be negative")
        _require_aware("organization_quota", updated_at=self.updated_at)


@dataclass
class User:
    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    password_hash: str
    name: str
    role: str
    is_active: bool = True
    is_email_verified: bool = False
    mfa_enabled: bool = False
    mfa_secret: str | None = None  # encrypted by the application before it gets here
    last_login_at: dt.datetime | None = None
    password_changed_at: dt.datetime | None = None
    failed_login_attempts: int = 0
    locked_until: dt.datetime | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    created_by: uuid.UUID | None = None
    token_version: int = 0
    # Who last changed the account's role, activation or e-mail, or reset its password or MFA as an
    # administrator, and when: a user may not check that person's requests for a while
    # (domain/approvals/separation.py).
    last_changed_by: uuid.UUID | None = None
    last_changed_at: dt.datetime | None = None

    def changed_by(self, actor: uuid.UUID | None, at: dt.datetime) -> None:
        self.last_changed_by, self.last_changed_at = actor, at

    # Sign-in failures per source (client address), as password_policy.sources_to_json writes them.
    login_sources: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_length("user", "email", self.email, 255)
        _require_length("user", "name", self.name, 255)
        _require_length("user", "password_hash", self.password_hash, 255)
        _require_length("user", "mfa_secret", self.mfa_secret, 255, required=False)
        if self.role not in USER_ROLES:
            raise InvalidEntity("user", "role", f"must be one of {', '.join(sorted(USER_ROLES))}")
        if self.failed_login_attempts < 0:
            raise InvalidEntity("user", "failed_login_attempts", "must not be negative")
        _require_aware(
            "user",
            last_login_at=self.last_login_at,
            password_changed_at=self.password_changed_at,
            locked_until=self.locked_until,
            created_at=self.created_at,
            updated_at=self.updated_at,
            last_changed_at=self.last_changed_at,
        )


@dataclass
class RefreshTokenFamily:
    """All refresh tokens descending from one login; revoked as a whole on reuse or logout."""

    id: uuid.UUID
    organization_id: uuid.UUID
    user_id: uuid.UUID
    absolute_expires_at: dt.datetime
    created_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    revoked_reason: str | None = None

    def __post_init__(self) -> None:
        _require_length("refresh_token_family", "revoked_reason", self.revoked_reason, 50, required=False)
        _require_aware(
            "refresh_token_family",
            absolute_expires_at=self.absolute_expires_at,
            created_at=self.created_at,
            revoked_at=self.revoked_at,
        )


@dataclass
class UserSession:
    """One refresh token (only its hash) and the device it was issued to."""

    id: uuid.UUID
    organization_id: uuid.UUID
    user_id: uuid.UUID
    token_hash: str
    expires_at: dt.datetime
    family_id: uuid.UUID | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    fingerprint_hash: str | None = None
    absolute_expires_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    last_activity_at: dt.datetime | None = None
    rotated_at: dt.datetime | None = None
    replaced_by: uuid.UUID | None = None
    revoked_at: dt.datetime | None = None
    revoked_reason: str | None = None

    def __post_init__(self) -> None:
        _require_length("user_session", "token_hash", self.token_hash, 255)
        _require_length("user_session", "fingerprint_hash", self.fingerprint_hash, 128, required=False)
        _require_length("user_session", "revoked_reason", self.revoked_reason, 50, required=False)
        _require_aware(
            "user_session",
            expires_at=self.expires_at,
            absolute_expires_at=self.absolute_expires_at,
            created_at=self.created_at,
            last_activity_at=self.last_activity_at,
            rotated_at=self.rotated_at,
            revoked_at=self.revoked_at,
        )


@dataclass(frozen=True)
class LoginCandidate:
    """What login needs before the tenant is known: found by organization code and e-mail."""

    user: User
    organization_is_active: bool


@dataclass(frozen=True)
class NewOrganization:
    """Sign-up result: the organization and its first admin, created together."""

    organization_id: uuid.UUID
    admin_user_id: uuid.UUID


USER_TOKEN_PURPOSES = frozenset({"invitation", "password_reset", "email_verification"})


@dataclass
class UserToken:
    """A single-use mailed token (invitation, password reset); only its SHA-256 is stored."""

    id: uuid.UUID
    organization_id: uuid.UUID
    user_id: uuid.UUID
    purpose: str
    token_hash: str
    expires_at: dt.datetime
    used_at: dt.datetime | None = None
    created_by: uuid.UUID | None = None
    created_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.purpose not in USER_TOKEN_PURPOSES:
            raise InvalidEntity("user_token", "purpose", f"must be one of {', '.join(sorted(USER_TOKEN_PURPOSES))}")
        _require_length("user_token", "token_hash", self.token_hash, 255)
        _require_aware("user_token", expires_at=self.expires_at, used_at=self.used_at, created_at=self.created_at)

    def usable(self, now: dt.datetime) -> bool:
        return self.used_at is None and now < self.expires_at


@dataclass(frozen=True)
class RecoveryCode:
    """One unused MFA recovery code: its id and salted hash."""

    id: uuid.UUID
    code_hash: str
