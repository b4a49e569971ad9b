"""In-process sliding-log rate limiter: embedded mode (one process) and unit tests.

Same semantics as the Redis adapter (ports/rate_limit.py); correct across threads, not processes.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from reckai.application.ports.rate_limit import RateLimitDecision, RateLimiter, RateLimitTier

# Above this many keys, keys with no hit inside their window are dropped (bounded memory).
_SWEEP_ABOVE = 10_000


class MemoryRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hits: dict[tuple[str, str], deque[tuple[float, str]]] = {}  # (time, hit id), oldest first
        self._ids = itertools.count(1)
        self._windows: dict[str, int] = {}
        self._lock = threading.Lock()

    def hit(self, tier: RateLimitTier, subject: str) -> RateLimitDecision:
        with self._lock:
            now = self._clock()
            key = (tier.name, subject)
            self._windows[tier.name] = tier.window_seconds
            if key not in self._hits and len(self._hits) >= _SWEEP_ABOVE:
                self._sweep(now)
            log = self._hits.setdefault(key, deque())
            while log and log[0][0] <= now - tier.window_seconds:
                log.popleft()
            if len(log) >= tier.limit:
                retry = max(1, math.ceil(log[0][0] + tier.window_seconds - now))
                return RateLimitDecision(
                    allowed=False, limit=tier.limit, remaining=0, retry_after_seconds=retry
                )
            hit_id = str(next(self._ids))
            log.append((now, hit_id))
            return RateLimitDecision(
                allowed=True, limit=tier.limit, remaining=tier.limit - len(log), retry_after_seconds=0, hit_id=hit_id
            )

    def _sweep(self, now: float) -> None:
        stale = [k for k, log in self._hits.items() if not log or log[-1][0] <= now - self._windows[k[0]]]
        for key in stale:
            del self._hits[key]

    def release(self, tier: RateLimitTier, subject: str, hit_id: str) -> None:
        with self._lock:
            log = self._hits.get((tier.name, subject))
            if log:
                self._hits[(tier.name, subject)] = deque(entry for entry in log if entry[1] != hit_id)

    def reset(self, tier: RateLimitTier, subject: str) -> None:
        with self._lock:
            self._hits.pop((tier.name, subject), None)


_check: type[RateLimiter] = MemoryRateLimiter
