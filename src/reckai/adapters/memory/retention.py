"""The retention port in memory, over the same tables the other memory repositories keep (files,
job links, jobs, exceptions, stream files, approvals); the contract tests hold it to the
PostgreSQL adapter's answers."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reckai.adapters.memory.store import MemoryTransaction
from reckai.application.ports.retention import ExpiredApproval, ExpiredFile, ExpiredJob, RetentionRepository
from reckai.domain.retention import KeptBecause, referenced_ids

_OPEN_EXCEPTION_STATUSES = frozenset({"open", "in_progress", "escalated"})
_RUNNING_JOB_STATUSES = frozenset({"pending", "processing"})
_DECIDED_APPROVAL_STATUSES = frozenset({"approved", "declined", "cancelled"})
# The columns through which a record points at the approval that authorised it (foreign keys to
# approvals without a cascade, in SQL); every table is scanned, so a new one cannot be missed.
_APPROVAL_REFERENCES = ("approval_id", "close_approval_id", "reopen_approval_id")


def _field(row: Any, name: str) -> Any:
    row = getattr(row, "value", row)  # rows some repositories keep wrapped with their organization
    value = row.get(name) if isinstance(row, dict) else getattr(row, name, None)
    return getattr(value, "value", value)  # enums as their stored text


class MemoryRetentionRepository:
    def __init__(self, uow: MemoryTransaction) -> None:
        self._uow = uow

    def organization_ids(self) -> Sequence[uuid.UUID]:
        return sorted((row.id for _, row in self._uow.all_rows("organizations") if row.is_active), key=str)

    def pending_approval_metadata(self) -> Sequence[Mapping[str, Any]]:
        return [dict(_field(row, "metadata") or {}) for _, row in self._uow.rows("approvals")
                if _field(row, "status") == "pending"]

    def expired_files(self, uploaded_before: dt.datetime, references: Collection[uuid.UUID], *,
                      after: tuple[dt.datetime, uuid.UUID] | None, limit: int) -> Sequence[ExpiredFile]:
        refs = set(references)
        files = sorted((row for _, row in self._uow.rows("reconciliation_files")
                        if row.uploaded_at is not None and row.uploaded_at < uploaded_before
                        and (after is None or (row.uploaded_at, str(row.id)) > (after[0], str(after[1])))),
                       key=lambda row: (row.uploaded_at, str(row.id)))
        return [self._expired(row, refs) for row in files[:limit]]

    def expired_jobs(self, created_before: dt.datetime, references: Collection[uuid.UUID], *,
                     after: tuple[dt.datetime, uuid.UUID] | None, limit: int) -> Sequence[ExpiredJob]:
        refs = set(references)
        jobs = sorted((row for _, row in self._uow.rows("reconciliation_jobs")
                       if row.created_at is not None and row.created_at < created_before
                       and (after is None or (row.created_at, str(row.id)) > (after[0], str(after[1])))),
                      key=lambda row: (row.created_at, str(row.id)))
        return [ExpiredJob(job_id=row.id, created_at=row.created_at, name=row.name, status=_field(row, "status"),
                           kept_because=self._job_kept_because(row, refs)) for row in jobs[:limit]]

    def _job_kept_because(self, job: Any, refs: set[uuid.UUID]) -> KeptBecause | None:
        if any(_field(row, "job_id") == job.id for _, row in self._uow.rows("stream_runs")):
            return KeptBecause.STREAM
        if _field(job, "status") in _RUNNING_JOB_STATUSES:
            return KeptBecause.RUNNING_JOB
        exceptions = [row for _, row in self._uow.rows("exceptions") if _field(row, "job_id") == job.id]
        if any(_field(row, "status") in _OPEN_EXCEPTION_STATUSES for row in exceptions):
            return KeptBecause.OPEN_EXCEPTION
        if job.id in refs or any(_field(row, "id") in refs for row in exceptions):
            return KeptBecause.PENDING_APPROVAL
        return None

    def _expired(self, file: Any, refs: set[uuid.UUID]) -> ExpiredFile:
        jobs = {_field(row, "job_id") for _, row in self._uow.rows("reconciliation_job_files")
                if _field(row, "file_id") == file.id} | ({file.job_id} if file.job_id else set())
        normalized = sorted((row for _, row in self._uow.rows("normalized_files") if row.file_id == file.id),
                            key=lambda row: row.schema_version)
        return ExpiredFile(file_id=file.id, uploaded_at=file.uploaded_at, storage_path=file.storage_path,
                           normalized_paths=tuple(row.storage_path for row in normalized),
                           size_bytes=file.size_bytes, checksum=file.checksum,
                           kept_because=self._kept_because(file.id, jobs, refs))

    def _kept_because(self, file_id: uuid.UUID, jobs: set[uuid.UUID], refs: set[uuid.UUID]) -> KeptBecause | None:
        if any(_field(row, "file_id") == file_id for _, row in self._uow.rows("stream_files")):
            return KeptBecause.STREAM
        if any(_field(row, "id") in jobs and _field(row, "status") in _RUNNING_JOB_STATUSES
               for _, row in self._uow.rows("reconciliation_jobs")):
            return KeptBecause.RUNNING_JOB
        exceptions = [row for _, row in self._uow.rows("exceptions") if _field(row, "job_id") in jobs
                      or file_id in (_field(row, "left_file_id"), _field(row, "right_file_id"))]
        if any(_field(row, "status") in _OPEN_EXCEPTION_STATUSES for row in exceptions):
            return KeptBecause.OPEN_EXCEPTION
        if file_id in refs or jobs & refs or any(_field(row, "id") in refs for row in exceptions):
            return KeptBecause.PENDING_APPROVAL
        return None

    def expired_approvals(self, decided_before: dt.datetime, references: Collection[uuid.UUID], *,
                          after: tuple[dt.datetime, uuid.UUID] | None, limit: int) -> Sequence[ExpiredApproval]:
        refs = set(references)
        decided = sorted((row for _, row in self._uow.rows("approvals")
                          if _field(row, "status") in _DECIDED_APPROVAL_STATUSES and row.reviewed_at is not None
                          and row.reviewed_at < decided_before
                          and (after is None or (row.reviewed_at, str(row.id)) > (after[0], str(after[1])))),
                         key=lambda row: (row.reviewed_at, str(row.id)))[:limit]
        authorising = self._authorising_approval_ids() if decided else set()
        open_exceptions = {_field(row, "id") for _, row in self._uow.rows("exceptions")
                           if _field(row, "status") in _OPEN_EXCEPTION_STATUSES}
        result = []
        for row in decided:
            kept: KeptBecause | None = None
            if row.id in authorising:
                kept = KeptBecause.AUTHORISES_RECORD
            elif referenced_ids(row.metadata) & open_exceptions:
                kept = KeptBecause.OPEN_EXCEPTION
            elif row.id in refs:
                kept = KeptBecause.PENDING_APPROVAL
            result.append(ExpiredApproval(approval_id=row.id, decided_at=row.reviewed_at, type=_field(row, "type"),
                                          status=_field(row, "status"), kept_because=kept))
        return result

    def _authorising_approval_ids(self) -> set[uuid.UUID]:
        with self._uow.store.lock:
            tables = set(self._uow.store.tables)
        found: set[uuid.UUID] = set()
        for table in tables - {"approvals", "audit_logs", "audit_chain_heads", "outbox_messages"}:
            for _, row in self._uow.rows(table):
                found.update(value for value in (_field(row, name) for name in _APPROVAL_REFERENCES)
                             if isinstance(value, uuid.UUID))
        return found

    def delete_approval(self, approval_id: uuid.UUID, decided_before: dt.datetime) -> bool:
        row = self._uow.get("approvals", approval_id)
        if (row is None or _field(row, "status") not in _DECIDED_APPROVAL_STATUSES or row.reviewed_at is None
                or row.reviewed_at >= decided_before or approval_id in self._authorising_approval_ids()):
            return False
        self._uow.remove("approvals", approval_id)
        return True

    def ended_sessions(self, ended_before: dt.datetime, *, after: uuid.UUID | None,
                       limit: int) -> Sequence[uuid.UUID]:
        ended = []
        for _, session in self._uow.rows("user_sessions"):
            ends = [at for at in (session.expires_at, session.absolute_expires_at, session.revoked_at) if at is not None]
            if ends and min(ends) < ended_before and (after is None or str(session.id) > str(after)):
                ended.append(session.id)
        return sorted(ended, key=str)[:limit]

    def delete_sessions(self, session_ids: Collection[uuid.UUID]) -> int:
        deleted = 0
        for session_id in session_ids:
            if self._uow.get("user_sessions", session_id) is not None:
                self._uow.remove("user_sessions", session_id)
                deleted += 1
        return deleted


if TYPE_CHECKING:
    _check: type[RetentionRepository] = MemoryRetentionRepository
