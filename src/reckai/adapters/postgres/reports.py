"""PostgreSQL repository of the `reports` rows (application/ports/reports.py)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Row

from reckai.adapters.postgres.repository import PostgresRepository
from reckai.application.ports.reports import ReportQuery, ReportRepository
from reckai.application.ports.repositories import EntityNotFound
from reckai.domain.reports.report import Report, ReportStatus

_COLUMNS = (
    "id", "organization_id", "type", "format", "storage_path", "generated_by", "generated_at", "status", "job_id",
    "period_start", "period_end", "parameters", "error_message", "file_size_bytes", "sha256", "data_as_of",
    "completed_at", "expires_at", "approval_id", "updated_at",
)
_TIMESTAMPS = ("generated_at", "data_as_of", "completed_at", "expires_at", "updated_at")
_UPDATABLE = ("status", "error_message", "file_size_bytes", "sha256", "data_as_of", "completed_at", "expires_at",
              "approval_id", "updated_at")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM reports"


def _to_db(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.astimezone(dt.UTC).replace(tzinfo=None)


def _report(row: Row[Any]) -> Report:
    values = dict(row._mapping)
    for name in _TIMESTAMPS:
        if values[name] is not None:
            values[name] = values[name].replace(tzinfo=dt.UTC)
    values["status"] = ReportStatus(values["status"])
    values["parameters"] = values["parameters"] or {}
    values["sha256"] = values["sha256"].strip() if values["sha256"] else None
    return Report(**values)


def _params(report: Report, columns: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in columns:
        value = getattr(report, name)
        if name in _TIMESTAMPS:
            value = _to_db(value)
        elif name == "status":
            value = value.value
        elif name == "parameters":
            value = json.dumps(value)
        params[name] = value
    return params


def _placeholder(name: str) -> str:
    return "CAST(:parameters AS jsonb)" if name == "parameters" else f":{name}"


class PostgresReportRepository(PostgresRepository):
    entity_name = "report"

    def add(self, report: Report) -> Report:
        self._check_tenant(report.organization_id)
        sql = (f"INSERT INTO reports ({', '.join(_COLUMNS)}) VALUES ({', '.join(map(_placeholder, _COLUMNS))})"
               f" RETURNING {', '.join(_COLUMNS)}")
        with self._write():
            row = self._conn.execute(text(sql), _params(report, _COLUMNS)).one()
        return _report(row)

    def get(self, report_id: uuid.UUID) -> Report | None:
        row = self._conn.execute(text(f"{_SELECT} WHERE id = :id"), {"id": report_id}).first()
        return _report(row) if row else None

    def get_for_update(self, report_id: uuid.UUID) -> Report | None:
        row = self._conn.execute(text(f"{_SELECT} WHERE id = :id FOR UPDATE"), {"id": report_id}).first()
        return _report(row) if row else None

    def update(self, report: Report) -> None:
        sets = ", ".join(f"{c} = :{c}" for c in _UPDATABLE)
        params = _params(report, _UPDATABLE)
        params["id"] = report.id
        with self._write():
            result = self._conn.execute(text(f"UPDATE reports SET {sets} WHERE id = :id"), params)
        if result.rowcount == 0:
            raise EntityNotFound(self.entity_name, report.id)

    def list(self, query: ReportQuery) -> tuple[list[Report], int]:
        where: list[str] = ["TRUE"]
        params: dict[str, Any] = {}
        for column, values in (("type", query.types), ("format", query.formats), ("status", query.statuses)):
            if values:
                where.append(f"{column} = ANY(:{column}s)")
                params[f"{column}s"] = list(values)
        for column, value in (("job_id", query.job_id), ("generated_by", query.generated_by)):
            if value is not None:
                where.append(f"{column} = :{column}")
                params[column] = value
        if query.requested_from is not None:
            where.append("generated_at >= :requested_from")
            params["requested_from"] = _to_db(query.requested_from)
        if query.requested_to is not None:
            where.append("generated_at < :requested_to")
            params["requested_to"] = _to_db(query.requested_to)
        clause = " AND ".join(where)
        total = self._conn.execute(text(f"SELECT count(*) FROM reports WHERE {clause}"), params).scalar_one()
        rows = self._conn.execute(text(f"{_SELECT} WHERE {clause} ORDER BY generated_at DESC, id DESC"
                                       " LIMIT :limit OFFSET :offset"),
                                  {**params, "limit": query.limit, "offset": query.offset}).all()
        return [_report(r) for r in rows], int(total)

    def expired(self, now: dt.datetime, limit: int) -> Sequence[Report]:
        rows = self._conn.execute(text(f"{_SELECT} WHERE status = 'completed' AND expires_at <= :now"
                                       " ORDER BY expires_at, id LIMIT :limit"),
                                  {"now": _to_db(now), "limit": limit}).all()
        return [_report(r) for r in rows]

    def organizations_with_expired(self, now: dt.datetime) -> Sequence[uuid.UUID]:
        rows = self._conn.execute(text("SELECT * FROM reports_expired_organizations(:now)"),
                                  {"now": _to_db(now)}).all()
        return sorted((r[0] for r in rows), key=str)


if TYPE_CHECKING:
    _check: type[ReportRepository] = PostgresReportRepository
