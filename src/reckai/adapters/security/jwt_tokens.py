"""Access tokens as HS256 JWTs (PyJWT) signed from a key ring.

The ring holds several keys by `kid`; one is active and signs, all verify. Rotation: add the new
key as active and keep the old one as retired for at least the access-token lifetime (15 minutes),
then drop it. The header's `alg` must be HS256 and its `kid` must be in the ring: `none`, RS/HS
confusion and unknown keys are refused before any signature is computed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import jwt

from reckai.application.ports.security import IssuedAccessToken, TokenExpired, TokenInvalid, TokenService
from reckai.domain.identity.permissions import UnknownRole, parse_role, permissions_for
from reckai.domain.identity.tokens import (
    ACCESS_TOKEN_LIFETIME,
    ACCESS_TOKEN_TYPE,
    DEFAULT_AUDIENCE,
    DEFAULT_ISSUER,
    AccessClaims,
)

ALGORITHM = "HS256"
MIN_KEY_BYTES = 32  # RFC 7518 §3.2: an HS256 key must be at least 256 bits
# Clock difference tolerated between the server that issued a token and the one checking it.
CLOCK_SKEW_SECONDS = 30
_REQUIRED = ("sub", "org", "role", "permissions", "iat", "exp", "jti", "ver", "sid", "typ", "aud", "iss")


class JwtKeyRing:
    def __init__(self, keys: Mapping[str, str | bytes], active_kid: str) -> None:
        if active_kid not in keys:
            raise ValueError(f"active JWT key id {active_kid!r} is not in the key ring")
        ring: dict[str, bytes] = {}
        for kid, secret in keys.items():
            raw = secret.encode("utf-8") if isinstance(secret, str) else secret
            if not kid or len(raw) < MIN_KEY_BYTES:
                raise ValueError(f"JWT key {kid!r} must have an id and at least {MIN_KEY_BYTES} bytes")
            ring[kid] = raw
        self._keys = ring
        self.active_kid = active_kid

    @property
    def active_key(self) -> bytes:
        return self._keys[self.active_kid]

    def key(self, kid: str) -> bytes | None:
        return self._keys.get(kid)


class JwtTokenService:
    def __init__(
        self,
        key_ring: JwtKeyRing,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ring = key_ring
        self._issuer = issuer
        self._audience = audience
        self._clock = clock

    def issue_access_token(
        self, *, user_id: str, organization_id: str, role: str, token_version: int, session_id: str
    ) -> IssuedAccessToken:
        now = int(self._clock())
        claims = AccessClaims(
            sub=str(user_id),
            org=str(organization_id),
            role=parse_role(role).value,
            permissions=tuple(sorted(permissions_for(role))),
            iat=now,
            exp=now + int(ACCESS_TOKEN_LIFETIME.total_seconds()),
            jti=uuid.uuid4().hex,
            ver=token_version,
            sid=str(session_id),
            typ=ACCESS_TOKEN_TYPE,
            aud=self._audience,
            iss=self._issuer,
        )
        payload = {name: getattr(claims, name) for name in _REQUIRED}
        payload["permissions"] = list(claims.permissions)
        token = jwt.encode(
            payload, self._ring.active_key, algorithm=ALGORITHM, headers={"kid": self._ring.active_kid}
        )
        return IssuedAccessToken(token=token, claims=claims)

    def decode_access_token(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenInvalid("malformed") from exc
        if header.get("alg") != ALGORITHM:
            raise TokenInvalid("unexpected algorithm")
        kid = header.get("kid")
        key = self._ring.key(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenInvalid("unknown key id")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                # exp/iat are checked below against the injected clock.
                options={
                    "require": list(_REQUIRED),
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidAudienceError as exc:
            raise TokenInvalid("wrong audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenInvalid("wrong issuer") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise TokenInvalid(f"missing claim {exc.claim}") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenInvalid("bad signature") from exc
        except jwt.PyJWTError as exc:
            raise TokenInvalid("malformed") from exc
        return self._claims(payload)

    def _claims(self, payload: dict[str, Any]) -> AccessClaims:
        if payload.get("typ") != ACCESS_TOKEN_TYPE:
            raise TokenInvalid("not an access token")
        for name in ("iat", "exp", "ver"):
            if isinstance(payload[name], bool) or not isinstance(payload[name], int):
                raise TokenInvalid(f"claim {name} is not an integer")
        for name in ("sub", "org", "role", "jti", "sid"):
            if not isinstance(payload[name], str) or not payload[name]:
                raise TokenInvalid(f"claim {name} is not a string")
        permissions = payload["permissions"]
        if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
            raise TokenInvalid("claim permissions is not a list of names")
        try:
            parse_role(payload["role"])
        except UnknownRole as exc:
            raise TokenInvalid("unknown role") from exc
        now = self._clock()
        if now >= payload["exp"]:
            raise TokenExpired()
        if payload["iat"] > now + CLOCK_SKEW_SECONDS or payload["exp"] <= payload["iat"]:
            raise TokenInvalid("issued in the future")
        return AccessClaims(
            sub=payload["sub"],
            org=payload["org"],
            role=payload["role"],
            permissions=tuple(permissions),
            iat=payload["iat"],
            exp=payload["exp"],
            jti=payload["jti"],
            ver=payload["ver"],
            sid=payload["sid"],
            typ=payload["typ"],
            aud=payload["aud"] if isinstance(payload["aud"], str) else self._audience,
            iss=payload["iss"],
        )


_check: type[TokenService] = JwtTokenService
