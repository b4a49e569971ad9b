"""The one place where an exception becomes an HTTP status and the §5.3 error envelope.

`describe_error` maps every exception the app can meet:

- application errors (`reckai.application.errors`) by kind, walking the class hierarchy, so a
  feature's `ApprovalAlreadyDecided(Conflict)` answers 409 with its own code;
- errors of other layers that a route module declares in `ERROR_STATUSES` (e.g. the ingestion
  domain's `IngestionError: 422`), using the error's `code`, `message` and `details` attributes;
- Litestar's own exceptions (unknown route 404, 405, validation 400, malformed body 400, 413, 415,
  401/403 from guards, 429);
- anything else: 500 INTERNAL_ERROR with a fixed message. The exception is logged at ERROR with
  the request id and never shown to the client.

Decisions where the spec is silent are listed in docs/http.md.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    InternalServerException,
    SerializationException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from reckai.application.errors import (
    ApplicationError,
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
    ValidationFailed,
)
from reckai.entrypoints.http.envelope import ErrorEnvelope, error_envelope
from reckai.entrypoints.http.middleware import safe_path
from reckai.entrypoints.http.request import JsonTooDeep
from reckai.logging_setup import log_event

logger = logging.getLogger(__name__)

# Status of each application error kind; the most specific class in an error's MRO wins.
APPLICATION_ERROR_STATUSES: dict[type[BaseException], int] = {
    ApplicationError: 422,
    ValidationFailed: 400,
    Unauthenticated: 401,
    PermissionDenied: 403,
    QuotaExceeded: 403,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
    ServiceUnavailable: 503,
}

# Codes and fixed messages for errors Litestar raises before (or instead of) a handler.
_FRAMEWORK_CODES: dict[int, tuple[str, str]] = {
    400: ("BAD_REQUEST", "The request could not be understood"),
    401: ("UNAUTHENTICATED", "Authentication required"),
    403: ("PERMISSION_DENIED", "You do not have permission to do this"),
    404: ("NOT_FOUND", "Resource not found"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed on this resource"),
    406: ("NOT_ACCEPTABLE", "No acceptable representation"),
    413: ("PAYLOAD_TOO_LARGE", "Request body is too large"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Unsupported request content type"),
    429: ("RATE_LIMITED", "Too many requests; retry later"),
    500: ("INTERNAL_ERROR", "An internal error occurred"),
    503: ("SERVICE_UNAVAILABLE", "Service unavailable"),
}

INTERNAL_ERROR_MESSAGE = "An internal error occurred"

_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]*)`")
_MISSING_FIELD = re.compile(r"missing required field `([^`]*)`")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True)
class ErrorAnswer:
    status: int
    envelope: ErrorEnvelope
    headers: dict[str, str] = field(default_factory=dict)
    # True when the exception is a bug (not an error raised on purpose): logged with its traceback.
    unexpected: bool = False


def describe_error(
    exc: BaseException, extra_statuses: Mapping[type[BaseException], int] | None = None
) -> ErrorAnswer:
    """Status, envelope and headers for `exc`. Never includes exception text the app did not
    write for the client."""
    statuses = {**APPLICATION_ERROR_STATUSES, **(extra_statuses or {})}
    status = _status_by_class(exc, statuses)
    if status is not None:
        return _declared_error(exc, status)
    if is_client_disconnect(exc):
        return ErrorAnswer(
            status=400,
            envelope=error_envelope(
                "REQUEST_INTERRUPTED",
                "The request was interrupted",
                [("body", "the connection ended before the request body was complete")],
            ),
            unexpected=False,
        )
    if isinstance(exc, HTTPException):
        return _framework_error(exc)
    return ErrorAnswer(
        status=HTTP_500_INTERNAL_SERVER_ERROR,
        envelope=error_envelope("INTERNAL_ERROR", INTERNAL_ERROR_MESSAGE),
        unexpected=True,
    )


# Litestar raises InternalServerException with this detail when the client hangs up mid-body. That is
# the client's doing, not a server fault: 400 on every route (rarely read, but the logs stay truthful).
CLIENT_DISCONNECTED = "client disconnected prematurely"


def is_client_disconnect(exc: BaseException) -> bool:
    return isinstance(exc, InternalServerException) and exc.detail == CLIENT_DISCONNECTED


def make_exception_handler(extra_statuses: Mapping[type[BaseException], int] | None = None) -> Any:
    """The Litestar exception handler for `Exception`, i.e. for every error of every route."""
    statuses = dict(extra_statuses or {})

    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorEnvelope]:
        answer = describe_error(exc, statuses)
        if answer.unexpected:
            path = safe_path(cast("Any", request.scope))  # a token in the path (download URL) never reaches the log
            log_event(
                logger,
                "http.unhandled_exception",
                level=logging.ERROR,
                message=f"unhandled {type(exc).__name__} on {request.method} {path}",
                metadata={"method": request.method, "path": path, "status": answer.status},
                exc_info=True,
            )
        return Response(content=answer.envelope, status_code=answer.status, headers=answer.headers)

    return handle


def _status_by_class(exc: BaseException, statuses: Mapping[type[BaseException], int]) -> int | None:
    for kind in type(exc).__mro__:
        if kind in statuses:
            return statuses[kind]
    return None


def _declared_error(exc: BaseException, status: int) -> ErrorAnswer:
    code = getattr(exc, "code", None)
    if not isinstance(code, str) or not code:
        code = _CAMEL_BOUNDARY.sub("_", type(exc).__name__)
    message = getattr(exc, "message", None)
    if not isinstance(message, str) or not message:
        message = str(exc) or HTTPStatus(status).phrase
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    return ErrorAnswer(
        status=status,
        envelope=error_envelope(code.upper(), message, _details_of(getattr(exc, "details", ()))),
        headers=headers,
        unexpected=False,
    )


def _details_of(details: Any) -> list[tuple[str, str]]:
    """Accepts the shapes errors carry: FieldError tuples, a mapping of field -> message, or None."""
    if isinstance(details, Mapping):
        return [(str(key), str(value)) for key, value in details.items()]
    pairs: list[tuple[str, str]] = []
    if isinstance(details, Iterable) and not isinstance(details, str | bytes):
        for item in details:
            if isinstance(item, FieldError):
                pairs.append((item.field, item.message))
            elif isinstance(item, Mapping):
                pairs.append((str(item.get("field", "")), str(item.get("message", ""))))
    return pairs


def _framework_error(exc: HTTPException) -> ErrorAnswer:
    status = exc.status_code
    headers = {str(key): str(value) for key, value in (exc.headers or {}).items()}
    if isinstance(exc, ValidationException):
        return ErrorAnswer(
            status=status,
            envelope=error_envelope("VALIDATION_ERROR", "Invalid input", _validation_details(exc.extra)),
            headers=headers,
        )
    if status == 400 and isinstance(exc.__cause__, SerializationException):
        # JsonTooDeep: valid JSON refused for its nesting depth (request.py); say so.
        if isinstance(exc.__cause__, JsonTooDeep):
            envelope = error_envelope("MALFORMED_BODY", "The request body is nested too deeply",
                                      [("body", str(exc.__cause__))])
        else:
            envelope = error_envelope("MALFORMED_BODY", "The request body is not valid JSON")
        return ErrorAnswer(status=status, envelope=envelope, headers=headers)
    code, message = _FRAMEWORK_CODES.get(status, (_status_code_name(status), _status_phrase(status)))
    if (
        400 <= status < 500
        and status not in (400, 404, 405)
        and exc.detail
        and exc.detail != _status_phrase(status)
    ):
        # Detail written by our own guards / hooks (e.g. "permission reconciliations:write required").
        message = exc.detail
    return ErrorAnswer(
        status=status,
        envelope=error_envelope(code, message),
        headers=headers,
        unexpected=status >= 500 and status != 503,
    )


def _validation_details(extra: Any) -> list[tuple[str, str]]:
    entries = extra if isinstance(extra, list) else [extra] if extra else []
    details: list[tuple[str, str]] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            details.append(("", str(entry)))
            continue
        message = str(entry.get("message", "invalid value"))
        key = str(entry.get("key", ""))
        if key in ("data", ""):
            # Problems with the body as a whole: name the field when msgspec says which one.
            match = _UNKNOWN_FIELD.search(message) or _MISSING_FIELD.search(message)
            key = match.group(1) if match else ""
        elif key.startswith("data."):
            key = key[len("data.") :]
        details.append((key, message))
    return details


def _status_code_name(status: int) -> str:
    try:
        return HTTPStatus(status).name
    except ValueError:
        return "HTTP_ERROR"


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTP error"
