"""Errors of the stream use cases (each with a stable code; the HTTP layer maps them by class)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from reckai.application.errors import ApplicationError, Conflict, FieldError, NotFound


class StreamNotFound(NotFound):
    def __init__(self, stream_id: uuid.UUID) -> None:
        super().__init__("stream", stream_id)


class StreamNameTaken(Conflict):
    code = "STREAM_NAME_TAKEN"

    def __init__(self, name: str) -> None:
        super().__init__(f"the organization already has a stream named '{name}'", (FieldError("name", "is taken"),))


class FileLayoutChanged(ApplicationError):
    """A file's confirmed mapping is not the stream's template for its side: what differs."""

    code = "FILE_LAYOUT_CHANGED"

    def __init__(self, side: str, differences: Sequence[tuple[str, Any, Any]]) -> None:
        super().__init__(
            f"the file's layout no longer fits the stream's {side} template ({len(differences)} difference(s)); "
            "map it as the template does, or change the stream",
            tuple(FieldError(f"mapping.{path}", f"template: {expected!r}; this file: {found!r}")
                  for path, expected, found in differences[:50]))
        self.differences = list(differences)


class DuplicateStreamFile(Conflict):
    """The stream already took a file with this SHA-256."""

    code = "STREAM_FILE_DUPLICATE"

    def __init__(self, earlier_file_id: uuid.UUID) -> None:
        message = f"the stream already took a file with the same content (SHA-256): file {earlier_file_id}"
        super().__init__(message, (FieldError("file_id", message),))
        self.earlier_file_id = earlier_file_id


class FileAlreadyUsed(Conflict):
    """The file is in a stream already, or a reconciliation job used it."""

    code = "FILE_ALREADY_USED"

    def __init__(self, message: str) -> None:
        super().__init__(message, (FieldError("file_id", message),))


class StreamRunInProgress(Conflict):
    code = "STREAM_RUN_IN_PROGRESS"

    def __init__(self, run_number: int, job_id: uuid.UUID) -> None:
        super().__init__(f"run {run_number} of this stream (job {job_id}) has not finished; wait for it or cancel it")
        self.job_id = job_id


class NothingToRun(Conflict):
    code = "STREAM_NOTHING_TO_RUN"

    def __init__(self) -> None:
        super().__init__("the stream has no new file and no earlier run: add files first (POST /api/streams/:id/files)")


class FilesAlreadyReconciled(Conflict):
    """A one-off job over two files an earlier job already reconciled together (issue 15 item 3)."""

    code = "FILES_ALREADY_RECONCILED"

    def __init__(self, job_id: uuid.UUID) -> None:
        super().__init__(f"these two files were already reconciled together by job {job_id}; "
                         "send \"force\": true to reconcile them again",
                         (FieldError("force", f"earlier job {job_id}"),))
        self.job_id = job_id


class JobIsStreamRun(Conflict):
    """A stream's run is part of the stream's history (its open items and breaks): not deletable."""

    code = "JOB_IS_STREAM_RUN"

    def __init__(self, job_id: uuid.UUID, stream_id: uuid.UUID, run_number: int) -> None:
        super().__init__(f"this reconciliation is run {run_number} of stream {stream_id}; a stream's runs "
                         "cannot be deleted")
        self.job_id = job_id
