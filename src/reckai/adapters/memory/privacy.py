"""In-memory twin of adapters/postgres/privacy.py (the contract tests run on both): the
`data_exports` rows and the reader of an organization's rows (the store's rows as dictionaries)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reckai.adapters.memory.store import MemoryTransaction
from reckai.application.ports.privacy import (
    ORGANIZATION_DATASETS,
    SECRET_FIELDS,
    USER_DATASETS,
    DataExportRepository,
    ExportDataReader,
)
from reckai.application.ports.repositories import DuplicateEntity, TenantIsolationViolation
from reckai.domain.privacy.exports import DataExport, ExportScope, ExportStatus

EXPORTS = "data_exports"


class MemoryDataExportRepository:
    entity_name = "data_export"

    def __init__(self, uow: MemoryTransaction) -> None:
        self._uow = uow

    def _check(self, export: DataExport) -> None:
        if self._uow.organization_id is None or export.organization_id != self._uow.organization_id:
            raise TenantIsolationViolation(self.entity_name, export.organization_id, self._uow.organization_id)

    def add(self, export: DataExport) -> DataExport:
        self._check(export)
        if any(row.storage_path == export.storage_path or key == export.id
               for key, row in self._uow.all_rows(EXPORTS)):
            raise DuplicateEntity(self.entity_name, "id")
        self._uow.put(EXPORTS, export.id, export)
        return export

    def get(self, export_id: uuid.UUID) -> DataExport | None:
        row: DataExport | None = self._uow.get(EXPORTS, export_id)
        return row

    def get_for_update(self, export_id: uuid.UUID) -> DataExport | None:
        if self.get(export_id) is None:
            return None
        self._uow.lock_row(EXPORTS, export_id)
        return self.get(export_id)

    def update(self, export: DataExport) -> None:
        self._check(export)
        self._uow.put(EXPORTS, export.id, export)

    def expired(self, now: dt.datetime, limit: int) -> Sequence[DataExport]:
        due = [row for _, row in self._uow.rows(EXPORTS) if row.status is ExportStatus.COMPLETED
               and row.expires_at is not None and row.expires_at <= now]
        return sorted(due, key=lambda row: (row.expires_at, str(row.id)))[:limit]

    def unfinished(self) -> Sequence[DataExport]:
        rows = [row for _, row in self._uow.rows(EXPORTS)
                if row.status in (ExportStatus.PENDING, ExportStatus.RUNNING)]
        return sorted(rows, key=lambda row: (row.created_at, str(row.id)))

    def latest_completed_organization_export(self) -> DataExport | None:
        done = [row for _, row in self._uow.rows(EXPORTS) if row.scope is ExportScope.ORGANIZATION
                and row.status is ExportStatus.COMPLETED]
        return max(done, key=lambda row: (row.completed_at or dt.datetime.min.replace(tzinfo=dt.UTC), str(row.id)),
                   default=None)


_TABLES: Mapping[str, str] = {
    "organization": "organizations", "users": "users", "matching_rules": "matching_rules",
    "matching_rule_versions": "matching_rule_versions", "files": "reconciliation_files",
    "data_mappings": "data_mappings", "normalized_files": "normalized_files",
    "reconciliation_jobs": "reconciliation_jobs", "reconciliation_job_files": "reconciliation_job_files",
    "reconciliation_matches": "reconciliation_matches", "match_groups": "match_groups",
    "match_members": "match_members", "exceptions": "exceptions", "exception_history": "exception_history",
    "exception_comments": "exception_comments", "approvals": "approvals", "reports": "reports",
    "streams": "streams", "stream_runs": "stream_runs", "data_exports": EXPORTS,
}
_USER_TABLES: Mapping[str, tuple[str, str]] = {
    "profile": ("users", "id"), "sessions": ("user_sessions", "user_id"), "comments": ("exception_comments", "user_id"),
}
assert set(_TABLES) == set(ORGANIZATION_DATASETS) and set(_USER_TABLES) == set(USER_DATASETS)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name not in SECRET_FIELDS}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _record(row: Any) -> dict[str, Any]:
    plain = _plain(row)
    if not isinstance(plain, dict):
        plain = {"value": plain}
    return {key: value for key, value in plain.items() if key not in SECRET_FIELDS}


class MemoryExportDataReader:
    def __init__(self, uow: MemoryTransaction) -> None:
        self._uow = uow

    def rows(self, dataset: str, *, user_id: uuid.UUID | None = None,
             batch_size: int = 1000) -> Iterator[Mapping[str, Any]]:
        if user_id is not None:
            table, attribute = _USER_TABLES[dataset]
            for _, row in sorted(self._uow.rows(table), key=lambda item: str(item[0])):
                if getattr(row, attribute, None) == user_id:
                    yield _record(row)
            return
        for _, row in sorted(self._uow.rows(_TABLES[dataset]), key=lambda item: str(item[0])):
            yield _record(row)


if TYPE_CHECKING:
    _check_repository: type[DataExportRepository] = MemoryDataExportRepository
    _check_reader: type[ExportDataReader] = MemoryExportDataReader
