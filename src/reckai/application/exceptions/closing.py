"""Closing an exception: the one door out of the open set (docs/workflow.md "Closing an exception").

Every path that resolves or ignores an exception (resolve, PATCH to resolved or ignored, bulk
resolve, manual link, confirming a suggestion, the approval that applies a waiting closing, and a
stream's later run matching the exception's row: `close_by_later_match`)
asks `closing_decision` whether a checker is needed, with the *stored* amounts of the rows and
exceptions it settles, and then either closes through `close` or asks for an
`exception_resolution` approval through `request_closing_approval`. The decision itself is the
domain's `closing_needs_checker` (domain/exceptions/policy.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reckai.application.approvals import snapshots
from reckai.application.approvals.common import WorkflowServices, workflow_settings
from reckai.application.approvals.requests import announce_request
from reckai.application.context import RequestInfo
from reckai.application.exceptions.closed_periods import refuse_if_period_closed
from reckai.application.ports.workflow import ExceptionRepository, WorkflowUnitOfWork
from reckai.domain.approvals.workflow import Approval, ApprovalType
from reckai.domain.exceptions.errors import InvalidBreakValue
from reckai.domain.exceptions.lifecycle import (
    SYSTEM_RESOLUTION_CODE,
    BreakAction,
    ExceptionItem,
    HistoryEntry,
    Resolution,
)
from reckai.domain.exceptions.policy import (
    Closer,
    ClosingDecision,
    StakedAmount,
    WorkflowSettings,
    closing_needs_checker,
)
from reckai.domain.identity.principal import Principal

CLOSING_ACTIONS = ("resolve", "ignore", "link", "confirm")  # metadata.action of an exception_resolution


def closing_decision(uow: WorkflowUnitOfWork, organization_id: uuid.UUID, amounts: Iterable[StakedAmount],
                     settings: WorkflowSettings | None = None) -> ClosingDecision:
    """Whether closing what these stored amounts belong to needs a checker (the organization's
    `resolution_approval_threshold`). `settings` spares a bulk request re-reading them per item."""
    return closing_needs_checker(settings or workflow_settings(uow, organization_id), amounts)


def close_by_later_match(exceptions: ExceptionRepository, item: ExceptionItem, *, at: dt.datetime, note: str,
                         rows: Mapping[str, Any]) -> HistoryEntry:
    """A stream's later run matched this exception's row (docs/streams.md): the system resolves it.
    The rule is asked like for every closing, as a closing by a later match, which never needs a
    checker (no person decides; the engine matched under the stream's approved rules)."""
    decision = closing_needs_checker(WorkflowSettings(), item.staked_amounts(), Closer.LATER_MATCH)
    if decision.needs_checker:  # pragma: no cover - the rule says a later match never needs one
        raise InvalidBreakValue("exception_id", f"closing exception {item.id} by a later match needs a checker")
    entry = item.close_by_later_match(at=at, note=note, code=SYSTEM_RESOLUTION_CODE, rows=dict(rows))
    exceptions.update(item)
    exceptions.add_history(entry)
    return entry


def exception_ids_of(metadata: Mapping[str, Any]) -> list[str]:
    """The exceptions an exception_resolution approval closes (one, or several for a link)."""
    ids = metadata.get("exception_ids")
    if isinstance(ids, list):
        return [str(i) for i in ids]
    return [str(metadata["exception_id"])] if metadata.get("exception_id") else []


def pending_closings(uow: WorkflowUnitOfWork, exception_id: uuid.UUID) -> list[Approval]:
    """Closings of this exception waiting for a checker (one at a time)."""
    found = {a.id: a for key in ("exception_id", "exception_ids")
             for a in uow.approvals.pending_referring_to(key, str(exception_id))
             if a.type is ApprovalType.EXCEPTION_RESOLUTION}
    return list(found.values())


def _refuse_if_waiting(uow: WorkflowUnitOfWork, item: ExceptionItem, approving: str | None = None) -> None:
    if any(str(a.id) != approving for a in pending_closings(uow, item.id)):
        raise InvalidBreakValue("exception_id", f"a closing of exception {item.id} is already waiting for approval")


def close(uow: WorkflowUnitOfWork, item: ExceptionItem, action: BreakAction, *, actor_id: uuid.UUID, at: dt.datetime,
          reason: str | None = None, resolution: Resolution | None = None,
          changes: Mapping[str, Any] | None = None) -> list[HistoryEntry]:
    """Resolve or ignore `item`, once the rule let it close (or a checker approved: `changes`
    names the approval): the one place in the application that moves an exception out of the
    open set. From `open` the implicit start is stored as its own history entry first (the
    returned list holds it, then the closing). Refused while another closing of it waits for a
    checker."""
    if action not in (BreakAction.RESOLVE, BreakAction.IGNORE):
        raise ValueError(f"{action.value} is not a closing")
    refuse_if_period_closed(uow, [item.id])  # a closed period's exception: only inside its adjustment
    _refuse_if_waiting(uow, item, (changes or {}).get("approval_id"))
    entries = item.close(action, actor_id=actor_id, at=at, reason=reason, resolution=resolution)
    entries[-1].changes.update(changes or {})
    uow.exceptions.update(item)
    for entry in entries:
        uow.exceptions.add_history(entry)
    return entries


def refuse_unless_closable(uow: WorkflowUnitOfWork, item: ExceptionItem, action: BreakAction) -> None:
    """Refuse at request time, not when a checker approves: the maker learns at once that the
    lifecycle or a waiting closing forbids this one."""
    item.refuse_unless_closable(action)
    _refuse_if_waiting(uow, item)


def stake_text(decision: ClosingDecision) -> str:
    return (" of " + f"{decision.amount} {decision.currency or ''}".rstrip()) if decision.amount is not None else ""


def request_closing_approval(services: WorkflowServices, uow: WorkflowUnitOfWork, principal: Principal, *,
                             action: str, items: Sequence[ExceptionItem], decision: ClosingDecision, title: str,
                             description: str, details: Mapping[str, Any], now: dt.datetime,
                             request: RequestInfo | None) -> Approval:
    """The closing waits for a checker: an `exception_resolution` approval (metadata.action says
    which closing), an `approval_requested` history entry on each exception, audit and mail."""
    assert action in CLOSING_ACTIONS
    refuse_if_period_closed(uow, [item.id for item in items])
    for item in items:
        _refuse_if_waiting(uow, item)
    metadata: dict[str, Any] = {"action": action, "exception_ids": [str(item.id) for item in items],
                                "amount": None if decision.amount is None else str(decision.amount),
                                "currency": decision.currency, **details}
    if items:
        metadata["exception_id"] = str(items[0].id)
    approval = Approval.request(organization_id=principal.organization_id, type=ApprovalType.EXCEPTION_RESOLUTION,
                                title=title, description=description,
                                metadata={k: v for k, v in metadata.items() if v is not None},
                                requested_by=principal.user_id, at=now)
    snapshots.stamp_snapshot(services, uow, approval)
    uow.approvals.add(approval)
    for item in items:
        uow.exceptions.add_history(HistoryEntry(item.id, "approval_requested", principal.user_id, now,
                                                item.status.value, item.status.value, None,
                                                {"approval_id": str(approval.id), "action": action,
                                                 **({"resolution_code": details["resolution_code"]}
                                                    if "resolution_code" in details else {})}))
    announce_request(services, uow, principal, approval, request, details={
        "action": action, "exception_ids": metadata["exception_ids"],
        **({"exception_id": metadata["exception_id"]} if items else {}),
        "amount": metadata["amount"], "currency": decision.currency})
    return approval
