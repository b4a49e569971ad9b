"""Use cases of the exception (break) workflow: list, read, change status/severity, assign, comment,
resolve (directly, or through an `exception_resolution` approval at or above the organization's
threshold), bulk assign/resolve, and the SLA escalation of overdue exceptions.

Each is: open a unit of work bound to the caller's organization, load (locking what it changes),
let the domain decide, store the change and its history entry, audit, commit.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reckai.application.approvals.common import WorkflowServices, eligible_checkers, workflow_settings
from reckai.application.approvals.handlers import ApprovalHandler
from reckai.application.approvals.separation import independent_checkers
from reckai.application.context import RequestInfo
from reckai.application.errors import FieldError, NotFound, PermissionDenied, ValidationFailed
from reckai.application.ports.jobs import JobDelivery
from reckai.application.ports.workflow import ExceptionQuery, Page, WorkflowUnitOfWork
from reckai.domain.approvals.workflow import Approval, ApprovalEffect, ApprovalType
from reckai.domain.exceptions.errors import InvalidBreakValue
from reckai.domain.exceptions.lifecycle import (
    BreakAction,
    Comment,
    ExceptionItem,
    ExceptionStatus,
    HistoryEntry,
    Resolution,
    action_to_reach,
    parse_status,
)
from reckai.domain.exceptions.manual_matching import MatchGroup, RowRef
from reckai.domain.identity.permissions import has_permission, may_read_for_review
from reckai.domain.identity.principal import Principal

MAX_BULK = 500
SLA_BATCH = 500


@dataclass(frozen=True)
class ExceptionDetail:
    exception: ExceptionItem
    comments: Sequence[Comment]
    history: Sequence[HistoryEntry]
    matches: Sequence[MatchGroup]  # people's decisions and suggestions touching the break's rows
    pending_approvals: Sequence[Approval]
    source_rows: dict[str, Any] = field(default_factory=dict)  # {"left": {...}|None, "right": {...}|None}
    overdue: bool = False


@dataclass(frozen=True)
class ResolveOutcome:
    exception: ExceptionItem
    approval: Approval | None = None  # set when the resolution waits for a checker

    @property
    def pending_approval(self) -> bool:
        return self.approval is not None


def _require(principal: Principal, permission: str) -> None:
    if not has_permission(principal.role, permission):
        raise PermissionDenied(permission)


def _load(uow: WorkflowUnitOfWork, exception_id: uuid.UUID, *, lock: bool) -> ExceptionItem:
    found = uow.exceptions.get_for_update(exception_id) if lock else uow.exceptions.get(exception_id)
    if found is None:
        raise NotFound("exception", exception_id)
    return found


def _lock_all(uow: WorkflowUnitOfWork, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ExceptionItem]:
    """Lock every row in one fixed (sorted) order, so two bulk requests over overlapping ids wait
    for each other instead of deadlocking."""
    return {exception_id: _load(uow, exception_id, lock=True) for exception_id in sorted(ids, key=str)}


def _save(uow: WorkflowUnitOfWork, item: ExceptionItem, entry: HistoryEntry) -> None:
    uow.exceptions.update(item)
    uow.exceptions.add_history(entry)


def list_exceptions(services: WorkflowServices, principal: Principal, query: ExceptionQuery) -> Page[ExceptionItem]:
    _require(principal, "exceptions:read")
    with services.database.unit_of_work(principal.organization_id) as uow:
        return uow.exceptions.list(query)


def exception_detail(services: WorkflowServices, principal: Principal, exception_id: uuid.UUID,
                     source_rows: Any = None) -> ExceptionDetail:
    """Readers of exceptions, and checkers of a pending approval that refers to this exception."""
    with services.database.unit_of_work(principal.organization_id) as uow:
        item = _load(uow, exception_id, lock=False)
        pending = list(uow.approvals.pending_referring_to("exception_id", str(exception_id)))
        if not has_permission(principal.role, "exceptions:read") and not any(
                may_read_for_review(principal.role, a.type.value, "exceptions:read") for a in pending):
            raise PermissionDenied("exceptions:read")
        refs = [RowRef(f, r) for f, r in ((item.left_file_id, item.left_row), (item.right_file_id, item.right_row))
                if f is not None and r is not None]
        matches = list(uow.matches.groups_with_rows(item.job_id, refs)) if refs else []
        detail = ExceptionDetail(item, list(uow.exceptions.comments(exception_id)), list(uow.exceptions.history(exception_id)),
                                 matches, pending, overdue=item.is_overdue(services.now()))
    if source_rows is not None:
        rows = {side: source_rows.row(principal.organization_id, file_id, row)
                for side, file_id, row in (("left", item.left_file_id, item.left_row),
                                            ("right", item.right_file_id, item.right_row))
                if file_id is not None and row is not None}
        detail = ExceptionDetail(**{**detail.__dict__, "source_rows": rows})
    return detail


def change_exception(services: WorkflowServices, principal: Principal, exception_id: uuid.UUID, *,
                     status: str | None = None, severity: str | None = None, reason: str | None = None,
                     resolution_code: str | None = None, resolution_note: str | None = None,
                     request: RequestInfo | None = None) -> ResolveOutcome:
    """PATCH: a status change (by target status) and/or a severity override (with a reason)."""
    _require(principal, "exceptions:write")
    if status is None and severity is None:
        raise ValidationFailed([FieldError("", "give a status and/or a severity")])
    target = parse_status(status) if status is not None else None
    if target is ExceptionStatus.RESOLVED:
        if severity is not None:
            raise ValidationFailed([FieldError("severity", "change the severity before resolving")])
        return resolve_exception(services, principal, exception_id, resolution_code or "", resolution_note,
                                 request=request)
    if target is ExceptionStatus.IGNORED:
        _require(principal, "exceptions:resolve")  # ignoring closes the break like a resolution
    with services.database.unit_of_work(principal.organization_id) as uow:
        settings = workflow_settings(uow, principal.organization_id)
        item = _load(uow, exception_id, lock=True)
        now = services.now()
        changes: list[HistoryEntry] = []
        if severity is not None and severity != item.severity:
            changes.append(item.override_severity(severity, reason=reason, actor_id=principal.user_id, at=now,
                                                  sla=settings.sla))
        if target is not None and target is not item.status:
            action = action_to_reach(item.status, target)
            changes.append(item.apply(action, actor_id=principal.user_id, at=now, reason=reason))
        for entry in changes:
            _save(uow, item, entry)
        if changes:
            services.record(uow, principal, "exception.updated", request, organization_id=principal.organization_id,
                            resource_type="exception", resource_id=item.id,
                            metadata={"changes": [{"action": e.action, "from": e.from_status, "to": e.to_status,
                                                   "reason": e.reason, **e.changes} for e in changes]})
        uow.commit()
        return ResolveOutcome(item)


def assign_exceptions(services: WorkflowServices, principal: Principal, exception_ids: Sequence[uuid.UUID],
                      assignee_id: uuid.UUID | None, request: RequestInfo | None = None) -> list[ExceptionItem]:
    """Assign (or unassign with None) one or many exceptions, all or nothing."""
    _require(principal, "exceptions:write")
    ids = _distinct(exception_ids)
    with services.database.unit_of_work(principal.organization_id) as uow:
        if assignee_id is not None:
            assignee = uow.users.get(assignee_id)
            if assignee is None or not assignee.is_active:
                raise ValidationFailed([FieldError("assignee_id", "must be an active user of this organization")])
            if not has_permission(assignee.role, "exceptions:write"):
                raise ValidationFailed([FieldError("assignee_id", f"a {assignee.role} cannot work exceptions")])
        now = services.now()
        items = []
        locked = _lock_all(uow, ids)
        for exception_id in ids:
            item = locked[exception_id]
            _save(uow, item, item.assign(assignee_id, actor_id=principal.user_id, at=now))
            items.append(item)
        services.record(uow, principal, "exception.assigned", request, organization_id=principal.organization_id,
                        resource_type="exception", resource_id=ids[0] if len(ids) == 1 else None,
                        metadata={"exception_ids": [str(i) for i in ids],
                                  "assigned_to": str(assignee_id) if assignee_id else None})
        if assignee_id is not None and assignee_id != principal.user_id:
            services.notify(uow, principal.organization_id, "exception.assigned", [assignee_id],
                            {"exception_ids": [str(i) for i in ids]})
        uow.commit()
        return items


def comment_on_exception(services: WorkflowServices, principal: Principal, exception_id: uuid.UUID, content: str,
                         request: RequestInfo | None = None) -> Comment:
    _require(principal, "exceptions:write")
    with services.database.unit_of_work(principal.organization_id) as uow:
        item = _load(uow, exception_id, lock=False)
        now = services.now()
        comment = Comment.write(organization_id=principal.organization_id, exception_id=item.id,
                                user_id=principal.user_id, content=content, at=now)
        uow.exceptions.add_comment(comment)
        uow.exceptions.add_history(HistoryEntry(item.id, "comment", principal.user_id, now, item.status.value,
                                            item.status.value, None, {"comment_id": str(comment.id)}))
        services.record(uow, principal, "exception.commented", request, organization_id=principal.organization_id,
                        resource_type="exception", resource_id=item.id, metadata={"comment_id": str(comment.id)})
        uow.commit()
        return comment


def resolve_exception(services: WorkflowServices, principal: Principal, exception_id: uuid.UUID,
                      resolution_code: str, resolution_note: str | None,
                      request: RequestInfo | None = None) -> ResolveOutcome:
    return bulk_resolve(services, principal, [exception_id], resolution_code, resolution_note, request)[0]


def bulk_resolve(services: WorkflowServices, principal: Principal, exception_ids: Sequence[uuid.UUID],
                 resolution_code: str, resolution_note: str | None,
                 request: RequestInfo | None = None, *, force_approval: bool = False) -> list[ResolveOutcome]:
    """Resolve each exception, or, at or above the organization's threshold (or always, when the
    maker asks for a checker with `force_approval`), request an `exception_resolution` approval for
    it instead. All or nothing: one refusal changes nothing."""
    _require(principal, "exceptions:resolve")
    resolution = Resolution.of(resolution_code, resolution_note)
    ids = _distinct(exception_ids)
    with services.database.unit_of_work(principal.organization_id) as uow:
        settings = workflow_settings(uow, principal.organization_id)
        now = services.now()
        outcomes = []
        locked = _lock_all(uow, ids)
        for exception_id in ids:
            item = locked[exception_id]
            if force_approval or settings.resolution_needs_approval(item.amount, item.currency):
                outcomes.append(ResolveOutcome(item, _request_resolution_approval(
                    services, uow, principal, item, resolution, now, request)))
                continue
            _save(uow, item, item.apply(BreakAction.RESOLVE, actor_id=principal.user_id, at=now,
                                        resolution=resolution))
            services.record(uow, principal, "exception.resolved", request, organization_id=principal.organization_id,
                            resource_type="exception", resource_id=item.id,
                            metadata={"resolution_code": resolution.code.value, "amount": str(item.amount)})
            outcomes.append(ResolveOutcome(item))
        uow.commit()
        return outcomes


def _request_resolution_approval(services: WorkflowServices, uow: WorkflowUnitOfWork, principal: Principal, item: ExceptionItem,
                                 resolution: Resolution, now: dt.datetime, request: RequestInfo | None) -> Approval:
    if not item.allows(BreakAction.RESOLVE):
        # Refuse now, not when the checker approves: the maker learns at once.
        item.apply(BreakAction.RESOLVE, actor_id=principal.user_id, at=now, resolution=resolution)
    if uow.approvals.pending_referring_to("exception_id", str(item.id)):
        raise InvalidBreakValue("exception_id", "a resolution of this exception is already waiting for approval")
    approval = Approval.request(
        organization_id=principal.organization_id, type=ApprovalType.EXCEPTION_RESOLUTION,
        title=f"Resolve {item.type.replace('_', ' ')} of {item.amount} {item.currency}",
        description=resolution.note,
        metadata={"exception_id": str(item.id), "resolution_code": resolution.code.value,
                  "resolution_note": resolution.note, "amount": str(item.amount), "currency": item.currency},
        requested_by=principal.user_id, at=now)
    uow.approvals.add(approval)
    uow.exceptions.add_history(HistoryEntry(item.id, "approval_requested", principal.user_id, now, item.status.value,
                                        item.status.value, None, {"approval_id": str(approval.id),
                                                                  "resolution_code": resolution.code.value}))
    services.record(uow, principal, "approval.requested", request, organization_id=principal.organization_id,
                    resource_type="approval", resource_id=approval.id,
                    metadata={"type": approval.type.value, "exception_id": str(item.id), "amount": str(item.amount)})
    services.notify(uow, principal.organization_id, "approval.requested",
                    independent_checkers(uow, approval, now), {"approval_id": str(approval.id)})
    return approval


def escalate_overdue(services: WorkflowServices, organization_id: uuid.UUID, now: dt.datetime | None = None) -> int:
    """The SLA job for one organization: escalate open/in-progress exceptions past their due time.
    Idempotent: an escalated exception is no longer open or in progress."""
    now = now or services.now()
    escalated = 0
    with services.database.unit_of_work(organization_id) as uow:
        while True:
            done = []
            # locked in id order, as bulk requests lock: the job and a bulk request never deadlock
            for exception_id in sorted(uow.exceptions.overdue_ids(now, SLA_BATCH), key=str):
                item = uow.exceptions.get_for_update(exception_id)
                if item is None or not item.allows(BreakAction.SLA_ESCALATE) or not item.is_overdue(now):
                    continue
                _save(uow, item, item.apply(BreakAction.SLA_ESCALATE, actor_id=None, at=now,
                                            reason=f"SLA: due {item.due_at.isoformat()}"))
                done.append(str(exception_id))
            if not done:
                break
            escalated += len(done)
            services.record(uow, None, "exception.sla_escalated", None, organization_id=organization_id,
                            resource_type="exception", resource_id=None,
                            metadata={"exception_ids": done, "count": len(done)})
            services.notify(uow, organization_id, "exception.sla_escalated", eligible_checkers(uow),
                            {"exception_ids": done})
            uow.commit()
    return escalated


def escalate_overdue_everywhere(services: WorkflowServices, now: dt.datetime | None = None) -> dict[str, int]:
    now = now or services.now()
    with services.database.unit_of_work(None) as uow:
        organizations = list(uow.exceptions.organizations_with_overdue(now))
    return {str(org): escalate_overdue(services, org, now) for org in organizations}


# --- the `exception_resolution` approval type (registered in bootstrap) ---


def exception_resolution_handler(services: WorkflowServices) -> ApprovalHandler:
    def propose(principal: Principal, metadata: dict[str, Any], title: str, description: str,
                request: RequestInfo | None) -> Approval:
        # POST /api/approvals with this type: the same as resolving with a checker asked for.
        outcome = bulk_resolve(services, principal, [uuid.UUID(metadata["exception_id"])], metadata["resolution_code"],
                               metadata["resolution_note"], request, force_approval=True)[0]
        assert outcome.approval is not None
        return outcome.approval

    def apply(uow: WorkflowUnitOfWork, checker: Principal, approval: Approval,
              request: RequestInfo | None) -> ApprovalEffect:
        meta = approval.metadata
        now = approval.reviewed_at
        assert now is not None
        item = uow.exceptions.get_for_update(uuid.UUID(meta["exception_id"]))
        if item is None:
            raise NotFound("exception", meta["exception_id"])
        entry = item.apply(BreakAction.RESOLVE, actor_id=approval.requested_by, at=now,
                           resolution=Resolution.of(meta["resolution_code"], meta["resolution_note"]))
        entry.changes.update({"approval_id": str(approval.id), "approved_by": str(checker.user_id)})
        uow.exceptions.update(item)
        uow.exceptions.add_history(entry)
        return ApprovalEffect("exception_resolved", "exception", item.id,
                              {"resolution_code": meta["resolution_code"]})

    def withdraw(uow: WorkflowUnitOfWork, principal: Principal, approval: Approval, action: str) -> None:
        item = uow.exceptions.get(uuid.UUID(approval.metadata["exception_id"]))
        if item is not None:
            uow.exceptions.add_history(HistoryEntry(item.id, action, principal.user_id, services.now(),
                                                    item.status.value, item.status.value, approval.review_comments,
                                                    {"approval_id": str(approval.id)}))

    return ApprovalHandler(apply=apply, propose=propose, withdraw=withdraw, subject=exception_subject)


def exception_subject(uow: WorkflowUnitOfWork, may: Callable[[str], bool], approval: Approval) -> dict[str, Any]:
    """The exception an approval names (`exception_id`), for a reader who may see exceptions."""
    if "exception_id" not in approval.metadata or not may("exceptions:read"):
        return {}
    item = uow.exceptions.get(uuid.UUID(approval.metadata["exception_id"]))
    return {"exception": item} if item is not None else {}


# How often the SLA escalation runs (the `escalate_overdue_exceptions` job, high queue, periodic).
SLA_PERIOD_SECONDS = 300


def escalate_overdue_job(services: WorkflowServices, delivery: JobDelivery) -> None:
    escalated = escalate_overdue_everywhere(services)
    logging.getLogger("reckai.jobs").info("overdue exceptions escalated", extra={
        "action": "exceptions.sla_escalation", "metadata": {"organizations": escalated}})


def _distinct(ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise ValidationFailed([FieldError("exception_ids", "give at least one exception id")])
    if len(unique) > MAX_BULK:
        raise ValidationFailed([FieldError("exception_ids", f"at most {MAX_BULK} at once")])
    return unique
