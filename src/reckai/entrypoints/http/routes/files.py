"""Files (spec §5.1, issue 4): upload, read, delete, download, map. docs/files.md.

    GET    /api/files                   the organization's files: ?status= &file_type= &kind= &format=
                                        &uploaded_from= &uploaded_to= &page= &per_page=
    POST   /api/files/upload            multipart: file_type, [job_id], then file (streamed)
    GET    /api/files/{id}              metadata, status, mapping, error report
    DELETE /api/files/{id}
    GET    /api/files/{id}/download     a link valid for one hour (S3 pre-signed, or signed app URL)
    POST   /api/files/{id}/map          confirm or override the mapping, then normalize;
                                        ?dry_run=true: show what the mapping gives, change nothing
    GET    /api/files/download/{token}  the signed app URL of filesystem mode: streams the original

Permissions: files:read / files:write / files:delete (the same roles as reconciliations:*).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import anyio.to_thread
import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import (
    Encoding,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Stream

from reckai.application.access import PendingAccess, access_event
from reckai.application.context import RequestInfo
from reckai.application.errors import FieldError, NotFound, ValidationFailed
from reckai.application.files import (
    Caller,
    check_upload_allowed,
    confirm_mapping,
    delete_file,
    download_file_url,
    get_file,
    list_files,
    upload_file,
    validate_form,
)
from reckai.application.files.common import rules_from_rows
from reckai.application.files.errors import FileTooLarge
from reckai.application.files.inspection import MappingDryRun, dry_run_mapping
from reckai.application.files.queries import FileDetails
from reckai.application.ports.files import FILE_TYPES, FileFilter, ReconciliationFile
from reckai.application.ports.storage import DownloadTokenInvalid, StorageObjectMissing
from reckai.bootstrap import Container
from reckai.domain.identity.principal import Principal
from reckai.domain.ingestion.errors import IngestionError
from reckai.domain.ingestion.storage_keys import NORMALIZED_FILES_SEGMENT, ORGANIZATIONS_ROOT, validate_key
from reckai.entrypoints.http.auth import request_info
from reckai.entrypoints.http.envelope import Pagination, Success, ok, paginated
from reckai.entrypoints.http.routes._multipart_stream import (
    MultipartUpload,
    malformed,
)

MULTIPART = "multipart/form-data"
FileStatus = Literal["uploaded", "mapped", "normalized", "processed", "error"]
FileType = Literal["bank", "settlement", "switch", "card", "gl"]
FileFormat = Literal["excel", "csv", "txt", "xml"]
_KIND = re.compile(r"[a-z0-9_]{1,20}")


class MappingField(msgspec.Struct):
    target_field: str
    source_column: str
    data_type: str
    auto_detected: bool
    confidence: float | None


class NormalizedInfo(msgspec.Struct):
    """The file's current normalized version."""

    row_count: int
    checksum: str | None
    schema_version: int
    created_at: dt.datetime | None
    version: int


class FileVersionBody(msgspec.Struct):
    """One normalized version of the file (a re-map makes the next one; jobs keep the one they read)."""

    version: int
    current: bool  # the highest version: what a new job or stream run reads
    transformation_rules: dict[str, Any] | None  # the mapping this version was read with
    row_count: int
    checksum: str | None
    created_by: uuid.UUID | None  # null: normalized by a job's step, or before versions were kept
    created_at: dt.datetime | None


class File(msgspec.Struct):
    id: uuid.UUID
    name: str
    original_filename: str
    file_type: str
    format: str
    kind: str | None
    size_bytes: int
    checksum: str | None
    status: str
    row_count: int | None
    job_id: uuid.UUID | None
    uploaded_by: uuid.UUID
    uploaded_at: dt.datetime | None
    processed_at: dt.datetime | None
    duplicate: bool
    duplicate_of: uuid.UUID | None
    scan_status: str
    error_message: str | None
    error_report: dict[str, Any] | None
    mapping: list[MappingField]
    transformation_rules: dict[str, Any] | None
    normalized: NormalizedInfo | None
    current_version: int | None  # the version new jobs read; null before the first normalization
    versions: list[FileVersionBody]  # every normalized version, oldest first


class DetectedEncoding(msgspec.Struct, forbid_unknown_fields=True):
    """A text file's encoding when it was detected (neither UTF-8 nor windows-1252 nor declared)."""

    name: str
    confidence: float


class UploadedFile(File):
    missing_required: list[str] = msgspec.field(default_factory=list)
    detected_encoding: DetectedEncoding | None = None


class FileMap(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /api/files/{id}/map. `transformation_rules` null confirms the proposed mapping."""

    transformation_rules: Annotated[dict[str, Any] | None, msgspec.Meta(
        description="The mapping to apply (docs/mapping.md): `fields` maps each target field to a source column "
                    "with its type and format, `parse` says how to read the file. Null or absent confirms the "
                    "mapping proposed at upload.",
        examples=[{"fields": {"transaction_date": {"column": "Value Date", "format": "%d/%m/%Y"},
                              "amount": {"column": "Amount", "type": "decimal"},
                              "reference": {"column": "RRN"}}}])] = None
    allow_row_errors: Annotated[bool, msgspec.Meta(
        description="Keep the rows that normalize and report the rest (true), or fail the whole file on the first "
                    "bad row (false, the default).", examples=[False])] = False


class MappingWarningBody(msgspec.Struct):
    code: str  # ONE_DIRECTION | ALL_AMOUNTS_ZERO | DATES_OUTSIDE_PERIOD | CONSTANT_COLUMN
    field: str | None
    rows: int | None
    message: str


class RowErrorBody(msgspec.Struct):
    row_number: int
    line_number: int | None
    column: str | None
    value: str | None
    reason: str


class ProposedField(msgspec.Struct):
    target_field: str
    source_column: str | None  # null for a constant
    data_type: str
    confidence: float
    note: str


class DateRange(msgspec.Struct):
    first: str | None
    last: str | None


class MappingDryRunBody(msgspec.Struct):
    """What `POST /api/files/{id}/map?dry_run=true` answers; nothing was changed."""

    file_id: uuid.UUID
    status: str  # the file's status, unchanged
    dry_run: bool
    mapping_source: str  # given | stored | proposed
    transformation_rules: dict[str, Any]  # the mapping the rows were read with
    format: str
    kind: str
    encoding: str | None
    source_rows: int
    normalized_rows: int
    failed_rows: int
    rows: list[dict[str, Any]]  # the first 50 normalized rows
    fill_rates: dict[str, float]  # canonical field -> share of normalized rows with a value
    direction_counts: dict[str, int]
    currency_counts: dict[str, int]
    zero_amounts: int
    transaction_dates: DateRange
    warnings: list[MappingWarningBody]  # signs that the mapping reads the file wrongly
    source_warnings: list[dict[str, Any]]  # the reader's own (statement balances, impossible dates ...)
    errors: list[RowErrorBody]  # the first 50 rows that could not be normalized
    proposal: list[ProposedField]  # the auto-detected mapping, per field, with its confidence


class DownloadLinkBody(msgspec.Struct):
    url: str
    expires_at: dt.datetime


@dataclass
class UploadOperation(Operation):
    """The upload's OpenAPI operation: the handler reads its body itself (streamed, never through a
    `data` parameter, which would make Litestar buffer it), so Litestar cannot see the form. This
    declares it: the fields, their order (fields first, `file` last) and the refusals."""

    def __post_init__(self) -> None:
        form = Schema(
            type=OpenAPIType.OBJECT,
            required=["file_type", "file"],
            properties={
                "file_type": Schema(type=OpenAPIType.STRING, enum=list(FILE_TYPES),
                                    description="What the file is. Must come before `file`.", examples=["bank"]),
                "job_id": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.UUID,
                                 description="Optional: a reconciliation job of the organization the file "
                                             "belongs to. Must come before `file`.",
                                 examples=["9c2e5a17-4b8d-4e6f-a0c3-7d1b8e2f5a64"]),
                "file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY,
                               description="The file (CSV/TXT, XLSX/XLS, XML, MT940, camt.053), last part of "
                                           "the form; at most the organization's max_file_size_mb.",
                               examples=["statement-2026-05.csv"]),
            },
        )
        self.request_body = RequestBody(
            required=True,
            description="multipart/form-data, streamed to storage: `file_type`, optional `job_id`, then `file`.",
            content={MULTIPART: OpenAPIMediaType(schema=form, encoding={
                "file": Encoding(content_type="application/octet-stream")})},
        )
        refusals = {
            "400": "The form is not valid (VALIDATION_ERROR: missing or unknown field, a part after the file)",
            "401": "Not authenticated",
            "403": "Permission denied, or the organization's storage quota is used up (QUOTA_EXCEEDED)",
            "413": "The file is larger than the organization's max_file_size_mb (PAYLOAD_TOO_LARGE)",
            "415": "The body is not multipart/form-data",
            "422": "The file was refused by content (EMPTY_FILE, BINARY_CONTENT, ARCHIVE_TOO_LARGE, ...) "
                   "or by the virus scanner (FILE_INFECTED, SCAN_LIMIT_EXCEEDED)",
            "429": "More accepted uploads in an hour than the upload limit (RATE_LIMITED; 10 by default, a setting: "
                   "GET /api/settings; refused uploads do not count)",
            "503": "Storage or the virus scanner is unavailable",
        }
        self.responses = {**(self.responses or {}),
                          **{status: OpenAPIResponse(description=text) for status, text in refusals.items()}}


def _caller(principal: Principal, request: Request[Any, Any, Any]) -> Caller:
    return Caller.of(principal, request_info(request))


class FileSummary(msgspec.Struct):
    """One file in GET /api/files (GET /api/files/{id} adds its mapping and error report)."""

    id: uuid.UUID
    name: str
    original_filename: str
    file_type: str
    format: str
    kind: str | None
    size_bytes: int
    checksum: str | None
    status: str
    row_count: int | None
    job_id: uuid.UUID | None
    uploaded_by: uuid.UUID
    uploaded_at: dt.datetime | None
    processed_at: dt.datetime | None
    duplicate_of: uuid.UUID | None
    scan_status: str
    error_message: str | None


def _summary_body(f: ReconciliationFile) -> FileSummary:
    return FileSummary(
        id=f.id, name=f.name, original_filename=f.original_filename, file_type=f.file_type, format=f.format,
        kind=f.kind, size_bytes=f.size_bytes, checksum=f.checksum, status=f.status, row_count=f.row_count,
        job_id=f.job_id, uploaded_by=f.uploaded_by, uploaded_at=f.uploaded_at, processed_at=f.processed_at,
        duplicate_of=f.duplicate_of, scan_status=f.scan_status, error_message=f.error_message)


def _moment(text: str | None, field: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # not ISO, or an offset that leaves the datetime range
        raise ValidationFailed([FieldError(field, "must be an ISO date or date-time")]) from None


def _file_body(details: FileDetails, cls: type[File] = File, **extra: Any) -> Any:
    f = details.file
    n = details.normalized
    return cls(
        id=f.id, name=f.name, original_filename=f.original_filename, file_type=f.file_type, format=f.format,
        kind=f.kind, size_bytes=f.size_bytes, checksum=f.checksum, status=f.status, row_count=f.row_count,
        job_id=f.job_id, uploaded_by=f.uploaded_by, uploaded_at=f.uploaded_at, processed_at=f.processed_at,
        duplicate=f.duplicate_of is not None, duplicate_of=f.duplicate_of, scan_status=f.scan_status,
        error_message=f.error_message, error_report=f.error_report,
        mapping=[MappingField(target_field=m.target_field, source_column=m.source_column, data_type=m.data_type,
                              auto_detected=m.auto_detected,
                              confidence=float(m.confidence) if m.confidence is not None else None)
                 for m in details.mappings],
        transformation_rules=rules_from_rows(details.mappings),
        normalized=NormalizedInfo(row_count=n.row_count, checksum=n.checksum, schema_version=n.schema_version,
                                  created_at=n.created_at, version=n.version) if n else None,
        current_version=n.version if n else None,
        versions=[FileVersionBody(version=v.version, current=n is not None and v.version == n.version,
                                  transformation_rules=v.mapping, row_count=v.row_count, checksum=v.checksum,
                                  created_by=v.created_by, created_at=v.created_at) for v in details.versions],
        **extra,
    )


DRY_RUN_ERRORS_SHOWN = 50


def _dry_run_body(result: MappingDryRun) -> MappingDryRunBody:
    preview = result.preview
    stats = preview.statistics
    summary = stats.to_dict() if stats is not None else {"transaction_dates": {"first": None, "last": None}}
    return MappingDryRunBody(
        file_id=result.file.id, status=result.file.status, dry_run=True, mapping_source=result.mapping_source,
        transformation_rules=preview.mapping, format=preview.content.format, kind=preview.content.kind,
        encoding=preview.content.encoding, source_rows=preview.source_rows,
        normalized_rows=stats.row_count if stats is not None else len(preview.rows),
        failed_rows=len({e.row_number for e in preview.errors}), rows=preview.rows,
        fill_rates=stats.fill_rates() if stats is not None else {},
        direction_counts=dict(stats.direction_counts) if stats is not None else {},
        currency_counts=dict(stats.currency_counts) if stats is not None else {},
        zero_amounts=stats.zero_amounts if stats is not None else 0,
        transaction_dates=DateRange(**summary["transaction_dates"]),
        warnings=[MappingWarningBody(code=w.code, field=w.field, rows=w.rows, message=w.message)
                  for w in preview.mapping_warnings],
        source_warnings=[w.to_dict() for w in preview.warnings],
        errors=[RowErrorBody(row_number=e.row_number, line_number=e.line_number, column=e.column, value=e.value,
                             reason=e.reason) for e in preview.errors[:DRY_RUN_ERRORS_SHOWN]],
        proposal=[ProposedField(target_field=f.target_field, source_column=f.source_column, data_type=f.data_type,
                                confidence=round(f.confidence, 2), note=f.note) for f in preview.proposal.fields])


def _period(period_start: dt.date | None, period_end: dt.date | None) -> tuple[dt.date, dt.date] | None:
    if period_start is None and period_end is None:
        return None
    if period_start is None or period_end is None:
        missing = "period_start" if period_start is None else "period_end"
        raise ValidationFailed([FieldError(missing, "give both period_start and period_end, or neither")])
    if period_end < period_start:
        raise ValidationFailed([FieldError("period_end", "must not be before period_start")])
    return period_start, period_end


def _content_disposition(name: str | None) -> str:
    name = name or "download"
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"


class FileController(Controller):
    path = "/api/files"

    @get("/", opt={"permission": "files:read"}, sync_to_thread=True, summary="List the organization's files")
    def list_files(self, request: Request[Any, Any, Any], container: NamedDependency[Container],
                   principal: NamedDependency[Principal], pagination: NamedDependency[Pagination],
                   status: FromQuery[FileStatus | None] = None, file_type: FromQuery[FileType | None] = None,
                   kind: FromQuery[str | None] = None, format: FromQuery[FileFormat | None] = None,
                   uploaded_from: FromQuery[str | None] = None,
                   uploaded_to: FromQuery[str | None] = None) -> Success[list[FileSummary]]:
        """The organization's files, newest upload first. `file_type` is the side a file stands for
        (bank, switch ...), `kind` its precise kind (csv, xlsx, mt940 ...), `format` the spec's
        excel|csv|txt|xml; `uploaded_from` (inclusive) and `uploaded_to` (exclusive) are ISO dates or
        date-times (UTC when no offset is given). Paged like every list: `?page=&per_page=`."""
        if kind is not None and not _KIND.fullmatch(kind):
            raise ValidationFailed([FieldError("kind", "must be a file kind: 1 to 20 of a-z, 0-9 and _ (csv, xlsx, "
                                                       "mt940, camt053 ...)")])
        file_filter = FileFilter(status=status, file_type=file_type, kind=kind, format=format,
                                 uploaded_from=_moment(uploaded_from, "uploaded_from"),
                                 uploaded_to=_moment(uploaded_to, "uploaded_to"))
        files, total = list_files(container.files, _caller(principal, request), file_filter,
                                  page=pagination.page, per_page=pagination.per_page)
        return paginated([_summary_body(f) for f in files], pagination, total)

    @post("/upload", status_code=201, request_max_body_size=None, operation_class=UploadOperation,
          opt={"permission": "files:write", "rate_limit": "upload", "media_types": [MULTIPART]},
          summary="Upload a file")
    async def upload(self, request: Request[Any, Any, Any], container: NamedDependency[Container],
                     principal: NamedDependency[Principal]) -> Success[UploadedFile]:
        """Multipart form: `file_type` (bank|settlement|switch|card|gl) and optional `job_id` first,
        then `file`. The body is streamed to storage; its limit is the organization's
        max_file_size_mb (413 PAYLOAD_TOO_LARGE), not the app's JSON limit."""
        services = container.files
        caller = _caller(principal, request)
        _, options = request.content_type
        boundary = options.get("boundary")
        if not boundary:
            raise malformed("multipart boundary missing in Content-Type")
        # Counted in the `upload` tier by the guard (opt rate_limit), so not again here.
        limits = await anyio.to_thread.run_sync(
            lambda: check_upload_allowed(services, caller, count_rate_limit=False))
        if request.content_length is not None and request.content_length > limits.max_file_bytes + 64 * 1024:
            raise FileTooLarge(limits.max_file_bytes)  # refused before a byte of the body is read
        upload = MultipartUpload(request.stream(), boundary, max_file_bytes=limits.max_file_bytes)
        await upload.read_until_file()
        form = validate_form(upload.filename, upload.fields.get("file_type"), upload.fields.get("job_id"))
        if form.job_id is not None:
            limits = await anyio.to_thread.run_sync(
                lambda: check_upload_allowed(services, caller, form.job_id, count_rate_limit=False))
        result = await anyio.to_thread.run_sync(
            lambda: upload_file(services, caller, form, upload.file_chunks(), limits))
        details = await anyio.to_thread.run_sync(get_file, services, caller, result.file.id)
        proposal = result.proposal
        missing = list(proposal.missing_required) if proposal else []
        detected = DetectedEncoding(name=proposal.encoding, confidence=proposal.encoding_confidence) \
            if proposal and proposal.encoding and proposal.encoding_confidence is not None else None
        return ok(_file_body(details, UploadedFile, missing_required=missing, detected_encoding=detected))

    @get("/{file_id:uuid}", opt={"permission": "files:read"}, sync_to_thread=True, summary="Read a file's record")
    def read(self, file_id: FromPath[uuid.UUID], request: Request[Any, Any, Any], container: NamedDependency[Container],
             principal: NamedDependency[Principal]) -> Success[File]:
        """The file's metadata: status, scan result, proposed or confirmed mapping, row count, the
        current normalized version and every version (number, mapping, row count, created by and
        at; a re-map adds one) and, when normalization failed, its error report."""
        details = get_file(container.files, _caller(principal, request), file_id)
        return ok(_file_body(details))

    @delete("/{file_id:uuid}", opt={"permission": "files:delete", "errors": {
        409: "FILE_IN_PROCESSING_JOB: a running job uses the file; FILE_BUSY: another request holds it."}},
            status_code=200, sync_to_thread=True, summary="Delete a file")
    def remove(self, file_id: FromPath[uuid.UUID], request: Request[Any, Any, Any], container: NamedDependency[Container],
               principal: NamedDependency[Principal]) -> Success[dict[str, Any]]:
        """Deletes the file's record and its stored objects (original and normalized). Audited."""
        delete_file(container.files, _caller(principal, request), file_id)
        return ok({"id": str(file_id), "deleted": True})

    @get("/{file_id:uuid}/download", opt={"permission": "files:read"}, sync_to_thread=True,
         summary="Link to download the original file")
    def download_link(self, file_id: FromPath[uuid.UUID], request: Request[Any, Any, Any], container: NamedDependency[Container],
                      principal: NamedDependency[Principal]) -> Success[DownloadLinkBody]:
        """A URL valid for one hour (an S3 pre-signed URL, or this app's signed download route) that
        serves the file as uploaded. Issuing it is audited."""
        link = download_file_url(container.files, _caller(principal, request), file_id)
        return ok(DownloadLinkBody(url=link.url, expires_at=link.expires_at))

    @post("/{file_id:uuid}/map", opt={"permission": "files:write", "errors": {
        409: "FILE_IN_PROCESSING_JOB: a running job reads the file; FILE_BUSY: another request is mapping it; "
             "FILE_VERSION_CONFLICT: another request stored the same version first (nothing was kept).",
        422: "NORMALIZATION_FAILED: rows could not be normalized (a first mapping: the file's error report lists "
             "them; a re-map: the details do, and the file keeps its current version)."}},
          status_code=200, sync_to_thread=True, summary="Confirm or override a file's mapping")
    def map_file(self, file_id: FromPath[uuid.UUID], data: JSONBody[FileMap], request: Request[Any, Any, Any],
                 container: NamedDependency[Container], principal: NamedDependency[Principal],
                 dry_run: FromQuery[bool] = False, period_start: FromQuery[dt.date | None] = None,
                 period_end: FromQuery[dt.date | None] = None) -> Success[File | MappingDryRunBody]:
        """Confirm the proposed mapping (`{}`) or override it (`transformation_rules`), then normalize.

        A file normalized already (status `normalized`, or `processed`: a job used it) is re-mapped:
        the rows are read again into a new normalized version that becomes the current one (new
        jobs read it); earlier versions stay, and jobs keep reading the version they used. A re-map
        that fails changes nothing of the file.

        `?dry_run=true`: read the file with the given rules (else its mapping) and answer the first 50
        normalized rows, per-field fill rates, direction and currency counts and warnings (all rows one
        direction, all amounts zero, dates outside `period_start`..`period_end`, a field read from a
        constant-looking column), changing nothing."""
        services = container.files
        caller = _caller(principal, request)
        if dry_run:
            result = dry_run_mapping(services, caller, file_id, data.transformation_rules,
                                     period=_period(period_start, period_end))
            return ok(_dry_run_body(result))
        if period_start is not None or period_end is not None:
            raise ValidationFailed([FieldError("period_start" if period_start is not None else "period_end",
                                               "only a dry run (dry_run=true) takes a declared period")])
        confirm_mapping(services, caller, file_id, data.transformation_rules, allow_row_errors=data.allow_row_errors)
        return ok(_file_body(get_file(services, caller, file_id)))

    @get("/download/{token:str}", opt={"public": True, "errors": {
        403: "DOWNLOAD_TOKEN_INVALID: the link is malformed, tampered with or expired."}},
         sync_to_thread=True, media_type="application/octet-stream", summary="Download through a signed link")
    def download(self, token: FromPath[str], container: NamedDependency[Container],
                 request_info: NamedDependency[RequestInfo]) -> Stream:
        """The signed app URL of filesystem (and memory) storage: the token is the credential,
        valid one hour; the original is streamed and decrypted as it is read. Each download is an
        access event of the object's organization (no user: the token is a bearer credential; the
        link's issue is audited with the user who asked)."""
        storage = container.storage
        verify = getattr(storage, "verify_download_token", None)
        if verify is None:  # S3 mode hands out pre-signed S3 URLs; this route serves nothing
            raise DownloadTokenInvalid("malformed")
        grant = verify(token)
        validate_key(grant.key)
        if not grant.key.startswith(ORGANIZATIONS_ROOT + "/"):
            raise DownloadTokenInvalid("malformed")  # never quarantine, never anything else
        try:
            access = download_access_event(grant.key, grant.download_name, token, request_info)
        except ValueError:
            raise DownloadTokenInvalid("malformed") from None  # no organization's object
        try:
            stream = storage.open(grant.key)
        except StorageObjectMissing as exc:
            raise NotFound("file") from exc
        container.access_recorder.record(access)

        def chunks() -> Iterator[bytes]:
            with stream:
                while chunk := stream.read(1024 * 1024):
                    yield chunk

        return Stream(chunks(), media_type="application/octet-stream",
                      headers={"Content-Disposition": _content_disposition(grant.download_name)})


def download_access_event(key: str, download_name: str | None, token: str, request: RequestInfo) -> PendingAccess:
    """`access.file.download` (an uploaded original), `access.export.download` (a data export) or
    `access.output.download` (a job's output, a report, anything else of the organization), with the object key and a fingerprint of the
    token (never the token: it is valid for an hour)."""
    parts = key.split("/")
    organization_id = uuid.UUID(parts[1])
    is_file = len(parts) > 3 and (parts[2] == "uploads" or parts[2:4] == ["processed", NORMALIZED_FILES_SEGMENT])
    kind = "access.file.download" if is_file else (
        "access.export.download" if len(parts) > 3 and parts[2] == "exports" else "access.output.download")
    fingerprint = hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]
    return access_event(kind, None, request, organization_id=organization_id, resource_type="storage_object",
                        metadata={"object": key, "download_name": download_name, "link_sha256_16": fingerprint})


ROUTE_HANDLERS = [FileController]
ERROR_STATUSES: dict[type[BaseException], int] = {
    FileTooLarge: 413,
    DownloadTokenInvalid: 403,
    IngestionError: 422,
}
