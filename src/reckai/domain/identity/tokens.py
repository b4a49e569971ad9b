"""Token rules: lifetimes, access-token claims, opaque refresh tokens and the refresh decision.

Access tokens are JWTs (signed by the token service adapter); refresh tokens are opaque random
strings of which only the SHA-256 is stored (`user_sessions.token_hash`). A refresh rotates the
token; presenting an already-rotated token after the grace window is treated as theft and revokes
the whole family (OAuth 2.0 Security BCP §4.14). docs/identity.md, "Refresh rotation", explains the
states and the grace window.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from enum import Enum

ACCESS_TOKEN_LIFETIME = dt.timedelta(minutes=15)  # spec §2.1
REFRESH_TOKEN_LIFETIME = dt.timedelta(days=7)  # spec §2.1
# A session (a token family) ends this long after the login that started it, whatever the
# rotations: ASVS 3.3.2 (level 2) asks for re-authentication at least every 30 days.
SESSION_ABSOLUTE_LIFETIME = dt.timedelta(days=30)
# A refresh with the token rotated less than this long ago gets the same successor back instead of
# revoking the family: two tabs refreshing at once, or a response lost on a flaky network.
REFRESH_GRACE = dt.timedelta(seconds=15)

ACCESS_TOKEN_TYPE = "access"
DEFAULT_ISSUER = "reckai"
DEFAULT_AUDIENCE = "reckai-api"


@dataclass(frozen=True)
class AccessClaims:
    """The claims of an access token (spec §2.1 plus typ/aud/iss, the token version and the session)."""

    sub: str  # user id
    org: str  # organization id
    role: str
    permissions: tuple[str, ...]  # names as spec §2.2: "reconciliations:read"
    iat: int
    exp: int
    jti: str
    ver: int  # the user's token version when issued; a bump revokes every live token at once
    sid: str  # the session (refresh-token family) it was issued for; revoking the session ends it
    typ: str = ACCESS_TOKEN_TYPE
    aud: str = DEFAULT_AUDIENCE
    iss: str = DEFAULT_ISSUER

    @property
    def expires_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.exp, tz=dt.UTC)


def token_is_current(claims: AccessClaims, user_token_version: int) -> bool:
    """Deactivation, role change and password change bump the user's version: older tokens die."""
    return claims.ver == user_token_version


# --- refresh tokens -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewRefreshToken:
    token: str  # give to the client once; never stored
    token_hash: str  # store this


def new_refresh_token() -> NewRefreshToken:
    token = secrets.token_urlsafe(32)
    return NewRefreshToken(token=token, token_hash=hash_refresh_token(token))


def hash_refresh_token(token: str) -> str:
    """SHA-256 hex. A fast hash is right here: the token has 256 bits of entropy."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def refresh_expiry(session_started_at: dt.datetime, now: dt.datetime) -> dt.datetime:
    """Expiry of a refresh token issued now: 7 days, never past the session's absolute end."""
    return min(now + REFRESH_TOKEN_LIFETIME, session_started_at + SESSION_ABSOLUTE_LIFETIME)


class RefreshTokenStatus(str, Enum):
    ACTIVE = "active"  # the newest token of its family
    ROTATED = "rotated"  # exchanged for a successor at `rotated_at`
    REVOKED = "revoked"  # logout, password change, admin action or detected reuse


@dataclass(frozen=True)
class RefreshTokenState:
    """What the store knows about the presented refresh token (found by its hash)."""

    status: RefreshTokenStatus
    expires_at: dt.datetime
    session_started_at: dt.datetime
    rotated_at: dt.datetime | None = None
    # Is the token that replaced this one still active? (Needed to hand it back in the grace window.)
    successor_active: bool = False


class RefreshDecision(str, Enum):
    ROTATE = "rotate"  # issue a new pair; mark this token rotated
    RETURN_SAME_SUCCESSOR = "return_same_successor"  # grace window: answer with the pair already issued
    REVOKE_FAMILY = "revoke_family"  # reuse detected: revoke every token of the session, audit, 401
    REJECT = "reject"  # 401, nothing changes (unknown, expired, revoked, other device)


def decide_refresh(
    state: RefreshTokenState | None,
    now: dt.datetime,
    *,
    fingerprint_matches: bool = True,
    grace: dt.timedelta = REFRESH_GRACE,
) -> RefreshDecision:
    """What to do with a presented refresh token.

    Order matters: reuse of a rotated token past the grace window revokes the family even from
    another device (it is the strongest signal of theft); otherwise a fingerprint mismatch is
    refused without changing anything.
    """
    if state is None or state.status is RefreshTokenStatus.REVOKED:
        return RefreshDecision.REJECT
    if now >= state.session_started_at + SESSION_ABSOLUTE_LIFETIME:
        return RefreshDecision.REJECT
    if state.status is RefreshTokenStatus.ROTATED:
        rotated_at = state.rotated_at
        within_grace = rotated_at is not None and rotated_at <= now < rotated_at + grace
        if not within_grace:
            return RefreshDecision.REVOKE_FAMILY
        if not fingerprint_matches or not state.successor_active:
            return RefreshDecision.REJECT
        return RefreshDecision.RETURN_SAME_SUCCESSOR
    if now >= state.expires_at or not fingerprint_matches:
        return RefreshDecision.REJECT
    return RefreshDecision.ROTATE
