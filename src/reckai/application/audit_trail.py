"""The audit trail for auditors (issue 17 item 1; docs/audit.md, "Reading the trail").

`audit:read` (admin, auditor) lists one organization's rows with filters and keyset paging,
verifies the organization's chain over a period (`verify_audit_trail`, the one verification use
case) and exports the rows as CSV, streamed in keyset batches. Every one of these reads is itself
recorded: as an access event (`access.audit_logs.*`, batched, see application/access.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from reckai.application.access import AccessRecorder, access_event
from reckai.application.audit import AuditTrailVerification, verify_audit_trail
from reckai.application.audit_personal import PersonalData
from reckai.application.context import RequestInfo
from reckai.application.errors import FieldError, PermissionDenied, ValidationFailed
from reckai.application.ports.audit import AuditAnchorStore, AuditLog, AuditPage, AuditQuery
from reckai.application.ports.exports import Column, ColumnKind, TableWriter
from reckai.domain.audit.chain import AuditSigner
from reckai.domain.audit.events import AuditRecord
from reckai.domain.identity.permissions import has_permission
from reckai.domain.identity.principal import Principal

READ_PERMISSION = "audit:read"
# One request verifies at most this many rows (about a minute of HMACs on a busy machine); a longer
# period is verified in parts, or by `reckai audit verify` (no HTTP time limit).
VERIFY_MAX_ROWS = 1_000_000
EXPORT_BATCH_ROWS = 500  # AuditQuery's largest page

K = ColumnKind
AUDIT_COLUMNS: tuple[Column, ...] = (
    Column("sequence_number", K.INTEGER), Column("id"), Column("created_at", K.DATETIME), Column("user_id"),
    Column("action"), Column("resource_type"), Column("resource_id"), Column("ip_address"), Column("user_agent"),
    Column("request_method"), Column("request_path"), Column("response_status", K.INTEGER),
    Column("error_message"), Column("metadata"), Column("request_body"), Column("previous_hash"), Column("hash"),
    Column("key_id"),
)


@dataclass(frozen=True)
class AuditTrailServices:
    audit_log: AuditLog
    signer: AuditSigner
    anchors: AuditAnchorStore
    access: AccessRecorder
    # Opens the personal values sealed in rows for the reader ([erased] after erasure; docs/privacy.md).
    personal: PersonalData


def _require(principal: Principal) -> None:
    if not has_permission(principal.role, READ_PERMISSION):
        raise PermissionDenied(READ_PERMISSION)


def _filters(query: AuditQuery) -> dict[str, str]:
    fields = ("action", "user_id", "resource_type", "resource_id", "created_from", "created_to", "outcome")
    return {name: str(getattr(query, name)) for name in fields if getattr(query, name) is not None}


def list_audit_logs(services: AuditTrailServices, principal: Principal, query: AuditQuery,
                    request: RequestInfo | None = None) -> AuditPage:
    """One page of the caller's organization's rows, newest first."""
    _require(principal)
    page = services.audit_log.list_records(principal.organization_id, query)
    page = dataclasses.replace(page, records=services.personal.reveal(principal.organization_id, page.records))
    services.access.record(access_event(
        "access.audit_logs.list", principal, request, resource_type="audit_log",
        metadata={"filters": _filters(query), "rows": len(page.records), "cursor": query.before_sequence}))
    return page


def verify_organization_audit_trail(
    services: AuditTrailServices, principal: Principal, created_from: dt.datetime | None,
    created_to: dt.datetime | None, request: RequestInfo | None = None, now: dt.datetime | None = None,
) -> AuditTrailVerification:
    """`verify_audit_trail` over the caller's organization's chain, for the period asked."""
    _require(principal)
    if created_from is not None or created_to is not None:
        bounds = services.audit_log.sequence_range(principal.organization_id, created_from, created_to)
    else:
        bounds = services.audit_log.sequence_range(principal.organization_id, None, None)
    if bounds is not None and bounds[1] - bounds[0] + 1 > VERIFY_MAX_ROWS:
        raise ValidationFailed([FieldError("from", f"the period holds {bounds[1] - bounds[0] + 1} rows; one request "
                                                   f"verifies at most {VERIFY_MAX_ROWS}: give a shorter period "
                                                   "(from/to) or run reckai audit verify")])
    result = verify_audit_trail(services.audit_log, services.signer, services.anchors, principal.organization_id,
                                created_from=created_from, created_to=created_to,
                                now=now or dt.datetime.now(dt.UTC))
    brk = result.first_break
    services.access.record(access_event(
        "access.audit_logs.verify", principal, request, resource_type="audit_log",
        metadata={"from": str(created_from) if created_from else None, "to": str(created_to) if created_to else None,
                  "intact": result.ok, "records_checked": result.records_checked,
                  "break": None if brk is None else {"sequence": brk.sequence_number, "reason": brk.reason.value}}))
    return result


def audit_rows(services: AuditTrailServices, principal: Principal, query: AuditQuery) -> Iterator[Sequence[Any]]:
    """Every matching row, newest first, read in keyset pages (bounded memory at any size)."""
    current = dataclasses.replace(query, limit=EXPORT_BATCH_ROWS, before_sequence=None)
    while True:
        page = services.audit_log.list_records(principal.organization_id, current)
        for record in services.personal.reveal(principal.organization_id, page.records):
            yield audit_row(record)
        if page.next_before_sequence is None:
            return
        current = dataclasses.replace(current, before_sequence=page.next_before_sequence)


def audit_row(record: AuditRecord) -> list[Any]:
    event = record.event
    created = record.created_at.replace(tzinfo=dt.UTC) if record.created_at.tzinfo is None else record.created_at

    def text(value: Any) -> str | None:
        return None if value is None else str(value)

    def as_json(value: Any) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)

    return [record.sequence_number, str(record.id), created, text(event.user_id), event.action,
            event.resource_type, text(event.resource_id), event.ip_address, event.user_agent, event.request_method,
            event.request_path, event.response_status, event.error_message, as_json(event.metadata),
            as_json(event.request_body), record.previous_hash, record.hash, record.key_id]


def export_audit_logs(services: AuditTrailServices, principal: Principal, query: AuditQuery, writer: TableWriter,
                      request: RequestInfo | None = None) -> Iterator[bytes]:
    """The rows matching the list's filters as a table (CSV), lazily; the export is recorded when
    it starts (the row count is not known before the last batch)."""
    _require(principal)
    services.access.record(access_event(
        "access.audit_logs.export", principal, request, resource_type="audit_log",
        metadata={"filters": _filters(query), "format": writer.extension}))
    return writer.chunks(AUDIT_COLUMNS, audit_rows(services, principal, query))
