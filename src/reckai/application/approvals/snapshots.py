"""What a checker approves, as it was asked (docs/workflow.md "Snapshots").

When an approval is requested, its type's handler describes the subject as it stands (the
exception with its rows, amounts and explanation; the rule diff; the settings diff; the user being
onboarded) and the description is stored in the approval (`metadata.snapshot`, with the time).
`GET /api/approvals/:id` shows it with what changed since; approving a request whose subject
changed is refused (ApprovalSubjectChanged, 409) with the changes. Every request goes through
`stamp_snapshot`: the generic request, the exception closings and the rule proposals.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from enum import Enum
from typing import Any

from reckai.application.approvals.common import WorkflowServices
from reckai.application.ports.workflow import WorkflowUnitOfWork
from reckai.domain.approvals.snapshot import changes_between
from reckai.domain.approvals.workflow import Approval, ApprovalStatus, ApprovalSubjectChanged
from reckai.domain.ingestion.canonical import minor_unit_exponent

SNAPSHOT_KEY = "snapshot"


def plain(value: Any) -> Any:
    """A subject as JSON values (what a JSONB column stores and gives back)."""
    def default(item: Any) -> Any:
        if isinstance(item, uuid.UUID | Decimal):
            return str(item)
        if isinstance(item, dt.datetime | dt.date):
            return item.isoformat()
        if isinstance(item, Enum):
            return item.value
        raise TypeError(f"not JSON: {type(item).__name__}")

    return json.loads(json.dumps(value, default=default, sort_keys=True))


def describe(services: WorkflowServices, uow: WorkflowUnitOfWork, approval: Approval) -> dict[str, Any]:
    handler = services.approval_handlers.get(approval.type)
    if handler.snapshot is None:
        return {}
    described: dict[str, Any] = plain(handler.snapshot(uow, approval))
    return described


def stamp_snapshot(services: WorkflowServices, uow: WorkflowUnitOfWork, approval: Approval) -> None:
    """Store the subject as it is now in the approval about to be added."""
    approval.metadata = {**approval.metadata, SNAPSHOT_KEY: {
        "taken_at": approval.requested_at.isoformat(), "subject": describe(services, uow, approval)}}


def stored_snapshot(approval: Approval) -> dict[str, Any] | None:
    snapshot = approval.metadata.get(SNAPSHOT_KEY)
    return snapshot if isinstance(snapshot, dict) else None


def changes_since_request(services: WorkflowServices, uow: WorkflowUnitOfWork,
                          approval: Approval) -> list[dict[str, Any]] | None:
    """What changed in the subject since the request; None when there is nothing to compare (a
    decided request, or one made before snapshots existed)."""
    if approval.status is not ApprovalStatus.PENDING:
        return None
    return _changes(services, uow, approval)


def _changes(services: WorkflowServices, uow: WorkflowUnitOfWork, approval: Approval) -> list[dict[str, Any]] | None:
    snapshot = stored_snapshot(approval)
    if snapshot is None:
        return None
    return changes_between(snapshot.get("subject"), describe(services, uow, approval))


def refuse_if_changed(services: WorkflowServices, uow: WorkflowUnitOfWork, approval: Approval) -> None:
    """Called by approve_request once the checker may decide, before the effect is applied."""
    changes = _changes(services, uow, approval)
    if changes:
        raise ApprovalSubjectChanged(approval.id, changes)


def approval_stake(approval: Approval) -> tuple[Decimal | None, str | None]:
    """The amount an approval puts at stake, from what was stored at request time (for its band)."""
    meta = approval.metadata
    currency = meta.get("currency") if isinstance(meta.get("currency"), str) else None
    if isinstance(meta.get("amount"), str):
        try:
            return Decimal(meta["amount"]), currency
        except ArithmeticError:
            return None, currency
    if isinstance(meta.get("total_minor"), int):  # ledger_posting: minor units
        return Decimal(meta["total_minor"]).scaleb(-minor_unit_exponent(currency or "")), currency
    return None, currency
