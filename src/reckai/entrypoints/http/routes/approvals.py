"""`/api/approvals` (spec §5.1 Approvals): the maker-checker workflow. docs/workflow.md."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from reckai.application.approvals import requests
from reckai.application.approvals.ledger_download import ledger_posting_download_url
from reckai.application.approvals.snapshots import SNAPSHOT_KEY
from reckai.application.context import RequestInfo
from reckai.application.errors import FieldError, ValidationFailed
from reckai.bootstrap import Container
from reckai.domain.approvals.workflow import Approval, ApprovalEffect
from reckai.domain.identity.principal import Principal
from reckai.entrypoints.http.envelope import Pagination, Success, ok, paginated


class ApprovalBody(msgspec.Struct):
    id: uuid.UUID
    type: str
    status: str
    title: str
    description: str
    metadata: dict[str, Any]
    requested_by: uuid.UUID
    requested_at: dt.datetime
    reviewed_by: uuid.UUID | None
    reviewed_at: dt.datetime | None
    review_comments: str | None


class DownloadLinkBody(msgspec.Struct):
    url: str
    expires_at: dt.datetime


def approval_body(approval: Approval) -> ApprovalBody:
    # the snapshot is shown once, as `snapshot` of GET /api/approvals/:id, not in every list row
    metadata = {key: value for key, value in approval.metadata.items() if key != SNAPSHOT_KEY}
    return ApprovalBody(approval.id, approval.type.value, approval.status.value, approval.title, approval.description,
                        metadata, approval.requested_by, approval.requested_at, approval.reviewed_by,
                        approval.reviewed_at, approval.review_comments)


class EffectBody(msgspec.Struct):
    kind: str
    resource_type: str | None
    resource_id: uuid.UUID | None
    details: dict[str, Any]


class ApprovalDetailBody(msgspec.Struct):
    approval: ApprovalBody
    subject: dict[str, Any]  # what the approval refers to now (exception, rule and versions, current setting)
    effect: EffectBody | None = None
    # the subject as it was when requested ({"taken_at", "subject"}); null for requests older than snapshots
    snapshot: dict[str, Any] | None = None
    # while pending: what differs now from the snapshot ([{"field", "then", "now"}]); approving refuses if any
    changes_since_request: list[dict[str, Any]] | None = None


def _plain(value: Any) -> Any:
    """Entities (dataclasses) in a subject, as JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, uuid.UUID | dt.datetime | dt.date | Decimal):
        return str(value) if not isinstance(value, dt.datetime | dt.date) else value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def detail_body(view: requests.ApprovalView) -> ApprovalDetailBody:
    effect: ApprovalEffect | None = view.effect
    return ApprovalDetailBody(
        approval_body(view.approval), _plain(view.subject),
        EffectBody(effect.kind, effect.resource_type, effect.resource_id, _plain(effect.details)) if effect else None,
        view.snapshot, view.changes)


class ApprovalCreate(msgspec.Struct, forbid_unknown_fields=True):
    type: Annotated[str, msgspec.Meta(
        description="The approval type: rule_configuration, ledger_posting, user_onboarding, exception_resolution, "
                    "report_generation or system_setting (docs/workflow.md lists each type's metadata).",
        examples=["ledger_posting"])]
    title: Annotated[str, msgspec.Meta(description="A one-line title the checker sees in the list.",
                                       examples=["Post the May suspense correction"])]
    description: Annotated[str, msgspec.Meta(description="Why the change is needed, for the checker.",
                                             examples=["Clears the two card-settlement breaks of 31 May"])]
    metadata: Annotated[dict[str, Any], msgspec.Meta(
        description="The type's own fields, validated against its schema; unknown keys are refused.",
        examples=[{"currency": "NGN", "entries": [
            {"account": "1001", "direction": "debit", "amount_minor": 250000},
            {"account": "2001", "direction": "credit", "amount_minor": 250000}]}])]


class Decision(msgspec.Struct, forbid_unknown_fields=True):
    comment: Annotated[str | None, msgspec.Meta(
        description="The checker's (or requester's) reason, kept in the approval and the audit log; required to "
                    "decline.", examples=["Amounts match the settlement report"])] = None


def _split(value: str | None) -> tuple[str, ...]:
    """A comma-separated filter (`?status=pending,approved`) as its non-empty parts."""
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else ()


class ApprovalController(Controller):
    path = "/api/approvals"

    @get("/", opt={"permission": "approvals:read"}, sync_to_thread=True, summary="List approval requests")
    def list_approvals(
        self, principal: NamedDependency[Principal], container: NamedDependency[Container],
        pagination: NamedDependency[Pagination],
        status: Annotated[str | None, QueryParameter(description="comma-separated statuses")] = None,
        type: Annotated[str | None, QueryParameter(description="comma-separated approval types")] = None,
        requested_by: Annotated[str | None, QueryParameter(description="a user id or 'me'")] = None,
    ) -> Success[list[ApprovalBody]]:
        """The organization's maker-checker requests, pending first and then newest, filtered by status,
        type and requester, paginated (`page`, `per_page`)."""
        requester: uuid.UUID | None = None
        if requested_by == "me":
            requester = principal.user_id
        elif requested_by is not None:
            try:
                requester = uuid.UUID(requested_by)
            except ValueError:
                raise ValidationFailed([FieldError("requested_by", "a user id or 'me'")]) from None
        page = requests.list_approvals(container.workflow, principal, statuses=_split(status), types=_split(type),
                                       requested_by=requester, limit=pagination.limit, offset=pagination.offset)
        return paginated([approval_body(a) for a in page.items], pagination, page.total)

    @post("/", opt={"permission": "approvals:create", "errors": {
        403: "PERMISSION_DENIED: the role may not request this type.",
        409: "CONFLICT: the subject is already waiting for a checker (one closing per exception at a time)."}},
          status_code=201, sync_to_thread=True, summary="Request an approval")
    def create_approval(self, data: JSONBody[ApprovalCreate], principal: NamedDependency[Principal],
                        container: NamedDependency[Container],
                        request_info: NamedDependency[RequestInfo]) -> Success[ApprovalBody]:
        """A maker asks for a change that needs a checker. The subject is snapshotted now; eligible checkers
        are notified. Nothing changes until another person approves."""
        approval = requests.request_approval(container.workflow, principal, type=data.type, title=data.title,
                                             description=data.description, metadata=data.metadata,
                                             request=request_info)
        return ok(approval_body(approval))

    @get("/{approval_id:uuid}", opt={"permission": "approvals:read"}, sync_to_thread=True,
         summary="Read an approval request")
    def get_approval(self, approval_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                     container: NamedDependency[Container]) -> Success[ApprovalDetailBody]:
        """The request with its subject as it is now, the snapshot taken when it was asked, and (while
        pending) `changes_since_request`: what the checker would approve."""
        return ok(detail_body(requests.get_approval(container.workflow, principal, approval_id)))

    @get("/{approval_id:uuid}/ledger-postings/download", opt={"permission": "ledger_postings:read", "errors": {
        409: "CONFLICT: the posting is not exported yet (the export job has not run)."}},
         sync_to_thread=True, summary="Link to an approved ledger posting's journal")
    def ledger_posting_download(self, approval_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                                container: NamedDependency[Container],
                                request_info: NamedDependency[RequestInfo]) -> Success[DownloadLinkBody]:
        """The approved ledger posting's journal CSV: a link valid for one hour, like a file's."""
        link = ledger_posting_download_url(container.workflow, container.storage, principal, approval_id, request_info)
        return ok(DownloadLinkBody(url=link.url, expires_at=link.expires_at))

    @post("/{approval_id:uuid}/approve", opt={"permission": "approvals:approve", "errors": {
        403: "SELF_APPROVAL_FORBIDDEN, NOT_A_CHECKER or CHECKER_NOT_INDEPENDENT (segregation of duties).",
        409: "APPROVAL_ALREADY_DECIDED; APPROVAL_SUBJECT_CHANGED (one detail per changed field; nothing applied); "
             "NO_ELIGIBLE_CHECKER."}},
          status_code=200, sync_to_thread=True, summary="Approve a request")
    def approve(self, approval_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                container: NamedDependency[Container], request_info: NamedDependency[RequestInfo],
                data: JSONBody[Decision | None] = None) -> Success[ApprovalDetailBody]:
        """A checker other than the maker approves; the change is applied in the same transaction and
        audited. Refused if the subject changed since the request."""
        view = requests.approve_request(container.workflow, principal, approval_id,
                                        data.comment if data else None, request_info)
        return ok(detail_body(view))

    @post("/{approval_id:uuid}/decline", opt={"permission": "approvals:approve", "errors": {
        403: "SELF_APPROVAL_FORBIDDEN, NOT_A_CHECKER or CHECKER_NOT_INDEPENDENT.",
        409: "APPROVAL_ALREADY_DECIDED: the request was decided or cancelled already."}},
          status_code=200, sync_to_thread=True, summary="Decline a request")
    def decline(self, approval_id: FromPath[uuid.UUID], data: JSONBody[Decision],
                principal: NamedDependency[Principal], container: NamedDependency[Container],
                request_info: NamedDependency[RequestInfo]) -> Success[ApprovalDetailBody]:
        """A checker declines with a comment (required); nothing is applied and the requester is notified."""
        view = requests.decline_request(container.workflow, principal, approval_id, data.comment, request_info)
        return ok(detail_body(view))

    @post("/{approval_id:uuid}/cancel", opt={"permission": "approvals:create", "errors": {
        403: "ONLY_REQUESTER_MAY_CANCEL: only the requester withdraws a request.",
        409: "APPROVAL_ALREADY_DECIDED: the request was decided or cancelled already."}},
          status_code=200, sync_to_thread=True, summary="Withdraw a pending request")
    def cancel(self, approval_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
               container: NamedDependency[Container], request_info: NamedDependency[RequestInfo],
               data: JSONBody[Decision | None] = None) -> Success[ApprovalDetailBody]:
        """The requester withdraws their pending request (for instance after its subject changed), with an
        optional comment."""
        view = requests.cancel_request(container.workflow, principal, approval_id,
                                       data.comment if data else None, request_info)
        return ok(detail_body(view))


ROUTE_HANDLERS = [ApprovalController]
