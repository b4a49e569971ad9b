"""Errors of the file use cases (each a kind of `reckai.application.errors`, with its own code)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from reckai.application.errors import ApplicationError, Conflict, FieldError


class FileTooLarge(ApplicationError):
    """The upload went past the organization's max_file_size_mb (answered 413 by the route)."""

    code = "PAYLOAD_TOO_LARGE"

    def __init__(self, limit_bytes: int) -> None:
        limit_mb = limit_bytes // (1024 * 1024)
        super().__init__(f"the file is larger than this organization's limit of {limit_mb} MB",
                         (FieldError("file", f"at most {limit_mb} MB"),))
        self.limit_bytes = limit_bytes


class FileRejected(ApplicationError):
    """The file's content is not acceptable (empty, binary, a zip bomb, malformed XML ...).

    `code` is the ingestion error's code upper-cased (EMPTY_FILE, BINARY_CONTENT ...)."""

    code = "FILE_REJECTED"

    def __init__(self, code: str, message: str, details: Iterable[FieldError] = ()) -> None:
        super().__init__(message, details or (FieldError("file", message),))
        self.code = code  # type: ignore[misc]  # per instance: the precise reason


class FileInfected(ApplicationError):
    code = "FILE_INFECTED"

    def __init__(self, signature: str | None) -> None:
        super().__init__("the file was refused: the virus scanner found malware in it",
                         (FieldError("file", f"detected: {signature or 'unknown signature'}"),))
        self.signature = signature


class FileInProcessingJob(Conflict):
    code = "FILE_IN_PROCESSING_JOB"

    def __init__(self, file_id: uuid.UUID) -> None:
        super().__init__("the file is part of a reconciliation job that is processing; try again when it ends")
        self.file_id = file_id


class FileBusy(Conflict):
    """Another request (or job) holds the file's claim: it is being mapped, normalized or deleted."""

    code = "FILE_BUSY"

    def __init__(self, file_id: uuid.UUID) -> None:
        super().__init__("the file is being mapped, normalized or deleted by another request; try again when it ends")
        self.file_id = file_id


class FileStateConflict(Conflict):
    code = "FILE_STATE_CONFLICT"

    def __init__(self, file_id: uuid.UUID, status: str, action: str, hint: str | None = None) -> None:
        message = f"a file in status {status} cannot be {action}"
        super().__init__(f"{message}; {hint}" if hint else message,
                         (FieldError("status", hint),) if hint else ())
        self.file_id = file_id
        self.status = status


# Why a processed file keeps its mapping, and what to do instead (docs/files.md, "Re-mapping").
REMAP_PROCESSED_HINT = (
    "a reconciliation used this mapping and its results point at the rows it read. To read the file "
    "another way, upload it again (the new file is flagged as a duplicate of this one, which is expected) "
    "and map the new file; try the mapping first with POST /api/files/{id}/map?dry_run=true")


class NormalizationFailed(ApplicationError):
    """Normalization ended in status `error`; the file's error report lists every failed row."""

    code = "NORMALIZATION_FAILED"

    def __init__(self, file_id: uuid.UUID, message: str, report: dict[str, Any] | None = None,
                 details: Iterable[FieldError] = ()) -> None:
        super().__init__(message, details)
        self.file_id = file_id
        self.report = report
