"""Retention (issue 17 item 7; docs/privacy.md, "Retention"): delete what is past its period.

What this covers today: finished reconciliation jobs with their results, exceptions, comments and
stored outputs (`retention.results_days`, seven years by default, from the job's creation), and
uploaded files, as uploaded and normalized (`retention.uploads_days`, two years by default); an
organization under a legal hold (`retention.legal_hold`, until a date) is skipped whole. A job is
kept while it is a stream's run, pending or processing, has an open exception, or a pending
approval names it or one of its exceptions; deleted like `DELETE /api/reconciliations/:id` (the
row with its results and exceptions by cascade, one audit row `retention.job_deleted`, then the
objects under its processed/ prefix). For each organization, the files uploaded before the cutoff are read in
batches, oldest first; one that a stream, a pending or processing job, an open exception or a
pending approval still refers to is kept (and reported with the reason). The others are deleted
like `DELETE /api/files/:id` does: the row (mappings, normalized rows and job links go with it)
and one audit row `retention.file_deleted` per file in one transaction per batch, then the stored
objects; an object that cannot be deleted then is left to the orphan sweeper (its row is gone),
and logged. A dry run reads the same batches and deletes, audits and commits nothing.

Then decided approvals past `retention.results_days` from their decision (never a pending one,
nor one a record still points at or that names an open exception; deleted through
`delete_approval`, on PostgreSQL the SECURITY DEFINER `retention_delete_approval`, migration 0033)
and ended sessions past `retention.sessions_days` (a backstop to the session sweeper).

Run as the low-priority periodic job `apply_retention` (daily) and as `reckai retention run
[--dry-run]`. Idempotent: a second run deletes nothing more.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reckai.application.context import Caller, Outcome, audit_event
from reckai.application.ports.audit import AuditLog
from reckai.application.ports.jobs import JobDelivery
from reckai.application.ports.retention import ExpiredApproval, ExpiredFile, ExpiredJob, RetentionUnitOfWork
from reckai.application.ports.storage import FileStorage, StorageError
from reckai.application.ports.unit_of_work import Database
from reckai.domain.ingestion.storage_keys import processed_prefix
from reckai.domain.retention import (
    LEGAL_HOLD_SETTING,
    RESULTS_SETTING,
    SESSIONS_SETTING,
    UPLOADS_SETTING,
    LegalHold,
    cutoff,
    referenced_ids,
)
from reckai.domain.settings_registry import OperatorValues, effective_value

_log = logging.getLogger("reckai.retention")
BATCH_SIZE = 100
PERIOD_SECONDS = 24 * 3600  # daily: periods are counted in days
TIME_LIMIT_SECONDS = 3600


@dataclass(frozen=True)
class RetentionServices:
    database: Database[RetentionUnitOfWork]
    storage: FileStorage
    audit_log: AuditLog
    clock: Callable[[], dt.datetime]
    operator_settings: OperatorValues = field(default_factory=OperatorValues)


@dataclass
class OrganizationRetention:
    """What one run did (or, dry, would do) for one organization."""

    organization_id: uuid.UUID
    uploads_days: int
    uploads_cutoff: dt.datetime
    results_days: int
    results_cutoff: dt.datetime
    dry_run: bool
    sessions_days: int = 0
    sessions_cutoff: dt.datetime | None = None
    deleted_files: list[ExpiredFile] = field(default_factory=list)  # deleted, or would be
    kept_files: list[ExpiredFile] = field(default_factory=list)  # past the period but referred to
    deleted_jobs: list[ExpiredJob] = field(default_factory=list)
    kept_jobs: list[ExpiredJob] = field(default_factory=list)
    deleted_approvals: list[ExpiredApproval] = field(default_factory=list)
    kept_approvals: list[ExpiredApproval] = field(default_factory=list)
    deleted_sessions: int = 0  # ended sessions past `retention.sessions_days` (or that would be)
    objects_not_deleted: list[str] = field(default_factory=list)  # left to the orphan sweeper / a re-run
    legal_hold: LegalHold | None = None  # set when a legal hold stopped the run for the organization

    @property
    def deleted_bytes(self) -> int:
        return sum(f.size_bytes for f in self.deleted_files)

    def kept_by_reason(self) -> dict[str, int]:
        """Files and jobs kept, by reason."""
        counts: dict[str, int] = {}
        reasons = ([f.kept_because for f in self.kept_files] + [j.kept_because for j in self.kept_jobs]
                   + [a.kept_because for a in self.kept_approvals])
        for reason in reasons:
            if reason is not None:
                counts[reason.value] = counts.get(reason.value, 0) + 1
        return counts


def apply_retention(services: RetentionServices, *, dry_run: bool, organization_id: uuid.UUID | None = None,
                    batch_size: int = BATCH_SIZE, now: dt.datetime | None = None) -> list[OrganizationRetention]:
    """Every active organization (or one), each under its own policy."""
    now = now or services.clock()
    if organization_id is None:
        with services.database.unit_of_work(None) as uow:
            organizations = list(uow.retention.organization_ids())
    else:
        organizations = [organization_id]
    return [apply_organization_retention(services, org, dry_run=dry_run, batch_size=batch_size, now=now)
            for org in organizations]


def apply_organization_retention(services: RetentionServices, organization_id: uuid.UUID, *, dry_run: bool,
                                 batch_size: int, now: dt.datetime) -> OrganizationRetention:
    with services.database.unit_of_work(organization_id) as uow:
        organization = uow.organizations.get(organization_id)
        settings = organization.settings if organization is not None else {}
        operator = services.operator_settings
        uploads_days = int(effective_value(UPLOADS_SETTING, operator, settings))
        results_days = int(effective_value(RESULTS_SETTING, operator, settings))
        sessions_days = int(effective_value(SESSIONS_SETTING, operator, settings))
        hold = LegalHold.parse(effective_value(LEGAL_HOLD_SETTING, operator, settings))
        references = frozenset().union(*(referenced_ids(m) for m in uow.retention.pending_approval_metadata()))
    outcome = OrganizationRetention(organization_id, uploads_days, cutoff(now, uploads_days), results_days,
                                    cutoff(now, results_days), dry_run, sessions_days, cutoff(now, sessions_days))
    if hold.active(now):
        outcome.legal_hold = hold
        _log.info("retention skipped: legal hold", extra={
            "action": "retention.run", "organization_id": str(organization_id),
            "metadata": {"dry_run": dry_run, "legal_hold_until": hold.until.isoformat() if hold.until else None}})
        return outcome
    # Jobs first: deleting one removes its exceptions, which never frees a file an open one held.
    _jobs_pass(services, outcome, references, batch_size)
    _files_pass(services, outcome, references, batch_size)
    # Approvals last: a job deleted above no longer holds an exception its approval named open.
    _approvals_pass(services, outcome, references, batch_size)
    _sessions_pass(services, outcome, batch_size)
    if (outcome.deleted_files or outcome.kept_files or outcome.deleted_jobs or outcome.kept_jobs
            or outcome.deleted_approvals or outcome.kept_approvals or outcome.deleted_sessions):
        _log.info("retention applied" if not dry_run else "retention dry run", extra={
            "action": "retention.run", "organization_id": str(organization_id),
            "metadata": {"dry_run": dry_run, "files_deleted": len(outcome.deleted_files),
                         "bytes_deleted": outcome.deleted_bytes, "jobs_deleted": len(outcome.deleted_jobs),
                         "approvals_deleted": len(outcome.deleted_approvals),
                         "sessions_deleted": outcome.deleted_sessions,
                         "kept": outcome.kept_by_reason(), "objects_not_deleted": len(outcome.objects_not_deleted)}})
    return outcome


def _jobs_pass(services: RetentionServices, outcome: OrganizationRetention, references: frozenset[uuid.UUID],
               batch_size: int) -> None:
    organization_id = outcome.organization_id
    after: tuple[dt.datetime, uuid.UUID] | None = None
    while True:
        with services.database.unit_of_work(organization_id) as uow:
            batch = uow.retention.expired_jobs(outcome.results_cutoff, references, after=after, limit=batch_size)
            doomed = [job for job in batch if job.kept_because is None]
            outcome.kept_jobs.extend(job for job in batch if job.kept_because is not None)
            if not outcome.dry_run:
                for expired in doomed:
                    if uow.reconciliation_jobs.delete(expired.job_id):
                        services.audit_log.record(uow, audit_event(
                            "retention.job_deleted", None, organization_id=organization_id,
                            resource_type="reconciliation_job", resource_id=expired.job_id, outcome=Outcome.DONE,
                            metadata={"policy": RESULTS_SETTING, "retention_days": outcome.results_days,
                                      "created_at": expired.created_at.isoformat(), "name": expired.name,
                                      "job_status": expired.status}))
                uow.commit()
        outcome.deleted_jobs.extend(doomed)
        if not outcome.dry_run:
            for expired in doomed:
                outcome.objects_not_deleted.extend(_delete_prefix(
                    services, processed_prefix(organization_id, expired.job_id)))
        if len(batch) < batch_size:
            return
        after = (batch[-1].created_at, batch[-1].job_id)


def _files_pass(services: RetentionServices, outcome: OrganizationRetention, references: frozenset[uuid.UUID],
                batch_size: int) -> None:
    organization_id = outcome.organization_id
    after: tuple[dt.datetime, uuid.UUID] | None = None
    while True:
        with services.database.unit_of_work(organization_id) as uow:
            batch = uow.retention.expired_files(outcome.uploads_cutoff, references, after=after, limit=batch_size)
            doomed = [f for f in batch if f.kept_because is None]
            outcome.kept_files.extend(f for f in batch if f.kept_because is not None)
            if not outcome.dry_run:
                _delete_rows(services, uow, organization_id, doomed, outcome.uploads_days)
                uow.commit()
        outcome.deleted_files.extend(doomed)
        if not outcome.dry_run:
            outcome.objects_not_deleted.extend(_delete_objects(services, doomed))
        if len(batch) < batch_size:
            return
        after = (batch[-1].uploaded_at, batch[-1].file_id)


def _approvals_pass(services: RetentionServices, outcome: OrganizationRetention, references: frozenset[uuid.UUID],
                    batch_size: int) -> None:
    """Decided approvals past `retention.results_days` from their decision (the issue's "approvals 7
    years", with the results they decided on). Pending ones are never listed; each is deleted
    through `delete_approval` (PostgreSQL: the SECURITY DEFINER `retention_delete_approval`,
    migration 0033, the app role having no DELETE on approvals)."""
    organization_id = outcome.organization_id
    after: tuple[dt.datetime, uuid.UUID] | None = None
    while True:
        with services.database.unit_of_work(organization_id) as uow:
            batch = uow.retention.expired_approvals(outcome.results_cutoff, references, after=after, limit=batch_size)
            doomed = [approval for approval in batch if approval.kept_because is None]
            outcome.kept_approvals.extend(approval for approval in batch if approval.kept_because is not None)
            if not outcome.dry_run:
                deleted = []
                for expired in doomed:
                    if uow.retention.delete_approval(expired.approval_id, outcome.results_cutoff):
                        deleted.append(expired)
                        services.audit_log.record(uow, audit_event(
                            "retention.approval_deleted", None, organization_id=organization_id,
                            resource_type="approval", resource_id=expired.approval_id, outcome=Outcome.DONE,
                            metadata={"policy": RESULTS_SETTING, "retention_days": outcome.results_days,
                                      "decided_at": expired.decided_at.isoformat(), "approval_type": expired.type,
                                      "approval_status": expired.status}))
                uow.commit()
                doomed = deleted
        outcome.deleted_approvals.extend(doomed)
        if len(batch) < batch_size:
            return
        after = (batch[-1].decided_at, batch[-1].approval_id)


def _sessions_pass(services: RetentionServices, outcome: OrganizationRetention, batch_size: int) -> None:
    """Ended sessions (their device, address and times) past `retention.sessions_days`. The
    `cleanup_expired_sessions` sweeper already deletes a session as soon as it ends (a revoked one a
    day later), so this normally finds nothing: it holds the policy's upper bound when the sweeper
    has not run. One audit row per batch (the count; a session's id means nothing afterwards)."""
    assert outcome.sessions_cutoff is not None
    after: uuid.UUID | None = None
    while True:
        with services.database.unit_of_work(outcome.organization_id) as uow:
            ended = uow.retention.ended_sessions(outcome.sessions_cutoff, after=after, limit=batch_size)
            if not ended:
                return
            after = ended[-1]
            if outcome.dry_run:
                outcome.deleted_sessions += len(ended)
                if len(ended) < batch_size:
                    return
                continue
            count = uow.retention.delete_sessions(ended)
            services.audit_log.record(uow, audit_event(
                "retention.sessions_deleted", None, organization_id=outcome.organization_id,
                resource_type="organization", resource_id=outcome.organization_id, outcome=Outcome.DONE,
                metadata={"policy": SESSIONS_SETTING, "retention_days": outcome.sessions_days,
                          "deleted": count}))
            uow.commit()
        outcome.deleted_sessions += count
        if len(ended) < batch_size:
            return


def _delete_rows(services: RetentionServices, uow: RetentionUnitOfWork, organization_id: uuid.UUID,
                 doomed: Sequence[ExpiredFile], days: int) -> None:
    caller = Caller.system(organization_id)
    for expired in doomed:
        if not uow.files.delete(expired.file_id):
            continue
        services.audit_log.record(uow, audit_event(
            "retention.file_deleted", None, organization_id=caller.organization_id, user_id=None,
            resource_type="file", resource_id=expired.file_id, outcome=Outcome.DONE,
            metadata={"policy": UPLOADS_SETTING, "retention_days": days,
                      "uploaded_at": expired.uploaded_at.isoformat(), "sha256": expired.checksum,
                      "size_bytes": expired.size_bytes, "objects": 1 + len(expired.normalized_paths)}))


def _delete_objects(services: RetentionServices, deleted: Sequence[ExpiredFile]) -> list[str]:
    """After the rows' commit: an object whose delete fails has no row any more, so the orphan
    sweeper (docs/files.md) removes it later; listed and logged, never silently."""
    failed: list[str] = []
    for expired in deleted:
        for key in (expired.storage_path, *expired.normalized_paths):
            try:
                services.storage.delete(key)
            except StorageError:
                failed.append(key)
                _log.error("retention.orphaned_object", extra={"object": key, "file_id": str(expired.file_id)})
    return failed


def _delete_prefix(services: RetentionServices, prefix: str) -> list[str]:
    """A deleted job's stored outputs (processed/{job_id}/), after its rows' commit. Nothing points
    at them any more; what fails is logged and returned (a later `reckai retention run` does not
    find the job again, so an operator removes the prefix by hand)."""
    try:
        keys = list(services.storage.list_keys(prefix))
    except StorageError:
        _log.error("retention.orphaned_object", extra={"object": prefix})
        return [prefix]
    failed: list[str] = []
    for key in keys:
        try:
            services.storage.delete(key)
        except StorageError:
            failed.append(key)
            _log.error("retention.orphaned_object", extra={"object": key})
    return failed


def apply_retention_job(services: RetentionServices, delivery: JobDelivery) -> None:
    """The `apply_retention` job (low queue, daily): a real run over every organization."""
    apply_retention(services, dry_run=False)
