"""upload_file: stream an upload into storage, scan it, validate it by content, reserve the
storage quota under the quota row's lock, record it with its proposed mapping, audit it.

Nothing half-written: until the database transaction that inserts the row commits, any failure
removes the stored object (an infected one is moved to quarantine instead), so there is never a
row without its object nor an object without its row.
"""

from __future__ import annotations

import io
import logging
import posixpath
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reckai.application.context import Caller, Outcome
from reckai.application.errors import (
    FieldError,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    ValidationFailed,
)
from reckai.application.files.common import audit_event, logger, mapping_rows, read_object, rejected
from reckai.application.files.errors import FileInfected, FileRejected, FileTooLarge
from reckai.application.files.services import FileServices
from reckai.application.ports.files import FILE_TYPES, FilesUnitOfWork, ReconciliationFile
from reckai.application.ports.rate_limit import TIERS
from reckai.application.ports.scanner import ScanLimitExceeded, ScannerError, ScanVerdict
from reckai.application.ports.storage import ObjectTooLarge, StorageError
from reckai.domain.ingestion.detection import MappingProposal
from reckai.domain.ingestion.errors import EmptyFile, IngestionError, NoDataRows
from reckai.domain.ingestion.storage_keys import quarantine_key, upload_key

MIB = 1024 * 1024
GIB = 1024 * MIB
FILENAME_MAX = 255
_SAFE_EXTENSION = re.compile(r"[a-z0-9]{1,10}")


@dataclass(frozen=True)
class UploadForm:
    original_filename: str
    file_type: str
    job_id: uuid.UUID | None = None


@dataclass(frozen=True)
class UploadLimits:
    """Byte limits for one upload, from the organization's quota row."""

    max_file_bytes: int
    remaining_storage_bytes: int
    counted_hit: str | None = None  # the `upload` tier hit this check counted (given back on refusal)

    @property
    def max_bytes(self) -> int:
        return max(0, min(self.max_file_bytes, self.remaining_storage_bytes))


@dataclass(frozen=True)
class UploadResult:
    file: ReconciliationFile
    proposal: MappingProposal | None
    proposal_error: str | None


def clean_filename(raw: str | None) -> str:
    """The last path segment of a client-given name, control characters removed, at most 255."""
    name = (raw or "").replace("\\", "/")
    name = posixpath.basename(name)
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:FILENAME_MAX]


def validate_form(filename: str | None, file_type: str | None, job_id: str | uuid.UUID | None) -> UploadForm:
    problems = []
    name = clean_filename(filename)
    if not name:
        problems.append(FieldError("file", "a file with a file name is required"))
    if file_type not in FILE_TYPES:
        problems.append(FieldError("file_type", f"must be one of {', '.join(FILE_TYPES)}"))
    parsed_job: uuid.UUID | None = None
    if job_id not in (None, ""):
        try:
            parsed_job = job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(str(job_id))
        except ValueError:
            problems.append(FieldError("job_id", "must be a UUID"))
    if problems:
        raise ValidationFailed(problems)
    return UploadForm(original_filename=name, file_type=str(file_type), job_id=parsed_job)


def check_upload_allowed(services: FileServices, caller: Caller, job_id: uuid.UUID | None = None, *,
                         count_rate_limit: bool = True) -> UploadLimits:
    """Before any byte is read: the rate limit (the `upload` tier: 10 accepted uploads an hour per user
    unless the settings say otherwise), the job, the quotas.

    `count_rate_limit=False` when the caller already counted the hit in the `upload` tier (the
    HTTP guard does, for routes declaring `opt={"rate_limit": "upload"}`). Returns the byte limits
    the body is streamed under."""
    with services.database.unit_of_work(caller.organization_id) as uow:
        hit_id = _count_upload(services, caller, uow) if count_rate_limit else None
        try:
            if job_id is not None and not uow.files.job_exists(job_id):
                raise ValidationFailed([FieldError("job_id", "no such reconciliation job")])
            quota = uow.quotas.get(caller.organization_id)
            if quota is None:
                raise ServiceUnavailable("quota", "the organization has no quota row")
            used = uow.files.total_size_bytes()
            limits = UploadLimits(max_file_bytes=quota.max_file_size_mb * MIB,
                                  remaining_storage_bytes=quota.max_storage_gb * GIB - used, counted_hit=hit_id)
            if limits.remaining_storage_bytes <= 0:
                raise QuotaExceeded("max_storage_gb", quota.max_storage_gb)
        except BaseException:
            _release(services, caller, hit_id)
            raise
    return limits


def _count_upload(services: FileServices, caller: Caller, uow: FilesUnitOfWork) -> str | None:
    """One hit in the `upload` tier under the organization's limit (a setting it may override)."""
    organization = uow.organizations.get(caller.organization_id)
    tier = services.rate_limits.tier("upload", organization.settings if organization else None)
    decision = services.rate_limiter.hit(tier, str(caller.user_id))
    if not decision.allowed:
        if decision.degraded:
            raise ServiceUnavailable("rate_limiter", "upload rate limit cannot be checked")
        raise RateLimited(decision.retry_after_seconds, "upload")
    return decision.hit_id


def _release(services: FileServices, caller: Caller, hit_id: str | None) -> None:
    if hit_id is not None:
        services.rate_limiter.release(TIERS["upload"], str(caller.user_id), hit_id)


def upload_file(services: FileServices, caller: Caller, form: UploadForm, body: Iterable[bytes],
                limits: UploadLimits | None = None) -> UploadResult:
    """Store, scan, validate and record one upload. `body` yields the file's bytes as they arrive.
    Without `limits` it checks them itself, counting the upload in the `upload` tier; a refused
    upload gives that hit back (only accepted uploads use up the allowance)."""
    if limits is None:
        limits = check_upload_allowed(services, caller, form.job_id)
        try:
            return _upload(services, caller, form, body, limits)
        except BaseException:
            _release(services, caller, limits.counted_hit)
            raise
    return _upload(services, caller, form, body, limits)


def _upload(services: FileServices, caller: Caller, form: UploadForm, body: Iterable[bytes],
            limits: UploadLimits) -> UploadResult:
    file_id = uuid.uuid4()
    now = services.now()
    extension = form.original_filename.rsplit(".", 1)[-1].lower() if "." in form.original_filename else ""
    key = upload_key(caller.organization_id, file_id, now.date(),
                     extension if _SAFE_EXTENSION.fullmatch(extension) else "bin")
    try:
        stored = services.storage.put(key, body, max_bytes=limits.max_bytes)
    except ObjectTooLarge as exc:
        if limits.max_bytes < limits.max_file_bytes:
            raise QuotaExceeded("max_storage_gb", limits.remaining_storage_bytes // GIB) from exc
        raise FileTooLarge(limits.max_file_bytes) from exc
    except StorageError as exc:
        raise ServiceUnavailable("storage", type(exc).__name__) from exc
    try:
        return _accept(services, caller, form, file_id, key, stored.size_bytes, stored.sha256 or "", now)
    except BaseException:
        try:
            services.storage.delete(key)  # no-op when the file was moved to quarantine
        except StorageError:
            logger.error("file.upload.cleanup_failed", extra={"file_id": str(file_id)})
        raise


def _accept(services: FileServices, caller: Caller, form: UploadForm, file_id: uuid.UUID, key: str,
            size_bytes: int, sha256: str, now: Any) -> UploadResult:
    facts: dict[str, Any] = {"original_filename": form.original_filename, "file_type": form.file_type,
             "size_bytes": size_bytes, "sha256": sha256}
    # Read back once (integrity checked to the last byte), scanned from memory before any parser
    # sees it; validation and detection need the whole file anyway (bounded by max_file_size_mb).
    data = read_object(services, key)
    scan_status = _scan(services, caller, file_id, key, data, now, extension=key.rsplit(".", 1)[-1], facts=facts)
    try:
        info = services.parser.inspect(data, form.original_filename)
    except IngestionError as exc:
        _audit_refusal(services, caller, file_id, exc.code, exc.message, facts)
        raise rejected(exc) from exc
    proposal, proposal_error = _propose(services, caller, file_id, data, form, facts)
    del data
    with services.database.unit_of_work(caller.organization_id) as uow:
        quota = uow.quotas.get_for_update(caller.organization_id)  # serialises concurrent uploads
        if quota is None:
            raise ServiceUnavailable("quota", "the organization has no quota row")
        if uow.files.total_size_bytes() + size_bytes > quota.max_storage_gb * GIB:
            raise QuotaExceeded("max_storage_gb", quota.max_storage_gb, requested=size_bytes)
        duplicate_of = uow.files.first_with_checksum(sha256)
        record = uow.files.add(ReconciliationFile(
            id=file_id, organization_id=caller.organization_id, job_id=form.job_id,
            name=form.original_filename, original_filename=form.original_filename, file_type=form.file_type,
            format=info.format, kind=info.kind, size_bytes=size_bytes, storage_path=key, status="uploaded",
            checksum=sha256, uploaded_by=caller.acting_user, duplicate_of=duplicate_of, scan_status=scan_status,
            error_report={"proposal_error": proposal_error} if proposal_error else None,
        ))
        if proposal is not None:
            uow.data_mappings.replace_for_file(file_id, mapping_rows(
                caller, file_id, proposal.mapping, auto_detected=True, proposal=proposal))
        services.audit_log.record(uow, audit_event(
            caller, "file.uploaded", file_id, outcome=Outcome.CREATED, **facts, format=info.format, kind=info.kind,
            scan_status=scan_status, duplicate_of=str(duplicate_of) if duplicate_of else None))
        uow.commit()
    logger.info("file.uploaded", extra={"file_id": str(file_id), "size_bytes": size_bytes})
    return UploadResult(file=record, proposal=proposal, proposal_error=proposal_error)


def _scan(services: FileServices, caller: Caller, file_id: uuid.UUID, key: str, data: bytes, now: Any, *,
          extension: str, facts: dict[str, Any]) -> str:
    """Scan the stored object; fail closed. Infected: moved to quarantine, audited, refused."""
    try:
        result = services.scanner.scan(io.BytesIO(data))
    except ScanLimitExceeded as exc:
        _audit_refusal(services, caller, file_id, "scan_limit_exceeded", str(exc), facts)
        raise FileRejected("SCAN_LIMIT_EXCEEDED", "the file is beyond what the virus scanner can inspect, "
                           "so it was refused") from exc
    except ScannerError as exc:
        _audit_refusal(services, caller, file_id, "scanner_unavailable", type(exc).__name__, facts)
        raise ServiceUnavailable("virus_scanner", "the file could not be scanned, so it was refused") from exc
    if result.infected:
        target = quarantine_key(caller.organization_id, file_id, now.date(), extension)
        services.storage.move(key, target)
        services.audit_log.record_independently(audit_event(
            caller, "file.upload.infected", None, outcome=Outcome.REFUSED, error=f"malware detected: {result.signature}",
            **facts, signature=result.signature, quarantine_object=target, refused_file_id=str(file_id)))
        logging.getLogger("reckai.security").warning(
            "file.upload.infected", extra={"file_id": str(file_id), "signature": result.signature})
        raise FileInfected(result.signature)
    return "not_scanned" if result.verdict is ScanVerdict.NOT_SCANNED else "clean"


def _propose(services: FileServices, caller: Caller, file_id: uuid.UUID, data: bytes, form: UploadForm,
             facts: dict[str, Any]) -> tuple[MappingProposal | None, str | None]:
    """Auto-detect a mapping. A file with no data rows is refused; a file the detector cannot read
    on its own (say, the header row cannot be found) is kept without a proposal: the person
    mapping it can give the parse settings."""
    try:
        return services.parser.propose(data, form.original_filename), None
    except (EmptyFile, NoDataRows) as exc:
        _audit_refusal(services, caller, file_id, exc.code, exc.message, facts)
        raise rejected(exc) from exc
    except IngestionError as exc:
        return None, exc.message


def _audit_refusal(services: FileServices, caller: Caller, file_id: uuid.UUID, reason: str, message: str,
                   facts: dict[str, Any]) -> None:
    """Refused uploads are audited too (in their own transaction: nothing else is committed)."""
    try:
        services.audit_log.record_independently(audit_event(
            caller, "file.upload.refused", None, outcome=Outcome.REFUSED, error=message[:500], **facts, reason=reason,
            refused_file_id=str(file_id)))
    except Exception:  # noqa: BLE001  the refusal stands either way; the failure is logged
        logger.exception("file.upload.refusal_audit_failed", extra={"file_id": str(file_id)})
