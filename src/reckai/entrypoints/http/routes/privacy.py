"""Data exports (issue 17 item 6; docs/privacy.md, "Export").

    POST /api/privacy/exports                {scope: "user", user_id?} | {scope: "organization"} -> 202
    GET  /api/privacy/exports/{id}           status, size, SHA-256, expiry
    GET  /api/privacy/exports/{id}/download  a link valid for one hour, issued again on each request
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from reckai.application.context import Caller, RequestInfo
from reckai.application.privacy.exports import export_download_url, get_export, request_export
from reckai.bootstrap import Container
from reckai.domain.identity.principal import Principal
from reckai.domain.privacy.exports import DataExport
from reckai.entrypoints.http.envelope import Success, ok
from reckai.entrypoints.http.routes.approvals import ApprovalBody, DownloadLinkBody, approval_body


class ExportCreate(msgspec.Struct, forbid_unknown_fields=True):
    scope: Annotated[str, msgspec.Meta(
        description="user: one person's data (profile, sessions, their audit actions, their comments), by the "
                    "person or an admin; organization: everything the organization stored, admin only, through a "
                    "data_export approval a checker decides.", examples=["user"])]
    user_id: Annotated[uuid.UUID | None, msgspec.Meta(
        description="scope user: whose data (absent: the caller's own); must be absent for organization.",
        examples=["0b9e6d8e-4a8c-4a4c-9c1e-2f5d3f1b7a10"])] = None


class ExportBody(msgspec.Struct):
    id: uuid.UUID
    scope: str
    subject_user_id: uuid.UUID | None
    status: str
    requested_by: uuid.UUID
    approval_id: uuid.UUID | None
    requested_at: dt.datetime
    completed_at: dt.datetime | None
    size_bytes: int | None
    sha256: str | None
    expires_at: dt.datetime | None
    error_message: str | None
    file_name: str


class ExportRequestedBody(msgspec.Struct):
    """202: the export (pending), or for the organization's export the approval a checker decides."""

    export: ExportBody | None = None
    pending_approval: ApprovalBody | None = None


def export_body(export: DataExport) -> ExportBody:
    return ExportBody(id=export.id, scope=export.scope.value, subject_user_id=export.subject_user_id,
                      status=export.status.value, requested_by=export.requested_by, approval_id=export.approval_id,
                      requested_at=export.created_at, completed_at=export.completed_at, size_bytes=export.size_bytes,
                      sha256=export.sha256, expires_at=export.expires_at, error_message=export.error_message,
                      file_name=export.download_name)


class PrivacyExportController(Controller):
    path = "/api/privacy/exports"

    @post("/", opt={"permission": "account:self", "rate_limit": ("export", "export_organization"), "errors": {
        403: "PERMISSION_DENIED: another person's export (not an admin), or the organization's (not an admin).",
        404: "NOT_FOUND: no such user in the organization."}},
          status_code=202, sync_to_thread=True, summary="Request a data export")
    def create(self, data: JSONBody[ExportCreate], principal: NamedDependency[Principal],
               container: NamedDependency[Container],
               request_info: NamedDependency[RequestInfo]) -> Response[Success[ExportRequestedBody]]:
        """A person's export is queued at once (low priority) and answered as `pending`; the
        organization's becomes a `data_export` approval (`pending_approval`): a checker other than the
        requester approves it, and then the export is generated. The zip holds a manifest (every
        file's SHA-256 and row count, the schema version) and a README of the format."""
        outcome = request_export(container.privacy, container.workflow, principal, request_info, data.scope,
                                 data.user_id)
        return Response(ok(ExportRequestedBody(
            export=export_body(outcome.export) if outcome.export is not None else None,
            pending_approval=approval_body(outcome.approval) if outcome.approval is not None else None)),
            status_code=202)

    @get("/{export_id:uuid}", opt={"permission": "account:self", "errors": {
        404: "NOT_FOUND: no such export, or not the caller's (its requester, its subject or an admin)."}},
         sync_to_thread=True, summary="Read a data export's status")
    def read(self, export_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
             container: NamedDependency[Container], request_info: NamedDependency[RequestInfo]) -> Success[ExportBody]:
        """The export's status (pending, running, completed, failed), size, SHA-256 and expiry."""
        return ok(export_body(get_export(container.privacy, Caller.of(principal, request_info), export_id)))

    @get("/{export_id:uuid}/download", opt={"permission": "account:self", "errors": {
        404: "NOT_FOUND: no such export, or not the caller's.",
        409: "EXPORT_NOT_READY (not completed yet, or failed) or EXPORT_EXPIRED (past its retention)."}},
         sync_to_thread=True, summary="Link to download a data export")
    def download_link(self, export_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                      container: NamedDependency[Container],
                      request_info: NamedDependency[RequestInfo]) -> Success[DownloadLinkBody]:
        """A link valid for one hour to the export's zip, issued again on each request while the export
        is kept (audited; the download itself is an access event)."""
        link = export_download_url(container.privacy, Caller.of(principal, request_info), export_id)
        return ok(DownloadLinkBody(url=link.url, expires_at=link.expires_at))


ROUTE_HANDLERS = [PrivacyExportController]
