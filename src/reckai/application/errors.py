"""Errors that use cases raise; each kind carries data, none knows about HTTP.

The HTTP layer maps every kind to a status code and the error envelope in one function
(`reckai.entrypoints.http.errors.describe_error`). A feature refines a kind by subclassing it
with its own stable `code`, e.g. (`reckai.application.files.errors`)::

    class FileStateConflict(Conflict):
        code = "FILE_STATE_CONFLICT"

        def __init__(self, file_id: uuid.UUID, status: str, action: str) -> None:
            super().__init__(f"a file in status {status} cannot be {action}")
            self.file_id = file_id
            self.status = status

`code` is stable: API clients switch on it. `message` is shown to a person and must not carry a
secret or internal detail (no SQL, no stack trace, no other tenant's data).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field. `field` is the field's path in the request
    (`rows[0].amount_minor`), or "" when the problem concerns the request as a whole."""

    field: str
    message: str


class ApplicationError(Exception):
    """Base of every error a use case raises on purpose. Anything else reaching the HTTP layer is a
    bug and is answered as 500 INTERNAL_ERROR."""

    code: ClassVar[str] = "BUSINESS_RULE_VIOLATION"

    def __init__(self, message: str, details: Iterable[FieldError] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details: tuple[FieldError, ...] = tuple(details)


class ValidationFailed(ApplicationError):
    """The input is well-formed but breaks a rule of its fields (password too weak, end before start)."""

    code = "VALIDATION_ERROR"

    def __init__(self, details: Iterable[FieldError], message: str = "Invalid input") -> None:
        super().__init__(message, details)


class NotFound(ApplicationError):
    """The resource does not exist *for this caller*. Also used for another tenant's ids, so that an
    id never reveals that it exists elsewhere."""

    code = "NOT_FOUND"

    def __init__(self, resource_type: str, resource_id: object | None = None) -> None:
        super().__init__(f"{resource_type} not found")
        self.resource_type = resource_type
        self.resource_id = resource_id


class Conflict(ApplicationError):
    """The request contradicts the resource's current state (duplicate name, illegal transition,
    concurrent decision)."""

    code = "CONFLICT"


class Unauthenticated(ApplicationError):
    """No valid credentials. `reason` is for logs and audit; the message stays generic."""

    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "Authentication required", reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class PermissionDenied(ApplicationError):
    code = "PERMISSION_DENIED"

    def __init__(
        self, permission: str | None = None, message: str = "You do not have permission to do this"
    ) -> None:
        super().__init__(message)
        self.permission = permission


class QuotaExceeded(ApplicationError):
    """The organization's quota (spec §3.2, `organization_quotas`) does not admit the request."""

    code = "QUOTA_EXCEEDED"

    def __init__(self, quota: str, limit: int, requested: int | None = None) -> None:
        super().__init__(
            f"quota {quota} exceeded (limit {limit})",
            (FieldError(field=quota, message=f"limit is {limit}"),),
        )
        self.quota = quota
        self.limit = limit
        self.requested = requested


class RateLimited(ApplicationError):
    """Too many requests; the client may retry after `retry_after_seconds` (sent as Retry-After)."""

    code = "RATE_LIMITED"

    def __init__(self, retry_after_seconds: int, limit_name: str | None = None) -> None:
        super().__init__("Too many requests; retry later")
        self.retry_after_seconds = max(1, int(retry_after_seconds))
        self.limit_name = limit_name


class ServiceUnavailable(ApplicationError):
    """A dependency (database, storage, queue) cannot serve the request right now."""

    code = "SERVICE_UNAVAILABLE"

    def __init__(self, dependency: str, detail: str = "unavailable") -> None:
        super().__init__(
            f"{dependency} is unavailable",
            (FieldError(field=dependency, message=detail),),
        )
        self.dependency = dependency
        self.detail = detail
