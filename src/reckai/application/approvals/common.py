"""What the workflow use cases (exceptions, approvals, rules) share: their ports, the clock, audit
events, and notifications through the outbox."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reckai.application import job_types
from reckai.application.approvals.handlers import ApprovalHandlers
from reckai.application.errors import NotFound
from reckai.application.identity.common import RequestInfo
from reckai.domain.audit.events import AuditEvent
from reckai.domain.exceptions.policy import WorkflowSettings, parse_workflow_settings
from reckai.domain.identity.permissions import has_permission
from reckai.domain.identity.principal import Principal


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class WorkflowServices:
    database: Any  # Database port; its units of work carry the workflow repositories
    audit_log: Any  # AuditLog port
    job_queue: Any  # JobQueue port (notifications, ledger export)
    password_hasher: Any = None  # user_onboarding: the new account's unusable password
    rule_preview: Any = None  # RulePreview port (application/rules/preview.py) or None
    clock: Callable[[], dt.datetime] = utc_now
    # Approval type -> its feature's handler (application/approvals/handlers.py), filled by bootstrap.
    approval_handlers: ApprovalHandlers = field(default_factory=ApprovalHandlers)

    def now(self) -> dt.datetime:
        return self.clock()

    def record(self, uow: Any, principal: Principal | None, action: str, request: RequestInfo | None, *,
               organization_id: uuid.UUID, resource_type: str, resource_id: uuid.UUID | None,
               metadata: Mapping[str, Any] | None = None, status: int | None = None) -> None:
        request = request or RequestInfo()
        self.audit_log.record(uow, AuditEvent(
            action=action, organization_id=organization_id, user_id=principal.user_id if principal else None,
            resource_type=resource_type, resource_id=resource_id, ip_address=request.ip_address,
            user_agent=request.user_agent, request_method=request.method, request_path=request.path,
            response_status=status, metadata=dict(metadata or {})))

    def notify(self, uow: Any, organization_id: uuid.UUID, event: str, recipients: Iterable[uuid.UUID],
               subject: Mapping[str, Any]) -> None:
        """Queue a notification in the caller's transaction: it is sent only if that commits."""
        users = sorted({str(user) for user in recipients})
        if not users:
            return
        self.job_queue.enqueue(uow, job_types.NOTIFY_WORKFLOW.request(
            {"event": event, "recipients": users, "subject": dict(subject)}, organization_id=organization_id))


def workflow_settings(uow: Any, organization_id: uuid.UUID) -> WorkflowSettings:
    organization = uow.organizations.get(organization_id)
    if organization is None:
        raise NotFound("organization", organization_id)
    return parse_workflow_settings(organization.settings or {})


def eligible_checkers(uow: Any, exclude: uuid.UUID | None = None) -> list[uuid.UUID]:
    """Active users of the organization whose role may decide approvals (never the requester)."""
    return [user.id for user in uow.users.list(is_active=True, limit=10_000)
            if has_permission(user.role, "approvals:approve") and user.id != exclude]
