"""`/api/audit-logs` (issue 17 item 1; docs/audit.md, "Reading the trail"). `audit:read`: admin, auditor.

    GET /api/audit-logs          ?from= &to= &user_id= &action= &resource_type= &resource_id= &outcome=
                                 &per_page= &cursor=   newest first, keyset-paginated
    GET /api/audit-logs/verify   ?from= &to=   the organization's chain over the period: intact, or
                                 the first broken row (or the missing sequence range)
    GET /api/audit-logs/export   the list's filters; CSV, streamed, formula-neutralised

`from` / `to` are ISO 8601 date-times with an offset (from <= created_at < to). Every call is
recorded as an access event.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream

from reckai.application.audit_trail import (
    export_audit_logs,
    list_audit_logs,
    verify_organization_audit_trail,
)
from reckai.application.context import RequestInfo
from reckai.application.errors import FieldError, ServiceUnavailable, ValidationFailed
from reckai.application.ports.audit import OUTCOMES, AuditError, AuditQuery
from reckai.bootstrap import Container
from reckai.domain.audit.events import ACTION_MAX_CHARS, RESOURCE_TYPE_MAX_CHARS, AuditRecord
from reckai.domain.identity.principal import Principal
from reckai.entrypoints.http.envelope import ErrorBody, cursor_parts, encode_cursor, ok
from reckai.entrypoints.http.envelope import Success as Envelope

MAX_AUDIT_PER_PAGE = 500
# A date-time past what PostgreSQL's TIMESTAMP holds, or before the product existed, is no period.
_EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


class AuditLogBody(msgspec.Struct):
    id: uuid.UUID
    sequence_number: int
    created_at: dt.datetime
    user_id: uuid.UUID | None
    action: str
    resource_type: str | None
    resource_id: uuid.UUID | None
    ip_address: str | None
    user_agent: str | None
    request_method: str | None
    request_path: str | None
    response_status: int | None
    error_message: str | None
    metadata: Any
    request_body: Any
    previous_hash: str
    hash: str
    key_id: str


def audit_log_body(record: AuditRecord) -> AuditLogBody:
    event = record.event
    created = record.created_at.replace(tzinfo=dt.UTC) if record.created_at.tzinfo is None else record.created_at
    return AuditLogBody(record.id, record.sequence_number, created, event.user_id, event.action,
                        event.resource_type, event.resource_id, event.ip_address, event.user_agent,
                        event.request_method, event.request_path, event.response_status, event.error_message,
                        event.metadata, event.request_body, record.previous_hash, record.hash, record.key_id)


class AuditPageMeta(msgspec.Struct):
    per_page: int
    next_cursor: str | None  # pass as ?cursor= for the next (older) page; null on the last


class SuccessAuditPage(msgspec.Struct, kw_only=True):
    success: bool = True
    data: list[AuditLogBody]
    meta: AuditPageMeta
    errors: list[ErrorBody] = msgspec.field(default_factory=list)


class BreakBody(msgspec.Struct):
    sequence_number: int
    record_id: uuid.UUID | None  # null when the break is not a row (missing rows, a bad checkpoint)
    reason: str
    detail: str
    missing_from: int | None  # reason "truncated": the missing sequences, both ends inclusive
    missing_through: int | None


class VerificationBody(msgspec.Struct):
    intact: bool
    organization_id: uuid.UUID
    period_from: dt.datetime | None
    period_to: dt.datetime | None
    records_checked: int
    first_sequence: int | None
    last_sequence: int | None
    anchored_sequence: int | None  # what the latest signed head checkpoint anchors (null: none yet)
    anchored_at: dt.datetime | None
    first_break: BreakBody | None


def _moment(value: dt.datetime | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValidationFailed([FieldError(name, "must be a date-time with a UTC offset (e.g. 2026-01-31T00:00:00Z)")])
    if not _EARLIEST <= value <= _LATEST:
        raise ValidationFailed([FieldError(name, "must be between 1970 and 9999")])
    return value


def _period(created_from: dt.datetime | None, created_to: dt.datetime | None) -> tuple[dt.datetime | None,
                                                                                        dt.datetime | None]:
    start, end = _moment(created_from, "from"), _moment(created_to, "to")
    if start is not None and end is not None and start >= end:
        raise ValidationFailed([FieldError("to", "must be after from")])
    return start, end


def _cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        (value,) = cursor_parts(cursor, 1)
        sequence = int(value)
        if not 1 <= sequence <= 2**63 - 1:
            raise ValueError("out of range")
    except ValueError:
        raise ValidationFailed([FieldError("cursor", "is not a cursor this API issued")]) from None
    return sequence


def provide_audit_query(
    created_from: Annotated[dt.datetime | None, QueryParameter(name="from", description="from (inclusive)")] = None,
    created_to: Annotated[dt.datetime | None, QueryParameter(name="to", description="to (exclusive)")] = None,
    user_id: FromQuery[uuid.UUID | None] = None,
    action: Annotated[str | None, QueryParameter(max_length=ACTION_MAX_CHARS)] = None,
    resource_type: Annotated[str | None, QueryParameter(max_length=RESOURCE_TYPE_MAX_CHARS)] = None,
    resource_id: FromQuery[uuid.UUID | None] = None,
    outcome: Annotated[str | None, QueryParameter(description=f"one of {list(OUTCOMES)}")] = None,
    per_page: Annotated[int, QueryParameter(ge=1, le=MAX_AUDIT_PER_PAGE)] = 50,
    cursor: FromQuery[str | None] = None,
) -> AuditQuery:
    """The `audit_query` dependency: the filters shared by the list and the export."""
    if outcome is not None and outcome not in OUTCOMES:
        raise ValidationFailed([FieldError("outcome", f"must be one of {list(OUTCOMES)}")])
    start, end = _period(created_from, created_to)
    return AuditQuery(action=action, user_id=user_id, resource_type=resource_type, resource_id=resource_id,
                      created_from=start, created_to=end, before_sequence=_cursor(cursor), limit=per_page,
                      outcome=outcome)


def _unavailable(exc: AuditError) -> ServiceUnavailable:
    return ServiceUnavailable("audit_log", f"cannot be read right now ({type(exc).__name__})")


class AuditLogController(Controller):
    path = "/api/audit-logs"
    dependencies = {"audit_query": Provide(provide_audit_query, sync_to_thread=False)}  # noqa: RUF012 - a Litestar layer attribute

    @get("/", opt={"permission": "audit:read"}, sync_to_thread=True, summary="List audit events")
    def list_audit_logs(self, principal: NamedDependency[Principal], container: NamedDependency[Container],
                        audit_query: NamedDependency[AuditQuery],
                        request_info: NamedDependency[RequestInfo]) -> SuccessAuditPage:
        """The organization's audit events, newest first, filtered by period, user, action, resource and
        outcome, a page at a time (`meta.next_cursor` for the next page). Admins and auditors; the read is
        itself recorded as an access event."""
        try:
            page = list_audit_logs(container.audit_trail, principal, audit_query, request_info)
        except AuditError as exc:
            raise _unavailable(exc) from exc
        next_cursor = encode_cursor(page.next_before_sequence) if page.next_before_sequence is not None else None
        return SuccessAuditPage(data=[audit_log_body(r) for r in page.records],
                                meta=AuditPageMeta(audit_query.limit, next_cursor))

    @get("/verify", opt={"permission": "audit:read"}, sync_to_thread=True, summary="Verify the audit chain")
    def verify(
        self, principal: NamedDependency[Principal], container: NamedDependency[Container],
        request_info: NamedDependency[RequestInfo],
        created_from: Annotated[dt.datetime | None, QueryParameter(name="from")] = None,
        created_to: Annotated[dt.datetime | None, QueryParameter(name="to")] = None,
    ) -> Envelope[VerificationBody]:
        """Recompute the organization's hash chain over the period (the whole chain without one) and
        compare its end with the latest signed head checkpoint: 200 with `intact` true, or false and
        the first broken row."""
        start, end = _period(created_from, created_to)
        try:
            result = verify_organization_audit_trail(container.audit_trail, principal, start, end, request_info)
        except AuditError as exc:
            raise _unavailable(exc) from exc
        brk = result.first_break
        return ok(VerificationBody(
            result.ok, principal.organization_id, start, end, result.records_checked, result.first_sequence,
            result.last_sequence, result.anchored_sequence,
            result.anchored_at.replace(tzinfo=dt.UTC) if result.anchored_at else None,
            None if brk is None else BreakBody(brk.sequence_number, brk.record_id, brk.reason.value, brk.detail,
                                               brk.missing_from, brk.missing_through)))

    @get("/export", opt={"permission": "audit:read"}, sync_to_thread=True, media_type="text/csv",
         summary="Export audit events as CSV")
    def export(self, principal: NamedDependency[Principal], container: NamedDependency[Container],
               audit_query: NamedDependency[AuditQuery], request_info: NamedDependency[RequestInfo]) -> Stream:
        """Every row matching the list's filters (not one page; `per_page` and `cursor` are ignored),
        newest first, as CSV streamed in batches; cells that a spreadsheet would run as a formula are
        written as text."""
        writer = container.table_writers.csv
        chunks = export_audit_logs(container.audit_trail, principal, audit_query, writer, request_info)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        return Stream(chunks, media_type=writer.media_type, headers={
            "content-type": writer.media_type,
            "content-disposition": f'attachment; filename="audit-logs-{stamp}.{writer.extension}"'})


ROUTE_HANDLERS = [AuditLogController]
