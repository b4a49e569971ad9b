"""Reports (spec: the `reports` table). So far only the `report_generation` approval type: approving
a request authorises it (stamps the time); generating the report is issue #11's work.

Registered in bootstrap (`ApprovalHandlers`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reckai.application.approvals.handlers import ApprovalHandler
from reckai.application.context import RequestInfo
from reckai.application.ports.workflow import WorkflowUnitOfWork
from reckai.domain.approvals.workflow import Approval, ApprovalEffect
from reckai.domain.identity.principal import Principal


def report_generation_handler() -> ApprovalHandler:
    def apply(uow: WorkflowUnitOfWork, checker: Principal, approval: Approval,
              request: RequestInfo | None) -> ApprovalEffect:
        now = approval.reviewed_at
        assert now is not None
        approval.metadata = {**approval.metadata, "authorised_at": now.isoformat()}
        return ApprovalEffect("report_authorised", "approval", approval.id,
                              {"report_type": approval.metadata["report_type"]})

    def subject(uow: WorkflowUnitOfWork, may: Callable[[str], bool], approval: Approval) -> dict[str, Any]:
        return {}

    def snapshot(uow: WorkflowUnitOfWork, approval: Approval) -> dict[str, Any]:
        return {key: approval.metadata.get(key) for key in ("report_type", "format", "job_id", "parameters")}

    return ApprovalHandler(apply=apply, subject=subject, snapshot=snapshot)
