"""Who is calling: an access token checked against the current state of its user.

Checked on every request, in this order: the token itself (signature by `kid`, algorithm, `aud`,
`iss`, `typ`, `exp`, claims), the blacklist (logout), then the user and the organization as they
are *now*: both active, the user's token version equal to the token's (deactivation, role
change and password change bump it), and the token's session (`sid`, its refresh-token family)
neither revoked (logout, DELETE /api/sessions/:id, refresh-token reuse) nor past its absolute end.
So a revoked token dies at once rather than in 15 minutes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reckai.application.errors import ServiceUnavailable, Unauthenticated
from reckai.application.identity.common import IdentityServices
from reckai.application.ports.security import TokenBlacklistUnavailable, TokenExpired, TokenInvalid
from reckai.domain.identity.permissions import permissions_for
from reckai.domain.identity.principal import Principal
from reckai.domain.identity.tokens import token_is_current


@dataclass(frozen=True)
class AuthenticatedCaller:
    principal: Principal
    password_expired: bool
    access_expires_at: dt.datetime
    # The organization's stored settings as read for this request (its rate-limit overrides).
    organization_settings: Mapping[str, Any] = field(default_factory=dict)


def authenticate_access_token(services: IdentityServices, token: str) -> AuthenticatedCaller:
    try:
        claims = services.token_service.decode_access_token(token)
    except TokenExpired:
        raise Unauthenticated("Access token expired", reason="token_expired") from None
    except TokenInvalid as exc:
        raise Unauthenticated("Invalid access token", reason=f"token_invalid: {exc.reason}") from None
    try:
        if services.token_blacklist.is_revoked(claims.jti):
            raise Unauthenticated("Access token revoked", reason="token_revoked")
    except TokenBlacklistUnavailable:
        # Fail closed: a revocation we cannot check is not ignored.
        raise ServiceUnavailable("token_blacklist", "token revocation cannot be checked") from None
    try:
        organization_id, user_id = uuid.UUID(claims.org), uuid.UUID(claims.sub)
        session_id = uuid.UUID(claims.sid)
    except ValueError:
        raise Unauthenticated("Invalid access token", reason="token_invalid: ids") from None
    with services.database.unit_of_work(organization_id) as uow:
        organization = uow.organizations.get(organization_id)
        if organization is None or not organization.is_active:
            # Before the user is read: an offboarded organization's users no longer decrypt.
            raise Unauthenticated("Access token revoked", reason="organization_inactive")
        user = uow.users.get(user_id)
        # A primary-key read in the transaction already open: the revocation is seen by every API
        # process at once, with no second store (docs/identity.md, "Session revocation").
        session = uow.sessions.get_family(session_id)
    if user is None or not user.is_active or user.organization_id != organization_id:
        raise Unauthenticated("Access token revoked", reason="user_inactive")
    if not token_is_current(claims, user.token_version):
        raise Unauthenticated("Access token revoked", reason="token_version")
    if (session is None or session.user_id != user.id or session.revoked_at is not None
            or session.absolute_expires_at <= services.now()):
        raise Unauthenticated("Access token revoked", reason="session_revoked")
    principal = Principal(
        user_id=user.id,
        organization_id=organization_id,
        role=user.role,
        permissions=permissions_for(user.role),
        session_id=session_id,
        token_id=claims.jti,
        email=user.email,
        email_verified=bool(user.is_email_verified),
    )
    return AuthenticatedCaller(
        principal=principal,
        password_expired=services.password_expired(user, organization),
        access_expires_at=claims.expires_at,
        organization_settings=dict(organization.settings or {}),
    )
