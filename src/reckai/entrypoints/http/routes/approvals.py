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
    type: str
    title: str
    description: str
    metadata: dict[str, Any]


class Decision(msgspec.Struct, forbid_unknown_fields=True):
    comment: str | None = None


def _split(value: str | None) -> tuple[str, ...]:
    """A comma-separated filter (`?status=pending,approved`) as its non-empty parts."""
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else ()


class ApprovalController(Controller):
    path = "/api/approvals"

    @get("/", opt={"permission": "approvals:read"}, sync_to_thread=True)
    def list_approvals(
        self, principal: NamedDependency[Principal], container: NamedDependency[Container],
        pagination: NamedDependency[Pagination],
        status: Annotated[str | None, QueryParameter(description="comma-separated statuses")] = None,
        type: Annotated[str | None, QueryParameter(description="comma-separated approval types")] = None,
        requested_by: Annotated[str | None, QueryParameter(description="a user id or 'me'")] = None,
    ) -> Success[list[ApprovalBody]]:
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

    @post("/", opt={"permission": "approvals:create"}, status_code=201, sync_to_thread=True)
    def create_approval(self, data: JSONBody[ApprovalCreate], principal: NamedDependency[Principal],
                        container: NamedDependency[Container],
                        request_info: NamedDependency[RequestInfo]) -> Success[ApprovalBody]:
        approval = requests.request_approval(container.workflow, principal, type=data.type, title=data.title,
                                             description=data.description, metadata=data.metadata,
                                             request=request_info)
        return ok(approval_body(approval))

    @get("/{approval_id:uuid}", opt={"permission": "approvals:read"}, sync_to_thread=True)
    def get_approval(self, approval_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                     container: NamedDependency[Container]) -> Success[ApprovalDetailBody]:
        return ok(detail_body(requests.get_approval(container.workflow, principal, approval_id)))

    @get("/{approval_id:uuid}/ledger-postings/download", opt={"permission": "ledger_postings:read"},
         sync_to_thread=True)
    def ledger_posting_download(self, approval_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                                container: NamedDependency[Container],
                                request_info: NamedDependency[RequestInfo]) -> Success[DownloadLinkBody]:
        """The approved ledger posting's journal CSV: a link valid for one hour, like a file's."""
        link = ledger_posting_download_url(container.workflow, container.storage, principal, approval_id, request_info)
        return ok(DownloadLinkBody(url=link.url, expires_at=link.expires_at))

    @post("/{approval_id:uuid}/approve", opt={"permission": "approvals:approve"}, status_code=200,
          sync_to_thread=True)
    def approve(self, approval_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                container: NamedDependency[Container], request_info: NamedDependency[RequestInfo],
                data: JSONBody[Decision | None] = None) -> Success[ApprovalDetailBody]:
        view = requests.approve_request(container.workflow, principal, approval_id,
                                        data.comment if data else None, request_info)
        return ok(detail_body(view))

    @post("/{approval_id:uuid}/decline", opt={"permission": "approvals:approve"}, status_code=200,
          sync_to_thread=True)
    def decline(self, approval_id: FromPath[uuid.UUID], data: JSONBody[Decision],
                principal: NamedDependency[Principal], container: NamedDependency[Container],
                request_info: NamedDependency[RequestInfo]) -> Success[ApprovalDetailBody]:
        view = requests.decline_request(container.workflow, principal, approval_id, data.comment, request_info)
        return ok(detail_body(view))

    @post("/{approval_id:uuid}/cancel", opt={"permission": "approvals:create"}, status_code=200,
          sync_to_thread=True)
    def cancel(self, approval_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
               container: NamedDependency[Container], request_info: NamedDependency[RequestInfo],
               data: JSONBody[Decision | None] = None) -> Success[ApprovalDetailBody]:
        view = requests.cancel_request(container.workflow, principal, approval_id,
                                       data.comment if data else None, request_info)
        return ok(detail_body(view))


ROUTE_HANDLERS = [ApprovalController]
