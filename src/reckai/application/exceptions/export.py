"""export_exceptions: every exception matching the list's filters, as CSV or Excel, streamed.

The rows are read from the repository in keyset batches (`list_batch`, each in its own short unit
of work, so no transaction stays open while a client downloads), handed to a table writer
(application/ports/exports.py) one at a time: memory stays bounded at any number of rows. The
export is audited when it starts (who, which filters, which format, from where); the row count is
not known before the last batch, so it is not part of the row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from reckai.application.approvals.common import WorkflowServices
from reckai.application.context import Outcome, RequestInfo
from reckai.application.errors import PermissionDenied
from reckai.application.ports.exports import Column, ColumnKind, TableWriter
from reckai.application.ports.workflow import ExceptionQuery
from reckai.domain.exceptions.lifecycle import ExceptionItem
from reckai.domain.identity.permissions import has_permission
from reckai.domain.identity.principal import Principal

BATCH_ROWS = 2_000
EXPORT_FORMATS = ("csv", "excel")
KEYSET_SORTS = ("created_at", "due_at", "updated_at")

K = ColumnKind
EXCEPTION_COLUMNS: tuple[Column, ...] = (
    Column("id"), Column("job_id"), Column("type"), Column("severity"), Column("status"),
    Column("amount", K.AMOUNT), Column("currency"), Column("transaction_date", K.DATE), Column("description"),
    Column("ai_explanation"), Column("ai_confidence", K.DECIMAL), Column("suggested_action"),
    Column("assigned_to"), Column("resolved_by"), Column("resolved_at", K.DATETIME), Column("resolution_code"),
    Column("resolution_note"), Column("severity_reason"), Column("due_at", K.DATETIME),
    Column("escalated_at", K.DATETIME), Column("created_at", K.DATETIME), Column("updated_at", K.DATETIME),
    Column("left_file_id"), Column("left_row", K.INTEGER), Column("right_file_id"), Column("right_row", K.INTEGER),
    Column("reference"), Column("reference_other"), Column("secondary_reference"),
    Column("secondary_reference_other"), Column("masked_account"), Column("channel"),
)


def _row(item: ExceptionItem) -> list[Any]:
    values: list[Any] = []
    for column in EXCEPTION_COLUMNS:
        value = getattr(item, column.name)
        if column.name == "status":
            value = item.status.value
        elif value is not None and column.kind is ColumnKind.TEXT and not isinstance(value, str):
            value = str(value)  # ids
        values.append(value)
    return values


def exception_rows(services: WorkflowServices, principal: Principal, query: ExceptionQuery,
                   batch_rows: int | None = None) -> Iterator[Sequence[Any]]:
    """Every matching exception as a row of EXCEPTION_COLUMNS, in the query's keyset order."""
    batch_rows = batch_rows or BATCH_ROWS
    current = query
    while True:
        with services.database.unit_of_work(principal.organization_id) as uow:
            batch = uow.exceptions.list_batch(current, batch_rows)
        for item in batch:
            yield _row(item)
        if len(batch) < batch_rows:
            return
        last = batch[-1]
        current = dataclasses.replace(current, after=(getattr(last, current.sort), last.id))
        del batch  # one batch in memory at a time: the next one is read without this one alive


def export_exceptions(services: WorkflowServices, principal: Principal, query: ExceptionQuery,
                      writer: TableWriter, export_format: str, filters: dict[str, Any],
                      request: RequestInfo | None = None) -> Iterator[bytes]:
    """Check the caller may read exceptions, audit the export, and return its bytes (lazily)."""
    if not has_permission(principal.role, "exceptions:read"):
        raise PermissionDenied("exceptions:read")
    if query.sort not in KEYSET_SORTS:
        raise ValueError(f"an export is read in keyset order: sort {KEYSET_SORTS}")
    with services.database.unit_of_work(principal.organization_id) as uow:
        services.record(uow, principal, "exception.exported", request, organization_id=principal.organization_id,
                        resource_type="exception", resource_id=None, outcome=Outcome.DONE,
                        metadata={"format": export_format, "filters": filters})
        uow.commit()
    return writer.chunks(EXCEPTION_COLUMNS, exception_rows(services, principal, query))
