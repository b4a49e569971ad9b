"""What the reconciliation use cases need: their ports, built once by the composition root
(`container.reconciliations`), and the audit events of jobs."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reckai.application.context import Caller, Outcome, audit_event
from reckai.application.ports.audit import AuditLog
from reckai.application.ports.clock import Clock
from reckai.application.ports.files import NormalizedFile
from reckai.application.ports.jobs import JobQueue
from reckai.application.ports.mail import Mailer
from reckai.application.ports.reconciliations import JobMatchingEngine, JobsUnitOfWork, RowFinder
from reckai.application.ports.storage import FileStorage
from reckai.application.ports.stream_schedules import CronCalendar
from reckai.application.ports.streams import StreamEngine
from reckai.application.ports.unit_of_work import Database
from reckai.application.reconciliations.policy import ReconciliationSettings
from reckai.domain.audit.events import AuditEvent


@dataclass(frozen=True)
class ReconciliationServices:
    database: Database[JobsUnitOfWork]
    storage: FileStorage
    audit_log: AuditLog
    job_queue: JobQueue
    engine: JobMatchingEngine
    clock: Clock
    settings: ReconciliationSettings = field(default_factory=ReconciliationSettings)
    # (organization, file) -> its NormalizedFile: the file feature's normalize step (bootstrap wires it)
    normalize_file: Callable[[uuid.UUID, uuid.UUID], NormalizedFile] | None = None
    mailer: Mailer | None = None
    # a stream run's input and result (issue 15; adapters/polars/stream_runs.py); bootstrap wires it
    stream_engine: StreamEngine | None = None
    # the rows of a normalized file a results-page search finds (bootstrap wires the polars reader)
    row_finder: RowFinder | None = None
    # reads stream schedules' cron expressions (issue 15 item 5; adapters/cronsim); bootstrap wires it
    cron_calendar: CronCalendar | None = None

    def now(self) -> dt.datetime:
        return self.clock()


def job_event(caller: Caller, action: str, job_id: uuid.UUID, *, outcome: Outcome | None = None,
              **metadata: Any) -> AuditEvent:
    """An audited action of a user on a reconciliation job."""
    return audit_event(action, caller.request, organization_id=caller.organization_id, user_id=caller.user_id,
                       resource_type="reconciliation_job", resource_id=job_id, outcome=outcome,
                       metadata=metadata or None)


def system_event(action: str, organization_id: uuid.UUID, job_id: uuid.UUID, **metadata: Any) -> AuditEvent:
    """An event of the worker or the sweeper (no user acted)."""
    return audit_event(action, None, organization_id=organization_id, resource_type="reconciliation_job",
                       resource_id=job_id, metadata=metadata or None)
