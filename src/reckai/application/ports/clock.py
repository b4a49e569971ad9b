"""The clock port: what time it is, as an aware UTC datetime.

Application code asks the clock its services were built with (`services.now()`), never the
system directly, so tests can move time (lockouts, expiries, SLAs) without waiting. The one
system clock is `reckai.adapters.clock.utc_now`; bootstrap injects it unless given another.
The audit chain's `created_at` is the exception: it comes from the database (docs/audit.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> dt.datetime:
        """Now, timezone-aware, in UTC."""
        ...
