"""Use cases of the maker-checker workflow: request, list, read, approve, decline, cancel.

Approving applies the request's effect in the same transaction as the decision (a rule version
becomes active, the exception is resolved, the user is created, the setting changes, the ledger
posting is queued for export), so a decision without its effect, or an effect without its
decision, cannot be committed. The approval row is locked (`get_for_update`) before it is read:
two checkers deciding at once serialise, and the second finds it decided (409).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from reckai.application import job_types
from reckai.application.approvals.common import WorkflowServices, eligible_checkers
from reckai.application.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
)
from reckai.application.identity.common import RequestInfo
from reckai.application.ports.repositories import DuplicateEntity
from reckai.application.ports.workflow import ApprovalQuery, Page
from reckai.domain.approvals.metadata import validate_metadata
from reckai.domain.approvals.workflow import (
    Approval,
    ApprovalEffect,
    ApprovalStatus,
    ApprovalType,
    Checker,
    parse_status,
    parse_type,
)
from reckai.domain.breaks.lifecycle import BreakAction, HistoryEntry, Resolution
from reckai.domain.breaks.policy import USER_ONBOARDING_FLAG, approval_required, parse_workflow_settings
from reckai.domain.identity.entities import User
from reckai.domain.identity.permissions import has_permission, may_read_for_review, may_request_approval
from reckai.domain.identity.principal import Principal

USER_ONBOARDING_SETTING = USER_ONBOARDING_FLAG  # the identity feature's flag


@dataclass(frozen=True)
class ApprovalView:
    approval: Approval
    subject: dict[str, Any] = field(default_factory=dict)  # what it refers to, for the checker
    effect: ApprovalEffect | None = None


class EmailAlreadyRegistered(Conflict):
    code = "EMAIL_TAKEN"


def request_approval(services: WorkflowServices, principal: Principal, *, type: str, title: str, description: str,
                     metadata: Any, request: RequestInfo | None = None) -> Approval:
    kind = parse_type(type)
    if not may_request_approval(principal.role, kind.value):
        raise PermissionDenied("approvals:create", f"a {principal.role} cannot request a {kind.value} approval")
    clean = validate_metadata(kind, metadata)
    if kind is ApprovalType.RULE_CONFIGURATION:
        from reckai.application.rules import rules as rule_cases

        return rule_cases.propose_from_metadata(services, principal, clean, title=title, description=description,
                                                request=request)
    if kind is ApprovalType.EXCEPTION_RESOLUTION:
        from reckai.application.breaks.exceptions import bulk_resolve

        outcome = bulk_resolve(services, principal, [uuid.UUID(clean["exception_id"])], clean["resolution_code"],
                               clean["resolution_note"], request, force_approval=True)[0]
        assert outcome.approval is not None
        return outcome.approval
    with services.database.unit_of_work(principal.organization_id) as uow:
        now = services.now()
        if kind is ApprovalType.USER_ONBOARDING and uow.users.get_by_email(clean["email"]) is not None:
            raise EmailAlreadyRegistered("a user with this e-mail already exists")
        if kind is ApprovalType.LEDGER_POSTING and "exception_id" in clean \
                and uow.breaks.get(uuid.UUID(clean["exception_id"])) is None:
            raise NotFound("exception", clean["exception_id"])
        approval = Approval.request(organization_id=principal.organization_id, type=kind, title=title,
                                    description=description, metadata=clean, requested_by=principal.user_id, at=now)
        uow.approvals.add(approval)
        announce_request(services, uow, principal, approval, request)
        uow.commit()
        return approval


def announce_request(services: WorkflowServices, uow: Any, principal: Principal, approval: Approval,
                     request: RequestInfo | None) -> None:
    services.record(uow, principal, "approval.requested", request, organization_id=approval.organization_id,
                    resource_type="approval", resource_id=approval.id, status=201,
                    metadata={"type": approval.type.value, "title": approval.title})
    services.notify(uow, approval.organization_id, "approval.requested",
                    eligible_checkers(uow, exclude=principal.user_id),
                    {"approval_id": str(approval.id), "type": approval.type.value})


def list_approvals(services: WorkflowServices, principal: Principal, *, statuses: tuple[str, ...] = (),
                   types: tuple[str, ...] = (), requested_by: uuid.UUID | None = None, limit: int = 20,
                   offset: int = 0) -> Page[Approval]:
    for status in statuses:
        parse_status(status)
    for kind in types:
        parse_type(kind)
    with services.database.unit_of_work(principal.organization_id) as uow:
        return uow.approvals.list(  # type: ignore[no-any-return]
            ApprovalQuery(statuses=statuses, types=types, requested_by=requested_by, limit=limit, offset=offset))


def get_approval(services: WorkflowServices, principal: Principal, approval_id: uuid.UUID) -> ApprovalView:
    with services.database.unit_of_work(principal.organization_id) as uow:
        approval = uow.approvals.get(approval_id)
        if approval is None:
            raise NotFound("approval", approval_id)
        return ApprovalView(approval, _subject(uow, principal, approval))


def _subject(uow: Any, principal: Principal, approval: Approval) -> dict[str, Any]:
    """What the approval refers to, shown to whoever may read it (a checker of a pending request
    may, through may_read_for_review)."""
    meta = approval.metadata
    reviewing = approval.status is ApprovalStatus.PENDING
    kind = approval.type.value

    def may(permission: str) -> bool:
        return has_permission(principal.role, permission) or (
            reviewing and may_read_for_review(principal.role, kind, permission))

    subject: dict[str, Any] = {}
    if "exception_id" in meta and may("exceptions:read"):
        item = uow.breaks.get(uuid.UUID(meta["exception_id"]))
        if item is not None:
            subject["exception"] = item
    if approval.type is ApprovalType.RULE_CONFIGURATION and "rule_id" in meta and may("rules:read"):
        rule = uow.rules.get(uuid.UUID(meta["rule_id"]))
        if rule is not None:
            subject["rule"] = rule
            subject["versions"] = list(uow.rules.versions(rule.id))
    if approval.type is ApprovalType.SYSTEM_SETTING and may("settings:read"):
        organization = uow.organizations.get(approval.organization_id)
        subject["current_value"] = _current_setting(organization, meta) if organization else None
    return subject


def _current_setting(organization: Any, meta: dict[str, Any]) -> Any:
    stored = organization.settings or {}
    if meta.get("key") == "organization":  # PUT /api/settings: the current value of each field it changes
        columns = {"name": organization.name, "domain": organization.domain}
        return {field: columns[field] if field in columns else stored.get(field) for field in meta.get("value") or {}}
    return stored.get(meta.get("key"))


def _checker(principal: Principal) -> Checker:
    return Checker(principal.user_id, has_permission(principal.role, "approvals:approve"))


def approve_request(services: WorkflowServices, principal: Principal, approval_id: uuid.UUID,
                    comment: str | None = None, request: RequestInfo | None = None) -> ApprovalView:
    with services.database.unit_of_work(principal.organization_id) as uow:
        approval = uow.approvals.get_for_update(approval_id)
        if approval is None:
            raise NotFound("approval", approval_id)
        now = services.now()
        approval.approve(_checker(principal), now, comment)
        effect = _apply_effect(services, uow, principal, approval, request)
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
        _withdraw(uow, principal, approval, "approval_declined", services)
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
        _withdraw(uow, principal, approval, "approval_cancelled", services)
        uow.approvals.update(approval)
        services.record(uow, principal, "approval.cancelled", request, organization_id=approval.organization_id,
                        resource_type="approval", resource_id=approval.id, metadata={"type": approval.type.value})
        uow.commit()
        return ApprovalView(approval)


# --- effects ---------------------------------------------------------------------------------


def _apply_effect(services: WorkflowServices, uow: Any, checker: Principal, approval: Approval,
                  request: RequestInfo | None) -> ApprovalEffect:
    meta = approval.metadata
    now = approval.reviewed_at
    assert now is not None
    if approval.type is ApprovalType.RULE_CONFIGURATION:
        from reckai.application.rules.rules import activate_version

        return activate_version(uow, approval)
    if approval.type is ApprovalType.EXCEPTION_RESOLUTION:
        item = uow.breaks.get_for_update(uuid.UUID(meta["exception_id"]))
        if item is None:
            raise NotFound("exception", meta["exception_id"])
        entry = item.apply(BreakAction.RESOLVE, actor_id=approval.requested_by, at=now,
                           resolution=Resolution.of(meta["resolution_code"], meta["resolution_note"]))
        entry.changes.update({"approval_id": str(approval.id), "approved_by": str(checker.user_id)})
        uow.breaks.update(item)
        uow.breaks.add_history(entry)
        return ApprovalEffect("exception_resolved", "exception", item.id,
                              {"resolution_code": meta["resolution_code"]})
    if approval.type is ApprovalType.SYSTEM_SETTING:
        organization = uow.organizations.get(approval.organization_id)
        if organization is None:
            raise NotFound("organization", approval.organization_id)
        previous = _current_setting(organization, meta)
        if meta["key"] == "organization":
            from reckai.application.identity.organizations import apply_settings_changes

            fields = apply_settings_changes(organization, meta["value"])  # re-validated against today's policy
            services.record(uow, checker, "organization.settings_changed", request,
                            organization_id=organization.id, resource_type="organization",
                            resource_id=organization.id,
                            metadata={"fields": fields, "policy": meta["value"].get("password_policy"),
                                      "approval_id": str(approval.id), "requested_by": str(approval.requested_by)})
        else:
            organization.settings = {**(organization.settings or {}), meta["key"]: meta["value"]}
        if meta["key"] == "workflow":
            parse_workflow_settings(organization.settings)  # validated at request time; re-checked here
        uow.organizations.update(organization)
        return ApprovalEffect("setting_changed", "organization", organization.id,
                              {"key": meta["key"], "previous_value": previous})
    if approval.type is ApprovalType.USER_ONBOARDING:
        user = _create_user(services, uow, approval)
        services.record(uow, checker, "user.created", request, organization_id=approval.organization_id,
                        resource_type="user", resource_id=user.id, status=201,
                        metadata={"role": user.role, "email": user.email, "approval_id": str(approval.id),
                                  "requested_by": str(approval.requested_by)})
        return ApprovalEffect("user_created", "user", user.id, {"role": user.role})
    if approval.type is ApprovalType.LEDGER_POSTING:
        services.job_queue.enqueue(uow, job_types.EXPORT_LEDGER_POSTING.request(
            {"approval_id": str(approval.id)}, organization_id=approval.organization_id))
        approval.metadata = {**meta, "export": {"status": "queued", "queued_at": now.isoformat()}}
        return ApprovalEffect("ledger_export_queued", "approval", approval.id, {"entries": len(meta["entries"])})
    # report_generation: the approval is the authorisation; the reports feature generates on it.
    approval.metadata = {**meta, "authorised_at": now.isoformat()}
    return ApprovalEffect("report_authorised", "approval", approval.id, {"report_type": meta["report_type"]})


def _create_user(services: WorkflowServices, uow: Any, approval: Approval) -> User:
    meta = approval.metadata
    quota = uow.quotas.get_for_update(approval.organization_id)
    if quota is not None and uow.users.count(is_active=True) >= quota.max_users:
        raise QuotaExceeded("max_users", quota.max_users)
    now = approval.reviewed_at
    # Nobody knows this password: the new user signs in after accepting an invitation
    # (POST /api/users/{id}/invite), as for any account created without a password.
    unusable = services.password_hasher.hash(secrets.token_urlsafe(24))
    user = User(id=uuid.uuid4(), organization_id=approval.organization_id, email=meta["email"], name=meta["name"],
                role=meta["role"], password_hash=unusable, password_changed_at=now, created_by=approval.requested_by,
                created_at=now, updated_at=now)
    try:
        return uow.users.add(user)  # type: ignore[no-any-return]
    except DuplicateEntity:
        raise EmailAlreadyRegistered("a user with this e-mail already exists") from None


def _withdraw(uow: Any, principal: Principal, approval: Approval, action: str, services: WorkflowServices) -> None:
    """A declined or cancelled request leaves the thing it concerned as it was; say so in its history."""
    if approval.type is ApprovalType.RULE_CONFIGURATION:
        from reckai.application.rules.rules import withdraw_version

        withdraw_version(uow, approval)
    elif approval.type is ApprovalType.EXCEPTION_RESOLUTION:
        item = uow.breaks.get(uuid.UUID(approval.metadata["exception_id"]))
        if item is not None:
            uow.breaks.add_history(HistoryEntry(item.id, action, principal.user_id, services.now(),
                                                item.status.value, item.status.value, approval.review_comments,
                                                {"approval_id": str(approval.id)}))


def setting_needs_approval(uow: Any, organization_id: uuid.UUID, approval_type: str) -> bool:
    """Whether the organization routes this optional type through a checker (docs/workflow.md)."""
    organization = uow.organizations.get(organization_id)
    if organization is None:
        raise NotFound("organization", organization_id)
    return approval_required(organization.settings, approval_type)

