"""The dashboard's reader over PostgreSQL (application/ports/dashboard.py).

Exceptions are read from the rollup tables that the triggers of migration 0019 keep in the
transaction of every change to `exceptions` (backlog by date, severity and currency; types by
date and currency; due hours): a few thousand grouped rows at most, however many exceptions the
organization holds. Jobs and approvals are read from their tables (one index range
each). Row-level security scopes every statement to the unit of work's organization.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal

from sqlalchemy import text

from reckai.adapters.postgres.repository import PostgresRepository
from reckai.application.ports.dashboard import (
    Backlog,
    BacklogGroup,
    CurrencyAmount,
    DashboardReader,
    JobDay,
    TypeCurrencyAmount,
)

_ACTIVE = "('open', 'in_progress', 'escalated')"


def _utc_naive(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given for a UTC timestamp column; use an aware datetime")
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


class PostgresDashboardReader(PostgresRepository):
    entity_name = "dashboard"

    def active_backlog(self, not_before: dt.date, not_after: dt.date) -> Backlog:
        # one pass over the organization's backlog rows, grouped both ways
        rows = self._conn.execute(text(
            "SELECT GROUPING(currency) AS by_currency, severity, day, currency, sum(item_count) AS n,"
            " sum(amount_total) AS total FROM (SELECT severity, currency, item_count, amount_total,"
            "   CASE WHEN earliest_date IS NOT NULL"  # GREATEST and LEAST skip NULLs: no date stays no date
            "        THEN LEAST(GREATEST(earliest_date, :not_before), :not_after) END AS day FROM exception_backlog_rollup"
            "   WHERE organization_id = :org) AS backlog"
            " GROUP BY GROUPING SETS ((severity, day), (currency)) HAVING sum(item_count) <> 0"),
            {"org": self._uow.organization_id, "not_before": not_before, "not_after": not_after}).all()
        groups, amounts = [], []
        for by_currency, severity, day, currency, count, total in rows:
            if by_currency:  # GROUPING(currency) = 1: currency is not a key of this row
                groups.append(BacklogGroup(severity, day, int(count)))
            else:
                amounts.append(CurrencyAmount(currency, int(count), Decimal(total)))
        return Backlog(groups=groups, amounts=amounts)

    def overdue_count(self, now: dt.datetime) -> int:
        # Whole hours before the current one come from the rollup; the current hour is counted
        # exactly on idx_exceptions_org_due_active (at most an hour's worth of due times).
        moment = _utc_naive(now)
        hour = moment.replace(minute=0, second=0, microsecond=0)
        params = {"org": self._uow.organization_id, "hour": hour, "now": moment}
        counted = self._conn.execute(text(
            "SELECT (SELECT COALESCE(sum(item_count), 0) FROM exception_due_rollup"
            "        WHERE organization_id = :org AND due_hour < :hour)"
            f"    + (SELECT count(*) FROM exceptions WHERE organization_id = :org AND status IN {_ACTIVE}"
            "        AND due_at >= :hour AND due_at <= :now)"), params).scalar_one()
        return int(counted)

    def break_types(self, date_from: dt.date, date_to: dt.date) -> Sequence[TypeCurrencyAmount]:
        rows = self._conn.execute(text(
            "SELECT type, currency, sum(item_count) AS n, sum(amount_total) AS total FROM exception_type_rollup"
            " WHERE organization_id = :org AND earliest_date BETWEEN :date_from AND :date_to"
            " GROUP BY type, currency HAVING sum(item_count) <> 0"),
            {"org": self._uow.organization_id, "date_from": date_from, "date_to": date_to}).all()
        return [TypeCurrencyAmount(r.type, r.currency, int(r.n), Decimal(r.total)) for r in rows]

    def job_days(self, start: dt.datetime, end: dt.datetime, timezone: str) -> Sequence[JobDay]:
        rows = self._conn.execute(text(
            "SELECT ((created_at AT TIME ZONE 'UTC') AT TIME ZONE :tz)::date AS day, count(*) AS created,"
            " count(*) FILTER (WHERE status = 'completed') AS completed,"
            " count(*) FILTER (WHERE status = 'failed') AS failed,"
            " COALESCE(sum(total_rows) FILTER (WHERE status = 'completed'), 0) AS total_rows,"
            " COALESCE(sum(matched_rows) FILTER (WHERE status = 'completed'), 0) AS matched_rows"
            " FROM reconciliation_jobs WHERE organization_id = :org AND created_at >= :start AND created_at < :end"
            " GROUP BY 1 ORDER BY 1"),
            {"org": self._uow.organization_id, "tz": timezone, "start": _utc_naive(start),
             "end": _utc_naive(end)}).all()
        return [JobDay(r.day, int(r.created), int(r.completed), int(r.failed), int(r.total_rows),
                       int(r.matched_rows)) for r in rows]

    def pending_approvals(self) -> Mapping[str, int]:
        rows = self._conn.execute(text(
            "SELECT type, count(*) AS n FROM approvals WHERE organization_id = :org AND status = 'pending'"
            " GROUP BY type"), {"org": self._uow.organization_id}).all()
        return {r.type: int(r.n) for r in rows}


_check: type[DashboardReader] = PostgresDashboardReader
