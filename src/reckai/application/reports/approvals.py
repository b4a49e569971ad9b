"""The `report_generation` approval type (registered in bootstrap, `ApprovalHandlers`).

A report type the organization routes through a checker (`workflow.approval_required_for`:
`report_generation` or `report_generation:<type>`) is requested as this approval by POST
/api/reports (requests.py), or directly by POST /api/approvals; both are checked by
`check_report_request` with the requester's role. Approving it (never by the requester: the
workflow refuses self-approval) creates the report, its id derived from the approval's, and queues
its generation in the decision's transaction; `metadata.report_id` names it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from reckai.application.approvals.common import WorkflowServices
from reckai.application.approvals.handlers import ApprovalHandler
from reckai.application.approvals.requests import announce_request
from reckai.application.approvals.snapshots import stamp_snapshot
from reckai.application.context import RequestInfo
from reckai.application.ports.reports import reports_unit_of_work
from reckai.application.ports.workflow import WorkflowUnitOfWork
from reckai.application.reports.requests import (
    check_report_request,
    new_report,
    organization_report_settings,
    queue_report,
    request_from_metadata,
)
from reckai.application.reports.services import ReportServices
from reckai.domain.approvals.workflow import Approval, ApprovalEffect, ApprovalType
from reckai.domain.identity.principal import Principal

# The report created by approving `approval_id` has this id: approving twice cannot make two.
_REPORT_IDS = uuid.UUID("5b0f3c1e-7d1a-4c55-9d0e-2f6a0b9a1c11")


def report_id_for(approval_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(_REPORT_IDS, str(approval_id))


def report_generation_handler(services: ReportServices, workflow: WorkflowServices) -> ApprovalHandler:
    def propose(principal: Principal, metadata: dict[str, Any], title: str, description: str,
                request: RequestInfo | None) -> Approval:
        # POST /api/approvals with this type: the same check as POST /api/reports, with the maker's role.
        with services.database.unit_of_work(principal.organization_id) as uow:
            now = services.now()
            settings = organization_report_settings(uow, principal.organization_id)
            check_report_request(uow, principal.role, request_from_metadata(metadata), settings, now)
            approval = Approval.request(organization_id=principal.organization_id,
                                        type=ApprovalType.REPORT_GENERATION, title=title, description=description,
                                        metadata=metadata, requested_by=principal.user_id, at=now)
            stamp_snapshot(workflow, uow, approval)
            uow.approvals.add(approval)
            announce_request(workflow, uow, principal, approval, request)
            uow.commit()
            return approval

    def apply(uow: WorkflowUnitOfWork, checker: Principal, approval: Approval,
              request: RequestInfo | None) -> ApprovalEffect:
        now = approval.reviewed_at
        assert now is not None
        # The decision's unit of work is the application's, which carries the reports too.
        reports_uow = reports_unit_of_work(uow)
        requester = reports_uow.users.get(approval.requested_by)
        role = requester.role if requester is not None and requester.is_active else ""
        settings = organization_report_settings(reports_uow, approval.organization_id)
        checked = check_report_request(reports_uow, role, request_from_metadata(approval.metadata), settings, now)
        report_id = report_id_for(approval.id)
        if reports_uow.reports.get(report_id) is None:
            queue_report(services, reports_uow, new_report(approval.organization_id, approval.requested_by, checked,
                                                           now, report_id=report_id, approval_id=approval.id))
        approval.metadata = {**approval.metadata, "authorised_at": now.isoformat(), "report_id": str(report_id)}
        return ApprovalEffect("report_authorised", "report", report_id,
                              {"report_type": checked.type, "format": checked.format})

    def subject(uow: WorkflowUnitOfWork, may: Callable[[str], bool], approval: Approval) -> dict[str, Any]:
        report_id = approval.metadata.get("report_id")
        if not report_id or not may("reports:read"):
            return {}
        report = reports_unit_of_work(uow).reports.get(uuid.UUID(str(report_id)))
        if report is None:
            return {}
        return {"report": {"id": str(report.id), "type": report.type, "format": report.format,
                           "status": report.status.value}}

    def snapshot(uow: WorkflowUnitOfWork, approval: Approval) -> dict[str, Any]:
        return {key: approval.metadata.get(key) for key in ("report_type", "format", "job_id", "parameters")}

    return ApprovalHandler(apply=apply, propose=propose, subject=subject, snapshot=snapshot)
