"""Worker handlers of reconciliation jobs (docs/reconciliation-jobs.md).

- `run_reconciliation` (critical queue): one attempt of one job. The payload names the attempt;
  a message for another attempt, or a duplicate, does nothing (the job row decides).
- `notify_reconciliation_job` (high queue): mails the job's creator that it completed or failed.
- `sweep_reconciliation_jobs` (low queue, periodic): takes back jobs whose worker died.

`reckai.entrypoints.worker.actors.HANDLERS` lists these through HANDLER_SPECS.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from typing import Any

from reckai.application.outbox import PeriodicJob
from reckai.application.ports.jobs import JobDelivery, JobType
from reckai.application.reconciliations.job_types import (
    NOTIFY_RECONCILIATION,
    RUN_RECONCILIATION,
    SWEEP_RECONCILIATIONS,
)
from reckai.application.reconciliations.services import ReconciliationServices
from reckai.application.reconciliations.worker import (
    notify_job_creator,
    run_reconciliation_attempt,
    sweep_stuck_jobs,
)

_log = logging.getLogger("reckai.reconciliation")


def worker_identity() -> str:
    """Unique per attempt run: host, process, and a random part (a thread may run many jobs)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def run_reconciliation(container: Any, delivery: JobDelivery) -> None:
    if delivery.organization_id is None:
        raise ValueError("a reconciliation job message must name its organization")
    job_id = uuid.UUID(str(delivery.payload["job_id"]))
    attempt = int(delivery.payload["attempt"])
    services = ReconciliationServices.from_container(container)
    outcome = run_reconciliation_attempt(services, delivery.organization_id, job_id, attempt, worker_identity())
    _log.info("reconciliation attempt finished", extra={
        "action": "reconciliation.attempt", "resource_type": "reconciliation_job", "resource_id": str(job_id),
        "metadata": {"attempt": attempt, "outcome": outcome, "outbox_id": str(delivery.outbox_id)}})


def notify_reconciliation_job(container: Any, delivery: JobDelivery) -> None:
    if delivery.organization_id is None:
        raise ValueError("a notification message must name its organization")
    services = ReconciliationServices.from_container(container)
    notify_job_creator(services, delivery.organization_id, uuid.UUID(str(delivery.payload["job_id"])))


def sweep_reconciliation_jobs(container: Any, delivery: JobDelivery) -> None:
    done = sweep_stuck_jobs(ReconciliationServices.from_container(container))
    if any(done.values()):
        _log.info("reconciliation sweep", extra={"action": "reconciliation.sweep", "metadata": done})


# (job type, handler, Dramatiq time limit in seconds)
HANDLER_SPECS: tuple[tuple[JobType, Callable[[Any, JobDelivery], None], int], ...] = (
    (RUN_RECONCILIATION, run_reconciliation, 3600),
    (NOTIFY_RECONCILIATION, notify_reconciliation_job, 60),
    (SWEEP_RECONCILIATIONS, sweep_reconciliation_jobs, 300),
)


def periodic_jobs(sweep_interval_seconds: int) -> list[PeriodicJob]:
    return [PeriodicJob(SWEEP_RECONCILIATIONS.request(), sweep_interval_seconds)]
