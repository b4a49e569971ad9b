"""Files (spec §5.1, issue 4): upload, read, delete, download, map. docs/files.md.

    POST   /api/files/upload            multipart: file_type, [job_id], then file (streamed)
    GET    /api/files/{id}              metadata, status, mapping, error report
    DELETE /api/files/{id}
    GET    /api/files/{id}/download     a link valid for one hour (S3 pre-signed, or signed app URL)
    POST   /api/files/{id}/map          confirm or override the mapping, then normalize
    GET    /api/files/download/{token}  the signed app URL of filesystem mode: streams the original

Permissions: files:read / files:write / files:delete (the same roles as reconciliations:*).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

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
from litestar.params import FromPath, JSONBody
from litestar.response import Stream

from reckai.application.access import PendingAccess, access_event
from reckai.application.context import RequestInfo
from reckai.application.errors import NotFound
from reckai.application.files import (
    Caller,
    check_upload_allowed,
    confirm_mapping,
    delete_file,
    download_file_url,
    get_file,
    upload_file,
    validate_form,
)
from reckai.application.files.common import rules_from_rows
from reckai.application.files.errors import FileTooLarge
from reckai.application.files.queries import FileDetails
from reckai.application.ports.files import FILE_TYPES
from reckai.application.ports.storage import DownloadTokenInvalid, StorageObjectMissing
from reckai.bootstrap import Container
from reckai.domain.identity.principal import Principal
from reckai.domain.ingestion.errors import IngestionError
from reckai.domain.ingestion.storage_keys import NORMALIZED_FILES_SEGMENT, ORGANIZATIONS_ROOT, validate_key
from reckai.entrypoints.http.auth import request_info
from reckai.entrypoints.http.envelope import Success, ok
from reckai.entrypoints.http.routes._multipart_stream import (
    MultipartUpload,
    malformed,
)

MULTIPART = "multipart/form-data"


class MappingField(msgspec.Struct):
    target_field: str
    source_column: str
    data_type: str
    auto_detected: bool
    confidence: float | None


class NormalizedInfo(msgspec.Struct):
    row_count: int
    checksum: str | None
    schema_version: int
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


class DetectedEncoding(msgspec.Struct, forbid_unknown_fields=True):
    """A text file's encoding when it was detected (neither UTF-8 nor windows-1252 nor declared)."""

    name: str
    confidence: float


class UploadedFile(File):
    missing_required: list[str] = msgspec.field(default_factory=list)
    detected_encoding: DetectedEncoding | None = None


class FileMap(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /api/files/{id}/map. `transformation_rules` null confirms the proposed mapping."""

    transformation_rules: dict[str, Any] | None = None
    allow_row_errors: bool = False


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
                                    description="What the file is. Must come before `file`."),
                "job_id": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.UUID,
                                 description="Optional: a reconciliation job of the organization the file "
                                             "belongs to. Must come before `file`."),
                "file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY,
                               description="The file (CSV/TXT, XLSX/XLS, XML, MT940, camt.053), last part of "
                                           "the form; at most the organization's max_file_size_mb."),
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
            "429": "More than 10 uploads in an hour (RATE_LIMITED)",
            "503": "Storage or the virus scanner is unavailable",
        }
        self.responses = {**(self.responses or {}),
                          **{status: OpenAPIResponse(description=text) for status, text in refusals.items()}}


def _caller(principal: Principal, request: Request[Any, Any, Any]) -> Caller:
    return Caller.of(principal, request_info(request))


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
                                  created_at=n.created_at) if n else None,
        **extra,
    )


def _content_disposition(name: str | None) -> str:
    name = name or "download"
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"


class FileController(Controller):
    path = "/api/files"

    @post("/upload", status_code=201, request_max_body_size=None, operation_class=UploadOperation,
          opt={"permission": "files:write", "rate_limit": "upload", "media_types": [MULTIPART]})
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

    @get("/{file_id:uuid}", opt={"permission": "files:read"}, sync_to_thread=True)
    def read(self, file_id: FromPath[uuid.UUID], request: Request[Any, Any, Any], container: NamedDependency[Container],
             principal: NamedDependency[Principal]) -> Success[File]:
        details = get_file(container.files, _caller(principal, request), file_id)
        return ok(_file_body(details))

    @delete("/{file_id:uuid}", opt={"permission": "files:delete"}, status_code=200, sync_to_thread=True)
    def remove(self, file_id: FromPath[uuid.UUID], request: Request[Any, Any, Any], container: NamedDependency[Container],
               principal: NamedDependency[Principal]) -> Success[dict[str, Any]]:
        delete_file(container.files, _caller(principal, request), file_id)
        return ok({"id": str(file_id), "deleted": True})

    @get("/{file_id:uuid}/download", opt={"permission": "files:read"}, sync_to_thread=True)
    def download_link(self, file_id: FromPath[uuid.UUID], request: Request[Any, Any, Any], container: NamedDependency[Container],
                      principal: NamedDependency[Principal]) -> Success[DownloadLinkBody]:
        link = download_file_url(container.files, _caller(principal, request), file_id)
        return ok(DownloadLinkBody(url=link.url, expires_at=link.expires_at))

    @post("/{file_id:uuid}/map", opt={"permission": "files:write"}, status_code=200, sync_to_thread=True)
    def map_file(self, file_id: FromPath[uuid.UUID], data: JSONBody[FileMap], request: Request[Any, Any, Any],
                 container: NamedDependency[Container], principal: NamedDependency[Principal]) -> Success[File]:
        services = container.files
        caller = _caller(principal, request)
        confirm_mapping(services, caller, file_id, data.transformation_rules, allow_row_errors=data.allow_row_errors)
        return ok(_file_body(get_file(services, caller, file_id)))

    @get("/download/{token:str}", opt={"public": True}, sync_to_thread=True, media_type="application/octet-stream")
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
    """`access.file.download` (an uploaded original) or `access.output.download` (a job's output,
    a report, anything else of the organization), with the object key and a fingerprint of the
    token (never the token: it is valid for an hour)."""
    parts = key.split("/")
    organization_id = uuid.UUID(parts[1])
    is_file = len(parts) > 3 and (parts[2] == "uploads" or parts[2:4] == ["processed", NORMALIZED_FILES_SEGMENT])
    kind = "access.file.download" if is_file else "access.output.download"
    fingerprint = hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]
    return access_event(kind, None, request, organization_id=organization_id, resource_type="storage_object",
                        metadata={"object": key, "download_name": download_name, "link_sha256_16": fingerprint})


ROUTE_HANDLERS = [FileController]
ERROR_STATUSES: dict[type[BaseException], int] = {
    FileTooLarge: 413,
    DownloadTokenInvalid: 403,
    IngestionError: 422,
}
