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


@dataclass(frozen=True)
class ExpiredApproval:
    """A decided approval (approved, declined, cancelled) decided before the cutoff, and why it must
    stay (None: free to delete)."""

    approval_id: uuid.UUID
    decided_at: dt.datetime
    type: str
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


    def expired_approvals(self, decided_before: dt.datetime, references: Collection[uuid.UUID], *,
                          after: tuple[dt.datetime, uuid.UUID] | None, limit: int) -> Sequence[ExpiredApproval]:
        """The bound organization's decided approvals (never a pending one) decided (`reviewed_at`)
        before `decided_before`, oldest first (keyset paging on decision time then id), each with
        why it must be kept, in this order: a record it authorised still points at it (a rule or
        rule version, a report, a period close, reopening or adjustment, a data export:
        `AUTHORISES_RECORD`); its metadata names an exception that is open, in progress or
        escalated (`OPEN_EXCEPTION`); `references` (what pending approvals name) holds its id
        (`PENDING_APPROVAL`)."""
        ...

    def delete_approval(self, approval_id: uuid.UUID, decided_before: dt.datetime) -> bool:
        """Delete one decided approval of the bound organization decided before `decided_before`;
        False (nothing deleted) when it is pending, younger, of another organization, gone, or a
        record still points at it. `decided_before` must be at least 365 days before the store's
        clock (PostgreSQL refuses otherwise: `retention_delete_approval`, migration 0033)."""
        ...

    def ended_sessions(self, ended_before: dt.datetime, *, after: uuid.UUID | None,
                       limit: int) -> Sequence[uuid.UUID]:
        """Ids of the bound organization's sessions that ended (expired, past their absolute
        expiry, or revoked: the earliest of the three) before `ended_before`, in id order, strictly
        after `after`, at most `limit`."""
        ...

    def delete_sessions(self, session_ids: Collection[uuid.UUID]) -> int:
        """Delete those sessions of the bound organization; the number deleted."""
        ...


class RetentionUnitOfWork(JobsUnitOfWork, Protocol):
    @property
    def retention(self) -> RetentionRepository: ...
