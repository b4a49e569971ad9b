"""A report row (spec: the `reports` table, migration 0018) and its lifecycle.

pending -> running -> completed | failed; a completed report becomes expired (its object removed by
the expiry job) or deleted (its object removed at its requester's or an admin's request). The row
always stays, for the audit trail. A completed report's object is never rewritten: its storage key
is fixed when the row is created and its SHA-256 is recorded when it is written.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

REPORT_TYPES = ("daily", "aging", "sla", "channel_trend", "audit")
REPORT_FORMATS = ("csv", "excel", "pdf")
# Every report type has several tables, so a CSV report is a zip of one CSV per table.
EXTENSIONS = {"csv": "zip", "excel": "xlsx", "pdf": "pdf"}
CONTENT_TYPES = {
    "csv": "application/zip",
    "excel": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
# The audit report is the audit trail: it needs audit:read to request and to download.
AUDIT_REPORT = "audit"
MAX_PERIOD_DAYS = 366
MAX_ERROR_LENGTH = 1000


class ReportStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    DELETED = "deleted"


class ReportStateError(Exception):
    """A transition the lifecycle does not allow (e.g. deleting a report twice)."""

    def __init__(self, report_id: uuid.UUID, status: str, action: str) -> None:
        super().__init__(f"report {report_id} is {status}: cannot {action}")
        self.report_id = report_id
        self.status = status
        self.action = action


_ALLOWED: dict[str, frozenset[ReportStatus]] = {
    "start": frozenset({ReportStatus.PENDING, ReportStatus.RUNNING}),  # RUNNING: a redelivered message
    "complete": frozenset({ReportStatus.RUNNING}),
    "fail": frozenset({ReportStatus.PENDING, ReportStatus.RUNNING}),
    "expire": frozenset({ReportStatus.COMPLETED}),
    "delete": frozenset({ReportStatus.PENDING, ReportStatus.RUNNING, ReportStatus.COMPLETED, ReportStatus.FAILED}),
}


@dataclass(frozen=True)
class Report:
    id: uuid.UUID
    organization_id: uuid.UUID
    type: str
    format: str
    storage_path: str
    generated_by: uuid.UUID  # who asked for it (the spec's column name)
    generated_at: dt.datetime  # when it was asked for
    status: ReportStatus = ReportStatus.PENDING
    job_id: uuid.UUID | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    error_message: str | None = None
    file_size_bytes: int | None = None
    sha256: str | None = None
    data_as_of: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    approval_id: uuid.UUID | None = None
    updated_at: dt.datetime | None = None

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def download_name(self) -> str:
        return f"report-{self.type}-{self.id}.{self.extension}"

    def _check(self, action: str) -> None:
        if self.status not in _ALLOWED[action]:
            raise ReportStateError(self.id, self.status.value, action)

    def started(self, now: dt.datetime) -> Report:
        self._check("start")
        return replace(self, status=ReportStatus.RUNNING, updated_at=now)

    def completed(self, *, size_bytes: int, sha256: str, data_as_of: dt.datetime, now: dt.datetime,
                  expires_at: dt.datetime) -> Report:
        self._check("complete")
        return replace(self, status=ReportStatus.COMPLETED, file_size_bytes=size_bytes, sha256=sha256,
                       data_as_of=data_as_of, completed_at=now, expires_at=expires_at, updated_at=now,
                       error_message=None)

    def failed(self, message: str, now: dt.datetime) -> Report:
        self._check("fail")
        return replace(self, status=ReportStatus.FAILED, error_message=message[:MAX_ERROR_LENGTH], updated_at=now)

    def expired(self, now: dt.datetime) -> Report:
        self._check("expire")
        return replace(self, status=ReportStatus.EXPIRED, updated_at=now)

    def deleted(self, now: dt.datetime) -> Report:
        self._check("delete")
        return replace(self, status=ReportStatus.DELETED, updated_at=now)
