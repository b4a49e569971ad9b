"""Reports port (issue 14 section 2; docs/reports.md): the `reports` rows, and the renderers that
turn a report's document into a file.

Repository contract (as application/ports/repositories.py): a unit of work bound to an
organization sees only that organization's reports; another organization's report is absent.
Records go in and come out as copies; datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from reckai.application.ports.reconciliations import JobsUnitOfWork
from reckai.application.ports.workflow import WorkflowUnitOfWork
from reckai.application.reports.document import ReportChart, ReportDocument, ReportTable
from reckai.domain.audit.events import AuditRecord
from reckai.domain.reconciliation.jobs import ReconciliationJob
from reckai.domain.reports.report import Report
from reckai.domain.reports.settings import ReportSettings

REPORT_PAGE_MAX = 100


@dataclass(frozen=True)
class ReportQuery:
    types: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    job_id: uuid.UUID | None = None
    generated_by: uuid.UUID | None = None
    requested_from: dt.datetime | None = None  # generated_at, inclusive
    requested_to: dt.datetime | None = None  # exclusive
    limit: int = 20
    offset: int = 0


class ReportRepository(Protocol):
    def add(self, report: Report) -> Report:
        """Insert a new row (its storage path must be unused)."""
        ...

    def get(self, report_id: uuid.UUID) -> Report | None: ...

    def get_for_update(self, report_id: uuid.UUID) -> Report | None:
        """The row, locked until the unit of work ends (the worker and DELETE serialise on it)."""
        ...

    def update(self, report: Report) -> None:
        """Store the row's lifecycle columns (status, error, file facts, expiry, approval)."""
        ...

    def list(self, query: ReportQuery) -> tuple[list[Report], int]:
        """Newest request first (generated_at, then id), with the total matching `query`."""
        ...

    def expired(self, now: dt.datetime, limit: int) -> Sequence[Report]:
        """Completed reports whose expires_at <= now, oldest expiry first, at most `limit`."""
        ...

    def organizations_with_expired(self, now: dt.datetime) -> Sequence[uuid.UUID]:
        """System call (a unit of work bound to no organization): the organizations that hold a
        completed report past its expiry. Ids only."""
        ...


class ReportsUnitOfWork(JobsUnitOfWork, WorkflowUnitOfWork, Protocol):
    """The unit of work of the report use cases: the reports, and what their figures are read from."""

    @property
    def reports(self) -> ReportRepository: ...


@dataclass(frozen=True)
class ChannelSource:
    """channel_trend: one completed job's switch-side rows (its normalized Parquet) and its results
    (the job's results.parquet), both as the job stored them."""

    job_id: uuid.UUID
    side: str  # the switch side of the job: "left" or "right"
    normalized_path: str
    results_path: str


@dataclass(frozen=True)
class FigureInputs:
    """The stored rows a report's figures are computed from (read in one unit of work at `now`)."""

    kind: str
    period_start: dt.date  # days in the organization's time zone, inclusive
    period_end: dt.date
    now: dt.datetime  # data as of
    settings: ReportSettings
    jobs: Sequence[ReconciliationJob] = ()  # completed jobs of the period (daily: and the 30 days before)
    # the exceptions, as ExceptionRepository.report_csv documents (one per query; read column-wise)
    exception_csv: Sequence[bytes] = ()
    sla_hours: dict[str, int] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    audit_records: Sequence[AuditRecord] = ()  # audit: the period's rows, after the report's filters
    verification: ReportTable | None = None  # audit: the hash chain's verification over the period
    channel_sources: Sequence[ChannelSource] = ()  # channel_trend
    # daily: per job of the period, the scope of its row numbers (the stream of a stream's run, whose
    # rows keep their numbers from run to run; else the job) and the key of its results.parquet
    result_paths: Sequence[tuple[uuid.UUID, str]] = ()
    # daily and aging: every stream period overlapping the report's period (docs/streams.md
    # "Periods"): {"stream", "stream_id", "period", "status", "figures"} with the period's figures
    # as GET /api/streams/:id/periods gives them (a closed period's snapshot, else its runs' sums)
    stream_periods: Sequence[dict[str, Any]] = ()
    # sla: user id -> "Name <email>" of the organization's users (who an assignee is)
    user_names: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Figures:
    tables: list[ReportTable]
    charts: list[ReportChart]


class ReportFigures(Protocol):
    def compute(self, inputs: FigureInputs) -> Figures:
        """The tables and charts of report `inputs.kind`, computed column-wise from integer minor
        units, per currency (never summed across currencies). Raises ValueError for a kind it
        does not compute."""
        ...


class ReportRenderer(Protocol):
    """One output format. `render` returns the whole file: a report is a bounded document (its
    detail tables are capped), written once and then stored."""

    def render(self, document: ReportDocument) -> bytes: ...


@dataclass(frozen=True)
class ReportRenderers:
    csv: ReportRenderer
    excel: ReportRenderer
    pdf: ReportRenderer

    def of(self, report_format: str) -> ReportRenderer | None:
        return {"csv": self.csv, "excel": self.excel, "pdf": self.pdf}.get(report_format)


def reports_unit_of_work(uow: WorkflowUnitOfWork) -> ReportsUnitOfWork:
    """The approval workflow hands its handlers the decision's unit of work typed as the workflow's;
    both adapters' units of work carry every feature's repositories (bootstrap.AppUnitOfWork), so
    the report handler works in that same transaction. Fails loudly on a unit of work without them."""
    if not hasattr(uow, "reports") or not hasattr(uow, "reconciliation_jobs"):
        raise TypeError(f"{type(uow).__name__} carries no report repository")
    return cast(ReportsUnitOfWork, uow)
