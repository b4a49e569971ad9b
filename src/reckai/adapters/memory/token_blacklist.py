"""In-process access-token blacklist (embedded mode, tests). Entries leave when their token expires."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from reckai.application.ports.security import TokenBlacklist


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MemoryTokenBlacklist:
    def __init__(self, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self._clock = clock
        self._until: dict[str, dt.datetime] = {}
        self._lock = threading.Lock()

    def revoke(self, jti: str, expires_at: dt.datetime) -> None:
        with self._lock:
            now = self._clock()
            for stale in [j for j, until in self._until.items() if until <= now]:
                del self._until[stale]
            if expires_at > now:
                self._until[jti] = max(expires_at, self._until.get(jti, expires_at))

    def is_revoked(self, jti: str) -> bool:
        with self._lock:
            until = self._until.get(jti)
            return until is not None and self._clock() < until


_check: type[TokenBlacklist] = MemoryTokenBlacklist
