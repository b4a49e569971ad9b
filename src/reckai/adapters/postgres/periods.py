"""PostgreSQL repository of stream periods (application/ports/periods.py; migration 0024_period_close)."""

from __future__ import annotations

import builtins
import datetime as dt
import json
import uuid
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Row

from reckai.adapters.postgres.repository import PostgresRepository
from reckai.application.ports.periods import ExceptionFacts, FrozenIn, StreamPeriodRepository
from reckai.domain.streams.periods import PeriodAdjustment, PeriodItem, StreamPeriod

if TYPE_CHECKING:
    from reckai.adapters.postgres.transaction import PostgresTransaction

ADJUSTMENT_SETTING = "reckai.period_adjustment"


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.replace(tzinfo=dt.UTC)


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.astimezone(dt.UTC).replace(tzinfo=None)


def _period(row: Row[Any]) -> StreamPeriod:
    closed_at = _aware(row.closed_at)
    assert closed_at is not None
    return StreamPeriod(organization_id=row.organization_id, stream_id=row.stream_id, key=row.period_key,
                        granularity=row.granularity, status=row.status, timezone=row.timezone,
                        figures=dict(row.figures), closed_at=closed_at, closed_by=row.closed_by,
                        close_approved_by=row.close_approved_by, close_approval_id=row.close_approval_id,
                        times_closed=row.times_closed, reopened_at=_aware(row.reopened_at),
                        reopened_by=row.reopened_by, reopen_approval_id=row.reopen_approval_id)


def _adjustment(row: Row[Any]) -> PeriodAdjustment:
    applied_at = _aware(row.applied_at)
    assert applied_at is not None
    return PeriodAdjustment(id=row.id, stream_id=row.stream_id, period_key=row.period_key,
                            approval_id=row.approval_id, action=row.action,
                            exception_ids=tuple(row.exception_ids), reason=row.reason,
                            requested_by=row.requested_by, approved_by=row.approved_by, applied_at=applied_at,
                            details=dict(row.details or {}))


class PostgresStreamPeriodRepository(PostgresRepository):
    entity_name = "stream_period"

    def __init__(self, uow: PostgresTransaction) -> None:
        super().__init__(uow)
        self._adjusting: PeriodAdjustment | None = None

    def get(self, stream_id: uuid.UUID, period_key: str) -> StreamPeriod | None:
        row = self._conn.execute(text("SELECT * FROM stream_periods WHERE stream_id = :s AND period_key = :p"),
                                 {"s": stream_id, "p": period_key}).first()
        return _period(row) if row else None

    def list(self, stream_id: uuid.UUID) -> builtins.list[StreamPeriod]:
        rows = self._conn.execute(text("SELECT * FROM stream_periods WHERE stream_id = :s ORDER BY period_key"),
                                  {"s": stream_id}).all()
        return [_period(row) for row in rows]

    def save(self, period: StreamPeriod) -> None:
        self._check_tenant(period.organization_id)
        with self._write():
            self._conn.execute(text(
                "INSERT INTO stream_periods (organization_id, stream_id, period_key, granularity, status, timezone,"
                " figures, closed_at, closed_by, close_approved_by, close_approval_id, times_closed, reopened_at,"
                " reopened_by, reopen_approval_id) VALUES (:org, :s, :p, :g, :status, :tz, CAST(:figures AS jsonb),"
                " :closed_at, :closed_by, :approved_by, :approval, :times, :reopened_at, :reopened_by, :reopen)"
                " ON CONFLICT (stream_id, period_key) DO UPDATE SET status = EXCLUDED.status,"
                " timezone = EXCLUDED.timezone, figures = EXCLUDED.figures, closed_at = EXCLUDED.closed_at,"
                " closed_by = EXCLUDED.closed_by, close_approved_by = EXCLUDED.close_approved_by,"
                " close_approval_id = EXCLUDED.close_approval_id, times_closed = EXCLUDED.times_closed,"
                " reopened_at = EXCLUDED.reopened_at, reopened_by = EXCLUDED.reopened_by,"
                " reopen_approval_id = EXCLUDED.reopen_approval_id"),
                {"org": period.organization_id, "s": period.stream_id, "p": period.key, "g": period.granularity,
                 "status": period.status, "tz": period.timezone, "figures": json.dumps(period.figures),
                 "closed_at": _naive(period.closed_at), "closed_by": period.closed_by,
                 "approved_by": period.close_approved_by, "approval": period.close_approval_id,
                 "times": period.times_closed, "reopened_at": _naive(period.reopened_at),
                 "reopened_by": period.reopened_by, "reopen": period.reopen_approval_id})

    def replace_items(self, stream_id: uuid.UUID, period_key: str, items: Sequence[PeriodItem],
                      runs: Sequence[tuple[int, uuid.UUID]]) -> None:
        params = {"org": self._uow.organization_id, "s": stream_id, "p": period_key}
        with self._write():
            self._conn.execute(text("DELETE FROM stream_period_items WHERE stream_id = :s AND period_key = :p"),
                               params)
            self._conn.execute(text("DELETE FROM stream_period_runs WHERE stream_id = :s AND period_key = :p"),
                               params)
            if items:
                self._conn.execute(text(
                    "INSERT INTO stream_period_items (organization_id, stream_id, period_key, exception_id, carried,"
                    " status_at_close) SELECT :org, :s, :p, k.id, k.carried, k.status"
                    " FROM unnest(CAST(:ids AS uuid[]), CAST(:carried AS boolean[]), CAST(:statuses AS varchar[]))"
                    " AS k(id, carried, status)"),
                    {**params, "ids": [i.exception_id for i in items], "carried": [i.carried for i in items],
                     "statuses": [i.status_at_close for i in items]})
            if runs:
                self._conn.execute(text(
                    "INSERT INTO stream_period_runs (organization_id, stream_id, period_key, run_number, job_id)"
                    " SELECT :org, :s, :p, k.n, k.job FROM unnest(CAST(:ns AS integer[]), CAST(:jobs AS uuid[]))"
                    " AS k(n, job)"), {**params, "ns": [r[0] for r in runs], "jobs": [r[1] for r in runs]})

    def items(self, stream_id: uuid.UUID, period_key: str) -> builtins.list[PeriodItem]:
        rows = self._conn.execute(text(
            "SELECT exception_id, carried, status_at_close FROM stream_period_items"
            " WHERE stream_id = :s AND period_key = :p ORDER BY exception_id"), {"s": stream_id, "p": period_key}).all()
        return [PeriodItem(row.exception_id, row.carried, row.status_at_close) for row in rows]

    def frozen(self, exception_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, FrozenIn]:
        if not exception_ids:
            return {}
        rows = self._conn.execute(text(
            "SELECT i.exception_id, i.stream_id, i.period_key FROM stream_period_items i"
            " JOIN stream_periods p ON p.stream_id = i.stream_id AND p.period_key = i.period_key"
            " WHERE p.status = 'closed' AND NOT i.carried AND i.exception_id = ANY(:ids)"),
            {"ids": list(exception_ids)}).all()
        return {row.exception_id: FrozenIn(row.stream_id, row.period_key) for row in rows}

    def frozen_in_stream(self, stream_id: uuid.UUID) -> set[uuid.UUID]:
        rows = self._conn.execute(text(
            "SELECT i.exception_id FROM stream_period_items i"
            " JOIN stream_periods p ON p.stream_id = i.stream_id AND p.period_key = i.period_key"
            " WHERE p.status = 'closed' AND NOT i.carried AND i.stream_id = :s"), {"s": stream_id}).scalars()
        return set(rows)

    def exception_facts(self, stream_id: uuid.UUID) -> builtins.list[ExceptionFacts]:
        rows = self._conn.execute(text(
            "SELECT s.exception_id, s.first_run, e.type, e.status, e.currency, e.amount_minor, e.amount,"
            " exceptions_earliest_date(e.transaction_date, e.evidence) AS earliest, e.resolution_code"
            " FROM stream_exceptions s JOIN exceptions e ON e.id = s.exception_id WHERE s.stream_id = :s"
            " ORDER BY s.exception_id"), {"s": stream_id}).all()
        return [ExceptionFacts(row.exception_id, row.first_run, row.type, row.status, row.currency,
                               row.amount_minor, row.amount, row.earliest, row.resolution_code) for row in rows]

    def begin_adjustment(self, adjustment: PeriodAdjustment) -> None:
        with self._write():
            self._conn.execute(text(
                "INSERT INTO stream_period_adjustments (id, organization_id, stream_id, period_key, approval_id,"
                " action, exception_ids, reason, requested_by, approved_by, applied_at, details)"
                " VALUES (:id, :org, :s, :p, :approval, :action, CAST(:ids AS uuid[]), :reason, :requested_by,"
                " :approved_by, :at, CAST(:details AS jsonb))"),
                {"id": adjustment.id, "org": self._uow.organization_id, "s": adjustment.stream_id,
                 "p": adjustment.period_key, "approval": adjustment.approval_id, "action": adjustment.action,
                 "ids": list(adjustment.exception_ids), "reason": adjustment.reason,
                 "requested_by": adjustment.requested_by, "approved_by": adjustment.approved_by,
                 "at": _naive(adjustment.applied_at), "details": json.dumps(adjustment.details)})
        # transaction-local: gone at commit or rollback, never seen by the pool's next user
        self._conn.execute(text("SELECT set_config(:name, :value, true)"),
                           {"name": ADJUSTMENT_SETTING, "value": str(adjustment.approval_id)})
        self._adjusting = adjustment

    def adjusting(self) -> PeriodAdjustment | None:
        return self._adjusting

    def adjustments(self, stream_id: uuid.UUID, period_key: str) -> builtins.list[PeriodAdjustment]:
        rows = self._conn.execute(text(
            "SELECT * FROM stream_period_adjustments WHERE stream_id = :s AND period_key = :p"
            " ORDER BY applied_at, id"), {"s": stream_id, "p": period_key}).all()
        return [_adjustment(row) for row in rows]


_check: type[StreamPeriodRepository] = PostgresStreamPeriodRepository
