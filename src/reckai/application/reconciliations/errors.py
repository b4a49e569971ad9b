"""Errors of the reconciliation use cases (each with a stable code; docs/http.md maps them)."""

from __future__ import annotations

import uuid

from reckai.application.errors import ApplicationError, Conflict, FieldError, NotFound


class JobNotFound(NotFound):
    def __init__(self, job_id: uuid.UUID) -> None:
        super().__init__("reconciliation_job", job_id)


class JobAlreadyFinishedError(Conflict):
    code = "JOB_ALREADY_FINISHED"

    def __init__(self, job_id: uuid.UUID, status: str) -> None:
        super().__init__(f"the reconciliation is already {status}")
        self.job_id = job_id
        self.status = status


class JobRunningError(Conflict):
    code = "JOB_IS_RUNNING"

    def __init__(self, job_id: uuid.UUID) -> None:
        super().__init__("the reconciliation is being processed; cancel it first")
        self.job_id = job_id


class JobNotCompleted(Conflict):
    code = "JOB_NOT_COMPLETED"

    def __init__(self, job_id: uuid.UUID, status: str) -> None:
        super().__init__(f"the reconciliation has no results: it is {status}")
        self.job_id = job_id
        self.status = status


class FileNotReady(ApplicationError):
    """A file of the request cannot be reconciled yet (no confirmed mapping, wrong organization)."""

    code = "FILE_NOT_READY"

    def __init__(self, side: str, file_id: uuid.UUID, reason: str) -> None:
        super().__init__(f"the {side} file is not ready: {reason}", (FieldError(f"{side}_file_id", reason),))
        self.side = side
        self.file_id = file_id


class NoRules(ApplicationError):
    code = "NO_ACTIVE_RULES"

    def __init__(self, message: str) -> None:
        super().__init__(message, (FieldError("rule_ids", message),))


class InvalidReconciliation(ApplicationError):
    """The rules and mappings do not form a valid profile (docs/profile.md)."""

    code = "INVALID_RECONCILIATION"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}", (FieldError(path, message),))
