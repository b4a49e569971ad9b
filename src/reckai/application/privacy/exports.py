"""Requesting, reading and downloading data exports (POST/GET /api/privacy/exports; docs/privacy.md,
"Export"), and the `data_export` approval type.

- A person's export (`scope: user`): by the person themself or an admin; anyone else is refused
  (403, audited). Stored as `pending` and its generation queued (low queue) in one transaction.
- The organization's export (`scope: organization`): an admin requests it; it becomes a
  `data_export` approval, and only a checker's approval (never the requester's own: the workflow
  refuses self-approval) creates the export and queues its generation, in the decision's
  transaction. The export's id is derived from the approval's, so approving cannot make two.
- Reading an export's status and its download link: its requester, its subject, or an admin;
  anyone else gets 404 (an id does not reveal an export). The link is the storage's (one hour),
  issued again on each request while the export is kept; each issue is audited, and the download
  itself is an access event (`access.export.download`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reckai.application.approvals.common import WorkflowServices
from reckai.application.approvals.handlers import ApprovalHandler
from reckai.application.approvals.requests import request_approval
from reckai.application.context import Caller, Outcome, RequestInfo
from reckai.application.errors import (
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    ValidationFailed,
)
from reckai.application.files.queries import DownloadLink
from reckai.application.ports.privacy import PrivacyUnitOfWork, privacy_unit_of_work
from reckai.application.ports.storage import DOWNLOAD_URL_LIFETIME, StorageError
from reckai.application.ports.workflow import WorkflowUnitOfWork
from reckai.application.privacy.services import GENERATE_DATA_EXPORT, PrivacyServices, export_event
from reckai.domain.approvals.workflow import Approval, ApprovalEffect, InvalidApproval
from reckai.domain.identity.principal import Principal
from reckai.domain.ingestion.storage_keys import export_key
from reckai.domain.privacy.exports import DataExport, ExportScope, ExportStatus

ADMIN = "admin"
# The export created by approving `approval_id` has this id.
_EXPORT_IDS = uuid.UUID("a3c5e0d2-9b14-4f0e-8e61-3f7d2c9b8a40")


class ExportNotReady(Conflict):
    code = "EXPORT_NOT_READY"


class ExportExpired(Conflict):
    code = "EXPORT_EXPIRED"


@dataclass(frozen=True)
class ExportRequested:
    export: DataExport | None = None  # queued at once (a person's export)
    approval: Approval | None = None  # or waiting for a checker (the organization's)


def export_id_for(approval_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(_EXPORT_IDS, str(approval_id))


def new_export(organization_id: uuid.UUID, scope: ExportScope, subject_user_id: uuid.UUID | None,
               requested_by: uuid.UUID, now: dt.datetime, *, export_id: uuid.UUID | None = None,
               approval_id: uuid.UUID | None = None) -> DataExport:
    export_id = export_id or uuid.uuid4()
    return DataExport(id=export_id, organization_id=organization_id, scope=scope, subject_user_id=subject_user_id,
                      requested_by=requested_by, approval_id=approval_id,
                      storage_path=export_key(organization_id, export_id, now.date()), created_at=now,
                      updated_at=now)


def queue_export(uow: PrivacyUnitOfWork, services: PrivacyServices, export: DataExport) -> DataExport:
    """Store the pending export and queue its generation in the same transaction (the caller commits)."""
    stored = uow.data_exports.add(export)
    services.job_queue.enqueue(uow, GENERATE_DATA_EXPORT.request({"export_id": str(export.id)},
                                                                 organization_id=export.organization_id))
    return stored


def _refuse(services: PrivacyServices, caller: Caller, scope: str, subject: uuid.UUID | None, why: str) -> None:
    services.audit_log.record_independently(export_event(
        caller, "privacy.export.requested", None, outcome=Outcome.DENIED, scope=scope,
        subject_user_id=str(subject) if subject else None, reason=why))


def request_export(services: PrivacyServices, workflow: WorkflowServices, principal: Principal,
                   request_info: RequestInfo, scope: str, user_id: uuid.UUID | None) -> ExportRequested:
    caller = Caller.of(principal, request_info)
    if scope == ExportScope.USER.value:
        subject = user_id or principal.user_id
        if subject != principal.user_id and principal.role != ADMIN:
            _refuse(services, caller, scope, subject, "not the person themself nor an admin")
            raise PermissionDenied("privacy:export", "a person's data export is for that person or an admin")
        now = services.now()
        with services.database.unit_of_work(principal.organization_id) as uow:
            person = uow.users.get(subject)
            if person is None:
                raise NotFound("user", subject)
            export = queue_export(uow, services, new_export(principal.organization_id, ExportScope.USER, subject,
                                                            principal.user_id, now))
            services.audit_log.record(uow, export_event(
                caller, "privacy.export.requested", export.id, outcome=Outcome.ACCEPTED, scope=scope,
                subject_user_id=str(subject)))
            uow.commit()
        return ExportRequested(export=export)
    if scope == ExportScope.ORGANIZATION.value:
        if user_id is not None:
            raise ValidationFailed([FieldError("user_id", "an organization export names no user")])
        if principal.role != ADMIN:
            _refuse(services, caller, scope, None, "only an admin may request the organization's export")
            raise PermissionDenied("privacy:export", "only an admin may request the organization's data export")
        try:
            approval = request_approval(
                workflow, principal, type="data_export", title="Data export: the whole organization",
                description="Export every record of the organization (settings, users, rules, files, normalized "
                            "data, jobs, exceptions, comments, approvals, reports, the audit log) into one zip.",
                metadata={"scope": scope}, request=request_info)
        except InvalidApproval as exc:
            raise ValidationFailed([FieldError(k.removeprefix("metadata."), v) for k, v in exc.details.items()],
                                   exc.message) from None
        with services.database.unit_of_work(principal.organization_id) as uow:
            services.audit_log.record(uow, export_event(
                caller, "privacy.export.requested", None, outcome=Outcome.ACCEPTED, scope=scope,
                approval_id=str(approval.id)))
            uow.commit()
        return ExportRequested(approval=approval)
    raise ValidationFailed([FieldError("scope", "must be user or organization")])


def get_export(services: PrivacyServices, caller: Caller, export_id: uuid.UUID) -> DataExport:
    with services.database.unit_of_work(caller.organization_id) as uow:
        export = uow.data_exports.get(export_id)
    if export is None or not (caller.role == ADMIN or caller.user_id in (export.requested_by, export.subject_user_id)):
        raise NotFound("data_export", export_id)
    return export


def export_download_url(services: PrivacyServices, caller: Caller, export_id: uuid.UUID) -> DownloadLink:
    """A link valid for one hour (spec §6.3), issued again on each request while the export is kept."""
    export = get_export(services, caller, export_id)
    now = services.now()
    if export.status is ExportStatus.EXPIRED:
        raise ExportExpired(f"export {export.id} expired at {export.expires_at}; request a new one")
    if export.status is not ExportStatus.COMPLETED:
        raise ExportNotReady(f"export {export.id} is {export.status.value}; only a completed export can be "
                             "downloaded")
    if not export.downloadable(now):
        raise ExportExpired(f"export {export.id} expired at {export.expires_at}; request a new one")
    try:
        url = services.storage.download_url(export.storage_path, expires_in=DOWNLOAD_URL_LIFETIME,
                                            download_name=export.download_name)
    except StorageError as exc:
        raise ServiceUnavailable("storage", type(exc).__name__) from exc
    with services.database.unit_of_work(caller.organization_id) as uow:
        services.audit_log.record(uow, export_event(
            caller, "privacy.export.download_link_issued", export.id, outcome=Outcome.DONE, scope=export.scope.value,
            size_bytes=export.size_bytes, sha256=export.sha256))
        uow.commit()
    return DownloadLink(url=url, expires_at=now + DOWNLOAD_URL_LIFETIME)


def data_export_handler(services: PrivacyServices) -> ApprovalHandler:
    """`data_export`: approving creates the organization's export and queues it (low priority)."""

    def apply(uow: WorkflowUnitOfWork, checker: Principal, approval: Approval,
              request: RequestInfo | None) -> ApprovalEffect:
        now = approval.reviewed_at
        assert now is not None
        privacy_uow = privacy_unit_of_work(uow)
        export_id = export_id_for(approval.id)
        if privacy_uow.data_exports.get(export_id) is None:
            queue_export(privacy_uow, services, new_export(
                approval.organization_id, ExportScope.ORGANIZATION, None, approval.requested_by, now,
                export_id=export_id, approval_id=approval.id))
        approval.metadata = {**approval.metadata, "export_id": str(export_id)}
        return ApprovalEffect("data_export_authorised", "data_export", export_id, {"scope": "organization"})

    def subject(uow: WorkflowUnitOfWork, may: Callable[[str], bool], approval: Approval) -> dict[str, Any]:
        export_id = approval.metadata.get("export_id")
        if not export_id:
            return {}
        export = privacy_unit_of_work(uow).data_exports.get(uuid.UUID(str(export_id)))
        if export is None:
            return {}
        return {"data_export": {"id": str(export.id), "scope": export.scope.value, "status": export.status.value}}

    def snapshot(uow: WorkflowUnitOfWork, approval: Approval) -> dict[str, Any]:
        return {"scope": approval.metadata.get("scope")}

    return ApprovalHandler(apply=apply, subject=subject, snapshot=snapshot)
