"""In-memory twin of adapters/postgres/reports.py (the contract tests run on both)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence

from reckai.adapters.memory.store import MemoryTransaction
from reckai.application.ports.reports import ReportQuery
from reckai.application.ports.repositories import DuplicateEntity, EntityNotFound, TenantIsolationViolation
from reckai.domain.reports.report import Report, ReportStatus

REPORTS = "reports"


class MemoryReportRepository:
    entity_name = "report"

    def __init__(self, uow: MemoryTransaction) -> None:
        self._uow = uow

    def add(self, report: Report) -> Report:
        if self._uow.organization_id is None or report.organization_id != self._uow.organization_id:
            raise TenantIsolationViolation(self.entity_name, report.organization_id, self._uow.organization_id)
        if any(row.storage_path == report.storage_path or key == report.id
               for key, row in self._uow.all_rows(REPORTS)):
            raise DuplicateEntity(self.entity_name, "storage_path")
        stored = dataclasses.replace(report, updated_at=report.updated_at or report.generated_at)
        self._uow.put(REPORTS, report.id, stored)
        return stored

    def get(self, report_id: uuid.UUID) -> Report | None:
        row: Report | None = self._uow.get(REPORTS, report_id)
        return row

    def get_for_update(self, report_id: uuid.UUID) -> Report | None:
        if self.get(report_id) is None:
            return None
        self._uow.lock_row(REPORTS, report_id)
        return self.get(report_id)

    def update(self, report: Report) -> None:
        current = self.get(report.id)
        if current is None:
            raise EntityNotFound(self.entity_name, report.id)
        self._uow.put(REPORTS, report.id, dataclasses.replace(
            current, status=report.status, error_message=report.error_message,
            file_size_bytes=report.file_size_bytes, sha256=report.sha256, data_as_of=report.data_as_of,
            completed_at=report.completed_at, expires_at=report.expires_at, approval_id=report.approval_id,
            updated_at=report.updated_at))

    def list(self, query: ReportQuery) -> tuple[list[Report], int]:
        def matches(report: Report) -> bool:
            return ((not query.types or report.type in query.types)
                    and (not query.formats or report.format in query.formats)
                    and (not query.statuses or report.status.value in query.statuses)
                    and (query.job_id is None or report.job_id == query.job_id)
                    and (query.generated_by is None or report.generated_by == query.generated_by)
                    and (query.requested_from is None or report.generated_at >= query.requested_from)
                    and (query.requested_to is None or report.generated_at < query.requested_to))

        found = [row for _, row in self._uow.rows(REPORTS) if matches(row)]
        found.sort(key=lambda r: (r.generated_at, str(r.id)), reverse=True)
        return found[query.offset:query.offset + query.limit], len(found)

    def expired(self, now: dt.datetime, limit: int) -> Sequence[Report]:
        due = [row for _, row in self._uow.rows(REPORTS)
               if row.status is ReportStatus.COMPLETED and row.expires_at is not None and row.expires_at <= now]
        due.sort(key=lambda r: (r.expires_at, str(r.id)))
        return due[:limit]

    def organizations_with_expired(self, now: dt.datetime) -> Sequence[uuid.UUID]:
        found = {row.organization_id for _, row in self._uow.all_rows(REPORTS)
                 if row.status is ReportStatus.COMPLETED and row.expires_at is not None and row.expires_at <= now}
        return sorted(found, key=str)
