"""The background jobs of reconciliation (docs/reconciliation-jobs.md); bootstrap registers them.

- `run_reconciliation_job` (critical queue): one attempt of one job. The payload names the attempt;
  a message for another attempt, or a duplicate, does nothing (the job row decides).
- `notify_reconciliation_job` (high queue): mails the job's creator that it completed or failed.
- `sweep_reconciliation_jobs` (low queue, periodic): takes back jobs whose worker died.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

from reckai.application.ports.jobs import JobDelivery
from reckai.application.reconciliations.services import ReconciliationServices
from reckai.application.reconciliations.worker import (
    notify_job_creator,
    run_reconciliation_attempt,
    sweep_stuck_jobs,
)

_log = logging.getLogger("reckai.reconciliation")

# Dramatiq time limits, seconds.
RUN_TIME_LIMIT_SECONDS = 3600
NOTIFY_TIME_LIMIT_SECONDS = 60
SWEEP_TIME_LIMIT_SECONDS = 300


def worker_identity() -> str:
    """Unique per attempt run: host, process, and a random part (a thread may run many jobs)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def run_reconciliation_job(services: ReconciliationServices, delivery: JobDelivery) -> None:
    if delivery.organization_id is None:
        raise ValueError("a reconciliation job message must name its organization")
    job_id = uuid.UUID(str(delivery.payload["job_id"]))
    attempt = int(delivery.payload["attempt"])
    outcome = run_reconciliation_attempt(services, delivery.organization_id, job_id, attempt, worker_identity())
    _log.info("reconciliation attempt finished", extra={
        "action": "reconciliation.attempt", "resource_type": "reconciliation_job", "resource_id": str(job_id),
        "metadata": {"attempt": attempt, "outcome": outcome, "outbox_id": str(delivery.outbox_id)}})


def notify_reconciliation_job(services: ReconciliationServices, delivery: JobDelivery) -> None:
    if delivery.organization_id is None:
        raise ValueError("a notification message must name its organization")
    notify_job_creator(services, delivery.organization_id, uuid.UUID(str(delivery.payload["job_id"])))


def sweep_reconciliation_jobs(services: ReconciliationServices, delivery: JobDelivery) -> None:
    done = sweep_stuck_jobs(services)
    if any(done.values()):
        _log.info("reconciliation sweep", extra={"action": "reconciliation.sweep", "metadata": done})
