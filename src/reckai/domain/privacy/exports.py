"""A data export (issue 17 item 6; docs/privacy.md, "Export"): one person's data, or a whole
organization's, written by a low-priority job into a zip in storage, with a manifest.

pending -> running -> completed | failed; completed -> expired. A completed export is downloadable
(a link valid for one hour, re-issued on each request) until `expires_at`, when the expiry job
removes its object; the row stays for the audit trail.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

FORMAT_NAME = "reckai-data-export"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
README_NAME = "README.md"
# How long a completed export stays downloadable (and its object stored): a decision, docs/privacy.md.
RETENTION_DAYS = 30
MAX_ERROR_LENGTH = 1000


class ExportScope(str, Enum):
    USER = "user"
    ORGANIZATION = "organization"


class ExportStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"  # past its retention: the object is removed, the row stays


class ExportStateError(ValueError):
    """A data export asked to do what its scope or state does not allow."""


@dataclass(frozen=True)
class DataExport:
    id: uuid.UUID
    organization_id: uuid.UUID
    scope: ExportScope
    subject_user_id: uuid.UUID | None  # the person (scope user); None for the organization
    requested_by: uuid.UUID
    storage_path: str
    created_at: dt.datetime
    updated_at: dt.datetime
    status: ExportStatus = ExportStatus.PENDING
    approval_id: uuid.UUID | None = None  # organization: the data_export approval that authorised it
    size_bytes: int | None = None
    sha256: str | None = None
    error_message: str | None = None
    completed_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.scope is ExportScope.ORGANIZATION and self.subject_user_id is not None:
            raise ExportStateError("an organization export has no subject user")

    @property
    def download_name(self) -> str:
        stamp = self.created_at.strftime("%Y%m%d")
        return f"reckai-export-{self.scope.value}-{stamp}-{self.id}.zip"

    def started(self, now: dt.datetime) -> DataExport:
        if self.status not in (ExportStatus.PENDING, ExportStatus.RUNNING):
            raise ExportStateError(f"export {self.id} is {self.status.value}")
        return replace(self, status=ExportStatus.RUNNING, updated_at=now)

    def completed(self, *, size_bytes: int, sha256: str, now: dt.datetime) -> DataExport:
        if self.status is not ExportStatus.RUNNING:
            raise ExportStateError(f"export {self.id} is {self.status.value}, not running")
        return replace(self, status=ExportStatus.COMPLETED, size_bytes=size_bytes, sha256=sha256, completed_at=now,
                       expires_at=now + dt.timedelta(days=RETENTION_DAYS), error_message=None, updated_at=now)

    def failed(self, message: str, now: dt.datetime) -> DataExport:
        if self.status not in (ExportStatus.PENDING, ExportStatus.RUNNING):
            raise ExportStateError(f"export {self.id} is {self.status.value}")
        return replace(self, status=ExportStatus.FAILED, error_message=message[:MAX_ERROR_LENGTH], updated_at=now)

    def expired(self, now: dt.datetime) -> DataExport:
        if self.status is not ExportStatus.COMPLETED or self.expires_at is None or now < self.expires_at:
            raise ExportStateError(f"export {self.id} is {self.status.value} until {self.expires_at}")
        return replace(self, status=ExportStatus.EXPIRED, updated_at=now)

    def downloadable(self, now: dt.datetime) -> bool:
        return self.status is ExportStatus.COMPLETED and (self.expires_at is None or now < self.expires_at)


def chain_link_problem(records: Iterable[Mapping[str, Any]], *, start_sequence: int | None = None,
                       start_previous_hash: str | None = None) -> str | None:
    """The first place where exported audit rows (ascending, each with `sequence_number`,
    `previous_hash`, `hash`) stop forming one chain: a sequence that does not follow the one before,
    or a row whose `previous_hash` is not the hash of the row before it. The HMAC itself needs the
    key, which never leaves the server; this is what can be checked offline. None: linked."""
    previous: Mapping[str, Any] | None = None
    for record in records:
        sequence = record.get("sequence_number")
        if not isinstance(sequence, int):
            return f"an audit row has no integer sequence_number ({record.get('id')})"
        if previous is None:
            if start_sequence is not None and sequence != start_sequence:
                return f"the audit chain starts at sequence {sequence}, the manifest says {start_sequence}"
            if start_previous_hash is not None and record.get("previous_hash") != start_previous_hash:
                return f"audit sequence {sequence}: previous_hash does not match the chain's start"
        else:
            expected = previous["sequence_number"] + 1
            if sequence != expected:
                return f"audit sequence {sequence} follows {previous['sequence_number']} (expected {expected})"
            if record.get("previous_hash") != previous.get("hash"):
                return f"audit sequence {sequence}: previous_hash is not the hash of sequence {expected - 1}"
        previous = record
    return None
