"""Redis rate limiter: a sliding log in a sorted set, checked and updated by one Lua script.

The script runs atomically on the server, so any number of API processes and servers share one
exact count; the time comes from the Redis server (`TIME`), so clock differences between app
servers do not matter. Keys are `reckai:rl:<tier>:<sha256(subject)>`: IPs and e-mail addresses
never appear in Redis, and each tier has its own keys. Each key expires one window after its last
hit.

When Redis cannot be reached the tier's failure policy decides (ports/rate_limit.py); the failure
is logged, counted in `store_failures` (per tier, for tests and /metrics) and in the OpenTelemetry
counter `reckai.rate_limit.store_failures`.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import math
import uuid

import redis
from opentelemetry import metrics

from reckai.application.ports.rate_limit import (
    RateLimitDecision,
    RateLimiter,
    RateLimitStoreUnavailable,
    RateLimitTier,
)

logger = logging.getLogger(__name__)
_meter = metrics.get_meter("reckai.rate_limit")
_failure_counter = _meter.create_counter(
    "reckai.rate_limit.store_failures", description="rate-limit decisions taken without the store"
)

KEY_PREFIX = "reckai:rl"
# A refused request during a store outage is told to come back after this long.
DEGRADED_RETRY_AFTER_SECONDS = 5

# KEYS[1] the key; ARGV[1] limit, ARGV[2] window in ms, ARGV[3] a unique member for this hit.
# Returns {allowed (0|1), remaining, retry_after_us}.
_SLIDING_LOG = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window_us = tonumber(ARGV[2]) * 1000
local limit = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window_us)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, 0, tonumber(oldest[2]) + window_us - now}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, limit - count - 1, 0}
"""


def connect(url: str, timeout_seconds: float = 0.5) -> redis.Redis:
    """A client with short timeouts: a stalled Redis must not stall every request behind it."""
    return redis.Redis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds)


class RedisRateLimiter:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._script = client.register_script(_SLIDING_LOG)
        self.store_failures: collections.Counter[str] = collections.Counter()

    def hit(self, tier: RateLimitTier, subject: str) -> RateLimitDecision:
        hit_id = uuid.uuid4().hex  # the sorted set's member: what `release` removes
        try:
            allowed, remaining, retry_us = self._script(
                keys=[_key(tier, subject)],
                args=[tier.limit, tier.window_seconds * 1000, hit_id],
            )
        except redis.RedisError as exc:
            return self._degraded(tier, exc)
        if allowed:
            return RateLimitDecision(
                allowed=True, limit=tier.limit, remaining=int(remaining), retry_after_seconds=0, hit_id=hit_id
            )
        retry = max(1, math.ceil(int(retry_us) / 1_000_000))
        return RateLimitDecision(allowed=False, limit=tier.limit, remaining=0, retry_after_seconds=retry)

    def release(self, tier: RateLimitTier, subject: str, hit_id: str) -> None:
        try:
            self._client.zrem(_key(tier, subject), hit_id)
        except redis.RedisError as exc:
            # The hit stays counted: the safe side. Logged and counted like any store failure.
            self.store_failures[tier.name] += 1
            _failure_counter.add(1, {"tier": tier.name, "fail_open": tier.fail_open})
            logger.warning("rate-limit store unreachable (%s); a refused request's %s hit stays counted",
                           type(exc).__name__, tier.name)

    def reset(self, tier: RateLimitTier, subject: str) -> None:
        try:
            self._client.delete(_key(tier, subject))
        except redis.RedisError as exc:
            raise RateLimitStoreUnavailable(f"rate-limit store unreachable: {type(exc).__name__}") from exc

    def _degraded(self, tier: RateLimitTier, exc: Exception) -> RateLimitDecision:
        self.store_failures[tier.name] += 1
        _failure_counter.add(1, {"tier": tier.name, "fail_open": tier.fail_open})
        logger.warning(
            "rate-limit store unreachable (%s); tier %s fails %s",
            type(exc).__name__,
            tier.name,
            "open" if tier.fail_open else "closed",
        )
        if tier.fail_open:
            return RateLimitDecision(
                allowed=True, limit=tier.limit, remaining=0, retry_after_seconds=0, degraded=True
            )
        return RateLimitDecision(
            allowed=False,
            limit=tier.limit,
            remaining=0,
            retry_after_seconds=DEGRADED_RETRY_AFTER_SECONDS,
            degraded=True,
        )


def _key(tier: RateLimitTier, subject: str) -> str:
    return f"{KEY_PREFIX}:{tier.name}:{hashlib.sha256(subject.encode('utf-8')).hexdigest()}"


_check: type[RateLimiter] = RedisRateLimiter
