"""`GET /api/dashboard` (issue 14 §3): the figures a reconciliation team reads first. Thin: decode,
call application/dashboard.py, encode. docs/reports.md "Dashboard" defines each figure."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from reckai.application.dashboard import Dashboard, MoneyFigure, read_dashboard
from reckai.bootstrap import Container
from reckai.domain.identity.principal import Principal
from reckai.entrypoints.http.envelope import Success, ok


class MoneyBody(msgspec.Struct):
    currency: str | None
    count: int
    amount_minor: int


class JobsBody(msgspec.Struct):
    run: int
    completed: int
    failed: int


class DayBody(msgspec.Struct):
    day: dt.date
    jobs_run: int
    jobs_completed: int
    jobs_failed: int
    total_rows: int
    matched_rows: int
    match_rate: str | None


class OpenExceptionsBody(msgspec.Struct):
    total: int
    by_severity: dict[str, dict[str, int]]


class BreakTypeBody(msgspec.Struct):
    type: str
    count: int
    amounts: list[MoneyBody]


class DashboardBody(msgspec.Struct):
    period_start: dt.date
    period_end: dt.date
    timezone: str
    as_of: dt.datetime
    jobs: JobsBody
    match_rate_per_day: list[DayBody]
    open_exceptions: OpenExceptionsBody
    overdue: int
    amount_at_risk: list[MoneyBody]
    top_break_types: list[BreakTypeBody]
    pending_approvals: dict[str, int] | msgspec.UnsetType = msgspec.UNSET


def _money(figure: MoneyFigure) -> MoneyBody:
    return MoneyBody(figure.currency, figure.count, figure.amount_minor)


def dashboard_body(figures: Dashboard) -> DashboardBody:
    body = DashboardBody(
        period_start=figures.period_start, period_end=figures.period_end, timezone=figures.timezone,
        as_of=figures.as_of, jobs=JobsBody(figures.jobs_run, figures.jobs_completed, figures.jobs_failed),
        match_rate_per_day=[DayBody(d.day, d.jobs_run, d.jobs_completed, d.jobs_failed, d.total_rows, d.matched_rows,
                                    None if d.match_rate is None else str(d.match_rate)) for d in figures.days],
        open_exceptions=OpenExceptionsBody(figures.open_total, figures.open_by_severity), overdue=figures.overdue,
        amount_at_risk=[_money(m) for m in figures.amount_at_risk],
        top_break_types=[BreakTypeBody(b.type, b.count, [_money(m) for m in b.amounts])
                         for b in figures.top_break_types])
    if figures.pending_approvals is not None:
        body.pending_approvals = figures.pending_approvals
    return body


class DashboardController(Controller):
    path = "/api/dashboard"

    @get("/", opt={"permission": "reports:read"}, sync_to_thread=True, summary="Read the dashboard")
    def dashboard(
        self, principal: NamedDependency[Principal], container: NamedDependency[Container],
        period_start: Annotated[dt.date | None, QueryParameter(
            description="first day (organization's time zone), default 29 days before period_end")] = None,
        period_end: Annotated[dt.date | None, QueryParameter(
            description="last day, inclusive; default today")] = None,
    ) -> Success[DashboardBody]:
        """The morning figures over the period: jobs run and failed, match rate per day, open exceptions by
        severity and age bucket, overdue count, amount at risk per currency, the top 5 break types, and
        pending approvals by type for callers who may read approvals (docs/reports.md, "Dashboard")."""
        return ok(dashboard_body(read_dashboard(container.database, container.clock, principal,
                                                period_start=period_start, period_end=period_end)))


ROUTE_HANDLERS = [DashboardController]
