"""Retention port (issue 17 item 7): what the retention job reads to decide what is past its period
and free to delete. Deleting goes through the feature's own repositories (`uow.files.delete`)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from reckai.application.ports.reconciliations import JobsUnitOfWork
from reckai.domain.retention import KeptBecause


@dataclass(frozen=True)
class ExpiredFile:
    """An uploaded file stored before the cutoff, with its objects and why it must stay (None: free
    to delete)."""

    file_id: uuid.UUID
    uploaded_at: dt.datetime
    storage_path: str
    normalized_paths: tuple[str, ...]
    size_bytes: int
    checksum: str | None
    kept_because: KeptBecause | None


@dataclass(frozen=True)
class ExpiredJob:
    """A reconciliation job created before the cutoff, and why it must stay (None: free to delete)."""

    job_id: uuid.UUID
    created_at: dt.datetime
    name: str
    status: str
    kept_because: KeptBecause | None


class RetentionRepository(Protocol):
    def organization_ids(self) -> Sequence[uuid.UUID]:
        """*Pre-tenant* (a unit of work bound to no organization): the active organizations, ids
        only, for the periodic job to visit one by one."""
        ...

    def pending_approval_metadata(self) -> Sequence[Mapping[str, Any]]:
        """The metadata of the bound organization's pending approvals."""
        ...

    def expired_files(self, uploaded_before: dt.datetime, references: Collection[uuid.UUID], *,
                      after: tuple[dt.datetime, uuid.UUID] | None, limit: int) -> Sequence[ExpiredFile]:
        """The bound organization's files uploaded before `uploaded_before`, oldest first (keyset
        paging: strictly after `after`, by uploaded_at then id), at most `limit`, each with why it
        must be kept, in `KeptBecause` order: a stream lists it; a job linked to it is pending or
        processing; an exception about it (of such a job, or naming one of its rows) is open, in
        progress or escalated; `references` (the ids pending approvals name) holds the file's id, a
        linked job's id or the id of an exception about it."""
        ...


    def expired_jobs(self, created_before: dt.datetime, references: Collection[uuid.UUID], *,
                     after: tuple[dt.datetime, uuid.UUID] | None, limit: int) -> Sequence[ExpiredJob]:
        """The bound organization's reconciliation jobs created before `created_before`, oldest
        first (keyset paging as for files), each with why it must be kept, in `KeptBecause` order:
        it is a stream's run; it is pending or processing; one of its exceptions is open, in
        progress or escalated; `references` holds its id or the id of one of its exceptions."""
        ...


class RetentionUnitOfWork(JobsUnitOfWork, Protocol):
    @property
    def retention(self) -> RetentionRepository: ...
