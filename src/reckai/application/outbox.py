"""Use cases of the job outbox: relay committed messages to the broker, run a delivered job and
record its outcome, enqueue periodic jobs. docs/jobs.md explains the flow and its guarantees."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reckai.application.ports.jobs import (
    ClaimOutcome,
    JobDelivery,
    JobDispatcher,
    JobQueue,
    JobRequest,
    OutboxMessage,
    OutboxRelayStore,
    OutboxStatus,
    UnknownActor,
)
from reckai.application.ports.unit_of_work import UnitOfWork

_log = logging.getLogger("reckai.jobs")

RELAY_BATCH_SIZE = 50
# A message dispatched this long ago with no outcome recorded is presumed lost (its worker died,
# the broker lost it) and is dispatched again while attempts remain. Jobs that legitimately run
# longer than this are harmless to redeliver (handlers are idempotent; long jobs hold a lease).
DEFAULT_STALE_AFTER_SECONDS = 30 * 60
MAX_ERROR_CHARS = 4000

JobHandler = Callable[[JobDelivery], None]


def retry_delay_seconds(attempt: int) -> int:
    """Backoff before attempt `attempt + 1`: 2 s, 4 s, 8 s ... capped at one minute."""
    return int(min(60, 2 ** max(1, attempt)))


def relay_due_messages(
    store: OutboxRelayStore,
    dispatcher: JobDispatcher,
    *,
    batch_size: int = RELAY_BATCH_SIZE,
    stale_after_seconds: int | None = DEFAULT_STALE_AFTER_SECONDS,
) -> ClaimOutcome:
    """Move one batch of committed, due outbox messages to the broker.

    Raises BrokerUnavailable when the broker refuses: the batch's claim is then rolled back, so
    the messages stay pending and keep their attempts. Messages sent before the failure in the same
    batch will be sent again by a later run; the worker-side check and idempotent handlers make
    that harmless.
    """

    def send(messages: list[OutboxMessage]) -> dict[uuid.UUID, str]:
        rejected: dict[uuid.UUID, str] = {}
        for message in messages:
            try:
                dispatcher.dispatch(message)
            except UnknownActor as exc:
                # An API newer than its workers, for example; retried with backoff, then failed.
                rejected[message.id] = str(exc)
        return rejected

    outcome = store.claim_and_dispatch(batch_size, stale_after_seconds, send)
    if outcome.rejected:
        _log.warning(
            "outbox messages without a handler",
            extra={"action": "jobs.relay_rejected", "metadata": {"count": outcome.rejected}},
        )
    return outcome


def relay_until_drained(
    store: OutboxRelayStore,
    dispatcher: JobDispatcher,
    *,
    batch_size: int = RELAY_BATCH_SIZE,
    stale_after_seconds: int | None = DEFAULT_STALE_AFTER_SECONDS,
    max_batches: int = 100,
) -> int:
    """Relay batches until one comes back short; return how many messages were dispatched."""
    total = 0
    for _ in range(max_batches):
        outcome = relay_due_messages(
            store, dispatcher, batch_size=batch_size, stale_after_seconds=stale_after_seconds
        )
        total += outcome.dispatched
        if outcome.dispatched + outcome.rejected < batch_size:
            break
    return total


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one delivery: `ran` says whether the handler was called."""

    ran: bool
    status: OutboxStatus | None
    reason: str = ""


def run_delivered_job(
    delivery: JobDelivery,
    store: OutboxRelayStore,
    handlers: Mapping[str, JobHandler],
    retry_delay: Callable[[int], int] = retry_delay_seconds,
) -> DeliveryResult:
    """Run the handler for one delivery and record the outcome on its outbox row.

    A delivery is dropped, without running anything, when its row is gone, already finished, or
    has since been dispatched again (a newer attempt owns it). A handler error is recorded as a
    failed attempt (`pending` again after a backoff, or `failed` when attempts are spent); it does
    not propagate. Only a failure to *record* the outcome propagates, so the broker retries the
    delivery a few times (docs/jobs.md).
    """
    record = store.get(delivery.outbox_id, delivery.organization_id)
    if record is None:
        return DeliveryResult(ran=False, status=None, reason="outbox row not found")
    if record.status in (OutboxStatus.DONE, OutboxStatus.FAILED):
        return DeliveryResult(ran=False, status=record.status, reason=f"already {record.status.value}")
    if record.attempts > delivery.attempt:
        return DeliveryResult(ran=False, status=record.status, reason="superseded by a newer attempt")

    handler = handlers.get(delivery.actor_name)
    if handler is None:
        status = store.mark_failed(
            delivery.outbox_id, str(UnknownActor(delivery.actor_name)), retry_delay(delivery.attempt)
        )
        return DeliveryResult(ran=False, status=status, reason="no handler")
    try:
        handler(delivery)
    except Exception as exc:  # noqa: BLE001 - every handler failure becomes a recorded, bounded retry
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        status = store.mark_failed(delivery.outbox_id, error, retry_delay(delivery.attempt))
        level = logging.ERROR if status is OutboxStatus.FAILED else logging.WARNING
        _log.log(
            level,
            "job failed",
            extra={
                "action": "jobs.failed" if status is OutboxStatus.FAILED else "jobs.retry",
                "resource_type": "outbox_message",
                "resource_id": str(delivery.outbox_id),
                "organization_id": str(delivery.organization_id) if delivery.organization_id else None,
                "metadata": {"job": delivery.actor_name, "attempt": delivery.attempt, "error": error[:500]},
            },
        )
        return DeliveryResult(ran=True, status=status, reason=error)
    store.mark_done(delivery.outbox_id)
    return DeliveryResult(ran=True, status=OutboxStatus.DONE)


@dataclass(frozen=True)
class PeriodicJob:
    """A sweeper: `job` is enqueued (through the outbox) once every `period_seconds`."""

    job: JobRequest
    period_seconds: int


def enqueue_periodic_jobs(
    open_uow: Callable[[], UnitOfWork], job_queue: JobQueue, schedule: list[PeriodicJob]
) -> list[uuid.UUID]:
    """Enqueue every periodic job whose period has elapsed; one transaction per job.

    `open_uow` opens a system unit of work (no tenant). Safe to call from many processes at once:
    `enqueue_periodic` serialises them, so each period yields one job.
    """
    enqueued = []
    for entry in schedule:
        with open_uow() as uow:
            outbox_id = job_queue.enqueue_periodic(uow, entry.job, entry.period_seconds)
            uow.commit()
        if outbox_id is not None:
            enqueued.append(outbox_id)
    return enqueued
