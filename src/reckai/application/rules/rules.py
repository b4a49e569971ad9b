"""Use cases of matching-rule management (`/api/rules`): every create, change or deactivation is a
pending rule version plus a `rule_configuration` approval; the version becomes active only when a
checker approves (`activate_version`, called by the approval in the same transaction).

The `matching_rules` row keeps the spec's columns and UNIQUE(organization_id, name); it mirrors
the *active* version (is_active, the definition's columns, approval_id, approved_at). A new rule's
row exists from the request on (so the name is reserved) but is inactive until approved. A
definition is the rule JSON of docs/profile.md without `name` (the rule's) and `version` (the
version row's), plus optional `applies_to: {"left": file type, "right": file type}`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from reckai.application.approvals import snapshots
from reckai.application.approvals.common import WorkflowJobsUnitOfWork, WorkflowServices
from reckai.application.approvals.handlers import ApprovalHandler
from reckai.application.approvals.requests import announce_request
from reckai.application.context import RequestInfo
from reckai.application.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from reckai.application.ports.repositories import DuplicateEntity
from reckai.application.ports.workflow import MatchingRuleRow, Page, WorkflowUnitOfWork
from reckai.domain.approvals.workflow import Approval, ApprovalEffect, ApprovalType
from reckai.domain.identity.permissions import has_permission
from reckai.domain.identity.principal import Principal
from reckai.domain.reconciliation.rule_versions import RuleHistory, RuleVersion, VersionStatus
from reckai.domain.reconciliation.rules import RuleError, parse_rule

FILE_TYPES = ("bank", "settlement", "switch", "card", "gl")  # spec §1 reconciliation_files.file_type
DEFINITION_KEYS = {"rule_type", "priority", "tolerance_percentage", "tolerance_amount", "date_tolerance_days",
                   "field_mappings", "conditions", "applies_to", "is_active"}
CURRENCY_EXPONENT = 2  # tolerances are validated in two-decimal currencies (NGN); docs/workflow.md


class RuleNameTaken(Conflict):
    code = "RULE_NAME_TAKEN"

    def __init__(self, name: str) -> None:
        super().__init__(f"a rule named {name!r} already exists")
        self.name = name


@dataclass(frozen=True)
class RuleView:
    rule: MatchingRuleRow
    versions: list[RuleVersion]
    pending_approval_id: uuid.UUID | None = None


@dataclass(frozen=True)
class ProposedChange:
    rule: MatchingRuleRow
    version: RuleVersion
    approval: Approval


def validate_definition(name: str, definition: Any) -> dict[str, Any]:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 255:
        raise ValidationFailed([FieldError("name", "is required, at most 255 characters")])
    if not isinstance(definition, dict):
        raise ValidationFailed([FieldError("definition", "must be an object")])
    unknown = sorted(set(definition) - DEFINITION_KEYS)
    if unknown:
        raise ValidationFailed([FieldError(f"definition.{key}", "unknown key") for key in unknown])
    if not isinstance(definition.get("is_active", True), bool):
        raise ValidationFailed([FieldError("definition.is_active", "must be true or false")])
    applies = definition.get("applies_to")
    if applies is not None and (not isinstance(applies, dict) or set(applies) != {"left", "right"}
                                or not all(applies[k] in FILE_TYPES for k in ("left", "right"))):
        raise ValidationFailed([FieldError("definition.applies_to", f"must be {{left, right}} of {list(FILE_TYPES)}")])
    rule_json = {k: v for k, v in definition.items() if k != "applies_to"}
    try:
        parse_rule({**rule_json, "name": name.strip()}, "definition", CURRENCY_EXPONENT)
    except RuleError as exc:
        raise ValidationFailed([FieldError(exc.path, exc.reason)]) from exc
    return dict(definition)


def _require(principal: Principal, permission: str) -> None:
    if not has_permission(principal.role, permission):
        raise PermissionDenied(permission)


def list_rules(services: WorkflowServices, principal: Principal, *, active_only: bool = False, limit: int = 20,
               offset: int = 0) -> Page[MatchingRuleRow]:
    _require(principal, "settings:read")
    with services.database.unit_of_work(principal.organization_id) as uow:
        return uow.rules.list(active_only=active_only, limit=limit, offset=offset)


def get_rule(services: WorkflowServices, principal: Principal, rule_id: uuid.UUID) -> RuleView:
    _require(principal, "settings:read")
    with services.database.unit_of_work(principal.organization_id) as uow:
        rule = uow.rules.get(rule_id)
        if rule is None:
            raise NotFound("matching_rule", rule_id)
        versions = list(uow.rules.versions(rule_id))
        pending = next((v.approval_id for v in versions if v.status is VersionStatus.PENDING), None)
        return RuleView(rule, versions, pending)


def create_rule(services: WorkflowServices, principal: Principal, *, name: str, definition: Any,
                description: str | None = None, preview_job_id: uuid.UUID | None = None,
                request: RequestInfo | None = None) -> ProposedChange:
    _require(principal, "settings:write")
    clean = validate_definition(name, definition)
    with services.database.unit_of_work(principal.organization_id) as uow:
        now = services.now()
        rule = MatchingRuleRow(id=uuid.uuid4(), organization_id=principal.organization_id, name=name.strip(),
                               rule_type=clean["rule_type"], field_mappings=list(clean.get("field_mappings") or []),
                               created_by=principal.user_id, created_at=now, updated_at=now, is_active=False,
                               priority=int(clean.get("priority", 0)), conditions=clean.get("conditions"))
        try:
            uow.rules.add(rule)
        except DuplicateEntity:
            raise RuleNameTaken(rule.name) from None
        change = _propose(services, uow, principal, rule, RuleHistory(rule.id, rule.organization_id), clean,
                          "create", description or f"New matching rule {rule.name}", preview_job_id, request)
        uow.commit()
        return change


def update_rule(services: WorkflowServices, principal: Principal, rule_id: uuid.UUID, *, definition: Any,
                description: str | None = None, preview_job_id: uuid.UUID | None = None,
                request: RequestInfo | None = None) -> ProposedChange:
    _require(principal, "settings:write")
    with services.database.unit_of_work(principal.organization_id) as uow:
        rule, history = _load(uow, rule_id)
        clean = validate_definition(rule.name, definition)
        change = _propose(services, uow, principal, rule, history, clean, "update",
                          description or f"Change matching rule {rule.name}", preview_job_id, request)
        uow.commit()
        return change


def deactivate_rule(services: WorkflowServices, principal: Principal, rule_id: uuid.UUID, *,
                    description: str | None = None, request: RequestInfo | None = None) -> ProposedChange:
    _require(principal, "settings:write")
    with services.database.unit_of_work(principal.organization_id) as uow:
        rule, history = _load(uow, rule_id)
        base = history.active.definition if history.active is not None else {}
        change = _propose(services, uow, principal, rule, history, {**base, "is_active": False}, "deactivate",
                          description or f"Deactivate matching rule {rule.name}", None, request)
        uow.commit()
        return change


def propose_from_metadata(services: WorkflowServices, principal: Principal, metadata: dict[str, Any], *,
                          title: str, description: str, request: RequestInfo | None) -> Approval:
    """POST /api/approvals with type rule_configuration: the same as the /api/rules routes."""
    action = metadata["action"]
    preview = uuid.UUID(metadata["preview_job_id"]) if metadata.get("preview_job_id") else None
    if action == "create":
        definition = dict(metadata["definition"])
        name = definition.pop("name", None) or title
        return create_rule(services, principal, name=name, definition=definition, description=description,
                           preview_job_id=preview, request=request).approval
    rule_id = uuid.UUID(metadata["rule_id"])
    if action == "update":
        return update_rule(services, principal, rule_id, definition=metadata["definition"], description=description,
                           preview_job_id=preview, request=request).approval
    return deactivate_rule(services, principal, rule_id, description=description, request=request).approval


def _load(uow: WorkflowUnitOfWork, rule_id: uuid.UUID) -> tuple[MatchingRuleRow, RuleHistory]:
    rule = uow.rules.get_for_update(rule_id)
    if rule is None:
        raise NotFound("matching_rule", rule_id)
    return rule, RuleHistory(rule.id, rule.organization_id, list(uow.rules.versions(rule_id)))


def _propose(services: WorkflowServices, uow: WorkflowJobsUnitOfWork, principal: Principal, rule: MatchingRuleRow, history: RuleHistory,
             definition: dict[str, Any], action: str, description: str, preview_job_id: uuid.UUID | None,
             request: RequestInfo | None) -> ProposedChange:
    now = services.now()
    version = history.propose(definition, created_by=principal.user_id, at=now)
    metadata: dict[str, Any] = {"action": action, "rule_id": str(rule.id), "rule_name": rule.name,
                                "version": version.version, "version_id": str(version.id), "definition": definition}
    if preview_job_id is not None:
        metadata["preview"] = preview_change(services, uow, rule.id, rule.name, definition, preview_job_id)
    approval = Approval.request(organization_id=principal.organization_id, type=ApprovalType.RULE_CONFIGURATION,
                                title=f"{action.capitalize()} matching rule {rule.name} (version {version.version})",
                                description=description, metadata=metadata, requested_by=principal.user_id, at=now)
    snapshots.stamp_snapshot(services, uow, approval)
    uow.approvals.add(approval)
    version.approval_id = approval.id
    uow.rules.add_version(version)
    announce_request(services, uow, principal, approval, request)
    return ProposedChange(rule, version, approval)


def preview_change(services: WorkflowServices, uow: WorkflowJobsUnitOfWork, rule_id: uuid.UUID | None, rule_name: str,
                   definition: dict[str, Any], job_id: uuid.UUID) -> dict[str, Any]:
    """Dry run of the job's data with the proposed rule (application/rules/preview.py); the counts
    go on the approval."""
    if services.rule_preview is None:
        raise ValidationFailed([FieldError("preview_job_id", "rule previews are not available in this deployment")])
    if uow.organization_id is None:
        raise RuntimeError("a rule preview runs inside an organization's unit of work")
    return services.rule_preview.preview(uow, uow.organization_id, job_id, rule_id, rule_name, definition)


def preview_rule(services: WorkflowServices, principal: Principal, *, job_id: uuid.UUID, definition: Any,
                 rule_id: uuid.UUID | None = None, name: str | None = None) -> dict[str, Any]:
    """POST /api/rules/preview: the same dry run, without proposing anything."""
    _require(principal, "settings:read")
    with services.database.unit_of_work(principal.organization_id) as uow:
        if rule_id is not None:
            rule = uow.rules.get(rule_id)
            if rule is None:
                raise NotFound("matching_rule", rule_id)
            name = rule.name
        clean = validate_definition(name or "preview", definition)
        return preview_change(services, uow, rule_id, name or "preview", clean, job_id)


def _version_of(uow: WorkflowUnitOfWork, approval: Approval) -> tuple[MatchingRuleRow, RuleHistory, int]:
    rule_id = uuid.UUID(approval.metadata["rule_id"])
    rule, history = _load(uow, rule_id)
    number = int(approval.metadata["version"])
    return rule, history, number


def activate_version(uow: WorkflowUnitOfWork, approval: Approval) -> ApprovalEffect:
    rule, history, number = _version_of(uow, approval)
    at = approval.reviewed_at
    assert at is not None
    for version in history.approve(number, approval_id=approval.id, at=at):
        uow.rules.update_version(version)
    active = history.active
    assert active is not None
    definition = active.definition
    if active.deactivates:
        rule.is_active = False
    else:
        rule.is_active = True
        rule.rule_type = definition["rule_type"]
        rule.field_mappings = list(definition.get("field_mappings") or [])
        rule.priority = int(definition.get("priority", 0))
        rule.tolerance_percentage = _decimal(definition.get("tolerance_percentage"))
        rule.tolerance_amount = _decimal(definition.get("tolerance_amount"))
        rule.date_tolerance_days = definition.get("date_tolerance_days")
        rule.conditions = definition.get("conditions")
    rule.approval_id, rule.approved_at, rule.updated_at = approval.id, at, at
    uow.rules.update(rule)
    return ApprovalEffect("rule_version_activated", "matching_rule", rule.id,
                          {"version": number, "is_active": rule.is_active})


def withdraw_version(uow: WorkflowUnitOfWork, approval: Approval) -> None:
    _rule, history, number = _version_of(uow, approval)
    uow.rules.update_version(history.withdraw(number))


def rule_configuration_handler(services: WorkflowServices) -> ApprovalHandler:
    """The `rule_configuration` approval type (registered in bootstrap): a proposed rule version
    becomes active when approved, and is withdrawn when declined or cancelled."""

    def propose(principal: Principal, metadata: dict[str, Any], title: str, description: str,
                request: RequestInfo | None) -> Approval:
        return propose_from_metadata(services, principal, metadata, title=title, description=description,
                                     request=request)

    def apply(uow: WorkflowUnitOfWork, checker: Principal, approval: Approval,
              request: RequestInfo | None) -> ApprovalEffect:
        return activate_version(uow, approval)

    def withdraw(uow: WorkflowUnitOfWork, principal: Principal, approval: Approval, action: str) -> None:
        withdraw_version(uow, approval)

    def subject(uow: WorkflowUnitOfWork, may: Callable[[str], bool], approval: Approval) -> dict[str, Any]:
        if "rule_id" not in approval.metadata or not may("rules:read"):
            return {}
        rule = uow.rules.get(uuid.UUID(approval.metadata["rule_id"]))
        if rule is None:
            return {}
        return {"rule": rule, "versions": list(uow.rules.versions(rule.id))}

    def snapshot(uow: WorkflowUnitOfWork, approval: Approval) -> dict[str, Any]:
        return rule_diff(uow, approval)

    return ApprovalHandler(apply=apply, propose=propose, withdraw=withdraw, subject=subject, snapshot=snapshot)


def rule_diff(uow: WorkflowUnitOfWork, approval: Approval) -> dict[str, Any]:
    """The rule change a checker approves: the active definition (from) and the proposed one (to)."""
    meta = approval.metadata
    active = None
    if meta.get("rule_id"):
        active = next((v for v in uow.rules.versions(uuid.UUID(meta["rule_id"]))
                       if v.status is VersionStatus.ACTIVE), None)
    before = active.definition if active else None
    after = meta.get("definition")
    keys = sorted(set(before or {}) | set(after or {}))
    return {"rule_id": meta.get("rule_id"), "rule_name": meta.get("rule_name"), "action": meta.get("action"),
            "active_version": active.version if active else None, "from": before, "to": after,
            "changed_keys": [k for k in keys if (before or {}).get(k) != (after or {}).get(k)]}


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))
