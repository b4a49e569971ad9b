"""Redis access-token blacklist: `SET reckai:revoked-jti:<jti> 1 PX <ms until exp>`.

Redis drops each entry when its token would have expired anyway, so the set stays as small as the
number of tokens revoked in the last 15 minutes. Unreachable Redis raises TokenBlacklistUnavailable
and the caller refuses the token (fail closed, docs/identity.md).
"""

from __future__ import annotations

import datetime as dt
import math

import redis

from reckai.application.ports.security import TokenBlacklist, TokenBlacklistUnavailable

KEY_PREFIX = "reckai:revoked-jti"


class RedisTokenBlacklist:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def revoke(self, jti: str, expires_at: dt.datetime) -> None:
        remaining_ms = math.ceil((expires_at - dt.datetime.now(dt.UTC)).total_seconds() * 1000)
        if remaining_ms <= 0:
            return
        try:
            # GT would be ideal (never shorten), but an entry's expiry is the token's exp: the same
            # jti always comes with the same exp, so a plain SET is correct.
            self._client.set(_key(jti), b"1", px=remaining_ms)
        except redis.RedisError as exc:
            raise TokenBlacklistUnavailable(f"token blacklist unreachable: {type(exc).__name__}") from exc

    def is_revoked(self, jti: str) -> bool:
        try:
            return bool(self._client.exists(_key(jti)))
        except redis.RedisError as exc:
            raise TokenBlacklistUnavailable(f"token blacklist unreachable: {type(exc).__name__}") from exc


def _key(jti: str) -> str:
    return f"{KEY_PREFIX}:{jti}"


_check: type[TokenBlacklist] = RedisTokenBlacklist
