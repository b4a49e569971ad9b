"""What the workflow use cases (exceptions, approvals, rules) share: their ports, the clock, audit
events, and notifications through the outbox."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from reckai.application import job_types
from reckai.application.approvals.handlers import ApprovalHandlers
from reckai.application.context import Outcome, RequestInfo, audit_event
from reckai.application.errors import NotFound
from reckai.application.ports.audit import AuditLog
from reckai.application.ports.clock import Clock
from reckai.application.ports.jobs import JobQueue
from reckai.application.ports.reconciliations import JobsUnitOfWork
from reckai.application.ports.security import PasswordHasher
from reckai.application.ports.unit_of_work import Database
from reckai.application.ports.workflow import RowAmounts, WorkflowUnitOfWork
from reckai.application.rules.preview import JobRulePreview
from reckai.domain.exceptions.policy import WorkflowSettings, parse_workflow_settings
from reckai.domain.identity.permissions import has_permission
from reckai.domain.identity.principal import Principal


class WorkflowJobsUnitOfWork(WorkflowUnitOfWork, JobsUnitOfWork, Protocol):
    """The workflow reads the jobs its exceptions came from (rule previews, manual links)."""


@dataclass(frozen=True)
class WorkflowServices:
    database: Database[WorkflowJobsUnitOfWork]
    audit_log: AuditLog
    job_queue: JobQueue  # notifications, ledger export
    password_hasher: PasswordHasher  # user_onboarding: the new account's unusable password
    clock: Clock
    rule_preview: JobRulePreview | None = None  # the impact of a rule change on a completed job
    row_amounts: RowAmounts | None = None  # stored amounts of source rows (manual matching, closing rule)
    # Approval type -> its feature's handler (application/approvals/handlers.py), filled by bootstrap.
    approval_handlers: ApprovalHandlers = field(default_factory=ApprovalHandlers)

    def now(self) -> dt.datetime:
        return self.clock()

    def record(self, uow: WorkflowUnitOfWork, principal: Principal | None, action: str, request: RequestInfo | None, *,
               organization_id: uuid.UUID, resource_type: str, resource_id: uuid.UUID | None,
               metadata: Mapping[str, Any] | None = None, outcome: Outcome | None = None) -> None:
        """Audit a workflow action in the caller's transaction (the one builder, application/context.py)."""
        self.audit_log.record(uow, audit_event(
            action, request, organization_id=organization_id, user_id=principal.user_id if principal else None,
            resource_type=resource_type, resource_id=resource_id, outcome=outcome, metadata=dict(metadata or {})))

    def notify(self, uow: WorkflowUnitOfWork, organization_id: uuid.UUID, event: str, recipients: Iterable[uuid.UUID],
               subject: Mapping[str, Any]) -> None:
        """Queue a notification in the caller's transaction: it is sent only if that commits."""
        users = sorted({str(user) for user in recipients})
        if not users:
            return
        self.job_queue.enqueue(uow, job_types.NOTIFY_WORKFLOW.request(
            {"event": event, "recipients": users, "subject": dict(subject)}, organization_id=organization_id))


def workflow_settings(uow: WorkflowUnitOfWork, organization_id: uuid.UUID) -> WorkflowSettings:
    organization = uow.organizations.get(organization_id)
    if organization is None:
        raise NotFound("organization", organization_id)
    return parse_workflow_settings(organization.settings or {})


def eligible_checkers(uow: WorkflowUnitOfWork, exclude: uuid.UUID | None = None) -> list[uuid.UUID]:
    """Active users of the organization whose role may decide approvals (never the requester)."""
    return [user.id for user in uow.users.list(is_active=True, limit=10_000)
            if has_permission(user.role, "approvals:approve") and user.id != exclude]
