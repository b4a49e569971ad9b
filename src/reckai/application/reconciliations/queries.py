"""list_reconciliations, get_reconciliation, get_results."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from reckai.application.context import Caller
from reckai.application.ports.reconciliations import (
    JobFileLink,
    JobFilter,
    JobsUnitOfWork,
    RowSearch,
    StoredMatch,
)
from reckai.application.reconciliations.errors import JobNotCompleted, JobNotFound
from reckai.application.reconciliations.services import ReconciliationServices
from reckai.domain.reconciliation.jobs import JobStatus, ReconciliationJob


@dataclass(frozen=True)
class JobDetails:
    job: ReconciliationJob
    files: list[JobFileLink]


def list_reconciliations(services: ReconciliationServices, caller: Caller, job_filter: JobFilter, *,
                         page: int, per_page: int) -> tuple[list[ReconciliationJob], int]:
    with services.database.unit_of_work(caller.organization_id) as uow:
        return uow.reconciliation_jobs.list(job_filter, limit=per_page, offset=(page - 1) * per_page)


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


_STATUS_OF_KIND = {"matches": "auto", "suggestions": "suggested"}
_SUMMARY_COUNT_OF_KIND = {"matches": "matched_pairs", "suggestions": "suggested_pairs"}


def get_results(services: ReconciliationServices, caller: Caller, job_id: uuid.UUID, *, kind: str,
                page: int, per_page: int, group_key: str | None = None,
                after: tuple[int, int] | None = None, search: RowSearch | None = None) -> ResultsPage:
    """A completed job's summary with one page of its clean matches (kind=matches) or of its
    suggestions (kind=suggestions), ordered by (left row, right row); groups share a group key.
    `after` (a keyset cursor: the last pair of the previous page) reads the page after it instead
    of page `page`: the same cost at any depth of a million pairs.

    A completed job's pairs never change, so the totals are the counts its summary recorded at
    completion (counting a million rows per page view would cost more than the page itself); only
    a page of one group counts.

    `search` (issue 16 item 3): only the pairs one of whose rows meets it, read from the two files'
    normalized rows (the job's pairs carry row numbers, not the rows' values); counted."""
    status = _STATUS_OF_KIND[kind]
    with services.database.unit_of_work(caller.organization_id) as uow:
        job = uow.reconciliation_jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        if job.status is not JobStatus.COMPLETED:
            raise JobNotCompleted(job_id, job.status.value)
        rows = _searched_rows(services, uow, job_id, search) if search is not None else None
        results = uow.reconciliation_results
        items = results.list_matches(job_id, status=status, limit=per_page,
                                     offset=0 if after is not None else (page - 1) * per_page,
                                     group_key=group_key, after=after, rows=rows)
        summary = job.summary or {}
        recorded = summary.get(_SUMMARY_COUNT_OF_KIND[kind])
        if group_key is None and rows is None and isinstance(recorded, int):
            total = recorded
        else:
            total = results.count_matches(job_id, status=status, group_key=group_key, rows=rows)
        by_type = summary.get("exceptions_by_type")
        counts = dict(by_type) if isinstance(by_type, dict) else results.exception_counts(job_id)
    return ResultsPage(job, kind, items, total, counts)


def _searched_rows(services: ReconciliationServices, uow: JobsUnitOfWork, job_id: uuid.UUID,
                   search: RowSearch) -> tuple[list[int], list[int]]:
    """The left and right row numbers of the job's files that `search` finds."""
    found: dict[str, list[int]] = {"left": [], "right": []}
    if services.row_finder is None:
        raise RuntimeError("the results search needs a row finder (bootstrap wires one)")
    for link in uow.reconciliation_jobs.linked_files(job_id):
        normalized = uow.normalized_files.for_job(job_id, link.file_id)  # the version the job read
        if normalized is not None and link.side in found:
            found[link.side] = services.row_finder.find_rows(normalized.storage_path, search)
    return found["left"], found["right"]


def result_summary(job: ReconciliationJob) -> dict[str, Any]:
    return dict(job.summary or {})
