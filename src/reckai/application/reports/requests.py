"""Requesting, reading, downloading and deleting reports (POST/GET/DELETE /api/reports;
docs/reports.md).

A request is checked (type, format, period, parameters, who may ask for it), then either stored as
a `pending` report whose generation is queued on the medium queue in the same transaction, or, when
the organization routes this report type through a checker (`workflow.approval_required_for`),
turned into a `report_generation` approval: the report is created and generated when a checker
approves it (approvals.py). Both paths run `check_report_request`, the one rule.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reckai.application.approvals.common import WorkflowServices
from reckai.application.approvals.requests import request_approval
from reckai.application.context import Caller, Outcome, RequestInfo
from reckai.application.errors import (
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    ValidationFailed,
)
from reckai.application.files.queries import DownloadLink
from reckai.application.ports.reports import REPORT_PAGE_MAX, ReportQuery, ReportsUnitOfWork
from reckai.application.ports.storage import DOWNLOAD_URL_LIFETIME, StorageError
from reckai.application.reports.services import GENERATE_REPORT, ReportServices, report_event
from reckai.domain.approvals.workflow import Approval, InvalidApproval
from reckai.domain.exceptions.errors import InvalidWorkflowSettings
from reckai.domain.exceptions.policy import parse_workflow_settings
from reckai.domain.identity.permissions import has_permission
from reckai.domain.identity.principal import Principal
from reckai.domain.ingestion.storage_keys import report_key
from reckai.domain.reconciliation.jobs import JobStatus
from reckai.domain.reports.report import (
    AUDIT_REPORT,
    EXTENSIONS,
    MAX_PERIOD_DAYS,
    REPORT_FORMATS,
    REPORT_TYPES,
    Report,
    ReportStateError,
    ReportStatus,
)
from reckai.domain.reports.settings import InvalidReportSettings, ReportSettings, parse_report_settings

AUDIT_PERMISSION = "audit:read"
# Parameters each type accepts (strings); anything else is refused, never ignored.
PARAMETERS: Mapping[str, frozenset[str]] = {
    "daily": frozenset(),
    "aging": frozenset(),
    "sla": frozenset(),
    "channel_trend": frozenset({"granularity"}),
    "audit": frozenset({"user_id", "action", "resource_type"}),
}
_ACTION = re.compile(r"^[a-z0-9_.]{1,100}$")


class ReportNotReady(Conflict):
    code = "REPORT_NOT_READY"

    def __init__(self, report_id: uuid.UUID, status: str) -> None:
        super().__init__(f"report {report_id} is {status}; only a completed report can be downloaded")
        self.report_id = report_id
        self.status = status


class ReportStateConflict(Conflict):
    code = "REPORT_STATE_CONFLICT"


@dataclass(frozen=True)
class ReportRequest:
    type: str
    format: str
    job_id: uuid.UUID | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckedRequest:
    type: str
    format: str
    job_id: uuid.UUID | None
    period_start: dt.date
    period_end: dt.date
    parameters: dict[str, str]

    def as_parameters(self) -> dict[str, Any]:
        """What the report row and the approval's metadata keep (the period travels in it)."""
        return {**self.parameters, "period_start": self.period_start.isoformat(),
                "period_end": self.period_end.isoformat()}


@dataclass(frozen=True)
class ReportRequested:
    report: Report | None = None  # queued at once (202, status pending)
    approval: Approval | None = None  # or waiting for a checker (202, pending_approval)


def organization_report_settings(uow: ReportsUnitOfWork, organization_id: uuid.UUID) -> ReportSettings:
    organization = uow.organizations.get(organization_id)
    if organization is None:
        raise NotFound("organization", organization_id)
    try:
        return parse_report_settings(organization.settings)
    except InvalidReportSettings as exc:
        raise ServiceUnavailable("settings", f"the organization's report settings are invalid: {exc}") from exc


def may_read_type(role: str | None, report_type: str) -> bool:
    return report_type != AUDIT_REPORT or (role is not None and has_permission(role, AUDIT_PERMISSION))


def check_report_request(uow: ReportsUnitOfWork, role: str, request: ReportRequest, settings: ReportSettings,
                         now: dt.datetime) -> CheckedRequest:
    """THE check of a report request, for POST /api/reports and for a `report_generation` approval
    (requested, and again when approved)."""
    problems: list[FieldError] = []
    if request.type not in REPORT_TYPES:
        problems.append(FieldError("type", f"must be one of {list(REPORT_TYPES)}"))
    if request.format not in REPORT_FORMATS:
        problems.append(FieldError("format", f"must be one of {list(REPORT_FORMATS)}"))
    if problems:
        raise ValidationFailed(problems)
    if not may_read_type(role, request.type):
        raise PermissionDenied(AUDIT_PERMISSION, "the audit report needs the audit:read permission")
    parameters = _check_parameters(request.type, request.parameters, problems)
    today = settings.local_date(now)
    start, end = request.period_start, request.period_end
    if request.job_id is not None:
        job = uow.reconciliation_jobs.get(request.job_id)
        if job is None:
            raise NotFound("reconciliation_job", request.job_id)
        if job.status is not JobStatus.COMPLETED:
            problems.append(FieldError("job_id", f"the job is {job.status.value}; a report needs a completed job"))
        elif start is None and end is None and job.completed_at is not None:
            start = end = settings.local_date(job.completed_at)
    if end is None:
        end = start if start is not None and request.type == "daily" else today
    if start is None:
        start = end if request.type in ("daily", "aging") else end - dt.timedelta(days=29)
    if start > end:
        problems.append(FieldError("period_start", "must not be after period_end"))
    elif (end - start).days + 1 > MAX_PERIOD_DAYS:
        problems.append(FieldError("period_end", f"a report covers at most {MAX_PERIOD_DAYS} days"))
    if end > today:
        problems.append(FieldError("period_end", f"must not be after today ({today.isoformat()}, "
                                                 f"{settings.timezone})"))
    if problems:
        raise ValidationFailed(problems)
    return CheckedRequest(request.type, request.format, request.job_id, start, end, parameters)


def _check_parameters(report_type: str, raw: Mapping[str, Any], problems: list[FieldError]) -> dict[str, str]:
    allowed = PARAMETERS[report_type]
    clean: dict[str, str] = {}
    for key, value in raw.items():
        if key not in allowed:
            problems.append(FieldError(f"parameters.{key}", f"unknown parameter for a {report_type} report"
                                                            f" (accepted: {sorted(allowed) or 'none'})"))
            continue
        if not isinstance(value, str) or not value or len(value) > 100:
            problems.append(FieldError(f"parameters.{key}", "must be a non-empty string of at most 100 characters"))
            continue
        if key == "granularity" and value not in ("day", "week"):
            problems.append(FieldError("parameters.granularity", "must be day or week"))
        elif key == "user_id":
            try:
                value = str(uuid.UUID(value))
            except ValueError:
                problems.append(FieldError("parameters.user_id", "must be a UUID"))
        elif key in ("action", "resource_type") and not _ACTION.match(value):
            problems.append(FieldError(f"parameters.{key}", "lower-case letters, digits, '_' and '.' only"))
        clean[key] = value
    return clean


def _needs_checker(uow: ReportsUnitOfWork, organization_id: uuid.UUID, report_type: str) -> bool:
    organization = uow.organizations.get(organization_id)
    try:
        workflow = parse_workflow_settings(organization.settings if organization else None)
    except InvalidWorkflowSettings as exc:
        raise ServiceUnavailable("settings", f"the organization's workflow settings are invalid: {exc}") from exc
    return workflow.report_requires_approval(report_type)


def new_report(organization_id: uuid.UUID, requested_by: uuid.UUID, checked: CheckedRequest, now: dt.datetime,
               *, report_id: uuid.UUID | None = None, approval_id: uuid.UUID | None = None) -> Report:
    """A pending report; its storage key is fixed here, from its id and the month it was asked for."""
    report_id = report_id or uuid.uuid4()
    return Report(id=report_id, organization_id=organization_id, type=checked.type, format=checked.format,
                  storage_path=report_key(organization_id, report_id, now.date(), EXTENSIONS[checked.format]),
                  generated_by=requested_by, generated_at=now, job_id=checked.job_id,
                  period_start=checked.period_start, period_end=checked.period_end,
                  parameters=checked.as_parameters(), approval_id=approval_id, updated_at=now)


def queue_report(services: ReportServices, uow: ReportsUnitOfWork, report: Report) -> Report:
    """Store the pending report and queue its generation in the same transaction (the caller commits)."""
    stored = uow.reports.add(report)
    services.job_queue.enqueue(uow, GENERATE_REPORT.request({"report_id": str(report.id)},
                                                            organization_id=report.organization_id))
    return stored


def request_report(services: ReportServices, workflow: WorkflowServices, principal: Principal,
                   request_info: RequestInfo, request: ReportRequest) -> ReportRequested:
    caller = Caller.of(principal, request_info)
    now = services.now()
    with services.database.unit_of_work(principal.organization_id) as uow:
        settings = organization_report_settings(uow, principal.organization_id)
        checked = check_report_request(uow, principal.role, request, settings, now)
        if not _needs_checker(uow, principal.organization_id, checked.type):
            report = queue_report(services, uow, new_report(principal.organization_id, principal.user_id,
                                                            checked, now))
            services.audit_log.record(uow, report_event(
                caller, "report.requested", report.id, outcome=Outcome.ACCEPTED, type=report.type,
                format=report.format, job_id=str(report.job_id) if report.job_id else None,
                parameters=report.parameters))
            uow.commit()
            return ReportRequested(report=report)
    try:
        approval = request_approval(
            workflow, principal, type="report_generation",
            title=f"Report: {checked.type} ({checked.format}), {checked.period_start} to {checked.period_end}",
            description=f"Generate the {checked.type} report as {checked.format} for "
                        f"{checked.period_start.isoformat()} to {checked.period_end.isoformat()}.",
            metadata=approval_metadata(checked), request=request_info)
    except InvalidApproval as exc:
        raise ValidationFailed([FieldError(k.removeprefix("metadata."), v) for k, v in exc.details.items()],
                               exc.message) from None
    return ReportRequested(approval=approval)


def approval_metadata(checked: CheckedRequest) -> dict[str, Any]:
    return {"report_type": checked.type, "format": checked.format,
            "job_id": str(checked.job_id) if checked.job_id else None, "parameters": checked.as_parameters()}


def request_from_metadata(metadata: Mapping[str, Any]) -> ReportRequest:
    """A `report_generation` approval's metadata as the request it stands for."""
    parameters = dict(metadata.get("parameters") or {})
    period = {key: parameters.pop(key, None) for key in ("period_start", "period_end")}
    try:
        start = dt.date.fromisoformat(period["period_start"]) if period["period_start"] else None
        end = dt.date.fromisoformat(period["period_end"]) if period["period_end"] else None
    except (TypeError, ValueError):
        raise ValidationFailed([FieldError("parameters.period_start", "must be a date (YYYY-MM-DD)")]) from None
    job_id = metadata.get("job_id")
    return ReportRequest(type=str(metadata.get("report_type")), format=str(metadata.get("format")),
                         job_id=uuid.UUID(str(job_id)) if job_id else None, period_start=start, period_end=end,
                         parameters=parameters)


# --- reading ---


def list_reports(services: ReportServices, caller: Caller, query: ReportQuery) -> tuple[list[Report], int]:
    if not 1 <= query.limit <= REPORT_PAGE_MAX:
        raise ValidationFailed([FieldError("per_page", f"must be from 1 to {REPORT_PAGE_MAX}")])
    with services.database.unit_of_work(caller.organization_id) as uow:
        return uow.reports.list(query)


def get_report(services: ReportServices, caller: Caller, report_id: uuid.UUID) -> Report:
    with services.database.unit_of_work(caller.organization_id) as uow:
        report = uow.reports.get(report_id)
    if report is None:
        raise NotFound("report", report_id)
    return report


def report_download_url(services: ReportServices, caller: Caller, report_id: uuid.UUID) -> DownloadLink:
    """A link valid for one hour (spec §6.3), like a file's; audited with the file's size and SHA-256.
    The audit report needs audit:read as well as reports:read."""
    report = get_report(services, caller, report_id)
    if not may_read_type(caller.role, report.type):
        raise PermissionDenied(AUDIT_PERMISSION, "the audit report needs the audit:read permission")
    if report.status is not ReportStatus.COMPLETED:
        raise ReportNotReady(report.id, report.status.value)
    expires_at = services.now() + DOWNLOAD_URL_LIFETIME
    try:
        url = services.storage.download_url(report.storage_path, expires_in=DOWNLOAD_URL_LIFETIME,
                                            download_name=report.download_name)
    except StorageError as exc:
        raise ServiceUnavailable("storage", type(exc).__name__) from exc
    with services.database.unit_of_work(caller.organization_id) as uow:
        services.audit_log.record(uow, report_event(
            caller, "report.download_link_issued", report.id, outcome=Outcome.DONE, type=report.type,
            format=report.format, size_bytes=report.file_size_bytes, sha256=report.sha256))
        uow.commit()
    return DownloadLink(url=url, expires_at=expires_at)


def delete_report(services: ReportServices, caller: Caller, report_id: uuid.UUID) -> Report:
    """Its requester or an admin (reports:delete_any): the object is removed, the row stays `deleted`."""
    with services.database.unit_of_work(caller.organization_id) as uow:
        report = uow.reports.get_for_update(report_id)
        if report is None:
            raise NotFound("report", report_id)
        if report.generated_by != caller.user_id and caller.role != "admin":
            raise PermissionDenied("reports:delete", "only the report's requester or an admin may delete it")
        try:
            deleted = report.deleted(services.now())
        except ReportStateError as exc:
            raise ReportStateConflict(str(exc)) from None
        try:
            services.storage.delete(report.storage_path)
        except StorageError as exc:
            raise ServiceUnavailable("storage", type(exc).__name__) from exc
        uow.reports.update(deleted)
        services.audit_log.record(uow, report_event(caller, "report.deleted", report.id, outcome=Outcome.DONE,
                                                    type=report.type, previous_status=report.status.value,
                                                    sha256=report.sha256))
        uow.commit()
    return deleted
