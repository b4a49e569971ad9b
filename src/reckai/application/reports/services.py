"""What the report use cases need, built once by the composition root (`container.reports`)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from reckai.application.audit_personal import PersonalData
from reckai.application.context import Caller, Outcome, audit_event
from reckai.application.ports.audit import AuditLog
from reckai.application.ports.clock import Clock
from reckai.application.ports.jobs import JobQueue, JobType, Queue
from reckai.application.ports.reports import ReportFigures, ReportRenderers, ReportsUnitOfWork
from reckai.application.ports.storage import FileStorage
from reckai.application.ports.unit_of_work import Database
from reckai.domain.audit.chain import AuditSigner
from reckai.domain.audit.events import AuditEvent

# spec §7: report generation is a medium-priority job; removing expired files is housekeeping.
GENERATE_REPORT = JobType("generate_report", Queue.MEDIUM, max_attempts=3)
EXPIRE_REPORTS = JobType("expire_reports", Queue.LOW, max_attempts=2)
GENERATE_TIME_LIMIT_SECONDS = 1800
EXPIRE_TIME_LIMIT_SECONDS = 600
EXPIRE_PERIOD_SECONDS = 3600


@dataclass(frozen=True)
class ReportServices:
    database: Database[ReportsUnitOfWork]
    storage: FileStorage
    audit_log: AuditLog
    job_queue: JobQueue
    clock: Clock
    figures: ReportFigures
    renderers: ReportRenderers
    audit_signer: AuditSigner  # the audit report verifies the hash chain over its period
    personal: PersonalData  # the audit report shows personal values opened, or [erased] (docs/privacy.md)

    def now(self) -> dt.datetime:
        return self.clock()


def report_event(caller: Caller, action: str, report_id: uuid.UUID | None, *, outcome: Outcome | None = None,
                 **metadata: Any) -> AuditEvent:
    return audit_event(action, caller.request, organization_id=caller.organization_id, user_id=caller.user_id,
                       resource_type="report", resource_id=report_id, outcome=outcome,
                       metadata=metadata or None)
