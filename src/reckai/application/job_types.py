"""The kinds of background job, by name and queue (spec §7.2). Use cases enqueue these through
`JobQueue`; the worker registry (`reckai.entrypoints.worker.actors`) maps each name to its handler,
and enqueueing a name no handler serves is refused (docs/jobs.md)."""

from __future__ import annotations

from reckai.application.ports.jobs import JobType, Queue

# Low: data cleanup. Idempotent (deleting what is expired twice deletes nothing the second time).
CLEANUP_EXPIRED_SESSIONS = JobType("cleanup_expired_sessions", Queue.LOW, max_attempts=3)
