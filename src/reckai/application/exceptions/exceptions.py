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
from typing import Any, cast

from reckai.application.approvals.common import (
    WorkflowJobsUnitOfWork,
    WorkflowServices,
    eligible_checkers,
    workflow_settings,
)
from reckai.application.approvals.handlers import ApprovalHandler
from reckai.application.context import RequestInfo
from reckai.application.errors import FieldError, NotFound, PermissionDenied, ValidationFailed
from reckai.application.exceptions import matching
from reckai.application.exceptions.closed_periods import frozen_exceptions, refuse_if_period_closed
from reckai.application.exceptions.closing import (
    close,
    closing_decision,
    exception_ids_of,
    pending_closings,
    refuse_unless_closable,
    request_closing_approval,
    stake_text,
)
from reckai.application.ports.jobs import JobDelivery
from reckai.application.ports.workflow import ExceptionQuery, Page, WorkflowUnitOfWork
from reckai.domain.approvals.workflow import Approval, ApprovalEffect, ApprovalType
from reckai.domain.exceptions.errors import BreakError, BulkRefused, ReasonRequired
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
        pending = pending_closings(uow, exception_id) + [
            a for a in uow.approvals.pending_referring_to("exception_id", str(exception_id))
            if a.type is not ApprovalType.EXCEPTION_RESOLUTION]  # a ledger posting about it
        if not has_permission(principal.role, "exceptions:read") and not any(
                may_read_for_review(principal.role, a.type.value, "exceptions:read") for a in pending):
            raise PermissionDenied("exceptions:read")
        refs = [RowRef(f, r) for f, r in ((item.left_file_id, item.left_row), (item.right_file_id, item.right_row))
                if f is not None and r is not None]
        matches = list(uow.matches.groups_with_rows(item.job_id, refs)) if refs else []
        detail = ExceptionDetail(item, list(uow.exceptions.comments(exception_id)), list(uow.exceptions.history(exception_id)),
                                 matches, pending, overdue=item.is_overdue(services.now()))
    if source_rows is not None:
        rows = {side: source_rows.row(principal.organization_id, file_id, row, item.job_id)
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
        refuse_if_period_closed(uow, [item.id])  # a closed period's exception: only an adjustment
        now = services.now()
        changes: list[HistoryEntry] = []
        if severity is not None and severity != item.severity:
            changes.append(item.override_severity(severity, reason=reason, actor_id=principal.user_id, at=now,
                                                  sla=settings.sla))
        for entry in changes:  # the severity override, before the status change
            _save(uow, item, entry)
        action = action_to_reach(item.status, target) if target is not None and target is not item.status else None
        approval = None
        if action is BreakAction.IGNORE:  # ignoring closes the break: the same rule as resolving
            if not (reason or "").strip():
                raise ReasonRequired("ignore")
            refuse_unless_closable(uow, item, action)
            decision = closing_decision(uow, principal.organization_id, item.staked_amounts(), settings)
            if decision.needs_checker:
                approval = request_closing_approval(
                    services, uow, principal, action="ignore", items=[item], decision=decision,
                    title=f"Ignore {item.type.replace('_', ' ')}{stake_text(decision)}",
                    description=(reason or "").strip(), details={"reason": (reason or "").strip()}, now=now,
                    request=request)
            else:
                changes.extend(close(uow, item, action, actor_id=principal.user_id, at=now, reason=reason))
        elif action is not None:  # start, escalate, reopen: not a closing (resolved goes to resolve_exception)
            assert action is not BreakAction.RESOLVE
            changes.append(item.apply(action, actor_id=principal.user_id, at=now, reason=reason))
            _save(uow, item, changes[-1])
        _audit_changes(services, uow, principal, item, changes, request)
        uow.commit()
        return ResolveOutcome(item, approval)


def _audit_changes(services: WorkflowServices, uow: WorkflowUnitOfWork, principal: Principal, item: ExceptionItem,
                   changes: Sequence[HistoryEntry], request: RequestInfo | None) -> None:
    if changes:
        services.record(uow, principal, "exception.updated", request, organization_id=principal.organization_id,
                        resource_type="exception", resource_id=item.id,
                        metadata={"changes": [{"action": e.action, "from": e.from_status, "to": e.to_status,
                                               "reason": e.reason, **e.changes} for e in changes]})


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
        locked = _lock_checked(uow, ids, "assign", lambda item: item.refuse_unless_assignable())
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
        locked = _lock_checked(uow, ids, BreakAction.RESOLVE.value,
                               lambda item: refuse_unless_closable(uow, item, BreakAction.RESOLVE))
        for exception_id in ids:
            item = locked[exception_id]
            decision = closing_decision(uow, principal.organization_id, item.staked_amounts(), settings)
            if force_approval or decision.needs_checker:
                outcomes.append(ResolveOutcome(item, request_closing_approval(
                    services, uow, principal, action="resolve", items=[item], decision=decision,
                    title=f"Resolve {item.type.replace('_', ' ')}{stake_text(decision)}",
                    description=resolution.note,
                    details={"resolution_code": resolution.code.value, "resolution_note": resolution.note},
                    now=now, request=request)))
                continue
            entries = close(uow, item, BreakAction.RESOLVE, actor_id=principal.user_id, at=now, resolution=resolution)
            _audit_changes(services, uow, principal, item, entries[:-1], request)  # the implicit start, if any
            services.record(uow, principal, "exception.resolved", request, organization_id=principal.organization_id,
                            resource_type="exception", resource_id=item.id,
                            metadata={"resolution_code": resolution.code.value, "amount": str(item.amount)})
            outcomes.append(ResolveOutcome(item))
        uow.commit()
        return outcomes


def _lock_checked(uow: WorkflowUnitOfWork, ids: Sequence[uuid.UUID], action: str,
                  check: Callable[[ExceptionItem], None]) -> dict[uuid.UUID, ExceptionItem]:
    """Lock every exception (in one fixed, sorted order, so two bulk requests over overlapping ids
    wait for each other instead of deadlocking) and `check` that each may take the action now;
    refuse the whole request naming every one that may not and why (unknown id, the lifecycle, a
    closing already waiting for a checker). Refused here, before anything changes and not when a
    checker approves: the maker learns at once, about all of them."""
    locked: dict[uuid.UUID, ExceptionItem] = {}
    refusals: dict[uuid.UUID, str] = {}
    for exception_id in sorted(ids, key=str):
        item = uow.exceptions.get_for_update(exception_id)
        if item is None:
            refusals[exception_id] = "not found"
            continue
        try:
            check(item)
        except BreakError as refused:
            refusals[exception_id] = refused.message
        locked[exception_id] = item
    refuse_if_period_closed(uow, list(locked))  # a closed period's exceptions: only an adjustment
    if refusals:
        if len(ids) == 1 and ids[0] in locked:
            check(locked[ids[0]])  # one exception: its own error, as before
        elif len(ids) == 1:
            raise NotFound("exception", ids[0])
        raise BulkRefused(action, {f"exception_ids[{index}]": f"{exception_id}: {refusals[exception_id]}"
                                   for index, exception_id in enumerate(ids) if exception_id in refusals})
    return locked


def escalate_overdue(services: WorkflowServices, organization_id: uuid.UUID, now: dt.datetime | None = None) -> int:
    """The SLA job for one organization: escalate open/in-progress exceptions past their due time.
    Idempotent: an escalated exception is no longer open or in progress."""
    now = now or services.now()
    escalated = 0
    with services.database.unit_of_work(organization_id) as uow:
        while True:
            done = []
            overdue = sorted(uow.exceptions.overdue_ids(now, SLA_BATCH), key=str)
            # the one check (closed_periods.py): a closed period's exception (one an adjustment
            # reopened) is not escalated; only an adjustment changes it
            held = frozen_exceptions(uow, overdue)
            # locked in id order, as bulk requests lock: the job and a bulk request never deadlock
            for exception_id in overdue:
                if exception_id in held:
                    continue
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
    """A closing that waited for a checker (closing.py): `metadata.action` says which one — resolve,
    ignore, link or confirm; approving applies it as the maker would have, in the decision's
    transaction (still refused by the lifecycle if the exception moved on meanwhile)."""

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
        approved = {"approval_id": str(approval.id), "approved_by": str(checker.user_id)}
        action = meta.get("action", "resolve")
        if action in ("link", "confirm"):
            # the workflow's units of work are WorkflowJobsUnitOfWork (services.database); the
            # handler signature names the narrower protocol every approval type shares
            jobs_uow = cast(WorkflowJobsUnitOfWork, uow)
            apply_match = matching.apply_link if action == "link" else matching.apply_confirmation
            group, resolved = apply_match(services, jobs_uow, approval, checker)
            return ApprovalEffect("exceptions_matched", "match_group", group.id,
                                  {"resolved_exceptions": resolved, "action": action})
        item = uow.exceptions.get_for_update(uuid.UUID(meta["exception_id"]))
        if item is None:
            raise NotFound("exception", meta["exception_id"])
        if action == "ignore":
            close(uow, item, BreakAction.IGNORE, actor_id=approval.requested_by, at=now, reason=meta["reason"],
                  changes=approved)
            return ApprovalEffect("exception_ignored", "exception", item.id, {"reason": meta["reason"]})
        close(uow, item, BreakAction.RESOLVE, actor_id=approval.requested_by, at=now,
              resolution=Resolution.of(meta["resolution_code"], meta["resolution_note"]), changes=approved)
        return ApprovalEffect("exception_resolved", "exception", item.id,
                              {"resolution_code": meta["resolution_code"]})

    def withdraw(uow: WorkflowUnitOfWork, principal: Principal, approval: Approval, action: str) -> None:
        for exception_id in exception_ids_of(approval.metadata):
            item = uow.exceptions.get(uuid.UUID(exception_id))
            if item is not None:
                uow.exceptions.add_history(HistoryEntry(item.id, action, principal.user_id, services.now(),
                                                        item.status.value, item.status.value,
                                                        approval.review_comments, {"approval_id": str(approval.id)}))

    def snapshot(uow: WorkflowUnitOfWork, approval: Approval) -> dict[str, Any]:
        """The exceptions with their rows, amounts and explanation; for a link or confirmation
        also the rows with their stored amounts."""
        meta = approval.metadata
        described: dict[str, Any] = {"action": meta.get("action", "resolve"), "exceptions": [
            item.material() if item is not None else None
            for item in (uow.exceptions.get(uuid.UUID(i)) for i in exception_ids_of(meta))]}
        if meta.get("action") in ("link", "confirm"):
            described["rows"] = matching.rows_as_stored(services, cast(WorkflowJobsUnitOfWork, uow), meta)
        return described

    return ApprovalHandler(apply=apply, propose=propose, withdraw=withdraw, subject=exception_subject,
                           snapshot=snapshot)


def exception_subject(uow: WorkflowUnitOfWork, may: Callable[[str], bool], approval: Approval) -> dict[str, Any]:
    """The exception(s) an approval names (`exception_id`, `exception_ids`) as they are now, for a
    reader who may see exceptions (a checker reviewing the request may)."""
    ids = exception_ids_of(approval.metadata)
    if not ids or not may("exceptions:read"):
        return {}
    items = [item for item in (uow.exceptions.get(uuid.UUID(i)) for i in ids) if item is not None]
    if not items:
        return {}
    return {"exception": items[0], **({"exceptions": items} if len(ids) > 1 else {})}


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
