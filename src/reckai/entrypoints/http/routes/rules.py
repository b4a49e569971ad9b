"""`/api/rules`: matching rules under maker-checker (settings:read / settings:write). A create,
change or deactivation answers 202 with the pending version and the `rule_configuration` approval
it created; nothing takes effect until a checker approves. docs/workflow.md."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from reckai.application.context import RequestInfo
from reckai.application.ports.workflow import MatchingRuleRow
from reckai.application.rules import rules as rule_cases
from reckai.bootstrap import Container
from reckai.domain.identity.principal import Principal
from reckai.domain.reconciliation.rule_versions import RuleVersion
from reckai.entrypoints.http.envelope import Pagination, Success, ok, paginated
from reckai.entrypoints.http.routes.approvals import ApprovalBody, approval_body


class RuleBody(msgspec.Struct):
    id: uuid.UUID
    name: str
    rule_type: str
    is_active: bool
    priority: int
    tolerance_percentage: Decimal | None
    tolerance_amount: Decimal | None
    date_tolerance_days: int | None
    field_mappings: list[Any]
    conditions: dict[str, Any] | None
    approval_id: uuid.UUID | None
    approved_at: dt.datetime | None
    created_by: uuid.UUID
    created_at: dt.datetime
    updated_at: dt.datetime


def rule_body(rule: MatchingRuleRow) -> RuleBody:
    return RuleBody(rule.id, rule.name, rule.rule_type, rule.is_active, rule.priority, rule.tolerance_percentage,
                    rule.tolerance_amount, rule.date_tolerance_days, list(rule.field_mappings), rule.conditions,
                    rule.approval_id, rule.approved_at, rule.created_by, rule.created_at, rule.updated_at)


class VersionBody(msgspec.Struct):
    id: uuid.UUID
    version: int
    status: str
    definition: dict[str, Any]
    approval_id: uuid.UUID | None
    approved_at: dt.datetime | None
    created_by: uuid.UUID
    created_at: dt.datetime


def version_body(version: RuleVersion) -> VersionBody:
    return VersionBody(version.id, version.version, version.status.value, version.definition, version.approval_id,
                       version.approved_at, version.created_by, version.created_at)


class RuleDetailBody(msgspec.Struct):
    rule: RuleBody
    versions: list[VersionBody]
    pending_approval_id: uuid.UUID | None


class ProposalBody(msgspec.Struct):
    rule: RuleBody
    version: VersionBody
    approval: ApprovalBody


class RuleCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    definition: dict[str, Any]  # the rule JSON of docs/profile.md without name/version, plus applies_to
    description: str | None = None
    preview_job_id: uuid.UUID | None = None  # dry-run this completed job with the new rule


class RuleUpdate(msgspec.Struct, forbid_unknown_fields=True):
    definition: dict[str, Any]
    description: str | None = None
    preview_job_id: uuid.UUID | None = None


class RulePreviewRequest(msgspec.Struct, forbid_unknown_fields=True):
    job_id: uuid.UUID
    definition: dict[str, Any]
    rule_id: uuid.UUID | None = None  # change of an existing rule; none: a new rule
    name: str | None = None


def _proposal(change: rule_cases.ProposedChange) -> Response[Success[ProposalBody]]:
    return Response(ok(ProposalBody(rule_body(change.rule), version_body(change.version),
                                    approval_body(change.approval))), status_code=202)


class RuleController(Controller):
    path = "/api/rules"

    @get("/", opt={"permission": "settings:read"}, sync_to_thread=True)
    def list_rules(self, principal: NamedDependency[Principal], container: NamedDependency[Container],
                   pagination: NamedDependency[Pagination],
                   active: Annotated[bool | None, QueryParameter(description="only active rules")] = None,
                   ) -> Success[list[RuleBody]]:
        page = rule_cases.list_rules(container.workflow, principal, active_only=bool(active),
                                     limit=pagination.limit, offset=pagination.offset)
        return paginated([rule_body(r) for r in page.items], pagination, page.total)

    @post("/", opt={"permission": "settings:write"}, status_code=202, sync_to_thread=True)
    def create_rule(self, data: JSONBody[RuleCreate], principal: NamedDependency[Principal],
                    container: NamedDependency[Container],
                    request_info: NamedDependency[RequestInfo]) -> Response[Success[ProposalBody]]:
        return _proposal(rule_cases.create_rule(container.workflow, principal, name=data.name,
                                                definition=data.definition, description=data.description,
                                                preview_job_id=data.preview_job_id, request=request_info))

    @get("/{rule_id:uuid}", opt={"permission": "settings:read"}, sync_to_thread=True)
    def get_rule(self, rule_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                 container: NamedDependency[Container]) -> Success[RuleDetailBody]:
        view = rule_cases.get_rule(container.workflow, principal, rule_id)
        return ok(RuleDetailBody(rule_body(view.rule), [version_body(v) for v in view.versions],
                                 view.pending_approval_id))

    @put("/{rule_id:uuid}", opt={"permission": "settings:write"}, status_code=202, sync_to_thread=True)
    def update_rule(self, rule_id: FromPath[uuid.UUID], data: JSONBody[RuleUpdate],
                    principal: NamedDependency[Principal], container: NamedDependency[Container],
                    request_info: NamedDependency[RequestInfo]) -> Response[Success[ProposalBody]]:
        return _proposal(rule_cases.update_rule(container.workflow, principal, rule_id, definition=data.definition,
                                                description=data.description, preview_job_id=data.preview_job_id,
                                                request=request_info))

    @delete("/{rule_id:uuid}", opt={"permission": "settings:write"}, status_code=202, sync_to_thread=True)
    def deactivate_rule(self, rule_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                        container: NamedDependency[Container],
                        request_info: NamedDependency[RequestInfo]) -> Response[Success[ProposalBody]]:
        return _proposal(rule_cases.deactivate_rule(container.workflow, principal, rule_id, request=request_info))

    @post("/preview", opt={"permission": "settings:read"}, status_code=200, sync_to_thread=True)
    def preview(self, data: JSONBody[RulePreviewRequest], principal: NamedDependency[Principal],
                container: NamedDependency[Container]) -> Success[dict[str, Any]]:
        return ok(rule_cases.preview_rule(container.workflow, principal, job_id=data.job_id,
                                          definition=data.definition, rule_id=data.rule_id, name=data.name))


ROUTE_HANDLERS = [RuleController]
