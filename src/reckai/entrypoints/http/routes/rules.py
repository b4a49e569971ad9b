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


_DEFINITION = msgspec.Meta(
    description="The rule JSON of docs/profile.md without name and version (rule_type exact, range, fuzzy or regex; "
                "priority; tolerances; field_mappings; conditions), plus optional applies_to {left, right} file "
                "types; validated by the matching engine's parser.",
    examples=[{"rule_type": "exact", "priority": 1, "tolerance_amount": "0", "date_tolerance_days": 1,
                   "field_mappings": [{"left": "reference", "right": "reference"}],
                   "applies_to": {"left": "bank", "right": "switch"}}])
_DESCRIPTION = msgspec.Meta(description="Why this rule (or change) exists, for the checker and later readers.",
                            examples=["Card purchases settle by RRN, one day late at most"])
_PREVIEW_JOB = msgspec.Meta(description="A completed job to dry-run with the proposed rule; the difference is stored "
                                        "in the approval for the checker.",
                            examples=["9c2e5a17-4b8d-4e6f-a0c3-7d1b8e2f5a64"])


class RuleCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(description="The rule's name, unique in the organization; recorded on every "
                                                  "match.", examples=["card-rrn-exact"])]
    definition: Annotated[dict[str, Any], _DEFINITION]
    description: Annotated[str | None, _DESCRIPTION] = None
    preview_job_id: Annotated[uuid.UUID | None, _PREVIEW_JOB] = None


class RuleUpdate(msgspec.Struct, forbid_unknown_fields=True):
    definition: Annotated[dict[str, Any], _DEFINITION]
    description: Annotated[str | None, _DESCRIPTION] = None
    preview_job_id: Annotated[uuid.UUID | None, _PREVIEW_JOB] = None


class RulePreviewRequest(msgspec.Struct, forbid_unknown_fields=True):
    job_id: Annotated[uuid.UUID, msgspec.Meta(description="The completed job to run again with the rule.",
                                              examples=["9c2e5a17-4b8d-4e6f-a0c3-7d1b8e2f5a64"])]
    definition: Annotated[dict[str, Any], _DEFINITION]
    rule_id: Annotated[uuid.UUID | None, msgspec.Meta(
        description="The rule this definition would replace; absent: a new rule added to the job's rules.",
        examples=["7f3a9b2c-6e14-4d85-b0a7-1c9e5d3f2b68"])] = None
    name: Annotated[str | None, msgspec.Meta(description="The new rule's name in the preview (with no rule_id).",
                                             examples=["card-rrn-exact"])] = None


def _proposal(change: rule_cases.ProposedChange) -> Response[Success[ProposalBody]]:
    return Response(ok(ProposalBody(rule_body(change.rule), version_body(change.version),
                                    approval_body(change.approval))), status_code=202)


class RuleController(Controller):
    path = "/api/rules"

    @get("/", opt={"permission": "settings:read"}, sync_to_thread=True, summary="List matching rules")
    def list_rules(self, principal: NamedDependency[Principal], container: NamedDependency[Container],
                   pagination: NamedDependency[Pagination],
                   active: Annotated[bool | None, QueryParameter(description="only active rules")] = None,
                   ) -> Success[list[RuleBody]]:
        """The organization's matching rules with their active definition's columns, paginated; `active`
        keeps the active ones only."""
        page = rule_cases.list_rules(container.workflow, principal, active_only=bool(active),
                                     limit=pagination.limit, offset=pagination.offset)
        return paginated([rule_body(r) for r in page.items], pagination, page.total)

    @post("/", opt={"permission": "settings:write", "errors": {
        409: "RULE_NAME_TAKEN: a rule of the organization has this name."}},
          status_code=202, sync_to_thread=True, summary="Propose a new matching rule")
    def create_rule(self, data: JSONBody[RuleCreate], principal: NamedDependency[Principal],
                    container: NamedDependency[Container],
                    request_info: NamedDependency[RequestInfo]) -> Response[Success[ProposalBody]]:
        """Answers 202 with the rule (inactive), its pending first version and the rule_configuration
        approval; the rule runs once a checker approves."""
        return _proposal(rule_cases.create_rule(container.workflow, principal, name=data.name,
                                                definition=data.definition, description=data.description,
                                                preview_job_id=data.preview_job_id, request=request_info))

    @get("/{rule_id:uuid}", opt={"permission": "settings:read"}, sync_to_thread=True,
         summary="Read a matching rule and its versions")
    def get_rule(self, rule_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                 container: NamedDependency[Container]) -> Success[RuleDetailBody]:
        """The rule, every version (pending, active, retired) with its definition and approval, and the
        pending approval if a change waits."""
        view = rule_cases.get_rule(container.workflow, principal, rule_id)
        return ok(RuleDetailBody(rule_body(view.rule), [version_body(v) for v in view.versions],
                                 view.pending_approval_id))

    @put("/{rule_id:uuid}", opt={"permission": "settings:write", "errors": {
        409: "RULE_CHANGE_PENDING: another change of this rule waits for a checker."}},
         status_code=202, sync_to_thread=True, summary="Propose a change to a matching rule")
    def update_rule(self, rule_id: FromPath[uuid.UUID], data: JSONBody[RuleUpdate],
                    principal: NamedDependency[Principal], container: NamedDependency[Container],
                    request_info: NamedDependency[RequestInfo]) -> Response[Success[ProposalBody]]:
        """Answers 202 with a pending version and its approval; the active version keeps running until a
        checker approves."""
        return _proposal(rule_cases.update_rule(container.workflow, principal, rule_id, definition=data.definition,
                                                description=data.description, preview_job_id=data.preview_job_id,
                                                request=request_info))

    @delete("/{rule_id:uuid}", opt={"permission": "settings:write", "errors": {
        409: "RULE_CHANGE_PENDING: another change of this rule waits for a checker."}},
            status_code=202, sync_to_thread=True, summary="Propose deactivating a matching rule")
    def deactivate_rule(self, rule_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                        container: NamedDependency[Container],
                        request_info: NamedDependency[RequestInfo]) -> Response[Success[ProposalBody]]:
        """Answers 202 with a deactivating version and its approval; the rule stops running once a checker
        approves (its history stays)."""
        return _proposal(rule_cases.deactivate_rule(container.workflow, principal, rule_id, request=request_info))

    @post("/preview", opt={"permission": "settings:read", "errors": {
        409: "CONFLICT: the job is not completed, has no snapshot, its files are no longer normalized, or it is "
             "too large to preview in a request (over 2,000,000 rows)."}},
          status_code=200, sync_to_thread=True, summary="Preview a rule on a completed job")
    def preview(self, data: JSONBody[RulePreviewRequest], principal: NamedDependency[Principal],
                container: NamedDependency[Container]) -> Success[dict[str, Any]]:
        """Runs the completed job's files through the matcher with and without the rule (nothing stored):
        pairs added, removed and changed, exception totals before and after, and examples."""
        return ok(rule_cases.preview_rule(container.workflow, principal, job_id=data.job_id,
                                          definition=data.definition, rule_id=data.rule_id, name=data.name))


ROUTE_HANDLERS = [RuleController]
