"""`GET /api/dashboard` (issue 14 §3): what a reconciliation team looks at first, computed from the
dashboard reader's grouped figures (application/ports/dashboard.py); docs/reports.md "Dashboard"
defines each figure.

The period selects jobs (by creation day) and break types (by earliest transaction date); the
backlog figures (open exceptions by severity and age, overdue, amount at risk) are the state now,
whatever the period, because a backlog has no period. Days are the organization's days.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from reckai.application.errors import FieldError, PermissionDenied, ValidationFailed
from reckai.application.ports.clock import Clock
from reckai.application.ports.dashboard import DashboardUnitOfWork, JobDay, TypeCurrencyAmount
from reckai.application.ports.unit_of_work import Database
from reckai.domain.exceptions.aging import BUCKET_LABELS, NO_DATE, OLDEST_BUCKET_DAYS, age_bucket
from reckai.domain.exceptions.policy import SEVERITIES
from reckai.domain.identity.permissions import has_permission
from reckai.domain.identity.principal import Principal
from reckai.domain.ingestion.canonical import minor_unit_exponent
from reckai.domain.reconciliation.jobs import match_rate
from reckai.domain.reports.settings import DEFAULT_TIMEZONE, InvalidReportSettings, parse_timezone

DEFAULT_PERIOD_DAYS = 30
MAX_PERIOD_DAYS = 366
TOP_BREAK_TYPES = 5



def organization_timezone(settings: Mapping[str, Any] | None) -> str:
    """The organization's zone as the reports read it (domain/reports/settings.py `parse_timezone`,
    one reading of the setting); a stored value that no longer names a zone falls back to the
    default rather than failing the dashboard (a change is validated when it is made)."""
    try:
        return parse_timezone((settings or {}).get("timezone"))
    except InvalidReportSettings:
        return DEFAULT_TIMEZONE


@dataclass(frozen=True)
class MoneyFigure:
    currency: str | None
    count: int
    amount_minor: int


@dataclass(frozen=True)
class DayFigure:
    day: dt.date
    jobs_run: int
    jobs_completed: int
    jobs_failed: int
    total_rows: int
    matched_rows: int
    match_rate: Decimal | None  # matched / total rows of the day's completed jobs, × 100; None: no rows


@dataclass(frozen=True)
class BreakTypeFigure:
    type: str
    count: int
    amounts: list[MoneyFigure]


@dataclass(frozen=True)
class Dashboard:
    period_start: dt.date
    period_end: dt.date
    timezone: str
    as_of: dt.datetime
    jobs_run: int
    jobs_completed: int
    jobs_failed: int
    days: list[DayFigure]
    open_total: int
    open_by_severity: dict[str, dict[str, int]]  # severity -> age bucket label -> count
    overdue: int
    amount_at_risk: list[MoneyFigure]
    top_break_types: list[BreakTypeFigure]
    pending_approvals: dict[str, int] | None  # None: the caller may not read approvals


def _minor(total: Decimal, currency: str | None) -> int:
    # amounts are stored with two decimals (DECIMAL(18,2)); a currency with fewer minor digits
    # never holds fractions of them, so the product is whole
    exponent = minor_unit_exponent(currency or "")
    return int((total * (Decimal(10) ** exponent)).to_integral_value(ROUND_HALF_UP))


def _money(currency: str | None, count: int, total: Decimal) -> MoneyFigure:
    return MoneyFigure(currency, count, _minor(total, currency))


def _period(period_start: dt.date | None, period_end: dt.date | None, today: dt.date) -> tuple[dt.date, dt.date]:
    span = dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if period_end is None:
        # 30 days from the start given, not past today (nor before the start itself)
        end = today if period_start is None else max(min(period_start + span, today), period_start)
    else:
        end = period_end
    start = period_start or end - span
    if end < start:
        raise ValidationFailed([FieldError("period_end", "must not be before period_start")])
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise ValidationFailed([FieldError("period_end", f"the period spans at most {MAX_PERIOD_DAYS} days")])
    return start, end


def _top_break_types(rows: list[TypeCurrencyAmount]) -> list[BreakTypeFigure]:
    by_type: defaultdict[str, list[TypeCurrencyAmount]] = defaultdict(list)
    for row in rows:
        by_type[row.type].append(row)
    ranked = sorted(by_type.items(), key=lambda item: (-sum(r.count for r in item[1]), item[0]))
    return [BreakTypeFigure(kind, sum(r.count for r in parts),
                            [_money(r.currency, r.count, r.amount_total)
                             for r in sorted(parts, key=lambda r: r.currency or "")])
            for kind, parts in ranked[:TOP_BREAK_TYPES]]


def _days(start: dt.date, end: dt.date, job_days: Mapping[dt.date, JobDay]) -> list[DayFigure]:
    """Every day of the period, days without jobs included; the rate is the day's completed rows'
    (a large job weighs more than a small one), None without rows."""
    days = []
    for offset in range((end - start).days + 1):
        day = start + dt.timedelta(days=offset)
        figures = job_days.get(day) or JobDay(day, 0, 0, 0, 0, 0)
        rate = match_rate(figures.matched_rows, figures.total_rows) if figures.total_rows else None
        days.append(DayFigure(day, figures.created, figures.completed, figures.failed, figures.total_rows,
                              figures.matched_rows, rate))
    return days


def read_dashboard(database: Database[DashboardUnitOfWork], clock: Clock, principal: Principal, *,
                   period_start: dt.date | None = None, period_end: dt.date | None = None) -> Dashboard:
    if not has_permission(principal.role, "reports:read"):
        raise PermissionDenied("reports:read")
    now = clock()
    with database.unit_of_work(principal.organization_id) as uow:
        organization = uow.organizations.get(principal.organization_id)
        timezone = organization_timezone(organization.settings if organization else None)
        zone = ZoneInfo(timezone)
        today = now.astimezone(zone).date()
        start, end = _period(period_start, period_end, today)
        window_start = dt.datetime.combine(start, dt.time(), zone)
        window_end = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone)
        job_days = {day.day: day for day in uow.dashboard.job_days(window_start, window_end, timezone)}
        # ages past the last bucket's lower bound, and future dates, no longer change the bucket
        backlog = uow.dashboard.active_backlog(not_before=today - dt.timedelta(days=OLDEST_BUCKET_DAYS),
                                               not_after=today)
        overdue = uow.dashboard.overdue_count(now)
        break_types = list(uow.dashboard.break_types(start, end))
        pending = (dict(uow.dashboard.pending_approvals())
                   if has_permission(principal.role, "approvals:read") else None)

    days = _days(start, end, job_days)
    by_severity = {severity: dict.fromkeys((*BUCKET_LABELS, NO_DATE), 0) for severity in SEVERITIES}
    for group in backlog.groups:
        by_severity.setdefault(group.severity, dict.fromkeys((*BUCKET_LABELS, NO_DATE), 0))
        by_severity[group.severity][age_bucket(group.earliest_date, today)] += group.count
    return Dashboard(
        period_start=start, period_end=end, timezone=timezone, as_of=now,
        jobs_run=sum(d.jobs_run for d in days), jobs_completed=sum(d.jobs_completed for d in days),
        jobs_failed=sum(d.jobs_failed for d in days), days=days,
        open_total=sum(group.count for group in backlog.groups), open_by_severity=by_severity, overdue=overdue,
        amount_at_risk=[_money(a.currency, a.count, a.amount_total)
                        for a in sorted(backlog.amounts, key=lambda a: a.currency or "")],
        top_break_types=_top_break_types(break_types),
        pending_approvals=None if pending is None else dict(sorted(pending.items())))
