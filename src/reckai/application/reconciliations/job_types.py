"""The background jobs of reconciliation (spec §7.2: processing is critical, notifications high)."""

from __future__ import annotations

from reckai.application.ports.jobs import JobType, Queue

# The job's own attempts and lease make redelivery harmless; the outbox's retries only cover a
# handler that could not even record an outcome (database briefly down).
RUN_RECONCILIATION = JobType("run_reconciliation", Queue.CRITICAL, max_attempts=3)
NOTIFY_RECONCILIATION = JobType("notify_reconciliation_job", Queue.HIGH, max_attempts=5)
SWEEP_RECONCILIATIONS = JobType("sweep_reconciliation_jobs", Queue.LOW, max_attempts=2)
