"""What the reconciliation use cases need, gathered from the composition root."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reckai.application.ports.reconciliations import JobMatchingEngine
from reckai.application.ports.storage import FileStorage
from reckai.application.reconciliations.policy import ReconciliationSettings
from reckai.domain.audit.events import AuditEvent


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class ReconciliationServices:
    database: Any  # units of work carry reconciliation_jobs, reconciliation_results, matching_rules, files...
    storage: FileStorage
    audit_log: Any  # ports.audit.AuditLog
    job_queue: Any  # ports.jobs.JobQueue
    engine: JobMatchingEngine
    settings: ReconciliationSettings = field(default_factory=ReconciliationSettings)
    normalize_file: Callable[[uuid.UUID, uuid.UUID], Any] | None = None  # (organization, file) -> NormalizedFile
    mailer: Any = None  # ports.mail.Mailer
    now: Callable[[], dt.datetime] = field(default=_utc_now)



@dataclass(frozen=True)
class Caller:
    """Who is asking (the authenticated user) and from where."""

    organization_id: uuid.UUID
    user_id: uuid.UUID
    ip_address: str | None = None
    user_agent: str | None = None
    request_method: str | None = None
    request_path: str | None = None

    def event(self, action: str, job_id: uuid.UUID, *, status: int | None = None, **metadata: Any) -> AuditEvent:
        return AuditEvent(action=action, organization_id=self.organization_id, user_id=self.user_id,
                          resource_type="reconciliation_job", resource_id=job_id, ip_address=self.ip_address,
                          user_agent=self.user_agent, request_method=self.request_method,
                          request_path=self.request_path, response_status=status, metadata=metadata or None)


def system_event(action: str, organization_id: uuid.UUID, job_id: uuid.UUID, **metadata: Any) -> AuditEvent:
    """An event of the worker or the sweeper (no user acted)."""
    return AuditEvent(action=action, organization_id=organization_id, resource_type="reconciliation_job",
                      resource_id=job_id, metadata=metadata or None)
