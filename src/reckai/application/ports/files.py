"""Ports of the file feature: the records of uploaded files, their mappings and normalized forms,
their repositories, and the parser the use cases call.

Repository contract (PostgreSQL and in-memory adapters alike; tests/contracts/files_repositories.py
runs the same tests over both):

- Reads see only the bound organization's rows; another organization's file is absent (None),
  never forbidden. Writing a row of another organization raises TenantIsolationViolation.
- Records go in and come out as copies; datetimes are timezone-aware UTC.
- Deleting a file deletes its mappings and normalized-file rows with it (ON DELETE CASCADE).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from reckai.application.ports.unit_of_work import UnitOfWork
from reckai.domain.ingestion.detection import MappingProposal
from reckai.domain.ingestion.errors import RowError, SourceWarning
from reckai.domain.ingestion.mapping import Mapping
from reckai.domain.ingestion.mapping_checks import MappingStatistics, MappingWarning
from reckai.domain.ingestion.sniffing import ContentInfo
from reckai.domain.ingestion.statements import StatementIdentity

FILE_TYPES = ("bank", "settlement", "switch", "card", "gl")
FILE_STATUSES = ("uploaded", "mapped", "normalized", "processed", "error")
SCAN_STATUSES = ("clean", "not_scanned")  # infected files never get a row


@dataclass(frozen=True)
class ReconciliationFile:
    """One uploaded file (spec §1 reconciliation_files, plus the columns of migration 0005_files)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    original_filename: str
    file_type: str  # bank | settlement | switch | card | gl
    format: str  # the spec's excel | csv | txt | xml
    size_bytes: int
    storage_path: str
    status: str  # uploaded | mapped | normalized | processed | error
    uploaded_by: uuid.UUID
    job_id: uuid.UUID | None = None
    row_count: int | None = None
    checksum: str | None = None  # SHA-256, lowercase hex, of the bytes as uploaded
    uploaded_at: dt.datetime | None = None
    processed_at: dt.datetime | None = None
    kind: str | None = None  # precise kind: csv, pipe, tsv, xlsx, xls, xml, mt940, camt053, ...
    duplicate_of: uuid.UUID | None = None  # an earlier file of the organization with the same checksum
    scan_status: str = "clean"  # clean | not_scanned (scanning explicitly disabled)
    error_message: str | None = None  # why the file is in status error
    error_report: dict[str, Any] | None = None  # rows that failed: row, column, value, reason


@dataclass(frozen=True)
class DataMapping:
    """One canonical field of a file's mapping (spec §1 data_mappings, plus `confidence`).

    `transformation_rules` is `{"parse": {...}, "field": {...}}`: the field's spec of docs/mapping.md
    and the parse settings of the whole mapping (the same in every row of a file), so the full
    mapping JSON can be rebuilt from the rows alone.
    """

    id: uuid.UUID
    organization_id: uuid.UUID
    file_id: uuid.UUID
    source_column: str  # column name(s) as shown to people; "" for a constant
    target_field: str  # canonical field: amount, direction, currency, transaction_date, ...
    data_type: str  # string | number | date | currency
    auto_detected: bool
    transformation_rules: dict[str, Any]
    confidence: Decimal | None = None  # 0..1 for auto-detected fields; None when a person set it
    created_by: uuid.UUID | None = None
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class NormalizedFile:
    """One normalized version of a file: where its canonical rows are (Parquet in storage) and the
    mapping they were read with. A file's versions are numbered 1, 2, ...; the highest is its
    current one (docs/files.md "Re-mapping: versions"); a job reads the version it recorded."""

    id: uuid.UUID
    file_id: uuid.UUID
    organization_id: uuid.UUID
    storage_path: str
    row_count: int
    checksum: str | None
    schema_version: int = 1
    created_at: dt.datetime | None = None
    version: int = 1
    mapping: dict[str, Any] | None = None  # the mapping JSON (docs/mapping.md) this version was read with
    created_by: uuid.UUID | None = None  # None: a job's normalize step (no person)


@dataclass(frozen=True)
class FileFilter:
    """GET /api/files: every given condition holds (None: any)."""

    status: str | None = None
    file_type: str | None = None  # bank | settlement | switch | card | gl: the side it stands for
    kind: str | None = None  # the precise kind: csv, xlsx, mt940, camt053 ...
    format: str | None = None  # the spec's excel | csv | txt | xml
    uploaded_from: dt.datetime | None = None  # inclusive
    uploaded_to: dt.datetime | None = None  # exclusive


class FileRepository(Protocol):
    def add(self, file: ReconciliationFile) -> ReconciliationFile:
        """Insert; returns the stored record (uploaded_at filled in)."""
        ...

    def get(self, file_id: uuid.UUID) -> ReconciliationFile | None: ...

    def update(self, file: ReconciliationFile) -> None:
        """Store every field except id, organization_id, uploaded_by and uploaded_at.
        EntityNotFound if absent."""
        ...

    def delete(self, file_id: uuid.UUID) -> bool:
        """Remove the row (its mappings and normalized-file rows go with it); False if absent."""
        ...

    def list(self, file_filter: FileFilter, *, limit: int, offset: int) -> tuple[list[ReconciliationFile], int]:
        """The organization's files, newest upload first (ties by id); returns (page, total
        matching the filter)."""
        ...

    def first_with_checksum(self, checksum: str, *, excluding: uuid.UUID | None = None) -> uuid.UUID | None:
        """The id of the organization's earliest file with this checksum, if any."""
        ...

    def total_size_bytes(self) -> int:
        """Bytes of every file of the organization (the storage quota counts these)."""
        ...

    def job_exists(self, job_id: uuid.UUID) -> bool:
        """True when the organization has a reconciliation job with this id."""
        ...

    def in_processing_job(self, file_id: uuid.UUID) -> bool:
        """True when the file belongs (job_id, or reconciliation_job_files) to a job whose status
        is `processing`."""
        ...

    def mark_processed(self, file_id: uuid.UUID, at: dt.datetime) -> None:
        """Set status `processed` and processed_at, and nothing else (a job that used the file;
        a re-map committing at the same moment keeps its version, row count and report)."""
        ...

    def get_for_update(self, file_id: uuid.UUID) -> ReconciliationFile | None:
        """Read and lock the row until the transaction ends (SELECT ... FOR UPDATE)."""
        ...

    def try_claim(self, file_id: uuid.UUID) -> bool:
        """Take the file's claim for the rest of this unit of work's transaction, without waiting.

        False when another unit of work holds it. The claim is what serialises the writers of one
        file (mapping, normalization, delete: docs/files.md "Concurrency"); it is released when the
        transaction ends (commit, rollback, or the connection dropping), so a crashed holder never
        leaves it taken. It does not require the file to exist (callers load it afterwards).
        """
        ...


class DataMappingRepository(Protocol):
    def list_for_file(self, file_id: uuid.UUID) -> Sequence[DataMapping]:
        """The file's mapping rows, ordered by target_field."""
        ...

    def replace_for_file(self, file_id: uuid.UUID, mappings: Sequence[DataMapping]) -> None:
        """Delete the file's rows and insert these (all must belong to `file_id`)."""
        ...


class NormalizedFileRepository(Protocol):
    def get_for_file(self, file_id: uuid.UUID, schema_version: int = 1) -> NormalizedFile | None:
        """The file's current version (the highest number), None when it has none."""
        ...

    def get_version(self, file_id: uuid.UUID, version: int, schema_version: int = 1) -> NormalizedFile | None: ...

    def versions(self, file_id: uuid.UUID, schema_version: int = 1) -> Sequence[NormalizedFile]:
        """Every version of the file, oldest (1) first."""
        ...

    def for_job(self, job_id: uuid.UUID, file_id: uuid.UUID) -> NormalizedFile | None:
        """The version of the file that job read: the version its link (reconciliation_job_files)
        recorded; for a file the job does not link (a stream run's row carried from an earlier run)
        the version the newest link of the file recorded; else the current version."""
        ...

    def put(self, normalized: NormalizedFile) -> NormalizedFile:
        """Insert a version. DuplicateEntity("normalized_file", "version") when the file has that
        (schema_version, version) already: two writers of one version never both land."""
        ...

    def delete_for_file(self, file_id: uuid.UUID) -> int:
        """Remove the file's rows (every version); returns how many."""
        ...


@dataclass(frozen=True)
class EarlierStatement:
    """A bank statement already taken in by another file of the organization."""

    key: str
    file_id: uuid.UUID
    filename: str


class FileStatementRepository(Protocol):
    """The bank statements (StatementIdentity) each normalized file holds, so that a statement
    uploaded again in another file is flagged (docs/file-formats.md, `duplicate_statement`)."""

    def earlier(self, keys: Sequence[str], excluding_file: uuid.UUID) -> dict[str, EarlierStatement]:
        """For each key another file of the organization holds, that file (the earliest one)."""
        ...

    def replace_for_file(self, file_id: uuid.UUID, statements: Sequence[StatementIdentity]) -> None:
        """Record the file's statements, replacing what an earlier normalization recorded."""
        ...


class FileSweepRepository(Protocol):
    """The orphaned-object sweeper's bookkeeping (docs/files.md "Orphaned objects"). A system
    repository: it answers across organizations, but only "this file id has no row", and only
    through the narrow functions of migration 0008_file_sweeper. Works without a tenant.
    """

    def observe(self, objects: Sequence[tuple[str, uuid.UUID]], grace_seconds: int) -> list[str]:
        """For each (object key, file id): remember the key as a candidate when no
        reconciliation_files row (of any organization) has that id, forget it when one does.
        Returns the keys of this page that have been candidates, without a row, for at least
        `grace_seconds` since they were first observed. Commit the unit of work to keep the
        observations."""
        ...

    def forget(self, keys: Sequence[str], unseen_seconds: int | None = None) -> int:
        """Drop these keys (deleted from storage) and, when `unseen_seconds` is given, every
        candidate not observed for that long (its object went away by itself; only meaningful
        right after a whole pass). Returns how many were dropped."""
        ...


class FilesUnitOfWork(UnitOfWork, Protocol):
    """What the file use cases need of a unit of work (see ports.unit_of_work for the contract)."""

    @property
    def files(self) -> FileRepository: ...

    @property
    def data_mappings(self) -> DataMappingRepository: ...

    @property
    def normalized_files(self) -> NormalizedFileRepository: ...

    @property
    def file_sweep(self) -> FileSweepRepository: ...

    @property
    def file_statements(self) -> FileStatementRepository: ...


@dataclass
class NormalizationOutcome:
    parquet: bytes  # canonical rows (only the rows that passed), Parquet
    row_count: int
    source_rows: int
    errors: list[RowError] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)  # errors and skipped lines, JSON-ready
    statements: list[StatementIdentity] = field(default_factory=list)  # bank statements the file holds


@dataclass
class FilePreview:
    """What a file reads as, without storing anything: `reckai inspect` and a mapping dry run."""

    content: ContentInfo  # format, precise kind, encoding (and its confidence when detected)
    proposal: MappingProposal  # the auto-detected mapping, per-field confidence
    mapping: dict[str, Any]  # the mapping the rows were read with: the one given, else the proposal
    rows: list[dict[str, Any]]  # canonical rows (docs/mapping.md), dates as ISO text, no `raw`
    source_rows: int
    errors: list[RowError] = field(default_factory=list)  # rows that failed, with their line
    warnings: list[SourceWarning] = field(default_factory=list)  # rows loaded all the same
    statement_count: int | None = None  # MT940 / camt: statements (reports, notifications) read
    statistics: MappingStatistics | None = None  # over every row that passed, not only those in `rows`
    mapping_warnings: list[MappingWarning] = field(default_factory=list)  # signs the mapping is wrong


class FileParser(Protocol):
    """Content validation, mapping auto-detection and normalization of one whole file.

    Raises the ingestion domain's IngestionError subclasses (each with a stable code and a message
    a person can act on) when the file as a whole is unusable; row problems are RowErrors.
    """

    def inspect(self, data: bytes, filename: str | None) -> ContentInfo:
        """Identify the file by content (binary before text, zip bombs counted, XML with
        defusedxml); raise IngestionError when it is not an acceptable file."""
        ...

    def propose(self, data: bytes, filename: str | None) -> MappingProposal:
        """Auto-detect a mapping (docs/mapping.md JSON) with per-field data type and confidence."""
        ...

    def parse_mapping(self, rules: Any) -> Mapping:
        """Validate mapping JSON; InvalidMapping (with the offending path) when it is not valid."""
        ...

    def normalize(self, read: Callable[[], bytes], mapping: Mapping, filename: str | None) -> NormalizationOutcome:
        """Read, map and normalize; rows that fail a transformation are in `errors`, never in
        the Parquet. `read()` gives the whole file, once: the parser holds its bytes only until
        the source table is read (a 1M-entry camt.053 is 427 MB of bytes; its table, normalized,
        needs the memory)."""
        ...

    def preview(self, data: bytes, rules: Any | None, filename: str | None,
                limit: int | None = None) -> FilePreview:
        """Inspect, propose, and normalize with the mapping JSON `rules` (None: the proposal); the
        first `limit` rows (None: all). Raises InvalidMapping, and IngestionError as `inspect` and
        `normalize` do."""
        ...
