"""PostgreSQL repositories for files, data mappings and normalized files (SQLAlchemy Core).

`tables.py` mirrors revision 0001; the columns added by 0005_files are declared here, on copies of
the two tables in a metadata of this module, so the shared mirror stays what its test expects.
Tenant reads rely on row-level security; writes check the organization first.
"""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import fields
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from reckai.adapters.postgres import tables as t
from reckai.adapters.postgres.repository import PostgresRepository, translate_errors
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
from reckai.application.ports.repositories import EntityNotFound, TenantIsolationViolation
from reckai.domain.ingestion.statements import StatementIdentity

if TYPE_CHECKING:
    from sqlalchemy.engine import Row

_metadata = MetaData()

files_table = Table(
    "reconciliation_files",
    _metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("organization_id", UUID(as_uuid=True), nullable=False),
    Column("job_id", UUID(as_uuid=True)),
    Column("name", String(255), nullable=False),
    Column("original_filename", String(255), nullable=False),
    Column("file_type", String(50), nullable=False),
    Column("format", String(50), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("storage_path", Text, nullable=False),
    Column("status", String(50), nullable=False),
    Column("row_count", Integer),
    Column("checksum", String(64)),
    Column("uploaded_by", UUID(as_uuid=True), nullable=False),
    Column("uploaded_at", t.UtcDateTime()),
    Column("processed_at", t.UtcDateTime()),
    # 0005_files
    Column("kind", String(20)),
    Column("duplicate_of", UUID(as_uuid=True)),
    Column("scan_status", String(20), nullable=False),
    Column("error_message", Text),
    Column("error_report", JSONB),
)

mappings_table = Table(
    "data_mappings",
    _metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("organization_id", UUID(as_uuid=True), nullable=False),
    Column("file_id", UUID(as_uuid=True), nullable=False),
    Column("source_column", String(255), nullable=False),
    Column("target_field", String(255), nullable=False),
    Column("data_type", String(50), nullable=False),
    Column("auto_detected", Boolean),
    Column("transformation_rules", JSONB),
    Column("created_at", t.UtcDateTime()),
    Column("created_by", UUID(as_uuid=True)),
    # 0005_files
    Column("confidence", Numeric(3, 2)),
)

normalized_table = Table(
    "normalized_files",
    _metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("file_id", UUID(as_uuid=True), nullable=False),
    Column("organization_id", UUID(as_uuid=True), nullable=False),
    Column("storage_path", Text, nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("checksum", String(64)),
    Column("created_at", t.UtcDateTime()),
    # 0027_file_versions
    Column("version", Integer, nullable=False),
    Column("mapping", JSONB),
    Column("created_by", UUID(as_uuid=True)),
)
jobs_table = t.reconciliation_jobs
job_files_table = t.reconciliation_job_files

_FILE_FIELDS = [f.name for f in fields(ReconciliationFile)]
_MAPPING_FIELDS = [f.name for f in fields(DataMapping)]
_NORMALIZED_FIELDS = [f.name for f in fields(NormalizedFile)]


def _file(row: Row[Any]) -> ReconciliationFile:
    return ReconciliationFile(**{name: row._mapping[name] for name in _FILE_FIELDS})


def _mapping(row: Row[Any]) -> DataMapping:
    values = {name: row._mapping[name] for name in _MAPPING_FIELDS}
    values["auto_detected"] = bool(values["auto_detected"])
    return DataMapping(**values)


def _normalized(row: Row[Any]) -> NormalizedFile:
    return NormalizedFile(**{name: row._mapping[name] for name in _NORMALIZED_FIELDS})


class PostgresFileRepository(PostgresRepository):
    entity_name = "reconciliation_file"

    def add(self, file: ReconciliationFile) -> ReconciliationFile:
        self._check_tenant(file.organization_id)
        values = {name: getattr(file, name) for name in _FILE_FIELDS}
        if values["uploaded_at"] is None:
            values.pop("uploaded_at")  # server default now()
        with self._write():
            row = self._conn.execute(insert(files_table).values(**values).returning(files_table)).one()
        return _file(row)

    def get(self, file_id: uuid.UUID) -> ReconciliationFile | None:
        row = self._conn.execute(select(files_table).where(files_table.c.id == file_id)).first()
        return _file(row) if row else None

    def update(self, file: ReconciliationFile) -> None:
        self._check_tenant(file.organization_id)
        values = {name: getattr(file, name) for name in _FILE_FIELDS
                  if name not in ("id", "organization_id", "uploaded_by", "uploaded_at")}
        with self._write():
            result = self._conn.execute(update(files_table).where(files_table.c.id == file.id).values(**values))
        if result.rowcount == 0:
            raise EntityNotFound(self.entity_name, file.id)

    def delete(self, file_id: uuid.UUID) -> bool:
        with self._write():
            result = self._conn.execute(delete(files_table).where(files_table.c.id == file_id))
        return bool(result.rowcount)

    def list(self, file_filter: FileFilter, *, limit: int, offset: int) -> tuple[builtins.list[ReconciliationFile], int]:
        c = files_table.c
        conditions: builtins.list[Any] = []
        for column, value in ((c.status, file_filter.status), (c.file_type, file_filter.file_type),
                              (c.kind, file_filter.kind), (c.format, file_filter.format)):
            if value is not None:
                conditions.append(column == value)
        if file_filter.uploaded_from is not None:
            conditions.append(c.uploaded_at >= file_filter.uploaded_from)
        if file_filter.uploaded_to is not None:
            conditions.append(c.uploaded_at < file_filter.uploaded_to)
        with translate_errors(self.entity_name):
            total = self._conn.execute(select(func.count()).select_from(files_table).where(*conditions)).scalar_one()
            rows = self._conn.execute(select(files_table).where(*conditions)
                                      .order_by(c.uploaded_at.desc(), c.id).limit(limit).offset(offset)).all()
        return [_file(row) for row in rows], int(total)

    def first_with_checksum(self, checksum: str, *, excluding: uuid.UUID | None = None) -> uuid.UUID | None:
        query = select(files_table.c.id).where(files_table.c.checksum == checksum)
        if excluding is not None:
            query = query.where(files_table.c.id != excluding)
        query = query.order_by(files_table.c.uploaded_at, files_table.c.id).limit(1)
        with translate_errors(self.entity_name):
            found: uuid.UUID | None = self._conn.execute(query).scalar()
        return found

    def total_size_bytes(self) -> int:
        with translate_errors(self.entity_name):
            total = self._conn.execute(select(func.coalesce(func.sum(files_table.c.size_bytes), 0))).scalar_one()
        return int(total)

    def job_exists(self, job_id: uuid.UUID) -> bool:
        with translate_errors(self.entity_name):
            return self._conn.execute(select(jobs_table.c.id).where(jobs_table.c.id == job_id)).first() is not None

    def in_processing_job(self, file_id: uuid.UUID) -> bool:
        linked = select(job_files_table.c.job_id).where(job_files_table.c.file_id == file_id)
        own = select(files_table.c.job_id).where(files_table.c.id == file_id)
        query = select(exists().where(
            jobs_table.c.status == "processing",
            or_(jobs_table.c.id.in_(linked), jobs_table.c.id.in_(own)),
        ))
        with translate_errors(self.entity_name):
            return bool(self._conn.execute(query).scalar_one())

    def mark_processed(self, file_id: uuid.UUID, at: dt.datetime) -> None:
        with self._write():
            self._conn.execute(update(files_table).where(files_table.c.id == file_id)
                               .values(status="processed", processed_at=at))

    def get_for_update(self, file_id: uuid.UUID) -> ReconciliationFile | None:
        with translate_errors(self.entity_name):
            row = self._conn.execute(select(files_table).where(files_table.c.id == file_id).with_for_update()).first()
        return _file(row) if row else None

    def try_claim(self, file_id: uuid.UUID) -> bool:
        # A transaction-scoped advisory lock: released by commit, rollback or a dropped connection.
        # 64-bit key from the id; a collision between two files only makes one wait for the other.
        with translate_errors(self.entity_name):
            return bool(self._conn.execute(_CLAIM, {"file_id": str(file_id)}).scalar_one())


_CLAIM = text("SELECT pg_try_advisory_xact_lock(hashtextextended('reckai.files.claim:' || :file_id, 0))")


class PostgresDataMappingRepository(PostgresRepository):
    entity_name = "data_mapping"

    def list_for_file(self, file_id: uuid.UUID) -> Sequence[DataMapping]:
        query = (select(mappings_table).where(mappings_table.c.file_id == file_id)
                 .order_by(mappings_table.c.target_field, mappings_table.c.id))
        return [_mapping(row) for row in self._conn.execute(query)]

    def replace_for_file(self, file_id: uuid.UUID, mappings: Sequence[DataMapping]) -> None:
        for mapping in mappings:
            self._check_tenant(mapping.organization_id)
            if mapping.file_id != file_id:
                raise ValueError("every mapping row must belong to the file being mapped")
        if self._conn.execute(select(files_table.c.id).where(files_table.c.id == file_id)).first() is None:
            raise EntityNotFound("reconciliation_file", file_id)
        with self._write():
            self._conn.execute(delete(mappings_table).where(mappings_table.c.file_id == file_id))
            for mapping in mappings:
                values = {name: getattr(mapping, name) for name in _MAPPING_FIELDS}
                if values["created_at"] is None:
                    values.pop("created_at")
                if isinstance(values["confidence"], float):  # pragma: no cover - callers pass Decimal
                    values["confidence"] = Decimal(str(values["confidence"]))
                self._conn.execute(insert(mappings_table).values(**values))


class PostgresNormalizedFileRepository(PostgresRepository):
    entity_name = "normalized_file"

    def get_for_file(self, file_id: uuid.UUID, schema_version: int = 1) -> NormalizedFile | None:
        c = normalized_table.c
        row = self._conn.execute(select(normalized_table).where(c.file_id == file_id, c.schema_version == schema_version)
                                 .order_by(c.version.desc()).limit(1)).first()
        return _normalized(row) if row else None

    def get_version(self, file_id: uuid.UUID, version: int, schema_version: int = 1) -> NormalizedFile | None:
        c = normalized_table.c
        row = self._conn.execute(select(normalized_table).where(
            c.file_id == file_id, c.schema_version == schema_version, c.version == version)).first()
        return _normalized(row) if row else None

    def versions(self, file_id: uuid.UUID, schema_version: int = 1) -> Sequence[NormalizedFile]:
        c = normalized_table.c
        rows = self._conn.execute(select(normalized_table).where(c.file_id == file_id, c.schema_version == schema_version)
                                  .order_by(c.version)).all()
        return [_normalized(row) for row in rows]

    def for_job(self, job_id: uuid.UUID, file_id: uuid.UUID) -> NormalizedFile | None:
        with translate_errors(self.entity_name):
            recorded = self._conn.execute(_JOB_VERSION, {"job": job_id, "file": file_id}).scalar()
        if recorded is None:
            return self.get_for_file(file_id)
        return self.get_version(file_id, int(recorded))

    def put(self, normalized: NormalizedFile) -> NormalizedFile:
        self._check_tenant(normalized.organization_id)
        if self._conn.execute(select(files_table.c.id).where(files_table.c.id == normalized.file_id)).first() is None:
            raise EntityNotFound("reconciliation_file", normalized.file_id)
        values = {name: getattr(normalized, name) for name in _NORMALIZED_FIELDS}
        if values["created_at"] is None:
            values.pop("created_at")
        with self._write():
            row = self._conn.execute(insert(normalized_table).values(**values).returning(normalized_table)).one()
        return _normalized(row)

    def delete_for_file(self, file_id: uuid.UUID) -> int:
        with self._write():
            result = self._conn.execute(delete(normalized_table).where(normalized_table.c.file_id == file_id))
        return int(result.rowcount)


# The version the job's link recorded; else the one the file's newest link with a version recorded.
_JOB_VERSION = text(
    "SELECT COALESCE("
    " (SELECT file_version FROM reconciliation_job_files WHERE job_id = :job AND file_id = :file),"
    " (SELECT file_version FROM reconciliation_job_files WHERE file_id = :file AND file_version IS NOT NULL"
    "  ORDER BY created_at DESC, job_id LIMIT 1))")


class PostgresFileSweepRepository(PostgresRepository):
    """Through the SECURITY DEFINER functions of 0008_file_sweeper (the app role cannot read the
    candidates table, nor other organizations' files)."""

    entity_name = "file_sweep_candidate"

    def observe(self, objects: Sequence[tuple[str, uuid.UUID]], grace_seconds: int) -> list[str]:
        if not objects:
            return []
        with translate_errors(self.entity_name):
            return list(self._conn.execute(_SWEEP_OBSERVE, {
                "keys": [key for key, _ in objects], "ids": [file_id for _, file_id in objects],
                "grace": int(grace_seconds)}).scalars())

    def forget(self, keys: Sequence[str], unseen_seconds: int | None = None) -> int:
        unseen = None if unseen_seconds is None else int(unseen_seconds)
        with translate_errors(self.entity_name):
            return int(self._conn.execute(_SWEEP_FORGET, {"keys": list(keys), "unseen": unseen}).scalar_one())


_SWEEP_OBSERVE = text("SELECT files_sweep_orphans(CAST(:keys AS text[]), CAST(:ids AS uuid[]), :grace)")
_SWEEP_FORGET = text("SELECT files_sweep_forget(CAST(:keys AS text[]), CAST(:unseen AS integer))")



class PostgresFileStatementRepository(PostgresRepository):
    entity_name = "file_statement"

    def earlier(self, keys: Sequence[str], excluding_file: uuid.UUID) -> dict[str, EarlierStatement]:
        if not keys:
            return {}
        with translate_errors(self.entity_name):
            rows = self._conn.execute(_EARLIER_STATEMENTS, {"keys": list(keys), "file": excluding_file}).all()
        return {row.statement_key: EarlierStatement(row.statement_key, row.file_id, row.original_filename)
                for row in rows}

    def replace_for_file(self, file_id: uuid.UUID, statements: Sequence[StatementIdentity]) -> None:
        organization_id = self._uow.organization_id
        if organization_id is None:
            raise TenantIsolationViolation(self.entity_name, None, None)
        unique = {s.key: s for s in statements}  # a statement given twice in one file: one row
        with self._write():
            self._conn.execute(text("DELETE FROM file_statements WHERE file_id = :file"), {"file": file_id})
            if unique:
                self._conn.execute(text(
                    "INSERT INTO file_statements (file_id, organization_id, statement_key, label, line_number)"
                    " VALUES (:file, :org, :key, :label, :line)"),
                    [{"file": file_id, "org": organization_id, "key": s.key[:2000], "label": s.label[:500],
                      "line": s.line_number} for s in unique.values()])


# The earliest other file holding each key (RLS keeps it to the organization).
_EARLIER_STATEMENTS = text(
    "SELECT DISTINCT ON (s.statement_key) s.statement_key, s.file_id, f.original_filename"
    " FROM file_statements s JOIN reconciliation_files f ON f.id = s.file_id"
    " WHERE s.statement_key = ANY(:keys) AND s.file_id <> :file"
    " ORDER BY s.statement_key, s.created_at, s.file_id")


_check_files: type[FileRepository] = PostgresFileRepository
_check_mappings: type[DataMappingRepository] = PostgresDataMappingRepository
_check_normalized: type[NormalizedFileRepository] = PostgresNormalizedFileRepository
_check_sweep: type[FileSweepRepository] = PostgresFileSweepRepository
_check_statements: type[FileStatementRepository] = PostgresFileStatementRepository
