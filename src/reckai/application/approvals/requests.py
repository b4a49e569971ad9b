"""Use cases of the maker-checker workflow: request, list, read, approve, decline, cancel.

Approving applies the request's effect in the same transaction as the decision (a rule version
becomes active, the exception is resolved, the user is created, the setting changes, the ledger
posting is queued for export), so a decision without its effect, or an effect without its
decision, cannot be committed. The approval row is locked (`get_for_update`) before it is read:
two checkers deciding at once serialise, and the second finds it decided (409).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reckai.application.approvals import snapshots
from reckai.application.approvals.common import WorkflowServices
from reckai.application.approvals.separation import independent_checkers, require_independent_checker
from reckai.application.context import Outcome, RequestInfo
from reckai.application.errors import (
    NotFound,
    PermissionDenied,
)
from reckai.application.ports.workflow import ApprovalQuery, Page, WorkflowUnitOfWork
from reckai.domain.approvals.metadata import validate_metadata
from reckai.domain.approvals.workflow import (
    Approval,
    ApprovalEffect,
    ApprovalStatus,
    Checker,
    parse_status,
    parse_type,
)
from reckai.domain.exceptions.policy import USER_ONBOARDING_FLAG, amount_band, approval_required
from reckai.domain.identity.permissions import has_permission, may_read_for_review, may_request_approval
from reckai.domain.identity.principal import Principal

USER_ONBOARDING_SETTING = USER_ONBOARDING_FLAG  # the identity feature's flag


@dataclass(frozen=True)
class ApprovalView:
    approval: Approval
    subject: dict[str, Any] = field(default_factory=dict)  # what it refers to now, for the checker
    effect: ApprovalEffect | None = None
    snapshot: dict[str, Any] | None = None  # the subject when it was requested (snapshots.py)
    changes: list[dict[str, Any]] | None = None  # what changed since (pending requests only)


def request_approval(services: WorkflowServices, principal: Principal, *, type: str, title: str, description: str,
                     metadata: Any, request: RequestInfo | None = None) -> Approval:
    kind = parse_type(type)
    if not may_request_approval(principal.role, kind.value):
        raise PermissionDenied("approvals:create", f"a {principal.role} cannot request a {kind.value} approval")
    clean = validate_metadata(kind, metadata)
    handler = services.approval_handlers.get(kind)
    if handler.propose is not None:  # the type's own use case makes the request (rules, resolutions)
        return handler.propose(principal, clean, title, description, request)
    with services.database.unit_of_work(principal.organization_id) as uow:
        now = services.now()
        if handler.check is not None:
            handler.check(uow, clean)
        approval = Approval.request(organization_id=principal.organization_id, type=kind, title=title,
                                    description=description, metadata=clean, requested_by=principal.user_id, at=now)
        snapshots.stamp_snapshot(services, uow, approval)
        uow.approvals.add(approval)
        announce_request(services, uow, principal, approval, request)
        uow.commit()
        return approval


def announce_request(services: WorkflowServices, uow: WorkflowUnitOfWork, principal: Principal, approval: Approval,
                     request: RequestInfo | None, details: Mapping[str, Any] | None = None) -> None:
    """Audit a new request and tell the checkers: the mail carries the type, an amount band, the
    requester and a link, never the subject's data (application/approvals/jobs.py)."""
    services.record(uow, principal, "approval.requested", request, organization_id=approval.organization_id,
                    resource_type="approval", resource_id=approval.id, outcome=Outcome.CREATED,
                    metadata={"type": approval.type.value, "title": approval.title, **(details or {})})
    # NO_ELIGIBLE_CHECKER (nothing stored) when nobody could approve it (segregation of duties)
    services.notify(uow, approval.organization_id, "approval.requested",
                    independent_checkers(uow, approval, services.now()),
                    {"approval_id": str(approval.id), "type": approval.type.value,
                     "amount_band": amount_band(*snapshots.approval_stake(approval)),
                     "requested_by": str(approval.requested_by)})


def list_approvals(services: WorkflowServices, principal: Principal, *, statuses: tuple[str, ...] = (),
                   types: tuple[str, ...] = (), requested_by: uuid.UUID | None = None, limit: int = 20,
                   offset: int = 0) -> Page[Approval]:
    for status in statuses:
        parse_status(status)
    for kind in types:
        parse_type(kind)
    with services.database.unit_of_work(principal.organization_id) as uow:
        return uow.approvals.list(
            ApprovalQuery(statuses=statuses, types=types, requested_by=requested_by, limit=limit, offset=offset))


def get_approval(services: WorkflowServices, principal: Principal, approval_id: uuid.UUID) -> ApprovalView:
    with services.database.unit_of_work(principal.organization_id) as uow:
        approval = uow.approvals.get(approval_id)
        if approval is None:
            raise NotFound("approval", approval_id)
        return ApprovalView(approval, _subject(services, uow, principal, approval),
                            snapshot=snapshots.stored_snapshot(approval),
                            changes=snapshots.changes_since_request(services, uow, approval))


def _subject(services: WorkflowServices, uow: WorkflowUnitOfWork, principal: Principal,
             approval: Approval) -> dict[str, Any]:
    """What the approval refers to, shown to whoever may read it (a checker of a pending request
    may, through may_read_for_review); the type's handler reads it."""
    reviewing = approval.status is ApprovalStatus.PENDING
    kind = approval.type.value

    def may(permission: str) -> bool:
        return has_permission(principal.role, permission) or (
            reviewing and may_read_for_review(principal.role, kind, permission))

    handler = services.approval_handlers.get(approval.type)
    return handler.subject(uow, may, approval) if handler.subject is not None else {}


def _checker(principal: Principal) -> Checker:
    return Checker(principal.user_id, has_permission(principal.role, "approvals:approve"))


def approve_request(services: WorkflowServices, principal: Principal, approval_id: uuid.UUID,
                    comment: str | None = None, request: RequestInfo | None = None) -> ApprovalView:
    with services.database.unit_of_work(principal.organization_id) as uow:
        approval = uow.approvals.get_for_update(approval_id)
        if approval is None:
            raise NotFound("approval", approval_id)
        now = services.now()
        require_independent_checker(uow, approval, principal.user_id, now)  # segregation of duties
        approval.approve(_checker(principal), now, comment)
        snapshots.refuse_if_changed(services, uow, approval)  # approve what was asked, or nothing
        effect = services.approval_handlers.get(approval.type).apply(uow, principal, approval, request)
        uow.approvals.update(approval)
        services.record(uow, principal, "approval.approved", request, organization_id=approval.organization_id,
                        resource_type="approval", resource_id=approval.id,
                        metadata={"type": approval.type.value, "requested_by": str(approval.requested_by),
                                  "effect": effect.kind, "effect_resource_type": effect.resource_type,
                                  "effect_resource_id": str(effect.resource_id) if effect.resource_id else None,
                                  **effect.details})
        services.notify(uow, approval.organization_id, "approval.approved", [approval.requested_by],
                        {"approval_id": str(approval.id), "type": approval.type.value})
        uow.commit()
        return ApprovalView(approval, effect=effect)


def decline_request(services: WorkflowServices, principal: Principal, approval_id: uuid.UUID, comment: str | None,
                    request: RequestInfo | None = None) -> ApprovalView:
    with services.database.unit_of_work(principal.organization_id) as uow:
        approval = uow.approvals.get_for_update(approval_id)
        if approval is None:
            raise NotFound("approval", approval_id)
        approval.decline(_checker(principal), services.now(), comment)
        _withdraw(services, uow, principal, approval, "approval_declined")
        uow.approvals.update(approval)
        services.record(uow, principal, "approval.declined", request, organization_id=approval.organization_id,
                        resource_type="approval", resource_id=approval.id,
                        metadata={"type": approval.type.value, "comment": approval.review_comments})
        services.notify(uow, approval.organization_id, "approval.declined", [approval.requested_by],
                        {"approval_id": str(approval.id), "type": approval.type.value})
        uow.commit()
        return ApprovalView(approval)


def cancel_request(services: WorkflowServices, principal: Principal, approval_id: uuid.UUID,
                   comment: str | None = None, request: RequestInfo | None = None) -> ApprovalView:
    with services.database.unit_of_work(principal.organization_id) as uow:
        approval = uow.approvals.get_for_update(approval_id)
        if approval is None:
            raise NotFound("approval", approval_id)
        approval.cancel(principal.user_id, services.now(), comment)
        _withdraw(services, uow, principal, approval, "approval_cancelled")
        uow.approvals.update(approval)
        services.record(uow, principal, "approval.cancelled", request, organization_id=approval.organization_id,
                        resource_type="approval", resource_id=approval.id, metadata={"type": approval.type.value})
        uow.commit()
        return ApprovalView(approval)


def _withdraw(services: WorkflowServices, uow: WorkflowUnitOfWork, principal: Principal, approval: Approval,
              action: str) -> None:
    """A declined or cancelled request leaves the thing it concerned as it was (the type's handler)."""
    handler = services.approval_handlers.get(approval.type)
    if handler.withdraw is not None:
        handler.withdraw(uow, principal, approval, action)


def setting_needs_approval(uow: WorkflowUnitOfWork, organization_id: uuid.UUID, approval_type: str) -> bool:
    """Whether the organization routes this optional type through a checker (docs/workflow.md)."""
    organization = uow.organizations.get(organization_id)
    if organization is None:
        raise NotFound("organization", organization_id)
    return approval_required(organization.settings, approval_type)

