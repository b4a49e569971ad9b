"""list_reconciliations, get_reconciliation, get_results."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from reckai.application.ports.reconciliations import JobFileLink, JobFilter, StoredMatch
from reckai.application.reconciliations.errors import JobNotCompleted, JobNotFound
from reckai.application.reconciliations.services import Caller, ReconciliationServices
from reckai.domain.reconciliation.jobs import JobStatus, ReconciliationJob


@dataclass(frozen=True)
class JobDetails:
    job: ReconciliationJob
    files: list[JobFileLink]


def list_reconciliations(services: ReconciliationServices, caller: Caller, job_filter: JobFilter, *,
                         page: int, per_page: int) -> tuple[list[ReconciliationJob], int]:
    with services.database.unit_of_work(caller.organization_id) as uow:
        return uow.reconciliation_jobs.list(job_filter, limit=per_page, offset=(page - 1) * per_page)  # type: ignore[no-any-return]


def get_reconciliation(services: ReconciliationServices, caller: Caller, job_id: uuid.UUID) -> JobDetails:
    with services.database.unit_of_work(caller.organization_id) as uow:
        job = uow.reconciliation_jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return JobDetails(job, uow.reconciliation_jobs.linked_files(job_id))


@dataclass(frozen=True)
class ResultsPage:
    job: ReconciliationJob
    kind: str  # matches | suggestions
    items: list[StoredMatch]
    total: int
    exceptions_by_type: dict[str, int]


def get_results(services: ReconciliationServices, caller: Caller, job_id: uuid.UUID, *, kind: str,
                page: int, per_page: int, group_key: str | None = None) -> ResultsPage:
    """A completed job's summary with one page of its clean matches (kind=matches) or of its
    suggestions (kind=suggestions), ordered by left row; groups share a group key."""
    status = {"matches": "auto", "suggestions": "suggested"}[kind]
    with services.database.unit_of_work(caller.organization_id) as uow:
        job = uow.reconciliation_jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        if job.status is not JobStatus.COMPLETED:
            raise JobNotCompleted(job_id, job.status.value)
        items, total = uow.reconciliation_results.list_matches(
            job_id, status=status, limit=per_page, offset=(page - 1) * per_page, group_key=group_key)
        counts = uow.reconciliation_results.exception_counts(job_id)
    return ResultsPage(job, kind, items, total, counts)


def result_summary(job: ReconciliationJob) -> dict[str, Any]:
    return dict(job.summary or {})
