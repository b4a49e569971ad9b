"""ledger_posting_download_url: the journal CSV of an approved `ledger_posting` (written by the
`export_ledger_posting` job, approvals/jobs.py), handed out as a one-hour link.

Readable by whoever may read the approval and by auditors: the `ledger_postings:read` permission
(docs/identity.md). Until the export job has written the file the answer is LEDGER_NOT_EXPORTED.
"""

from __future__ import annotations

import uuid

from reckai.application.approvals.common import WorkflowServices
from reckai.application.context import Outcome, RequestInfo
from reckai.application.errors import Conflict, NotFound, ServiceUnavailable
from reckai.application.files.queries import DownloadLink
from reckai.application.ports.storage import DOWNLOAD_URL_LIFETIME, FileStorage, StorageError
from reckai.domain.approvals.workflow import ApprovalStatus, ApprovalType
from reckai.domain.identity.principal import Principal


class LedgerNotExported(Conflict):
    code = "LEDGER_NOT_EXPORTED"

    def __init__(self, approval_id: uuid.UUID, state: str) -> None:
        super().__init__(f"the ledger posting has no exported file yet ({state})")
        self.approval_id = approval_id
        self.state = state


def ledger_posting_download_url(services: WorkflowServices, storage: FileStorage, principal: Principal,
                                approval_id: uuid.UUID, request: RequestInfo | None = None) -> DownloadLink:
    with services.database.unit_of_work(principal.organization_id) as uow:
        approval = uow.approvals.get(approval_id)
        if approval is None or approval.type is not ApprovalType.LEDGER_POSTING:
            raise NotFound("ledger_posting", approval_id)
        export = approval.metadata.get("export") or {}
        if approval.status is not ApprovalStatus.APPROVED:
            raise LedgerNotExported(approval_id, f"the approval is {approval.status.value}")
        if export.get("status") != "exported" or not export.get("key"):
            raise LedgerNotExported(approval_id, f"export {export.get('status') or 'not queued'}")
        key = str(export["key"])
        try:
            stored = storage.head(key)
            url = storage.download_url(key, expires_in=DOWNLOAD_URL_LIFETIME,
                                       download_name=f"ledger-posting-{approval_id}.csv")
        except StorageError as exc:
            raise ServiceUnavailable("storage", type(exc).__name__) from exc
        expires_at = services.now() + DOWNLOAD_URL_LIFETIME
        services.record(uow, principal, "approval.ledger_posting.download_link_issued", request,
                        organization_id=principal.organization_id, resource_type="approval", resource_id=approval_id,
                        metadata={"size_bytes": stored.size_bytes, "sha256": stored.sha256}, outcome=Outcome.DONE)
        uow.commit()
    return DownloadLink(url=url, expires_at=expires_at)
