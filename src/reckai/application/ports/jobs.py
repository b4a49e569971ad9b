"""Background jobs: the transactional outbox, the relay that feeds the broker, and the workers.

How a job travels (docs/jobs.md has the whole story):

1. A use case calls `JobQueue.enqueue(uow, job)` inside its unit of work. That only writes an
   outbox row in the same transaction: a rollback means there never was a job, and no worker can
   see the job before the transaction that created its rows has committed.
2. A relay (`reckai.application.outbox.relay_due_messages`) claims committed, due rows through the
   `OutboxRelayStore` (the system path: `FOR UPDATE SKIP LOCKED`, so several relays can run at
   once) and hands each to the `JobDispatcher` (the broker: one Dramatiq queue per priority).
3. A worker receives a `JobDelivery`, runs the job's handler in its own unit of work and records
   the outcome on the row: `done`, or `pending` again after a short backoff while attempts remain,
   or `failed` with `last_error` when they are spent. Retries are bounded by `max_attempts`.

Delivery is at least once: a message can arrive twice (a relay that lost its commit, a broker that
redelivers a dead worker's message). Handlers are therefore idempotent, and a delivery whose row is
already finished or was superseded by a newer attempt is dropped before the handler runs.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from reckai.application.ports.health import HealthReport
from reckai.application.ports.unit_of_work import UnitOfWork


class Queue(str, Enum):
    """Spec §7.2 priorities. Each is its own broker queue with its own workers (docs/jobs.md), so a
    flood of low-priority work can never hold up critical work."""

    CRITICAL = "critical"  # reconciliation processing
    HIGH = "high"  # exception notifications, mail
    MEDIUM = "medium"  # report generation
    LOW = "low"  # data cleanup, sweepers


QUEUES_BY_PRIORITY: tuple[Queue, ...] = (Queue.CRITICAL, Queue.HIGH, Queue.MEDIUM, Queue.LOW)

# 1 run + 3 retries. Anything longer than a few minutes of retrying hides an outage; the row then
# says `failed` with the last error, and an operator (or a sweeper) decides.
DEFAULT_MAX_ATTEMPTS = 4
MAX_PAYLOAD_BYTES = 64 * 1024
_ACTOR_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


class OutboxStatus(str, Enum):
    PENDING = "pending"
    DISPATCHED = "dispatched"
    DONE = "done"
    FAILED = "failed"


class JobError(Exception):
    """Base of every job-port error."""


class InvalidJob(JobError):
    """The job cannot be enqueued as given (unknown type, wrong queue, payload not JSON or too big).
    Raised before anything is written."""

    def __init__(self, actor_name: str, reason: str) -> None:
        super().__init__(f"job {actor_name!r} cannot be enqueued: {reason}")
        self.actor_name = actor_name
        self.reason = reason


class BrokerUnavailable(JobError):
    """The broker (Redis, or the in-process worker) cannot accept or deliver messages right now."""


class UnknownActor(JobError):
    def __init__(self, actor_name: str) -> None:
        super().__init__(f"no worker handler is registered for job {actor_name!r}")
        self.actor_name = actor_name


@dataclass(frozen=True)
class JobType:
    """A kind of job: the handler name the workers know it by, its queue and its retry budget."""

    name: str
    queue: Queue
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def __post_init__(self) -> None:
        if not _ACTOR_NAME.match(self.name):
            raise InvalidJob(self.name, "a job name is lower_snake_case, at most 100 characters")
        if not 1 <= self.max_attempts <= 10:
            raise InvalidJob(self.name, "max_attempts must be between 1 and 10")

    def request(
        self,
        payload: Mapping[str, Any] | None = None,
        *,
        organization_id: uuid.UUID | None = None,
        delay_seconds: int = 0,
    ) -> JobRequest:
        return JobRequest(
            job_type=self,
            payload=dict(payload or {}),
            organization_id=organization_id,
            delay_seconds=delay_seconds,
        )


@dataclass(frozen=True)
class JobRequest:
    """One job to enqueue. `organization_id` is the tenant the job works for (None: system work
    such as sweepers); the worker's unit of work runs under that tenant."""

    job_type: JobType
    payload: dict[str, Any] = field(default_factory=dict)
    organization_id: uuid.UUID | None = None
    delay_seconds: int = 0

    def validate(self) -> str:
        """Check the request and return the payload as JSON text; raise InvalidJob otherwise."""
        name = self.job_type.name
        if self.delay_seconds < 0 or self.delay_seconds > 7 * 86400:
            raise InvalidJob(name, "delay_seconds must be between 0 and 7 days")
        try:
            text = json.dumps(self.payload, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidJob(name, f"payload is not plain JSON ({exc})") from exc
        if len(text.encode()) > MAX_PAYLOAD_BYTES:
            raise InvalidJob(name, f"payload is larger than {MAX_PAYLOAD_BYTES} bytes; store data, pass ids")
        return text


@dataclass(frozen=True)
class OutboxMessage:
    """A claimed outbox row, ready to be sent; `attempt` is the attempt this dispatch is."""

    id: uuid.UUID
    organization_id: uuid.UUID | None
    queue: Queue
    actor_name: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int


@dataclass(frozen=True)
class OutboxRecord:
    """The full state of one outbox row, for checks, tests and operators."""

    id: uuid.UUID
    organization_id: uuid.UUID | None
    queue: Queue
    actor_name: str
    payload: dict[str, Any]
    status: OutboxStatus
    attempts: int
    max_attempts: int
    available_at: datetime
    dispatched_at: datetime | None
    completed_at: datetime | None
    last_error: str | None
    created_at: datetime | None = None


@dataclass(frozen=True)
class JobDelivery:
    """What a worker receives: enough to find the row again and to run the handler."""

    outbox_id: uuid.UUID
    attempt: int
    organization_id: uuid.UUID | None
    actor_name: str
    payload: dict[str, Any]

    @classmethod
    def of(cls, message: OutboxMessage) -> JobDelivery:
        return cls(message.id, message.attempt, message.organization_id, message.actor_name, message.payload)


class JobQueue(Protocol):
    """What use cases call to start background work."""

    def enqueue(self, uow: UnitOfWork, job: JobRequest) -> uuid.UUID:
        """Write `job` into the outbox inside `uow`'s transaction and return the outbox id.

        Nothing reaches a worker before `uow` commits; if it rolls back, the job never existed.
        Raises InvalidJob (nothing written) for an unknown job type, a queue that differs from the
        type's queue, or a payload that is not plain JSON or is too large.
        """
        ...

    def enqueue_periodic(self, uow: UnitOfWork, job: JobRequest, period_seconds: int) -> uuid.UUID | None:
        """Like `enqueue`, unless a job of the same type and organization was enqueued less than
        `period_seconds` ago; then write nothing and return None.

        Concurrent callers (several worker processes running the same schedule) are serialised, so
        one period yields one job however many schedulers run.
        """
        ...


class OutboxRelayStore(Protocol):
    """The system side of the outbox (crosses tenants; Postgres: the SECURITY DEFINER functions)."""

    def claim_and_dispatch(
        self, limit: int, stale_after_seconds: int | None, dispatch: DispatchBatch
    ) -> ClaimOutcome:
        """Claim up to `limit` due messages, hand them to `dispatch` and commit the claim only if
        `dispatch` returned normally.

        Due means `pending` with `available_at` reached and attempts left, or (when
        `stale_after_seconds` is given) `dispatched` that long ago with no outcome recorded. Claiming
        marks the row `dispatched` and counts an attempt. Rows another relay is claiming are
        skipped, never waited for, so several relays may run at once.

        Messages `dispatch` rejects (no handler for them) are recorded as failed attempts in the same
        transaction, with a backoff. If `dispatch` raises, the claim is rolled back (rows stay as
        they were, no attempt spent) and the error propagates.
        """
        ...

    def fail_exhausted(self, stale_after_seconds: int) -> int:
        """Mark `failed` every message dispatched more than `stale_after_seconds` ago, with no
        outcome and no attempts left (its worker died each time); return how many."""
        ...

    def mark_done(self, outbox_id: uuid.UUID) -> bool:
        """Record success. False if the row is unknown or already finished (a duplicate delivery)."""
        ...

    def mark_failed(self, outbox_id: uuid.UUID, error: str, retry_after_seconds: int) -> OutboxStatus | None:
        """Record a failed attempt: `pending` again after `retry_after_seconds` while attempts
        remain, else `failed` for good; `error` is kept as `last_error`. Returns the new status
        (None if the row is unknown or already finished)."""
        ...

    def get(self, outbox_id: uuid.UUID, organization_id: uuid.UUID | None) -> OutboxRecord | None:
        """The row as the tenant `organization_id` sees it (None: system rows), or None."""
        ...


@dataclass(frozen=True)
class ClaimOutcome:
    dispatched: int
    rejected: int


class DispatchBatch(Protocol):
    def __call__(self, messages: list[OutboxMessage]) -> dict[uuid.UUID, str]:
        """Send every message to the broker; return the ones that cannot be routed (id -> reason).
        Raise BrokerUnavailable when the broker cannot take them (the claim is then rolled back)."""
        ...


class JobDispatcher(Protocol):
    """The broker side: sends claimed messages to the queue workers consume."""

    def dispatch(self, message: OutboxMessage) -> None:
        """Put `message` on its queue. Raises UnknownActor if no handler is declared for it and
        BrokerUnavailable if the broker cannot take it."""
        ...


class WorkerRunner(Protocol):
    """The job machinery of one process: queue workers, the outbox relay and the scheduler."""

    def start(self) -> None:
        """Start consuming, relaying and scheduling in background threads; idempotent."""
        ...

    def stop(self) -> None:
        """Stop taking work, let running jobs finish (bounded wait) and stop every thread."""
        ...

    def health(self) -> HealthReport:
        """Whether the broker answers and the worker threads are alive."""
        ...
