"""Generating a report (the `generate_report` job, medium queue; docs/reports.md).

One attempt: lock the row and mark it `running`; read the stored rows the figures need in one unit
of work (so every figure is as of one moment, `data_as_of`); compute the figures (ReportFigures,
polars); render the document in the report's format; write it once to the key fixed at creation;
then, under the row lock again, record size, SHA-256 and expiry and audit `report.generated`. A
report deleted meanwhile loses the object just written. Any failure marks the report `failed` with
a message a person can act on, audited as `report.failed`. A message for a report that is no longer
pending or running does nothing (redelivery is harmless).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import uuid
from typing import Any

from reckai.application.audit import verify_organization_period
from reckai.application.context import Caller, Outcome
from reckai.application.ports.audit import AuditQuery
from reckai.application.ports.exports import Column, ColumnKind
from reckai.application.ports.jobs import JobDelivery
from reckai.application.ports.reconciliations import JobFilter
from reckai.application.ports.reports import ChannelSource, FigureInputs, ReportsUnitOfWork
from reckai.application.ports.storage import StorageError
from reckai.application.ports.workflow import ExceptionQuery
from reckai.application.reports.document import ReportCover, ReportDocument, ReportTable
from reckai.application.reports.requests import organization_report_settings
from reckai.application.reports.services import ReportServices, report_event
from reckai.application.streams.periods import period_views
from reckai.domain.audit.events import AuditRecord
from reckai.domain.exceptions.policy import parse_workflow_settings
from reckai.domain.ingestion.storage_keys import processed_key
from reckai.domain.reconciliation.jobs import JobStatus, ReconciliationJob
from reckai.domain.reports.report import Report, ReportStateError, ReportStatus
from reckai.domain.reports.settings import ReportSettings
from reckai.domain.streams.periods import Period

_log = logging.getLogger("reckai.reports")

ACTIVE_STATUSES = ("open", "in_progress", "escalated")
COMPARISON_DAYS = 30  # daily: the change against the mean of the previous 30 days
TITLES = {"daily": "Daily reconciliation report", "aging": "Aging of open exceptions",
          "sla": "SLA performance", "channel_trend": "Channel trend", "audit": "Audit trail"}


def generate_report_job(services: ReportServices, delivery: JobDelivery) -> None:
    if delivery.organization_id is None:
        raise ValueError("a report message must name its organization")
    generate_report(services, delivery.organization_id, uuid.UUID(str(delivery.payload["report_id"])))


def generate_report(services: ReportServices, organization_id: uuid.UUID, report_id: uuid.UUID) -> Report | None:
    caller = Caller.system(organization_id)
    with services.database.unit_of_work(organization_id) as uow:
        report = uow.reports.get_for_update(report_id)
        if report is None or report.status not in (ReportStatus.PENDING, ReportStatus.RUNNING):
            return report
        running = report.started(services.now())
        uow.reports.update(running)
        uow.commit()
    try:
        document, data_as_of, settings = build_document(services, running)
        renderer = services.renderers.of(running.format)
        if renderer is None:
            raise ReportFailure(f"the {running.format} format is not available")
        body = renderer.render(document)
        sha256 = hashlib.sha256(body).hexdigest()
        try:
            services.storage.put(running.storage_path, [body], content_type=running.content_type)
        except StorageError as exc:
            raise ReportFailure(f"the report could not be stored ({type(exc).__name__}); request it again") from exc
    except Exception as exc:  # noqa: BLE001 - any failure ends the attempt as a recorded `failed` report
        message = str(exc) if isinstance(exc, ReportFailure) else (
            f"the report could not be generated ({type(exc).__name__}); request it again, and report it with "
            f"the report id if it happens again")
        _log.exception("report generation failed", extra={"action": "report.failed", "resource_id": str(report_id)})
        return _fail(services, caller, report_id, message)
    now = services.now()
    with services.database.unit_of_work(organization_id) as uow:
        current = uow.reports.get_for_update(report_id)
        if current is None or current.status is not ReportStatus.RUNNING:
            services.storage.delete(running.storage_path)  # deleted while it was being generated
            return current
        completed = current.completed(size_bytes=len(body), sha256=sha256, data_as_of=data_as_of, now=now,
                                      expires_at=now + dt.timedelta(days=settings.expiry_days))
        uow.reports.update(completed)
        services.audit_log.record(uow, report_event(
            caller, "report.generated", report_id, outcome=Outcome.DONE, type=completed.type,
            format=completed.format, requested_by=str(completed.generated_by),
            period_start=completed.period_start.isoformat() if completed.period_start else None,
            period_end=completed.period_end.isoformat() if completed.period_end else None,
            job_id=str(completed.job_id) if completed.job_id else None, size_bytes=len(body), sha256=sha256,
            data_as_of=data_as_of.isoformat(), expires_at=completed.expires_at.isoformat()
            if completed.expires_at else None))
        uow.commit()
    return completed


class ReportFailure(Exception):
    """A failure whose message is meant for the person who asked for the report."""


def _fail(services: ReportServices, caller: Caller, report_id: uuid.UUID, message: str) -> Report | None:
    with services.database.unit_of_work(caller.organization_id) as uow:
        current = uow.reports.get_for_update(report_id)
        if current is None:
            return None
        try:
            failed = current.failed(message, services.now())
        except ReportStateError:
            return current
        uow.reports.update(failed)
        services.audit_log.record(uow, report_event(caller, "report.failed", report_id, outcome=Outcome.REFUSED,
                                                    type=current.type, format=current.format, error=message))
        uow.commit()
    return failed


def build_document(services: ReportServices, report: Report) -> tuple[ReportDocument, dt.datetime, ReportSettings]:
    """The report's document, every figure read in one unit of work (one moment: data as of)."""
    assert report.period_start is not None and report.period_end is not None
    with services.database.unit_of_work(report.organization_id) as uow:
        data_as_of = services.now()
        settings = organization_report_settings(uow, report.organization_id)
        organization = uow.organizations.get(report.organization_id)
        requester = uow.users.get(report.generated_by)
        workflow = parse_workflow_settings(organization.settings if organization else None)
        inputs = _inputs(uow, report, settings, data_as_of, dict(workflow.sla.hours))
    if report.type == "audit":
        inputs = audit_inputs(services, inputs, report, settings)
    figures = services.figures.compute(inputs)
    jobs = [f"{job.name} ({job.id})" for job in inputs.jobs
            if settings.local_date(job.completed_at or data_as_of) >= report.period_start]
    cover = ReportCover(
        title=TITLES[report.type], organization=organization.name if organization else str(report.organization_id),
        period=_period_text(report, settings), data_as_of=data_as_of,
        generated_by=f"{requester.name} <{requester.email}>" if requester else str(report.generated_by),
        generated_at=services.now(), jobs=jobs,
        facts=[("Report id", str(report.id)), ("Time zone", settings.timezone),
               *((f"Parameter {k}", v) for k, v in sorted(report.parameters.items())
                 if k not in ("period_start", "period_end"))])
    return ReportDocument(cover=cover, tables=figures.tables, charts=figures.charts), data_as_of, settings


MAX_AUDIT_ROWS = 200_000


def audit_inputs(services: ReportServices, inputs: FigureInputs, report: Report,
                 settings: ReportSettings) -> FigureInputs:
    """The audit rows of the period (after the report's user/action/resource filters), newest first,
    and the chain's verification over the period (application/audit.py, the one use case)."""
    start, end = settings.day_bounds(inputs.period_start, inputs.period_end)
    user = inputs.parameters.get("user_id")
    query = AuditQuery(action=inputs.parameters.get("action"), user_id=uuid.UUID(user) if user else None,
                       resource_type=inputs.parameters.get("resource_type"), created_from=start, created_to=end,
                       limit=500)
    records: list[AuditRecord] = []
    while len(records) < MAX_AUDIT_ROWS:
        page = services.audit_log.list_records(report.organization_id, query)
        records.extend(services.personal.reveal(report.organization_id, page.records))
        if page.next_before_sequence is None:
            break
        query = dataclasses.replace(query, before_sequence=page.next_before_sequence)
    if len(records) >= MAX_AUDIT_ROWS:
        raise ReportFailure(f"the period holds more than {MAX_AUDIT_ROWS:,} audit rows; ask for a shorter period "
                            "or filter by user, action or resource")
    checked = verify_organization_period(services.audit_log, services.audit_signer, report.organization_id,
                                         start, end, inputs.now)
    first = checked.verification.first_break
    verification = ReportTable(
        "verification", "Hash-chain verification over the period", [
            Column("period_start", ColumnKind.DATETIME), Column("period_end", ColumnKind.DATETIME),
            Column("rows_checked", ColumnKind.INTEGER), Column("rows_in_period", ColumnKind.INTEGER),
            Column("result"), Column("first_broken_sequence", ColumnKind.INTEGER), Column("first_broken_row_id")],
        [[start, end, checked.verification.records_checked, checked.rows_in_period, checked.result,
          first.sequence_number if first else None, str(first.record_id) if first and first.record_id else None]])
    return dataclasses.replace(inputs, audit_records=records, verification=verification)


def _period_text(report: Report, settings: ReportSettings) -> str:
    assert report.period_start is not None and report.period_end is not None
    if report.period_start == report.period_end:
        return f"{report.period_start.isoformat()} ({settings.timezone})"
    return f"{report.period_start.isoformat()} to {report.period_end.isoformat()} ({settings.timezone})"


def _inputs(uow: ReportsUnitOfWork, report: Report, settings: ReportSettings, now: dt.datetime,
            sla_hours: dict[str, int]) -> FigureInputs:
    assert report.period_start is not None and report.period_end is not None
    start, end = report.period_start, report.period_end
    jobs: list[ReconciliationJob] = []
    exceptions: list[bytes] = []
    periods: list[dict[str, Any]] = []
    parameters = {k: str(v) for k, v in report.parameters.items() if k not in ("period_start", "period_end")}
    if report.type == "daily":
        if report.job_id is not None:
            job = uow.reconciliation_jobs.get(report.job_id)
            jobs = [job] if job is not None else []
            history = _completed_jobs(uow, settings, start - dt.timedelta(days=COMPARISON_DAYS), start)
            jobs = [*jobs, *(j for j in history if j.id != report.job_id)]
        else:
            jobs = _completed_jobs(uow, settings, start - dt.timedelta(days=COMPARISON_DAYS), end)
        in_period = [j for j in jobs if j.completed_at and start <= settings.local_date(j.completed_at) <= end
                     and (report.job_id is None or j.id == report.job_id)]
        for job in in_period:
            exceptions.append(uow.exceptions.report_csv(ExceptionQuery(job_id=job.id)))
        parameters["job_ids"] = ",".join(str(j.id) for j in in_period)
        results = [(_row_scope(uow, j.id), processed_key(j.organization_id, j.id, "results", "parquet"))
                   for j in in_period]
        return FigureInputs(kind=report.type, period_start=start, period_end=end, now=now, settings=settings,
                            jobs=jobs, exception_csv=exceptions, sla_hours=sla_hours, parameters=parameters,
                            result_paths=results,
                            stream_periods=_stream_periods(uow, report.organization_id, start, end)
                            if report.job_id is None else [])
    elif report.type == "aging":
        exceptions = [uow.exceptions.report_csv(ExceptionQuery(statuses=ACTIVE_STATUSES, job_id=report.job_id))]
        periods = _stream_periods(uow, report.organization_id, start, end) if report.job_id is None else []
    elif report.type == "channel_trend":
        jobs = _completed_jobs(uow, settings, start, end)
        if report.job_id is not None:
            jobs = [j for j in jobs if j.id == report.job_id]
        sources = [source for job in jobs if (source := _channel_source(uow, job)) is not None]
        return FigureInputs(kind=report.type, period_start=start, period_end=end, now=now, settings=settings,
                            jobs=jobs, sla_hours=sla_hours, parameters=parameters, channel_sources=sources)
    elif report.type == "sla":
        first, last = settings.day_bounds(start, end)
        # created in the period, then any still open past due (one exception found by both is kept once)
        exceptions = [uow.exceptions.report_csv(ExceptionQuery(created_from=first, created_to=last,
                                                               job_id=report.job_id)),
                      uow.exceptions.report_csv(ExceptionQuery(overdue_at=now, job_id=report.job_id))]
    return FigureInputs(kind=report.type, period_start=start, period_end=end, now=now, settings=settings,
                        jobs=jobs, exception_csv=exceptions, sla_hours=sla_hours, parameters=parameters,
                        stream_periods=periods, user_names=_user_names(uow) if report.type == "sla" else {})


def _user_names(uow: ReportsUnitOfWork) -> dict[str, str]:
    """Every user of the organization (active or not: an item may be assigned to someone since
    deactivated) as a person reads them."""
    names: dict[str, str] = {}
    offset = 0
    while True:
        users = uow.users.list(limit=500, offset=offset)
        names.update({str(u.id): f"{u.name} <{u.email}>" for u in users})
        offset += len(users)
        if len(users) < 500:
            return names


def _stream_periods(uow: ReportsUnitOfWork, organization_id: uuid.UUID, first: dt.date,
                    last: dt.date) -> list[dict[str, Any]]:
    """Every period of every stream of the organization that overlaps [first, last], with its
    figures as the stream's periods route gives them (application/streams/periods.py)."""
    found: list[dict[str, Any]] = []
    offset = 0
    while True:
        streams, total = uow.streams.list(limit=200, offset=offset)
        for stream in streams:
            for view in period_views(uow, organization_id, stream.id, None):
                period = Period.parse(view.key)
                if period.first_day <= last and period.last_day >= first:
                    found.append({"stream": stream.name, "stream_id": str(stream.id), "period": view.key,
                                  "status": view.status, "figures": view.figures})
        offset += len(streams)
        if not streams or offset >= total:
            return sorted(found, key=lambda row: (row["stream"], row["stream_id"], row["period"]))


def _row_scope(uow: ReportsUnitOfWork, job_id: uuid.UUID) -> uuid.UUID:
    """What a job's row numbers are unique in: its stream (a stream's rows keep their numbers across
    runs, so an item carried from run to run is one row), else the job itself."""
    run = uow.streams.run_of_job(job_id)
    return run.stream_id if run is not None else job_id


def _channel_source(uow: ReportsUnitOfWork, job: ReconciliationJob) -> ChannelSource | None:
    """The job's switch-side file (file_type `switch`; else its right side) and its stored results."""
    links = uow.reconciliation_jobs.linked_files(job.id)
    files = [(link, uow.files.get(link.file_id)) for link in links]
    switch = next((link for link, file in files if file is not None and file.file_type == "switch"), None)
    switch = switch or next((link for link in links if link.side == "right"), None)
    if switch is None:
        return None
    normalized = uow.normalized_files.for_job(job.id, switch.file_id)  # the version the job read
    if normalized is None:
        return None
    return ChannelSource(job.id, switch.side, normalized.storage_path,
                         processed_key(job.organization_id, job.id, "results", "parquet"))


def _completed_jobs(uow: ReportsUnitOfWork, settings: ReportSettings, first: dt.date,
                    last: dt.date) -> list[ReconciliationJob]:
    """Completed jobs whose completion falls on a day of [first, last] in the organization's zone."""
    start, end = settings.day_bounds(first, last)
    found: list[ReconciliationJob] = []
    offset = 0
    while True:
        # completion follows creation, so a job completed in the window was created before its end
        page, total = uow.reconciliation_jobs.list(JobFilter(status=JobStatus.COMPLETED, created_to=end),
                                                   limit=500, offset=offset)
        found.extend(j for j in page if j.completed_at is not None and start <= j.completed_at < end)
        offset += len(page)
        if not page or offset >= total:
            break
    found.sort(key=lambda j: (j.completed_at or start, str(j.id)))
    return found
