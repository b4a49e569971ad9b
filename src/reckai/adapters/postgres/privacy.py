"""PostgreSQL side of the data exports port (application/ports/privacy.py): the `data_exports` rows
(migration 0028) and the reader that streams an organization's rows for an export, through a
server-side cursor inside the unit of work's transaction (row-level security scoping it)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Row

from reckai.adapters.postgres.personal_data import organization_key, translate_personal_data_errors
from reckai.adapters.postgres.repository import PostgresRepository, translate_errors
from reckai.adapters.security.personal_data import open_metadata
from reckai.application.ports.privacy import (
    ORGANIZATION_DATASETS,
    SECRET_FIELDS,
    USER_DATASETS,
    DataExportRepository,
    ExportDataReader,
)
from reckai.domain.privacy.exports import DataExport, ExportScope, ExportStatus

_COLUMNS = ("id", "organization_id", "scope", "subject_user_id", "requested_by", "approval_id", "status",
            "storage_path", "size_bytes", "sha256", "error_message", "created_at", "updated_at", "completed_at",
            "expires_at")
_TIMESTAMPS = ("created_at", "updated_at", "completed_at", "expires_at")
_UPDATABLE = ("status", "size_bytes", "sha256", "error_message", "updated_at", "completed_at", "expires_at")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM data_exports"


def _to_db(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.astimezone(dt.UTC).replace(tzinfo=None)


def _export(row: Row[Any]) -> DataExport:
    values = dict(row._mapping)
    for name in _TIMESTAMPS:
        if values[name] is not None:
            values[name] = values[name].replace(tzinfo=dt.UTC)
    values["scope"] = ExportScope(values["scope"])
    values["status"] = ExportStatus(values["status"])
    values["sha256"] = values["sha256"].strip() if values["sha256"] else None
    return DataExport(**values)


def _params(export: DataExport, columns: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in columns:
        value = getattr(export, name)
        if name in _TIMESTAMPS:
            value = _to_db(value)
        elif name in ("scope", "status"):
            value = value.value
        params[name] = value
    return params


class PostgresDataExportRepository(PostgresRepository):
    entity_name = "data_export"

    def add(self, export: DataExport) -> DataExport:
        self._check_tenant(export.organization_id)
        with self._write():
            self._conn.execute(text(f"INSERT INTO data_exports ({', '.join(_COLUMNS)}) VALUES "
                                    f"({', '.join(':' + c for c in _COLUMNS)})"), _params(export, _COLUMNS))
        return export

    def get(self, export_id: uuid.UUID) -> DataExport | None:
        with translate_errors(self.entity_name):
            row = self._conn.execute(text(f"{_SELECT} WHERE id = :id"), {"id": export_id}).first()
        return _export(row) if row is not None else None

    def get_for_update(self, export_id: uuid.UUID) -> DataExport | None:
        with translate_errors(self.entity_name):
            row = self._conn.execute(text(f"{_SELECT} WHERE id = :id FOR UPDATE"), {"id": export_id}).first()
        return _export(row) if row is not None else None

    def update(self, export: DataExport) -> None:
        self._check_tenant(export.organization_id)
        assignments = ", ".join(f"{name} = :{name}" for name in _UPDATABLE)
        with self._write():
            self._conn.execute(text(f"UPDATE data_exports SET {assignments} WHERE id = :id"),
                               {**_params(export, _UPDATABLE), "id": export.id})

    def expired(self, now: dt.datetime, limit: int) -> Sequence[DataExport]:
        with translate_errors(self.entity_name):
            rows = self._conn.execute(text(
                f"{_SELECT} WHERE status = 'completed' AND expires_at <= :now ORDER BY expires_at, id LIMIT :limit"),
                {"now": _to_db(now), "limit": limit}).all()
        return [_export(row) for row in rows]

    def unfinished(self) -> Sequence[DataExport]:
        with translate_errors(self.entity_name):
            rows = self._conn.execute(text(
                f"{_SELECT} WHERE status IN ('pending', 'running') ORDER BY created_at, id")).all()
        return [_export(row) for row in rows]

    def latest_completed_organization_export(self) -> DataExport | None:
        with translate_errors(self.entity_name):
            row = self._conn.execute(text(
                f"{_SELECT} WHERE scope = 'organization' AND status = 'completed'"
                " ORDER BY completed_at DESC NULLS LAST, id DESC LIMIT 1")).first()
        return _export(row) if row is not None else None


# dataset -> (table, ORDER BY). Every table's rows are those row-level security shows the tenant.
_TABLES: Mapping[str, tuple[str, str]] = {
    "organization": ("organizations", "id"),
    "users": ("users", "created_at, id"),
    "matching_rules": ("matching_rules", "created_at, id"),
    "matching_rule_versions": ("matching_rule_versions", "rule_id, version"),
    "files": ("reconciliation_files", "uploaded_at, id"),
    "data_mappings": ("data_mappings", "file_id, id"),
    "normalized_files": ("normalized_files", "file_id, id"),
    "reconciliation_jobs": ("reconciliation_jobs", "created_at, id"),
    "reconciliation_job_files": ("reconciliation_job_files", "job_id, file_id"),
    "reconciliation_matches": ("reconciliation_matches", "job_id"),
    "match_groups": ("match_groups", "job_id, id"),
    "match_members": ("match_members", "group_id, file_id, row_number"),
    "exceptions": ("exceptions", "job_id, id"),
    "exception_history": ("exception_history", "exception_id, id"),
    "exception_comments": ("exception_comments", "exception_id, created_at, id"),
    "approvals": ("approvals", "requested_at, id"),
    "reports": ("reports", "generated_at, id"),
    "streams": ("streams", "id"),
    "stream_runs": ("stream_runs", "stream_id, run_number"),
    "data_exports": ("data_exports", "created_at, id"),
}
# dataset of a person's export -> (table, the column naming the person, ORDER BY)
_USER_TABLES: Mapping[str, tuple[str, str, str]] = {
    "profile": ("users", "id", "id"),
    "sessions": ("user_sessions", "user_id", "created_at, id"),
    "comments": ("exception_comments", "user_id", "created_at, id"),
}
assert set(_TABLES) == set(ORGANIZATION_DATASETS) and set(_USER_TABLES) == set(USER_DATASETS)


class PostgresExportDataReader(PostgresRepository):
    entity_name = "export_data"

    def rows(self, dataset: str, *, user_id: uuid.UUID | None = None,
             batch_size: int = 1000) -> Iterator[Mapping[str, Any]]:
        if user_id is not None:
            table, column, order = _USER_TABLES[dataset]
            statement, params = f"SELECT * FROM {table} WHERE {column} = :user_id ORDER BY {order}", {
                "user_id": user_id}
        else:
            table, order = _TABLES[dataset]
            statement, params = f"SELECT * FROM {table} ORDER BY {order}", {}
        # users (and a user_onboarding request's metadata) are stored encrypted (0034_pii_encryption) and
        # exported as written; the key is read before the cursor opens (row-level security: only the
        # bound organization's rows).
        bound = self._uow.organization_id
        key = organization_key(self._uow, bound) if table in ("users", "approvals") and bound is not None else None
        with translate_errors(self.entity_name):
            # a server-side cursor for this statement only (options on the statement, not the connection)
            result = self._conn.execute(text(statement).execution_options(stream_results=True, yield_per=batch_size),
                                        params)
            for row in result.mappings():
                values = {key: value for key, value in row.items() if key not in SECRET_FIELDS}
                with translate_personal_data_errors():
                    if key is not None and table == "approvals":
                        values["metadata"] = open_metadata(key, str(values["type"]), dict(values["metadata"] or {}))
                    elif key is not None:
                        values["email"] = key.decrypt("email", values["email"])
                        values["name"] = key.decrypt("name", values["name"])
                yield values


if TYPE_CHECKING:
    _check_repository: type[DataExportRepository] = PostgresDataExportRepository
    _check_reader: type[ExportDataReader] = PostgresExportDataReader
