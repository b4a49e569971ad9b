"""Job handlers (the Dramatiq actors' bodies): thin, each decodes its payload and calls a use case.

A handler receives the container the worker process bootstrapped once at start, and opens its own
unit of work through it (never one handed over from the code that enqueued the job). Handlers are
idempotent: at-least-once delivery means any of them may run twice for one job.

To add a job: declare its JobType in `reckai.application.job_types`, write the handler here and
add it to HANDLERS. Enqueueing a job type that is not listed here is refused at enqueue time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reckai.adapters.dramatiq.runtime import DEFAULT_TIME_LIMIT_SECONDS, ActorSpec
from reckai.application import job_types, maintenance
from reckai.application.outbox import JobHandler
from reckai.application.ports.jobs import JobDelivery, JobType, Queue
from reckai.entrypoints.worker import reconciliation, sla

_log = logging.getLogger("reckai.jobs")


def cleanup_expired_sessions(container: Any, delivery: JobDelivery) -> None:
    deleted = maintenance.delete_expired_sessions(container.components["database"])
    _log.info(
        "expired sessions deleted",
        extra={"action": "sessions.cleanup", "metadata": {"deleted": deleted, "outbox_id": str(delivery.outbox_id)}},
    )


def sweep_orphaned_file_objects(container: Any, delivery: JobDelivery) -> None:
    from reckai.application.files.sweeper import sweep_orphaned_objects

    report = sweep_orphaned_objects(container.components["database"], container.components["storage"])
    _log.info(
        "orphaned file objects swept",
        extra={"action": "file.sweep", "metadata": {"examined": report.examined, "deleted": len(report.deleted),
                                                    "failed": len(report.failed),
                                                    "outbox_id": str(delivery.outbox_id)}},
    )


@dataclass(frozen=True)
class Handler:
    job_type: JobType
    run: Callable[[Any, JobDelivery], None]
    time_limit_seconds: int = DEFAULT_TIME_LIMIT_SECONDS

    @property
    def actor(self) -> ActorSpec:
        return ActorSpec(self.job_type.name, self.job_type.queue, self.time_limit_seconds)


HANDLERS: tuple[Handler, ...] = (
    Handler(job_types.CLEANUP_EXPIRED_SESSIONS, cleanup_expired_sessions, time_limit_seconds=300),
    Handler(job_types.SWEEP_ORPHANED_FILE_OBJECTS, sweep_orphaned_file_objects, time_limit_seconds=600),
    *(Handler(job_type, run, time_limit_seconds=limit) for job_type, run, limit in reconciliation.HANDLER_SPECS),
    Handler(job_types.ESCALATE_OVERDUE_EXCEPTIONS, sla.escalate_overdue_exceptions, time_limit_seconds=300),
    Handler(job_types.NOTIFY_WORKFLOW, sla.notify_workflow, time_limit_seconds=60),
    Handler(job_types.EXPORT_LEDGER_POSTING, sla.export_ledger_posting, time_limit_seconds=120),
)


def known_jobs(handlers: tuple[Handler, ...] = HANDLERS) -> dict[str, Queue]:
    """Job name -> queue, for the JobQueue adapters' enqueue-time check."""
    return {handler.job_type.name: handler.job_type.queue for handler in handlers}


def bind_handlers(container: Any, handlers: tuple[Handler, ...] = HANDLERS) -> dict[str, JobHandler]:
    """Job name -> callable(delivery) bound to this process's container."""
    from dramatiq.middleware import TimeLimitExceeded

    def bound(handler: Handler) -> JobHandler:
        def run(delivery: JobDelivery) -> None:
            try:
                handler.run(container, delivery)
            except TimeLimitExceeded as exc:
                # Dramatiq interrupts a hung job with a BaseException; make it an ordinary,
                # recorded failure so the outbox row says why.
                raise JobTimedOut(handler.job_type.name, handler.time_limit_seconds) from exc

        return run

    return {handler.job_type.name: bound(handler) for handler in handlers}


class JobTimedOut(Exception):
    def __init__(self, job_name: str, limit_seconds: int) -> None:
        super().__init__(f"job {job_name!r} exceeded its time limit of {limit_seconds} s")
        self.job_name = job_name
        self.limit_seconds = limit_seconds
