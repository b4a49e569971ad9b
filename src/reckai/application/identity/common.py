"""What every identity use case shares: the ports it needs, the request facts it records, and
small steps (rate limits, audit events, password checks, issuing a session).

`IdentityServices` is built by the entrypoint from the composition root; the clock is injectable
so lockout, expiry and token lifetimes can be tested without waiting.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from reckai.application.context import Outcome, RequestInfo, audit_event
from reckai.application.errors import FieldError, RateLimited, ServiceUnavailable, ValidationFailed
from reckai.application.identity.errors import WeakPassword
from reckai.application.ports.audit import AuditLog
from reckai.application.ports.clock import Clock
from reckai.application.ports.jobs import JobQueue
from reckai.application.ports.mail import Mailer
from reckai.application.ports.rate_limit import TIERS, RateLimiter, RateLimits, RateLimitTier
from reckai.application.ports.security import (
    CommonPasswordChecker,
    PasswordHasher,
    SecretBox,
    TokenBlacklist,
    TokenService,
    Totp,
)
from reckai.application.ports.unit_of_work import Database, UnitOfWork
from reckai.domain.audit.events import AuditEvent
from reckai.domain.identity.entities import (
    LINE_BREAK_MESSAGE,
    Organization,
    RefreshTokenFamily,
    User,
    UserSession,
    has_line_break,
)
from reckai.domain.identity.password_policy import (
    DEFAULT_POLICY,
    PasswordPolicy,
    PolicyLoosened,
    UserFacts,
    check_password,
    password_expired,
)
from reckai.domain.identity.tokens import (
    ACCESS_TOKEN_LIFETIME,
    SESSION_ABSOLUTE_LIFETIME,
    hash_refresh_token,
    new_refresh_token,
    refresh_expiry,
)
from reckai.domain.settings_registry import OperatorValues

logger = logging.getLogger("reckai.identity")


class EventSubject(TypedDict, total=False):
    """The keyword arguments several events of one use case share (`services.event(..., **subject)`)."""

    organization_id: uuid.UUID | None
    user_id: uuid.UUID | None
    resource_type: str | None
    resource_id: uuid.UUID | None


@dataclass(frozen=True)
class IdentityServices:
    database: Database[UnitOfWork]
    audit_log: AuditLog
    password_hasher: PasswordHasher
    common_password_checker: CommonPasswordChecker
    token_service: TokenService
    token_blacklist: TokenBlacklist
    secret_box: SecretBox
    totp: Totp
    rate_limiter: RateLimiter
    mailer: Mailer
    refresh_successor_key: bytes
    clock: Clock
    job_queue: JobQueue
    allow_public_signup: bool = True
    public_base_url: str = "http://127.0.0.1:8000"
    totp_issuer: str = "ReckAI"
    # The operator's values of the registered settings (domain/settings_registry.py).
    operator_settings: OperatorValues = field(default_factory=OperatorValues)

    def now(self) -> dt.datetime:
        return self.clock()

    # --- rate limits --------------------------------------------------------------------------

    @property
    def rate_limits(self) -> RateLimits:
        return RateLimits(self.operator_settings)

    @property
    def tiers(self) -> Mapping[str, RateLimitTier]:
        """The tiers with the operator's limits (an organization may override some: `limit`)."""
        return {name: self.rate_limits.tier(name) for name in TIERS}

    def limit(self, tier_name: str, subject: str, organization_settings: Mapping[str, Any] | None = None) -> str | None:
        """Count one hit under the limit the settings give (the organization's, when it overrides
        the tier); RateLimited (429) when over, ServiceUnavailable (503) when the store is down and
        the tier fails closed (docs/identity.md, "Rate limits"). Returns the hit's id for
        `release` (None when nothing was counted)."""
        tier = self.rate_limits.tier(tier_name, organization_settings)
        decision = self.rate_limiter.hit(tier, subject)
        if decision.allowed:
            return decision.hit_id
        if decision.degraded:
            raise ServiceUnavailable("rate_limiter", "rate limit store unavailable; retry shortly")
        raise RateLimited(decision.retry_after_seconds, limit_name=tier_name)

    def release(self, tier_name: str, subject: str, hit_id: str) -> None:
        """Give back a hit `limit` counted for a request that was then refused."""
        self.rate_limiter.release(TIERS[tier_name], subject, hit_id)

    # --- audit ----------------------------------------------------------------------------------

    def event(
        self,
        action: str,
        request: RequestInfo,
        *,
        organization_id: uuid.UUID | None = None,
        user_id: uuid.UUID | None = None,
        resource_type: str | None = None,
        resource_id: uuid.UUID | None = None,
        outcome: Outcome | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AuditEvent:
        """An identity audit event (the one builder, application/context.py); metadata is never null."""
        return audit_event(action, request, organization_id=organization_id, user_id=user_id,
                           resource_type=resource_type, resource_id=resource_id, outcome=outcome,
                           metadata=dict(metadata or {}))

    # --- passwords ------------------------------------------------------------------------------

    def policy_for(self, organization: Organization | None) -> PasswordPolicy:
        if organization is None:
            return DEFAULT_POLICY
        try:
            return PasswordPolicy.from_organization_settings(organization.settings or {})
        except PolicyLoosened:
            # Stored settings are validated on write; a bad stored value falls back to the
            # platform's floor, never to something weaker.
            logger.warning("organization %s has an invalid stored password policy", organization.id)
            return DEFAULT_POLICY

    def require_acceptable_password(
        self,
        password: str,
        policy: PasswordPolicy,
        *,
        email: str,
        name: str,
        history: Sequence[str] = (),
        field_name: str = "password",
    ) -> None:
        violations = check_password(
            password,
            policy,
            user=UserFacts(email=email, name=name),
            max_bytes=self.password_hasher.max_password_bytes,
            is_common=self.common_password_checker.is_common,
            history=history,
            verify=self.password_hasher.verify,
            field=field_name,
        )
        if violations:
            raise WeakPassword(FieldError(v.field, v.message) for v in violations)

    def password_expired(self, user: User, organization: Organization | None) -> bool:
        return password_expired(user.password_changed_at, self.now(), self.policy_for(organization))

    # --- refresh tokens -------------------------------------------------------------------------

    def successor_token(self, refresh_token: str) -> str:
        """The token that replaces `refresh_token` at rotation: HMAC-SHA256 of it under a server
        key. Deterministic, so a concurrent refresh inside the grace window can be answered with
        the same successor without storing any plaintext (docs/identity.md, "Grace window")."""
        digest = hmac.new(self.refresh_successor_key, refresh_token.encode("utf-8"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    access_expires_at: dt.datetime
    refresh_token: str
    refresh_expires_at: dt.datetime
    session_id: uuid.UUID
    token_type: str = "Bearer"

    @property
    def expires_in(self) -> int:
        return int(ACCESS_TOKEN_LIFETIME.total_seconds())


def require_single_line(**names: str | None) -> None:
    """Names that go into mail headers and log lines (a user's name, an organization's) are one
    line: a CR or LF would let them write a header or a log line of their own. ValidationFailed
    naming each offending field; None (not given) passes."""
    problems = [FieldError(field_name, LINE_BREAK_MESSAGE) for field_name, value in names.items()
                if value is not None and has_line_break(value)]
    if problems:
        raise ValidationFailed(problems)


def issue_access(services: IdentityServices, user: User, session_id: uuid.UUID) -> Any:
    """An access token of `user` for the session (token family) `session_id`: revoking the session
    ends it at once (authenticate.py)."""
    return services.token_service.issue_access_token(
        user_id=str(user.id),
        organization_id=str(user.organization_id),
        role=user.role,
        token_version=user.token_version,
        session_id=str(session_id),
    )


def start_session(services: IdentityServices, uow: UnitOfWork, user: User, request: RequestInfo) -> TokenPair:
    """A new login: a token family with its absolute end, the first refresh token (only its hash
    stored) bound to the device fingerprint, and an access token."""
    now = services.now()
    family = uow.sessions.add_family(
        RefreshTokenFamily(
            id=uuid.uuid4(),
            organization_id=user.organization_id,
            user_id=user.id,
            absolute_expires_at=now + SESSION_ABSOLUTE_LIFETIME,
            created_at=now,
        )
    )
    refresh = new_refresh_token()
    session = uow.sessions.add(
        UserSession(
            id=uuid.uuid4(),
            organization_id=user.organization_id,
            user_id=user.id,
            token_hash=refresh.token_hash,
            expires_at=refresh_expiry(now, now),
            family_id=family.id,
            ip_address=request.ip_address,
            user_agent=(request.user_agent or "")[:1024] or None,
            fingerprint_hash=request.fingerprint,
            absolute_expires_at=family.absolute_expires_at,
            created_at=now,
            last_activity_at=now,
        )
    )
    access = issue_access(services, user, family.id)
    return TokenPair(
        access_token=access.token,
        access_expires_at=access.claims.expires_at,
        refresh_token=refresh.token,
        refresh_expires_at=session.expires_at,
        session_id=family.id,
    )


def revoke_all_sessions(uow: UnitOfWork, user_id: uuid.UUID, at: dt.datetime, reason: str) -> int:
    families = {s.family_id for s in uow.sessions.list_for_user(user_id) if s.family_id is not None}
    return sum(uow.sessions.revoke_family(family_id, at, reason) for family_id in families)


__all__ = ["IdentityServices", "RequestInfo", "TokenPair", "hash_refresh_token", "start_session"]
