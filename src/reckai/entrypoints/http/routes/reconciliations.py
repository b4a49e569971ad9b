"""Reconciliations (spec §5.1, issue 6). docs/reconciliation-jobs.md.

    GET    /api/reconciliations               ?status= &created_from= &created_to= &page= &per_page=
    POST   /api/reconciliations               create (pending) and enqueue on the critical queue
    GET    /api/reconciliations/{id}
    PUT    /api/reconciliations/{id}          rename
    DELETE /api/reconciliations/{id}          admin: the job, its results and stored outputs
    POST   /api/reconciliations/{id}/cancel
    GET    /api/reconciliations/{id}/results  ?kind=matches|suggestions &group_id= &page= &per_page= &cursor=
                                              &reference(_prefix)= &secondary_reference(_prefix)= &account=
                                              &channel= &amount_min= &amount_max= &date_from= &date_to=
    GET    /api/reconciliations/{id}/outputs  results.csv, results.parquet, summary.json: size, SHA-256
    GET    /api/reconciliations/{id}/outputs/{name}/download   a link valid for one hour (docs/reports.md)
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody

from reckai.application.access import access_event
from reckai.application.context import Caller
from reckai.application.errors import FieldError, ValidationFailed
from reckai.application.ports.reconciliations import JobFilter, RowSearch, StoredMatch
from reckai.application.reconciliations.commands import (
    StartRequest,
    cancel_reconciliation,
    delete_reconciliation,
    rename_reconciliation,
    start_reconciliation,
)
from reckai.application.reconciliations.outputs import job_output_download_url, list_job_outputs
from reckai.application.reconciliations.queries import (
    get_reconciliation,
    get_results,
    list_reconciliations,
)
from reckai.bootstrap import Container
from reckai.domain.identity.principal import Principal
from reckai.domain.reconciliation.jobs import JobStatus, ReconciliationJob
from reckai.entrypoints.http.auth import request_info
from reckai.entrypoints.http.envelope import Pagination, Success, cursor_parts, encode_cursor, ok, paginated
from reckai.entrypoints.http.routes._search import provide_row_search

_JOB_NAME = msgspec.Meta(description="A name for people (lists, mails, reports).",
                         examples=["December card vs bank"])


class JobCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, _JOB_NAME]
    left_file_id: Annotated[uuid.UUID, msgspec.Meta(
        description="The left side's file (for instance the bank statement); its mapping must be confirmed.",
        examples=["5b1e7c3a-9d24-4f68-8a0b-3c6e2d9f1a47"])]
    right_file_id: Annotated[uuid.UUID, msgspec.Meta(
        description="The right side's file (for instance the switch report); its mapping must be confirmed.",
        examples=["e8d4a2f6-1c37-4b95-9e0d-7a5c3b1f8e26"])]
    rule_ids: Annotated[list[uuid.UUID] | None, msgspec.Meta(
        description="The matching rules to run (each active and approved); absent or null: every active rule "
                    "that applies to the two file types.", examples=[["7f3a9b2c-6e14-4d85-b0a7-1c9e5d3f2b68"]])] = None
    leading_side: Annotated[Literal["left", "right"] | None, msgspec.Meta(
        description="The side whose rows drive the report (the book of record).", examples=["right"])] = None
    period_start: Annotated[dt.date | None, msgspec.Meta(
        description="First day of the period reconciled (rows outside are reported, not matched).",
        examples=["2025-12-01"])] = None
    period_end: Annotated[dt.date | None, msgspec.Meta(description="Last day of the period reconciled.",
                                                       examples=["2025-12-31"])] = None
    options: Annotated[dict[str, Any], msgspec.Meta(
        description="The profile's other keys (docs/profile.md): currency, labels, directions, cut-off, "
                    "settlement side, severity.",
        examples=[{"currency": "NGN", "reference_label": "RRN", "left_label": "Bank", "right_label": "Switch",
                   "left_direction": "debit", "right_direction": "debit", "cutoff": {"days": 1}}])
    ] = msgspec.field(default_factory=dict)
    force: Annotated[bool, msgspec.Meta(
        description="Reconcile two files an earlier job already reconciled together (else 409 "
                    "FILES_ALREADY_RECONCILED naming that job).", examples=[False])] = False


class JobUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, _JOB_NAME]


class JobFile(msgspec.Struct):
    file_id: uuid.UUID
    side: str


class JobWarning(msgspec.Struct):
    code: str  # NO_MATCHES | DIRECTION_FILTER_EMPTY
    side: str | None
    message: str


class Job(msgspec.Struct):
    id: uuid.UUID
    name: str
    status: str
    progress: int
    stage: str | None
    attempt: int
    total_rows: int
    processed_rows: int
    matched_rows: int
    exception_rows: int
    match_rate: str | None
    processing_time_seconds: int | None
    error_message: str | None
    cancel_requested: bool
    created_by: uuid.UUID
    created_at: dt.datetime | None
    updated_at: dt.datetime | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    previous_job_id: uuid.UUID | None
    leading_side: str | None
    period_start: dt.date | None
    period_end: dt.date | None
    rules: list[dict[str, Any]]
    stage_seconds: dict[str, float]
    summary: dict[str, Any] | None
    files: list[JobFile] | None = None
    # A completed job whose result looks implausible (match rate 0 % with both sides non-empty, a
    # side's direction filter keeping none of its rows): [{code, side, message}]; [] otherwise.
    warnings: list[JobWarning] = msgspec.field(default_factory=list)


class MatchItem(msgspec.Struct):
    left_row: int
    right_row: int
    group_id: str | None
    rule: str
    rule_version: int
    status: str
    confidence: str
    evidence: dict[str, Any]


class Results(msgspec.Struct):
    job_id: uuid.UUID
    kind: str
    summary: dict[str, Any]
    exceptions_by_type: dict[str, int]
    links: dict[str, Any]
    items: list[MatchItem]
    page: int
    per_page: int
    total: int
    next_cursor: str | None  # pass as ?cursor= for the page after this one (keyset: fast at any depth)


class JobOutputBody(msgspec.Struct):
    name: str
    content_type: str
    size_bytes: int
    sha256: str
    download: str  # the path that hands out a download link


class OutputLinkBody(msgspec.Struct):
    url: str
    expires_at: dt.datetime


_MAX_ROW = 2**31 - 1


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        left, right = (int(part) for part in cursor_parts(cursor, 2))
    except ValueError:
        raise ValidationFailed([FieldError("cursor", "is not a cursor this API issued")]) from None
    if not (0 <= left <= _MAX_ROW and 0 <= right <= _MAX_ROW):
        raise ValidationFailed([FieldError("cursor", "is not a cursor this API issued")])
    return left, right


def _caller(principal: Principal, request: Request[Any, Any, Any]) -> Caller:
    return Caller.of(principal, request_info(request))


def _job_body(job: ReconciliationJob, files: list[Any] | None = None) -> Job:
    return Job(
        id=job.id, name=job.name, status=job.status.value, progress=job.progress, stage=job.stage,
        attempt=job.attempt, total_rows=job.total_rows, processed_rows=job.processed_rows,
        matched_rows=job.matched_rows, exception_rows=job.exception_rows,
        match_rate=f"{job.match_rate:.2f}" if job.match_rate is not None else None,
        processing_time_seconds=job.processing_time_seconds, error_message=job.error_message,
        cancel_requested=job.cancel_requested, created_by=job.created_by, created_at=job.created_at,
        updated_at=job.updated_at, started_at=job.started_at, completed_at=job.completed_at,
        previous_job_id=job.previous_job_id, leading_side=job.leading_side, period_start=job.period_start,
        period_end=job.period_end, rules=list(job.snapshot.get("rules", [])),
        stage_seconds=dict(job.stage_seconds), summary=job.summary,
        files=[JobFile(file_id=f.file_id, side=f.side) for f in files] if files is not None else None,
        warnings=[JobWarning(code=str(w.get("code")), side=w.get("side"), message=str(w.get("message")))
                  for w in (job.summary or {}).get("warnings") or []],
    )


def _match_item(match: StoredMatch) -> MatchItem:
    return MatchItem(left_row=match.left_row, right_row=match.right_row, group_id=match.group_key, rule=match.rule,
                     rule_version=match.rule_version, status=match.status, confidence=f"{match.confidence:.4f}",
                     evidence=match.evidence)


def _moment(text: str | None, field: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # not ISO, or an offset that leaves the datetime range
        raise ValidationFailed([FieldError(field, "must be an ISO date or date-time")]) from None


class ReconciliationController(Controller):
    path = "/api/reconciliations"

    @get("/", opt={"permission": "reconciliations:read"}, sync_to_thread=True, summary="List reconciliation jobs")
    def list_jobs(self, request: Request[Any, Any, Any], container: NamedDependency[Container],
                  principal: NamedDependency[Principal], pagination: NamedDependency[Pagination],
                  status: FromQuery[Literal["pending", "processing", "completed", "failed", "cancelled"] | None] = None,
                  created_from: FromQuery[str | None] = None, created_to: FromQuery[str | None] = None) -> Success[list[Job]]:
        """The organization's jobs, newest first, filtered by status and creation time (ISO-8601 instants),
        paginated with `page` and `per_page`."""
        job_filter = JobFilter(status=JobStatus(status) if status else None,
                               created_from=_moment(created_from, "created_from"),
                               created_to=_moment(created_to, "created_to"))
        jobs, total = list_reconciliations(container.reconciliations,
                                           _caller(principal, request), job_filter, page=pagination.page,
                                           per_page=pagination.per_page)
        return paginated([_job_body(job) for job in jobs], pagination, total)

    @post("/", opt={"permission": "reconciliations:write", "errors": {
        403: "QUOTA_EXCEEDED: the organization has started its tier's jobs for this month; EMAIL_NOT_VERIFIED: "
             "the caller is an administrator whose e-mail address is not verified yet.",
        422: "FILE_NOT_READY: a file has no confirmed mapping; NO_ACTIVE_RULES; INVALID_RECONCILIATION: the "
             "profile built from rules, mappings and options is invalid (the JSON path is named)."}},
          status_code=201, sync_to_thread=True, summary="Start a reconciliation")
    def create_job(self, data: JSONBody[JobCreate], request: Request[Any, Any, Any], container: NamedDependency[Container],
                   principal: NamedDependency[Principal]) -> Success[Job]:
        """Matches two mapped files with the organization's rules in a background job (status pending, then
        processing). The job keeps a snapshot of everything it runs with; poll it or wait for the mail."""
        services = container.reconciliations
        job = start_reconciliation(services, _caller(principal, request), StartRequest(
            name=data.name, left_file_id=data.left_file_id, right_file_id=data.right_file_id,
            rule_ids=data.rule_ids, leading_side=data.leading_side, period_start=data.period_start,
            period_end=data.period_end, options=dict(data.options), force=data.force))
        return ok(_job_body(job))

    @get("/{job_id:uuid}", opt={"permission": "reconciliations:read"}, sync_to_thread=True,
         summary="Read a reconciliation job")
    def read_job(self, job_id: FromPath[uuid.UUID], request: Request[Any, Any, Any], container: NamedDependency[Container],
                 principal: NamedDependency[Principal]) -> Success[Job]:
        """The job's status, progress and stage, row counts, match rate, timings, rules and files, and its
        summary once completed."""
        details = get_reconciliation(container.reconciliations, _caller(principal, request),
                                     job_id)
        return ok(_job_body(details.job, details.files))

    @put("/{job_id:uuid}", opt={"permission": "reconciliations:write"}, sync_to_thread=True,
         summary="Rename a reconciliation job")
    def rename_job(self, job_id: FromPath[uuid.UUID], data: JSONBody[JobUpdate], request: Request[Any, Any, Any],
                   container: NamedDependency[Container], principal: NamedDependency[Principal]) -> Success[Job]:
        """Changes the job's name; nothing else about a job can change."""
        job = rename_reconciliation(container.reconciliations, _caller(principal, request),
                                    job_id, data.name)
        return ok(_job_body(job))

    @delete("/{job_id:uuid}", opt={"permission": "reconciliations:delete", "errors": {
        409: "JOB_IS_RUNNING: cancel the job first."}},
            status_code=200, sync_to_thread=True, summary="Delete a reconciliation job")
    def delete_job(self, job_id: FromPath[uuid.UUID], request: Request[Any, Any, Any],
                   container: NamedDependency[Container], principal: NamedDependency[Principal]) -> Success[dict[str, Any]]:
        """Removes the job with its matches, exceptions and outputs (the uploaded files stay)."""
        delete_reconciliation(container.reconciliations, _caller(principal, request), job_id)
        return ok({"id": str(job_id), "deleted": True})

    @post("/{job_id:uuid}/cancel", opt={"permission": "reconciliations:write", "errors": {
        409: "JOB_ALREADY_FINISHED: the job completed, failed or was cancelled already."}},
          status_code=200, sync_to_thread=True, summary="Cancel a reconciliation job")
    def cancel_job(self, job_id: FromPath[uuid.UUID], request: Request[Any, Any, Any],
                   container: NamedDependency[Container], principal: NamedDependency[Principal]) -> Success[Job]:
        """A pending job is cancelled at once; a processing one is flagged and stops at the worker's next
        check."""
        job = cancel_reconciliation(container.reconciliations, _caller(principal, request),
                                    job_id)
        return ok(_job_body(job))

    @get("/{job_id:uuid}/results", opt={"permission": "reconciliations:read", "errors": {
        409: "JOB_NOT_COMPLETED: results exist once the job has completed."}},
         sync_to_thread=True, summary="Read a job's matches or suggestions",
         dependencies={"search": Provide(provide_row_search, sync_to_thread=False)})
    def results(self, job_id: FromPath[uuid.UUID], request: Request[Any, Any, Any], container: NamedDependency[Container],
                principal: NamedDependency[Principal], pagination: NamedDependency[Pagination],
                search: NamedDependency[RowSearch | None],
                kind: FromQuery[Literal["matches", "suggestions"]] = "matches",
                group_id: FromQuery[str | None] = None, cursor: FromQuery[str | None] = None) -> Success[Results]:
        """The completed job's summary and one page of its matches (`kind=matches`) or suggested pairs
        (`kind=suggestions`), optionally one group (`group_id`); `page`/`per_page` or `cursor` from
        `next_cursor`. Links lead to the job's exceptions. The search parameters (reference, STAN, account,
        channel, amount and date ranges of a row) keep the pairs one of whose rows meets them all."""
        after = decode_cursor(cursor) if cursor else None
        page = get_results(container.reconciliations, _caller(principal, request), job_id,
                           kind=kind, page=pagination.page, per_page=pagination.per_page, group_key=group_id,
                           after=after, search=search)
        last = page.items[-1] if len(page.items) == pagination.per_page else None
        container.access_recorder.record(access_event(
            "access.reconciliation.results", principal, request_info(request), resource_type="reconciliation_job",
            resource_id=job_id, metadata={"kind": kind, "page": pagination.page, "per_page": pagination.per_page,
                                          "cursor": cursor is not None, "group_id": group_id,
                                          "rows": len(page.items)}))
        exceptions = f"/api/exceptions?job_id={job_id}"
        links = {"exceptions": exceptions,
                 "exceptions_by_type": {t: f"{exceptions}&type={t}" for t in sorted(page.exceptions_by_type)},
                 "suggestions": f"/api/reconciliations/{job_id}/results?kind=suggestions",
                 "matches": f"/api/reconciliations/{job_id}/results?kind=matches"}
        return ok(Results(job_id=job_id, kind=kind, summary=dict(page.job.summary or {}),
                          exceptions_by_type=page.exceptions_by_type, links=links,
                          items=[_match_item(m) for m in page.items], page=pagination.page,
                          per_page=pagination.per_page, total=page.total,
                          next_cursor=encode_cursor(last.left_row, last.right_row) if last else None))

    @get("/{job_id:uuid}/outputs", opt={"permission": "reconciliations:read"}, sync_to_thread=True,
         summary="List a job's output files")
    def outputs(self, job_id: FromPath[uuid.UUID], request: Request[Any, Any, Any],
                container: NamedDependency[Container], principal: NamedDependency[Principal]) -> Success[list[JobOutputBody]]:
        """The files the job wrote (matches.csv, exceptions.csv, summary.json, ...) with size, SHA-256 and the
        path that hands out a download link."""
        found = list_job_outputs(container.reconciliations, _caller(principal, request), job_id)
        return ok([JobOutputBody(name=o.name, content_type=o.content_type, size_bytes=o.size_bytes, sha256=o.sha256,
                                 download=f"/api/reconciliations/{job_id}/outputs/{o.name}/download") for o in found])

    @get("/{job_id:uuid}/outputs/{name:str}/download", opt={"permission": "reconciliations:read"},
         sync_to_thread=True, summary="Link to download a job's output file")
    def output_download_link(self, job_id: FromPath[uuid.UUID], name: FromPath[str], request: Request[Any, Any, Any],
                             container: NamedDependency[Container],
                             principal: NamedDependency[Principal]) -> Success[OutputLinkBody]:
        """A URL valid for one hour that serves one of the job's output files. Issuing it is audited."""
        link = job_output_download_url(container.reconciliations, _caller(principal, request), job_id, name)
        return ok(OutputLinkBody(url=link.url, expires_at=link.expires_at))


ROUTE_HANDLERS = [ReconciliationController]
