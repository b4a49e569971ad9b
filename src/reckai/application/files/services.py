"""What the file use cases need: their ports, built once by the composition root (`container.files`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from reckai.application.ports.audit import AuditLog
from reckai.application.ports.clock import Clock
from reckai.application.ports.files import FileParser, FilesUnitOfWork
from reckai.application.ports.rate_limit import RateLimiter, RateLimits
from reckai.application.ports.scanner import VirusScanner
from reckai.application.ports.storage import FileStorage
from reckai.application.ports.unit_of_work import Database


@dataclass(frozen=True)
class FileServices:
    database: Database[FilesUnitOfWork]
    storage: FileStorage
    scanner: VirusScanner
    parser: FileParser
    audit_log: AuditLog
    rate_limiter: RateLimiter
    clock: Clock
    rate_limits: RateLimits = field(default_factory=RateLimits)

    def now(self) -> dt.datetime:
        return self.clock()
