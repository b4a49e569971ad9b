"""The retention port in memory, over the same tables the other memory repositories keep (files,
job links, jobs, exceptions, stream files, approvals); the contract tests hold it to the
PostgreSQL adapter's answers."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reckai.adapters.memory.store import MemoryTransaction
from reckai.application.ports.retention import ExpiredFile, ExpiredJob, RetentionRepository
from reckai.domain.retention import KeptBecause

_OPEN_EXCEPTION_STATUSES = frozenset({"open", "in_progress", "escalated"})
_RUNNING_JOB_STATUSES = frozenset({"pending", "processing"})


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


if TYPE_CHECKING:
    _check: type[RetentionRepository] = MemoryRetentionRepository
