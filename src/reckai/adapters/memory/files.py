"""In-memory repositories for files, data mappings and normalized files (same contract as
`adapters.postgres.files`; tests/contracts/files_repositories.py runs over both)."""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from reckai.adapters.memory.store import MemoryTransaction
from reckai.application.ports.files import (
    DataMapping,
    DataMappingRepository,
    EarlierStatement,
    FileFilter,
    FileRepository,
    FileStatementRepository,
    FileSweepRepository,
    NormalizedFile,
    NormalizedFileRepository,
    ReconciliationFile,
)
from reckai.application.ports.repositories import DuplicateEntity, EntityNotFound, TenantIsolationViolation
from reckai.domain.ingestion.statements import StatementIdentity

FILES = "reconciliation_files"
MAPPINGS = "data_mappings"
NORMALIZED = "normalized_files"
JOBS = "reconciliation_jobs"
JOB_FILES = "reconciliation_job_files"
SWEEP = "file_sweep_candidates"
STATEMENTS = "file_statements"
CLAIMS = "file_claims"  # not a table: the key space of the per-file claims


def _field(row: Any, name: str) -> Any:
    return row.get(name) if isinstance(row, dict) else getattr(row, name, None)


class _Repository:
    entity_name = "row"

    def __init__(self, uow: MemoryTransaction) -> None:
        self._uow = uow

    def _check_tenant(self, organization_id: uuid.UUID) -> None:
        if organization_id != self._uow.organization_id:
            raise TenantIsolationViolation(self.entity_name, organization_id, self._uow.organization_id)


class MemoryFileRepository(_Repository):
    entity_name = "reconciliation_file"

    def add(self, file: ReconciliationFile) -> ReconciliationFile:
        self._check_tenant(file.organization_id)
        stored = dataclasses.replace(file, uploaded_at=file.uploaded_at or self._uow.now())
        self._uow.put(FILES, file.id, stored)
        return stored

    def get(self, file_id: uuid.UUID) -> ReconciliationFile | None:
        found: ReconciliationFile | None = self._uow.get(FILES, file_id)
        return found

    def update(self, file: ReconciliationFile) -> None:
        self._check_tenant(file.organization_id)
        current = self.get(file.id)
        if current is None:
            raise EntityNotFound(self.entity_name, file.id)
        self._uow.put(FILES, file.id, dataclasses.replace(
            file, uploaded_by=current.uploaded_by, uploaded_at=current.uploaded_at))

    def delete(self, file_id: uuid.UUID) -> bool:
        if self.get(file_id) is None:
            return False
        for key, row in list(self._uow.rows(MAPPINGS)):
            if row.file_id == file_id:
                self._uow.remove(MAPPINGS, key)
        for table in (NORMALIZED, STATEMENTS):
            for key, row in list(self._uow.rows(table)):
                if row.file_id == file_id:
                    self._uow.remove(table, key)
        self._uow.remove(FILES, file_id)
        return True

    def list(self, file_filter: FileFilter, *, limit: int, offset: int) -> tuple[builtins.list[ReconciliationFile], int]:
        def wanted(file: ReconciliationFile) -> bool:
            equal = all(want is None or got == want for got, want in (
                (file.status, file_filter.status), (file.file_type, file_filter.file_type),
                (file.kind, file_filter.kind), (file.format, file_filter.format)))
            uploaded = file.uploaded_at
            return equal and (file_filter.uploaded_from is None or (uploaded is not None and
                                                                    uploaded >= file_filter.uploaded_from)) \
                and (file_filter.uploaded_to is None or (uploaded is not None and uploaded < file_filter.uploaded_to))

        found = [row for _, row in self._uow.rows(FILES) if wanted(row)]
        # newest first, ties by id ascending (as PostgreSQL orders UUIDs: by their bytes)
        found.sort(key=lambda f: f.id.bytes)
        found.sort(key=lambda f: f.uploaded_at or dt.datetime.min.replace(tzinfo=dt.UTC), reverse=True)
        return found[offset:offset + limit], len(found)

    def first_with_checksum(self, checksum: str, *, excluding: uuid.UUID | None = None) -> uuid.UUID | None:
        matches = [row for _, row in self._uow.rows(FILES) if row.checksum == checksum and row.id != excluding]
        if not matches:
            return None
        earliest: ReconciliationFile = min(matches, key=lambda f: (f.uploaded_at, str(f.id)))
        return earliest.id

    def total_size_bytes(self) -> int:
        return sum(row.size_bytes for _, row in self._uow.rows(FILES))

    def job_exists(self, job_id: uuid.UUID) -> bool:
        return any(_field(row, "id") == job_id for _, row in self._uow.rows(JOBS))

    def in_processing_job(self, file_id: uuid.UUID) -> bool:
        file = self.get(file_id)
        if file is None:
            return False
        job_ids = {file.job_id} if file.job_id else set()
        job_ids |= {_field(row, "job_id") for _, row in self._uow.rows(JOB_FILES) if _field(row, "file_id") == file_id}
        return any(_field(row, "id") in job_ids and _field(row, "status") == "processing"
                   for _, row in self._uow.rows(JOBS))

    def mark_processed(self, file_id: uuid.UUID, at: dt.datetime) -> None:
        # Under the row lock, so a re-map holding it (get_for_update) is never overwritten.
        current = self.get_for_update(file_id)
        if current is not None:
            self._uow.put(FILES, file_id, dataclasses.replace(current, status="processed", processed_at=at))

    def get_for_update(self, file_id: uuid.UUID) -> ReconciliationFile | None:
        if self.get(file_id) is None:
            return None
        self._uow.lock_row(FILES, file_id)
        return self.get(file_id)

    def try_claim(self, file_id: uuid.UUID) -> bool:
        # Held until the unit of work ends, like the transaction-scoped advisory lock in SQL.
        try:
            self._uow.lock_row(CLAIMS, file_id, timeout=0)
        except TimeoutError:
            return False
        return True


class MemoryDataMappingRepository(_Repository):
    entity_name = "data_mapping"

    def list_for_file(self, file_id: uuid.UUID) -> Sequence[DataMapping]:
        rows = [row for _, row in self._uow.rows(MAPPINGS) if row.file_id == file_id]
        return sorted(rows, key=lambda m: m.target_field)

    def replace_for_file(self, file_id: uuid.UUID, mappings: Sequence[DataMapping]) -> None:
        for mapping in mappings:
            self._check_tenant(mapping.organization_id)
            if mapping.file_id != file_id:
                raise ValueError("every mapping row must belong to the file being mapped")
        if self._uow.get(FILES, file_id) is None:
            raise EntityNotFound("reconciliation_file", file_id)
        for key, row in list(self._uow.rows(MAPPINGS)):
            if row.file_id == file_id:
                self._uow.remove(MAPPINGS, key)
        for mapping in mappings:
            self._uow.put(MAPPINGS, mapping.id,
                          dataclasses.replace(mapping, created_at=mapping.created_at or self._uow.now()))


class MemoryNormalizedFileRepository(_Repository):
    entity_name = "normalized_file"

    def versions(self, file_id: uuid.UUID, schema_version: int = 1) -> Sequence[NormalizedFile]:
        found: builtins.list[NormalizedFile] = [row for _, row in self._uow.rows(NORMALIZED)
                                                if row.file_id == file_id and row.schema_version == schema_version]
        return sorted(found, key=lambda n: n.version)

    def get_for_file(self, file_id: uuid.UUID, schema_version: int = 1) -> NormalizedFile | None:
        found = self.versions(file_id, schema_version)
        return found[-1] if found else None

    def get_version(self, file_id: uuid.UUID, version: int, schema_version: int = 1) -> NormalizedFile | None:
        return next((n for n in self.versions(file_id, schema_version) if n.version == version), None)

    def for_job(self, job_id: uuid.UUID, file_id: uuid.UUID) -> NormalizedFile | None:
        links = [row for _, row in self._uow.rows(JOB_FILES) if _field(row, "file_id") == file_id]
        own = next((_field(row, "file_version") for row in links if _field(row, "job_id") == job_id), None)
        if own is None:
            recorded = [row for row in links if _field(row, "file_version") is not None]
            recorded.sort(key=lambda r: (_field(r, "created_at") or dt.datetime.min.replace(tzinfo=dt.UTC),
                                         str(_field(r, "job_id"))))
            own = _field(recorded[-1], "file_version") if recorded else None
        return self.get_for_file(file_id) if own is None else self.get_version(file_id, int(own))

    def put(self, normalized: NormalizedFile) -> NormalizedFile:
        self._check_tenant(normalized.organization_id)
        if self._uow.get(FILES, normalized.file_id) is None:
            raise EntityNotFound("reconciliation_file", normalized.file_id)
        # The unique (file, schema_version, version) against committed and staged rows; concurrent
        # writers of one file are serialised by its claim before they get here.
        if self.get_version(normalized.file_id, normalized.version, normalized.schema_version) is not None:
            raise DuplicateEntity(self.entity_name, "version")
        stored = dataclasses.replace(normalized, created_at=normalized.created_at or self._uow.now())
        self._uow.put(NORMALIZED, normalized.id, stored)
        return stored

    def delete_for_file(self, file_id: uuid.UUID) -> int:
        removed = 0
        for key, row in list(self._uow.rows(NORMALIZED)):
            if row.file_id == file_id:
                self._uow.remove(NORMALIZED, key)
                removed += 1
        return removed


@dataclasses.dataclass(frozen=True)
class StoredStatement:
    file_id: uuid.UUID
    organization_id: uuid.UUID
    statement: StatementIdentity
    created_at: dt.datetime


class MemoryFileStatementRepository(_Repository):
    entity_name = "file_statement"

    def earlier(self, keys: Sequence[str], excluding_file: uuid.UUID) -> dict[str, EarlierStatement]:
        wanted = set(keys)
        found: dict[str, tuple[tuple[dt.datetime, str], EarlierStatement]] = {}
        for _, row in self._uow.rows(STATEMENTS):
            stored: StoredStatement = row
            key = stored.statement.key
            if key not in wanted or stored.file_id == excluding_file:
                continue
            file = self._uow.get(FILES, stored.file_id)
            order = (stored.created_at, str(stored.file_id))
            if file is not None and (key not in found or order < found[key][0]):
                found[key] = (order, EarlierStatement(key, stored.file_id, file.original_filename))
        return {key: earlier for key, (_, earlier) in found.items()}

    def replace_for_file(self, file_id: uuid.UUID, statements: Sequence[StatementIdentity]) -> None:
        organization_id = self._uow.organization_id
        if organization_id is None:
            raise TenantIsolationViolation(self.entity_name, None, None)
        for key, row in list(self._uow.rows(STATEMENTS)):
            if row.file_id == file_id:
                self._uow.remove(STATEMENTS, key)
        for statement in {s.key: s for s in statements}.values():
            self._uow.put(STATEMENTS, (file_id, statement.key),
                          StoredStatement(file_id, organization_id, statement, self._uow.now()))


@dataclasses.dataclass(frozen=True)
class SweepCandidate:
    object_key: str
    file_id: uuid.UUID
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    organization_id: None = None  # system bookkeeping: no tenant


class MemoryFileSweepRepository:
    """Same contract as the SQL functions of 0008_file_sweeper: system rows, every organization's
    files consulted (all_rows), only their existence revealed."""

    def __init__(self, uow: MemoryTransaction) -> None:
        self._uow = uow

    def observe(self, objects: Sequence[tuple[str, uuid.UUID]], grace_seconds: int) -> list[str]:
        if grace_seconds < 0:
            raise ValueError("grace_seconds must be >= 0")
        existing = {key for key, _ in self._uow.all_rows(FILES)}
        candidates = dict(self._uow.all_rows(SWEEP))
        now = self._uow.now()
        due = []
        for key, file_id in dict(objects).items():
            if file_id in existing:
                if key in candidates:
                    self._uow.remove(SWEEP, key)
                continue
            found = candidates.get(key)
            first_seen = found.first_seen_at if found else now
            self._uow.put(SWEEP, key, SweepCandidate(key, file_id, first_seen, now), system=True)
            if first_seen <= now - dt.timedelta(seconds=grace_seconds):
                due.append(key)
        return sorted(due)

    def forget(self, keys: Sequence[str], unseen_seconds: int | None = None) -> int:
        cutoff = None if unseen_seconds is None else self._uow.now() - dt.timedelta(seconds=unseen_seconds)
        dropped = 0
        for key, row in list(self._uow.all_rows(SWEEP)):
            if key in keys or (cutoff is not None and row.last_seen_at < cutoff):
                self._uow.remove(SWEEP, key)
                dropped += 1
        return dropped



_check_files: type[FileRepository] = MemoryFileRepository
_check_mappings: type[DataMappingRepository] = MemoryDataMappingRepository
_check_normalized: type[NormalizedFileRepository] = MemoryNormalizedFileRepository
_check_sweep: type[FileSweepRepository] = MemoryFileSweepRepository
_check_statements: type[FileStatementRepository] = MemoryFileStatementRepository
