"""The response envelope of spec §5.2 / §5.3, as msgspec Structs so OpenAPI documents them.

Success: `{"success": true, "data": ..., "meta": {"page", "per_page", "total"} | null, "errors": []}`.
`meta` is always present: the page figures for a list, `null` for anything else, so a client can
read the same keys from every answer. Errors:
`{"success": false, "error": {"code", "message", "details": [{"field", "message"}]}}`.

Handlers return `ok(value)` or `paginated(items, pagination, total)`; they never build error
bodies themselves (raise an application error; `errors.error_response` answers it).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

T = TypeVar("T")

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
# The offset (page - 1) * per_page must fit PostgreSQL's bigint OFFSET; a page past this is a
# validation error, not a 500 from the database (found by the API fuzzer).
MAX_PAGE = 10_000_000


class FieldErrorBody(msgspec.Struct):
    field: str
    message: str


class ErrorBody(msgspec.Struct):
    code: str
    message: str
    details: list[FieldErrorBody] = msgspec.field(default_factory=list)


class ErrorEnvelope(msgspec.Struct, kw_only=True):
    success: bool = False
    error: ErrorBody


class PageMeta(msgspec.Struct):
    page: int
    per_page: int
    total: int


class Success(msgspec.Struct, Generic[T], kw_only=True):
    success: bool = True
    data: T
    meta: PageMeta | None = None
    errors: list[ErrorBody] = msgspec.field(default_factory=list)


class Pagination(msgspec.Struct, frozen=True):
    """`?page=&per_page=` of a list endpoint (1-based; per_page at most MAX_PER_PAGE)."""

    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def limit(self) -> int:
        return self.per_page


def provide_pagination(
    page: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description=f"1-based page number (at most {MAX_PAGE})")] = 1,
    per_page: Annotated[
        int, QueryParameter(ge=1, le=MAX_PER_PAGE, description=f"items per page (at most {MAX_PER_PAGE})")
    ] = DEFAULT_PER_PAGE,
) -> Pagination:
    """App-level dependency `pagination`: a list handler declares `pagination: Pagination`."""
    return Pagination(page=page, per_page=per_page)


def ok(data: T) -> Success[T]:
    return Success(data=data)


def paginated(items: Sequence[T], pagination: Pagination, total: int) -> Success[list[T]]:
    return Success(
        data=list(items),
        meta=PageMeta(page=pagination.page, per_page=pagination.per_page, total=total),
    )


def error_envelope(code: str, message: str, details: Sequence[tuple[str, str]] = ()) -> ErrorEnvelope:
    return ErrorEnvelope(
        error=ErrorBody(
            code=code,
            message=message,
            details=[FieldErrorBody(field=field, message=text) for field, text in details],
        )
    )


def encode_cursor(*parts: object) -> str:
    """An opaque keyset cursor (`?cursor=`, `meta.next_cursor`): the last item's sort values."""
    return base64.urlsafe_b64encode("|".join(str(p) for p in parts).encode()).decode().rstrip("=")


def cursor_parts(cursor: str, count: int) -> list[str]:
    """The `count` values `encode_cursor` packed, as text; ValueError when it is no such cursor
    (the route converts the values and answers 400 on `cursor` for anything that does not parse)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError("not a cursor") from None
    parts = raw.split("|")
    if len(parts) != count:
        raise ValueError("not a cursor")
    return parts
