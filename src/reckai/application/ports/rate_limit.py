"""Rate limiting (spec §2.4): the tier table and the limiter port.

Every tier has its own keys, so a user's API calls never eat into their upload allowance, and the
two authentication tiers are separate (one per client IP, one per account). The window is a
sliding log: at most `limit` allowed hits in any `window_seconds` interval, and refused hits are
not counted (a client hammering while refused is let in again as soon as the window allows). An
allowed hit whose request was refused afterwards is given back with `release` (the HTTP guard
does it for a route's own tiers, `upload`, `report`, `export` and `export_organization`: a refused
upload does not count). A tier is per user, except `export_organization`, per organization.

The limits are settings (domain/settings_registry.py, docs/decisions/settings-registry.md).

Failure policy when the store (Redis) is unreachable, decided per tier (STYLE habit 7):
- auth tiers fail CLOSED: brute-force protection is a security control; the caller answers 503
  with Retry-After.
- api fails OPEN: every request is still authenticated and authorized; only throttling is lost.
- upload, report and the two export tiers fail CLOSED: expensive work whose jobs need the same Redis
  anyway.
Each failure is logged and counted (metric `reckai.rate_limit.store_failures`, attribute tier).

Adapters: `adapters.redis.rate_limit` (one Lua script: atomic across processes and servers, time
from the Redis server) and `adapters.memory.rate_limit` (one process). Same contract tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from reckai.domain.settings_registry import REGISTRY, OperatorValues, effective_value


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


USER_SUBJECT = "user id"
ORGANIZATION_SUBJECT = "organization id"  # the tier counts every user of the organization together


def _default(tier: str) -> int:
    limit = REGISTRY[f"rate_limits.{tier}"].default
    assert isinstance(limit, int)
    return limit


# The shape of each tier: window, what its key is per, failure policy. The limits are settings
# (`rate_limits.<tier>` in domain/settings_registry.py: operator defaults, per-organization
# overrides within the operator's bounds for api, upload and report); the limits below are the
# registry's defaults, for code that has no settings at hand (an operator resetting a key).
TIERS: Mapping[str, RateLimitTier] = {
    tier.name: tier
    for tier in (
        RateLimitTier("auth_ip", limit=_default("auth_ip"), window_seconds=60, subject="client IP",
                      fail_open=False),
        RateLimitTier("auth_account", limit=_default("auth_account"), window_seconds=60,
                      subject="organization code + e-mail", fail_open=False),
        RateLimitTier("api", limit=_default("api"), window_seconds=60, subject="user id", fail_open=True),
        RateLimitTier("upload", limit=_default("upload"), window_seconds=3600, subject="user id", fail_open=False),
        RateLimitTier("report", limit=_default("report"), window_seconds=3600, subject="user id", fail_open=False),
        RateLimitTier("export", limit=_default("export"), window_seconds=3600, subject=USER_SUBJECT,
                      fail_open=False),
        RateLimitTier("export_organization", limit=_default("export_organization"), window_seconds=3600,
                      subject=ORGANIZATION_SUBJECT, fail_open=False),
    )
}


@dataclass(frozen=True)
class RateLimits:
    """The tiers with the limits the settings give: the operator's values, then the
    organization's (validated against the operator's bounds when read, falling back to the
    operator's value when a stored one no longer holds)."""

    operator: OperatorValues = field(default_factory=OperatorValues)

    def tier(self, name: str, organization_settings: Mapping[str, Any] | None = None) -> RateLimitTier:
        limit = effective_value(f"rate_limits.{name}", self.operator, organization_settings)
        return replace(TIERS[name], limit=limit)


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
    # Names the hit an allowed decision counted, for `release` (None when nothing was counted).
    hit_id: str | None = None


class RateLimitStoreUnavailable(Exception):
    """The store cannot be reached (raised by `reset` only)."""


class RateLimiter(Protocol):
    def hit(self, tier: RateLimitTier, subject: str) -> RateLimitDecision:
        """Count one hit for `subject` in `tier` if it is allowed, and say whether it was.

        Atomic: N concurrent callers (threads, processes, servers) over a limit of L get exactly
        min(N, L) allowed. Never raises for an unreachable store: the tier's `fail_open` decides
        and the decision is marked `degraded`."""
        ...

    def release(self, tier: RateLimitTier, subject: str, hit_id: str) -> None:
        """Un-count one allowed hit (`RateLimitDecision.hit_id`): the request it allowed was
        refused, so it does not use up the allowance (a refused upload, issue 16). Idempotent; a
        hit already out of the window is a no-op. Never raises: when the store is unreachable the
        hit stays counted (the safe side) and the failure is logged and counted."""
        ...

    def reset(self, tier: RateLimitTier, subject: str) -> None:
        """Forget the subject's hits in this tier (an operator unblocking an address). May raise
        RateLimitStoreUnavailable: unlike `hit`, there is no failure policy to apply."""
        ...
