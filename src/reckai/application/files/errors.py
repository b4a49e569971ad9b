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


class FileVersionConflict(Conflict):
    """Another writer stored the same version number of the file first (a race the file's claim
    should prevent); nothing of this request was kept."""

    code = "FILE_VERSION_CONFLICT"

    def __init__(self, file_id: uuid.UUID, version: int) -> None:
        super().__init__(f"version {version} of the file was stored by another request at the same moment; "
                         "nothing of this request was kept. Read the file (GET /api/files/{id}) and map it again "
                         "if its current version is not the one you want")
        self.file_id = file_id
        self.version = version


class NormalizationFailed(ApplicationError):
    """Normalization failed: a first mapping leaves the file in status `error` (its error report
    lists every failed row); a re-map of a file that has a version leaves the file and its current
    version as they were (the answer's details list the failed rows)."""

    code = "NORMALIZATION_FAILED"

    def __init__(self, file_id: uuid.UUID, message: str, report: dict[str, Any] | None = None,
                 details: Iterable[FieldError] = ()) -> None:
        super().__init__(message, details)
        self.file_id = file_id
        self.report = report
