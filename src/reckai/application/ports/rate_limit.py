"""Rate limiting (spec §2.4): the tier table and the limiter port.

Every tier has its own keys, so a user's API calls never eat into their upload allowance, and the
two authentication tiers are separate (one per client IP, one per account). The window is a
sliding log: at most `limit` allowed hits in any `window_seconds` interval, and refused hits are
not counted (a client hammering while refused is let in again as soon as the window allows).

Failure policy when the store (Redis) is unreachable, decided per tier (STYLE habit 7):
- auth tiers fail CLOSED: brute-force protection is a security control; the caller answers 503
  with Retry-After.
- api fails OPEN: every request is still authenticated and authorized; only throttling is lost.
- upload and report fail CLOSED: expensive work whose jobs need the same Redis anyway.
Each failure is logged and counted (metric `reckai.rate_limit.store_failures`, attribute tier).

Adapters: `adapters.redis.rate_limit` (one Lua script: atomic across processes and servers, time
from the Redis server) and `adapters.memory.rate_limit` (one process). Same contract tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol


@dataclass(frozen=True)
class RateLimitTier:
    name: str
    limit: int
    window_seconds: int
    subject: str  # what the key is per: documentation, and a check on callers
    fail_open: bool

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_seconds <= 0:
            raise ValueError(f"rate limit tier {self.name!r} needs a positive limit and window")


# Sign-ins per minute from one client address: a setting (AUTH_IP_LIMIT_PER_MINUTE). The spec's 5
# stopped six people behind one office NAT from signing in within a minute; guessing one account's
# password stays bounded by auth_account (5 a minute) and the lockout (docs/identity.md).
DEFAULT_AUTH_IP_PER_MINUTE = 30

# The one table of limits (spec §2.4).
TIERS: Mapping[str, RateLimitTier] = {
    tier.name: tier
    for tier in (
        RateLimitTier("auth_ip", limit=DEFAULT_AUTH_IP_PER_MINUTE, window_seconds=60, subject="client IP",
                      fail_open=False),
        RateLimitTier(
            "auth_account", limit=5, window_seconds=60, subject="organization code + e-mail", fail_open=False
        ),
        RateLimitTier("api", limit=100, window_seconds=60, subject="user id", fail_open=True),
        RateLimitTier("upload", limit=10, window_seconds=3600, subject="user id", fail_open=False),
        RateLimitTier("report", limit=5, window_seconds=3600, subject="user id", fail_open=False),
    )
}


def tiers_with(*, auth_ip_per_minute: int = DEFAULT_AUTH_IP_PER_MINUTE) -> dict[str, RateLimitTier]:
    """The tier table with the configurable limits applied."""
    tiers = dict(TIERS)
    tiers["auth_ip"] = replace(TIERS["auth_ip"], limit=auth_ip_per_minute)
    return tiers


def auth_account_subject(organization_code: str, email: str) -> str:
    """The `auth_account` key subject: the same account however its e-mail or code is cased."""
    return f"{organization_code.strip().casefold()}:{email.strip().casefold()}"


@dataclass(frozen=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    remaining: int  # hits left in the current window after this one
    retry_after_seconds: int  # 0 when allowed; else whole seconds until a hit would be allowed
    # True when the store could not be asked and the tier's failure policy decided. A refused
    # degraded decision is a 503 (service unavailable), not a 429.
    degraded: bool = False


class RateLimitStoreUnavailable(Exception):
    """The store cannot be reached (raised by `reset` only)."""


class RateLimiter(Protocol):
    def hit(self, tier: RateLimitTier, subject: str) -> RateLimitDecision:
        """Count one hit for `subject` in `tier` if it is allowed, and say whether it was.

        Atomic: N concurrent callers (threads, processes, servers) over a limit of L get exactly
        min(N, L) allowed. Never raises for an unreachable store: the tier's `fail_open` decides
        and the decision is marked `degraded`."""
        ...

    def reset(self, tier: RateLimitTier, subject: str) -> None:
        """Forget the subject's hits in this tier (an operator unblocking an address). May raise
        RateLimitStoreUnavailable: unlike `hit`, there is no failure policy to apply."""
        ...
