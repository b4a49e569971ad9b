"""The `system_setting` approval type (the organization's settings): a change applied when a checker
approves (PUT /api/settings, or POST /api/approvals with type system_setting).

Registered in bootstrap (`ApprovalHandlers`); docs/workflow.md lists which settings need it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reckai.application.approvals.common import WorkflowServices
from reckai.application.approvals.handlers import ApprovalHandler
from reckai.application.context import RequestInfo
from reckai.application.errors import FieldError, NotFound, ValidationFailed
from reckai.application.identity.organizations import apply_settings_changes
from reckai.application.ports.workflow import WorkflowUnitOfWork
from reckai.domain.approvals.workflow import Approval, ApprovalEffect
from reckai.domain.exceptions.policy import parse_workflow_settings
from reckai.domain.identity.entities import Organization
from reckai.domain.identity.principal import Principal
from reckai.domain.settings_registry import (
    OperatorValues,
    SettingInvalid,
    org_setting_groups,
    validate_org_group,
)


def system_setting_handler(services: WorkflowServices, operator: OperatorValues | None = None) -> ApprovalHandler:
    operator = operator or OperatorValues()

    def within_operator_bounds(meta: dict[str, Any]) -> None:
        """A registered group (rate_limits, ...) within the bounds this deployment's operator set
        (the metadata schema only knows the registry's widest ones)."""
        key = meta.get("key")
        if key in org_setting_groups() and key != "workflow":
            try:
                validate_org_group(operator, str(key), meta.get("value"))
            except SettingInvalid as exc:
                field = f"metadata.value.{exc.name.removeprefix(str(key) + '.')}"
                raise ValidationFailed([FieldError(field, exc.message)]) from None

    def check(uow: WorkflowUnitOfWork, meta: dict[str, Any]) -> None:
        within_operator_bounds(meta)

    def apply(uow: WorkflowUnitOfWork, checker: Principal, approval: Approval,
              request: RequestInfo | None) -> ApprovalEffect:
        meta = approval.metadata
        organization = uow.organizations.get(approval.organization_id)
        if organization is None:
            raise NotFound("organization", approval.organization_id)
        previous = current_setting(organization, meta)
        within_operator_bounds(meta)  # checked when requested; the operator may have narrowed them since
        if meta["key"] == "organization":
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

    def subject(uow: WorkflowUnitOfWork, may: Callable[[str], bool], approval: Approval) -> dict[str, Any]:
        if not may("settings:read"):
            return {}
        organization = uow.organizations.get(approval.organization_id)
        return {"current_value": current_setting(organization, approval.metadata) if organization else None}

    def snapshot(uow: WorkflowUnitOfWork, approval: Approval) -> dict[str, Any]:
        """The settings diff: the value now (from) and the value asked for (to)."""
        organization = uow.organizations.get(approval.organization_id)
        return {"key": approval.metadata.get("key"),
                "from": current_setting(organization, approval.metadata) if organization else None,
                "to": approval.metadata.get("value")}

    return ApprovalHandler(apply=apply, check=check, subject=subject, snapshot=snapshot)


def current_setting(organization: Organization, meta: dict[str, Any]) -> Any:
    stored = organization.settings or {}
    if meta.get("key") == "organization":  # PUT /api/settings: the current value of each field it changes
        columns = {"name": organization.name, "domain": organization.domain}
        return {field: columns[field] if field in columns else stored.get(field) for field in meta.get("value") or {}}
    return stored.get(str(meta.get("key")))
