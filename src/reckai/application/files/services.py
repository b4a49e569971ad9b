"""What the file use cases need, gathered from the composition root once per call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reckai.application.ports.files import FileParser
from reckai.application.ports.rate_limit import RateLimiter
from reckai.application.ports.scanner import VirusScanner
from reckai.application.ports.storage import FileStorage


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class FileServices:
    database: Any  # ports.unit_of_work.Database whose units of work carry the file repositories
    storage: FileStorage
    scanner: VirusScanner
    parser: FileParser
    audit_log: Any  # ports.audit.AuditLog
    rate_limiter: RateLimiter
    now: Callable[[], dt.datetime] = field(default=_utc_now)



@dataclass(frozen=True)
class Caller:
    """Who is asking: the authenticated user of the request, and where the request came from."""

    organization_id: Any  # uuid.UUID
    user_id: Any  # uuid.UUID
    ip_address: str | None = None
    user_agent: str | None = None
    request_method: str | None = None
    request_path: str | None = None
