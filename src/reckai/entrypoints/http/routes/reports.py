"""Reports (issue 14 section 2; docs/reports.md).

    POST   /api/reports                 {type, format, job_id?, period_start?, period_end?, parameters?} -> 202
    GET    /api/reports                 ?type= &format= &status= &job_id= &mine= &page= &per_page=
    GET    /api/reports/{id}
    GET    /api/reports/{id}/download   a link valid for one hour
    DELETE /api/reports/{id}            its requester or an admin: the file goes, the row stays `deleted`
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from reckai.application.context import Caller, RequestInfo
from reckai.application.errors import FieldError, ValidationFailed
from reckai.application.ports.reports import ReportQuery
from reckai.application.reports.requests import (
    ReportRequest,
    delete_report,
    get_report,
    list_reports,
    report_download_url,
    request_report,
)
from reckai.bootstrap import Container
from reckai.domain.identity.principal import Principal
from reckai.domain.reports.report import REPORT_FORMATS, REPORT_TYPES, Report, ReportStatus
from reckai.entrypoints.http.envelope import Pagination, Success, ok, paginated
from reckai.entrypoints.http.routes.approvals import ApprovalBody, DownloadLinkBody, approval_body


class ReportCreate(msgspec.Struct, forbid_unknown_fields=True):
    type: Annotated[str, msgspec.Meta(
        description="daily, aging, channel_trend, sla or audit (audit needs audit:read); docs/reports.md defines "
                    "each figure.", examples=["aging"])]
    format: Annotated[str, msgspec.Meta(description="pdf, excel or csv (a zip of one CSV per table).",
                                        examples=["excel"])]
    job_id: Annotated[uuid.UUID | None, msgspec.Meta(
        description="The reconciliation job the report covers (daily); absent: the period.",
        examples=["0b9e6d8e-4a8c-4a4c-9c1e-2f5d3f1b7a10"])] = None
    period_start: Annotated[dt.date | None, msgspec.Meta(
        description="First day of the period, in the organization's time zone.", examples=["2025-12-01"])] = None
    period_end: Annotated[dt.date | None, msgspec.Meta(
        description="Last day of the period (inclusive).", examples=["2025-12-31"])] = None
    parameters: Annotated[dict[str, Any], msgspec.Meta(
        description="Filters of the report type (audit: user_id, action, resource_type).",
        examples=[{"action": "approval.approved"}])] = msgspec.field(default_factory=dict)


class ReportBody(msgspec.Struct):
    id: uuid.UUID
    type: str
    format: str
    status: str
    job_id: uuid.UUID | None
    period_start: dt.date | None
    period_end: dt.date | None
    parameters: dict[str, Any]
    requested_by: uuid.UUID
    requested_at: dt.datetime
    completed_at: dt.datetime | None
    data_as_of: dt.datetime | None
    error_message: str | None
    size_bytes: int | None
    sha256: str | None
    expires_at: dt.datetime | None
    approval_id: uuid.UUID | None
    content_type: str
    file_name: str


class ReportRequestedBody(msgspec.Struct):
    """202: the report (pending), or, when a checker must authorise it, the approval."""

    report: ReportBody | None = None
    pending_approval: ApprovalBody | None = None


def report_body(report: Report) -> ReportBody:
    return ReportBody(
        id=report.id, type=report.type, format=report.format, status=report.status.value, job_id=report.job_id,
        period_start=report.period_start, period_end=report.period_end, parameters=dict(report.parameters),
        requested_by=report.generated_by, requested_at=report.generated_at, completed_at=report.completed_at,
        data_as_of=report.data_as_of, error_message=report.error_message, size_bytes=report.file_size_bytes,
        sha256=report.sha256, expires_at=report.expires_at, approval_id=report.approval_id,
        content_type=report.content_type, file_name=report.download_name)


def _choices(value: str | None, field: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    items = tuple(part.strip() for part in (value or "").split(",") if part.strip())
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise ValidationFailed([FieldError(field, f"unknown value {unknown[0]!r}; one of {list(allowed)}")])
    return items


class ReportController(Controller):
    path = "/api/reports"

    @post("/", opt={"permission": "reports:generate", "rate_limit": "report"}, status_code=202, sync_to_thread=True,
          summary="Request a report")
    def create(self, data: JSONBody[ReportCreate], principal: NamedDependency[Principal],
               container: NamedDependency[Container],
               request_info: NamedDependency[RequestInfo]) -> Response[Success[ReportRequestedBody]]:
        """Queues the report's generation (medium priority) and answers 202 with it as `pending`, or,
        when the organization's settings require a checker for this type, with the `pending_approval`
        and no report yet. Five requests per hour per user."""
        outcome = request_report(container.reports, container.workflow, principal, request_info, ReportRequest(
            type=data.type, format=data.format, job_id=data.job_id, period_start=data.period_start,
            period_end=data.period_end, parameters=data.parameters))
        return Response(ok(ReportRequestedBody(
            report=report_body(outcome.report) if outcome.report is not None else None,
            pending_approval=approval_body(outcome.approval) if outcome.approval is not None else None)),
            status_code=202)

    @get("/", opt={"permission": "reports:read"}, sync_to_thread=True, summary="List reports")
    def list_reports(
        self, principal: NamedDependency[Principal], container: NamedDependency[Container],
        pagination: NamedDependency[Pagination], request_info: NamedDependency[RequestInfo],
        type: Annotated[str | None, QueryParameter(description="comma-separated report types")] = None,
        format: Annotated[str | None, QueryParameter(description="comma-separated formats")] = None,
        status: Annotated[str | None, QueryParameter(description="comma-separated statuses")] = None,
        job_id: Annotated[uuid.UUID | None, QueryParameter(description="reports about this job")] = None,
        mine: Annotated[bool, QueryParameter(description="only the caller's own requests")] = False,
    ) -> Success[list[ReportBody]]:
        """The organization's reports, newest first, with their status, size and SHA-256 (audit reports
        only for callers with audit:read), paginated with `page` and `per_page`."""
        query = ReportQuery(types=_choices(type, "type", REPORT_TYPES), formats=_choices(format, "format", REPORT_FORMATS),
                            statuses=_choices(status, "status", tuple(s.value for s in ReportStatus)), job_id=job_id,
                            generated_by=principal.user_id if mine else None, limit=pagination.per_page,
                            offset=pagination.offset)
        reports, total = list_reports(container.reports, Caller.of(principal, request_info), query)
        return paginated([report_body(r) for r in reports], pagination, total)

    @get("/{report_id:uuid}", opt={"permission": "reports:read"}, sync_to_thread=True, summary="Read a report")
    def read(self, report_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
             container: NamedDependency[Container], request_info: NamedDependency[RequestInfo]) -> Success[ReportBody]:
        """One report: status (pending, running, completed, failed, expired, deleted), error message,
        period, data as of, size, SHA-256 and expiry."""
        return ok(report_body(get_report(container.reports, Caller.of(principal, request_info), report_id)))

    @get("/{report_id:uuid}/download", opt={"permission": "reports:read"}, sync_to_thread=True,
         summary="Link to download a report")
    def download_link(self, report_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                      container: NamedDependency[Container],
                      request_info: NamedDependency[RequestInfo]) -> Success[DownloadLinkBody]:
        """A link valid for one hour to the completed report's file (audited)."""
        link = report_download_url(container.reports, Caller.of(principal, request_info), report_id)
        return ok(DownloadLinkBody(url=link.url, expires_at=link.expires_at))

    @delete("/{report_id:uuid}", opt={"permission": "reports:generate"}, status_code=200, sync_to_thread=True,
            summary="Delete a report")
    def remove(self, report_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
               container: NamedDependency[Container],
               request_info: NamedDependency[RequestInfo]) -> Success[ReportBody]:
        """Deletes the report's file (its requester or an admin); the row stays, status `deleted`, for the
        audit trail."""
        return ok(report_body(delete_report(container.reports, Caller.of(principal, request_info), report_id)))


ROUTE_HANDLERS = [ReportController]
