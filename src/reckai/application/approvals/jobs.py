"""Background work of the workflow: send queued notifications, export approved ledger postings.

Both are idempotent (at-least-once delivery): a notification sent twice is a duplicate e-mail,
never a lost one; an export rewrites the same object and marks the same approval.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

from reckai.application import job_types
from reckai.application.approvals.common import WorkflowServices
from reckai.application.approvals.handlers import ApprovalHandler
from reckai.application.context import RequestInfo
from reckai.application.errors import NotFound
from reckai.application.exceptions.exceptions import exception_subject
from reckai.application.ports.jobs import JobDelivery
from reckai.application.ports.mail import Mailer, OutgoingMail
from reckai.application.ports.storage import FileStorage
from reckai.application.ports.workflow import WorkflowUnitOfWork
from reckai.domain.approvals.workflow import Approval, ApprovalEffect, ApprovalStatus, ApprovalType
from reckai.domain.exports.cells import safe_csv_writer
from reckai.domain.identity.principal import Principal
from reckai.domain.ingestion.storage_keys import organization_prefix

_SUBJECTS = {
    "approval.requested": "An approval is waiting for your decision",
    "approval.approved": "Your approval request was approved",
    "approval.declined": "Your approval request was declined",
    "exception.assigned": "Exceptions were assigned to you",
    "exception.sla_escalated": "Exceptions passed their SLA and were escalated",
}


def send_notification(services: WorkflowServices, mailer: Any, organization_id: uuid.UUID,
                      payload: dict[str, Any], public_base_url: str = "") -> int:
    """Mail each recipient who is still an active user of the organization; returns how many."""
    event = str(payload.get("event"))
    subject = payload.get("subject") or {}
    base = f"{public_base_url}".rstrip("/")
    sent = 0
    with services.database.unit_of_work(organization_id) as uow:
        users = [uow.users.get(uuid.UUID(user_id)) for user_id in payload.get("recipients", [])]
        if event.startswith("approval."):
            lines, base = _approval_lines(uow, subject, base)
        else:
            lines = [f"{key}: {value}" for key, value in sorted(subject.items())]
    for user in users:
        if user is None or not user.is_active:
            continue
        body = "\n".join([f"Hello {user.name},", "", _SUBJECTS.get(event, event), "", *lines, "", base])
        mailer.send(OutgoingMail(to=user.email, subject=f"ReckAI: {_SUBJECTS.get(event, event)}", text_body=body))
        sent += 1
    return sent


def _approval_lines(uow: WorkflowUnitOfWork, subject: dict[str, Any], base: str) -> tuple[list[str], str]:
    """An approval mail says what kind of request it is, how much is at stake (a band), who asked,
    and where to decide it; never the subject's data (accounts, narrations, names of customers):
    the checker reads those signed in, on GET /api/approvals/:id."""
    lines = [f"Type: {str(subject.get('type', '')).replace('_', ' ')}"]
    if subject.get("amount_band"):
        lines.append(f"Amount: {subject['amount_band']}")
    requester = None
    if subject.get("requested_by"):
        requester = uow.users.get(uuid.UUID(str(subject["requested_by"])))
    if requester is not None:
        lines.append(f"Requested by: {requester.name}")
    return lines, f"{base}/api/approvals/{subject.get('approval_id', '')}"


def ledger_export_key(organization_id: uuid.UUID, approval_id: uuid.UUID) -> str:
    return f"{organization_prefix(organization_id)}ledger-postings/{approval_id}.csv"


def export_ledger_posting(services: WorkflowServices, storage: Any, organization_id: uuid.UUID,
                          approval_id: uuid.UUID) -> str | None:
    """Write the approved posting's journal (CSV) to storage and mark the approval exported."""
    with services.database.unit_of_work(organization_id) as uow:
        approval = uow.approvals.get_for_update(approval_id)
        if approval is None or approval.type is not ApprovalType.LEDGER_POSTING \
                or approval.status is not ApprovalStatus.APPROVED:
            return None
        meta = approval.metadata
        out = io.StringIO()
        # narrations are free text: no formulas; "\r\n" ends a row, so a cell holding a bare "\r" is quoted
        writer = safe_csv_writer(out, lineterminator="\r\n")
        writer.writerow(["approval_id", "line", "account", "direction", "amount_minor", "currency", "value_date",
                         "narration"])
        for index, entry in enumerate(meta["entries"], start=1):
            writer.writerow([approval.id, index, entry["account"], entry["direction"], entry["amount_minor"],
                             meta["currency"], meta.get("value_date") or "", entry.get("narration") or ""])
        key = ledger_export_key(organization_id, approval_id)
        storage.put(key, [out.getvalue().encode("utf-8")], content_type="text/csv")
        approval.metadata = {**meta, "export": {"status": "exported", "key": key,
                                                "exported_at": services.now().isoformat()}}
        uow.approvals.update(approval)
        uow.commit()
        return key


# --- the jobs as bootstrap registers them (payload decoding only) ---


def notify_workflow_job(services: WorkflowServices, mailer: Mailer, public_base_url: str,
                        delivery: JobDelivery) -> None:
    """The `notify_workflow` job (high queue)."""
    if delivery.organization_id is None:
        return
    send_notification(services, mailer, delivery.organization_id, dict(delivery.payload), public_base_url)


def export_ledger_posting_job(services: WorkflowServices, storage: FileStorage, delivery: JobDelivery) -> None:
    """The `export_ledger_posting` job (medium queue)."""
    if delivery.organization_id is None:
        return
    export_ledger_posting(services, storage, delivery.organization_id, uuid.UUID(delivery.payload["approval_id"]))


# --- the `ledger_posting` approval type (registered in bootstrap) ---


def ledger_posting_handler(services: WorkflowServices) -> ApprovalHandler:
    def check(uow: WorkflowUnitOfWork, metadata: dict[str, Any]) -> None:
        if "exception_id" in metadata and uow.exceptions.get(uuid.UUID(metadata["exception_id"])) is None:
            raise NotFound("exception", metadata["exception_id"])

    def apply(uow: WorkflowUnitOfWork, checker: Principal, approval: Approval,
              request: RequestInfo | None) -> ApprovalEffect:
        now = approval.reviewed_at
        assert now is not None
        services.job_queue.enqueue(uow, job_types.EXPORT_LEDGER_POSTING.request(
            {"approval_id": str(approval.id)}, organization_id=approval.organization_id))
        approval.metadata = {**approval.metadata, "export": {"status": "queued", "queued_at": now.isoformat()}}
        return ApprovalEffect("ledger_export_queued", "approval", approval.id,
                              {"entries": len(approval.metadata["entries"])})

    def snapshot(uow: WorkflowUnitOfWork, approval: Approval) -> dict[str, Any]:
        """The posting's lines and, when it names one, the exception it clears as it stands."""
        meta = approval.metadata
        item = uow.exceptions.get(uuid.UUID(meta["exception_id"])) if meta.get("exception_id") else None
        return {"currency": meta.get("currency"), "value_date": meta.get("value_date"),
                "entries": meta.get("entries"), "total_minor": meta.get("total_minor"),
                "exception": item.material() if item is not None else None}

    return ApprovalHandler(apply=apply, check=check, subject=exception_subject, snapshot=snapshot)
