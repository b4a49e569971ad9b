"""The reconciliation job: its states, attempts and lease (docs/reconciliation-jobs.md).

    pending ──claim──▶ processing ──complete──▶ completed
       │                  │  │ └──fail──────────▶ failed
       │                  │  └──lease expired──▶ pending (attempt + 1)   or failed (attempts spent)
       └──cancel──▶ cancelled ◀──cancel acknowledged (or lease expired with a cancel requested)

Delivery of the job's message is at least once, so every transition a worker asks for names the
attempt it was given and the lease owner it is: a message for another attempt, or a worker whose
lease was taken over, changes nothing. Standard library only.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import Any

NAME_MAX_CHARS = 255
ERROR_MESSAGE_MAX_CHARS = 2000
DEFAULT_MAX_ATTEMPTS = 3


class JobStatus(str, Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class Stage(str, Enum):
    """The stages a worker reports, with the progress (0-100) reached when each one starts."""

    QUEUED = "queued"
    NORMALIZING = "normalizing"
    LOADING = "loading"
    MATCHING = "matching"
    PERSISTING = "persisting"
    WRITING_OUTPUTS = "writing_outputs"
    FINISHED = "finished"

    @property
    def progress(self) -> int:
        return _STAGE_PROGRESS[self]


_STAGE_PROGRESS = {
    Stage.QUEUED: 0, Stage.NORMALIZING: 5, Stage.LOADING: 25, Stage.MATCHING: 35,
    Stage.PERSISTING: 70, Stage.WRITING_OUTPUTS: 90, Stage.FINISHED: 100,
}


class JobRuleViolation(Exception):
    """Base of the job's domain errors."""


class InvalidJobName(JobRuleViolation):
    def __init__(self, reason: str) -> None:
        super().__init__(f"job name {reason}")
        self.reason = reason


class JobAlreadyFinished(JobRuleViolation):
    """The job is completed, failed or cancelled: it cannot change any more."""

    def __init__(self, job_id: uuid.UUID, status: JobStatus) -> None:
        super().__init__(f"job {job_id} is already {status.value}")
        self.job_id = job_id
        self.status = status


class JobIsRunning(JobRuleViolation):
    """The job is being processed; cancel it first."""

    def __init__(self, job_id: uuid.UUID) -> None:
        super().__init__(f"job {job_id} is being processed; cancel it first")
        self.job_id = job_id


class StaleAttempt(JobRuleViolation):
    """A worker acted for an attempt or lease that is no longer the job's current one."""

    def __init__(self, job_id: uuid.UUID, reason: str) -> None:
        super().__init__(f"job {job_id}: {reason}")
        self.job_id = job_id
        self.reason = reason


class CancelRequested(JobRuleViolation):
    """The job was asked to stop; the worker acknowledges at its next check."""

    def __init__(self, job_id: uuid.UUID) -> None:
        super().__init__(f"job {job_id} was cancelled")
        self.job_id = job_id


@dataclass(frozen=True)
class JobCounts:
    total_rows: int  # rows of both files
    processed_rows: int
    matched_rows: int  # rows in clean (auto) matches, both sides
    exception_rows: int  # rows that exceptions are about, both sides

    @property
    def match_rate(self) -> Decimal:
        return match_rate(self.matched_rows, self.total_rows)


def match_rate(matched_rows: int, total_rows: int) -> Decimal:
    """matched_rows / total_rows × 100, two decimals (spec DECIMAL(5,2)); 0.00 for no rows."""
    if total_rows <= 0:
        return Decimal("0.00")
    return (Decimal(matched_rows) * 100 / Decimal(total_rows)).quantize(Decimal("0.01"), ROUND_HALF_UP)


@dataclass(frozen=True)
class ReconciliationJob:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    created_by: uuid.UUID
    status: JobStatus = JobStatus.PENDING
    progress: int = 0
    total_rows: int = 0
    processed_rows: int = 0
    matched_rows: int = 0
    exception_rows: int = 0
    match_rate: Decimal | None = None
    processing_time_seconds: int | None = None
    error_message: str | None = None
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    attempt: int = 1
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    lease_owner: str | None = None
    lease_expires_at: dt.datetime | None = None
    cancel_requested: bool = False
    snapshot: dict[str, Any] = field(default_factory=dict)
    previous_job_id: uuid.UUID | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    leading_side: str | None = None
    stage: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] | None = None

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


def check_name(name: str) -> str:
    cleaned = " ".join(name.split()) if isinstance(name, str) else ""
    if not cleaned:
        raise InvalidJobName("must not be empty")
    if len(cleaned) > NAME_MAX_CHARS:
        raise InvalidJobName(f"must be at most {NAME_MAX_CHARS} characters")
    return cleaned


def new_job_id(now: dt.datetime) -> uuid.UUID:
    """A UUID of version 7 (RFC 9562): `now` in milliseconds since the epoch, then 74 random bits.

    Ids of jobs created later sort after earlier ones, so a new job's result rows enter the indexes
    led by `job_id` (reconciliation_matches' `(job_id, status, left_row, right_row)`, the exceptions'
    `(job_id)`, `(job_id, left_row)`, `(job_id, right_row)`) at their right edge, where PostgreSQL
    appends to the last leaf without descending the tree and splits full pages 90/10. A random
    (version 4) id put them at a random place: a descent per row and 50/50 splits, about a quarter
    more time for a million match rows (docs/reconciliation-jobs.md, issue 13)."""
    millis = int(now.timestamp() * 1000)
    if not 0 <= millis < 1 << 48:
        raise ValueError(f"{now} is outside the span of a version 7 UUID")
    random_bits = secrets.randbits(74)
    return uuid.UUID(int=millis << 80 | 0x7 << 76 | (random_bits >> 62) << 64 | 0b10 << 62
                     | random_bits & ((1 << 62) - 1))


def new_job(*, job_id: uuid.UUID, organization_id: uuid.UUID, name: str, created_by: uuid.UUID,
            snapshot: dict[str, Any], now: dt.datetime, previous_job_id: uuid.UUID | None = None,
            period: tuple[dt.date, dt.date] | None = None, leading_side: str | None = None,
            max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> ReconciliationJob:
    if leading_side not in (None, "left", "right"):
        raise JobRuleViolation("leading_side must be left, right or null")
    if period is not None and period[1] < period[0]:
        raise JobRuleViolation(f"the period ends ({period[1]}) before it starts ({period[0]})")
    return ReconciliationJob(
        id=job_id, organization_id=organization_id, name=check_name(name), created_by=created_by,
        status=JobStatus.PENDING, snapshot=snapshot, previous_job_id=previous_job_id,
        period_start=period[0] if period else None, period_end=period[1] if period else None,
        leading_side=leading_side, stage=Stage.QUEUED.value, max_attempts=max_attempts,
        created_at=now, updated_at=now,
    )


def rename(job: ReconciliationJob, name: str, now: dt.datetime) -> ReconciliationJob:
    return replace(job, name=check_name(name), updated_at=now)


def check_deletable(job: ReconciliationJob) -> None:
    if job.status is JobStatus.PROCESSING:
        raise JobIsRunning(job.id)


# --- the worker's side: claim, heartbeat, progress, finish -----------------------------------

def claim(job: ReconciliationJob, *, attempt: int, worker: str, now: dt.datetime,
          lease: dt.timedelta) -> ReconciliationJob:
    """Start `attempt` on `worker`. Only a pending job whose current attempt is `attempt` can be
    claimed; anything else (a duplicate or stale message) raises StaleAttempt and changes nothing."""
    if job.status is not JobStatus.PENDING:
        raise StaleAttempt(job.id, f"not pending (status {job.status.value}, attempt {job.attempt})")
    if job.attempt != attempt:
        raise StaleAttempt(job.id, f"message for attempt {attempt}, the job is at attempt {job.attempt}")
    if job.cancel_requested:
        raise CancelRequested(job.id)
    return replace(job, status=JobStatus.PROCESSING, lease_owner=worker, lease_expires_at=now + lease,
                   started_at=job.started_at or now, updated_at=now, error_message=None,
                   progress=Stage.NORMALIZING.progress, stage=Stage.NORMALIZING.value)


def check_holder(job: ReconciliationJob, *, attempt: int, worker: str) -> None:
    """StaleAttempt unless `worker` still holds the lease of `attempt`; CancelRequested when asked."""
    if job.status is not JobStatus.PROCESSING or job.attempt != attempt or job.lease_owner != worker:
        raise StaleAttempt(job.id, f"attempt {attempt} on {worker} no longer holds the job "
                                   f"(status {job.status.value}, attempt {job.attempt})")
    if job.cancel_requested:
        raise CancelRequested(job.id)


def renew_lease(job: ReconciliationJob, *, attempt: int, worker: str, now: dt.datetime,
                lease: dt.timedelta) -> ReconciliationJob:
    """Extend the lease (heartbeat). Raises StaleAttempt when the lease was lost (expired and taken
    over by the sweeper); a requested cancel does not stop the renewal (the worker reads the flag)."""
    if job.status is not JobStatus.PROCESSING or job.attempt != attempt or job.lease_owner != worker:
        raise StaleAttempt(job.id, f"attempt {attempt} on {worker} lost its lease")
    return replace(job, lease_expires_at=now + lease)


def advance(job: ReconciliationJob, *, attempt: int, worker: str, stage: Stage, now: dt.datetime,
            stage_seconds: dict[str, float] | None = None, processed_rows: int | None = None,
            total_rows: int | None = None) -> ReconciliationJob:
    check_holder(job, attempt=attempt, worker=worker)
    return replace(
        job, stage=stage.value, progress=max(job.progress, stage.progress), updated_at=now,
        stage_seconds=dict(stage_seconds) if stage_seconds is not None else job.stage_seconds,
        processed_rows=job.processed_rows if processed_rows is None else processed_rows,
        total_rows=job.total_rows if total_rows is None else total_rows,
    )


def complete(job: ReconciliationJob, *, attempt: int, worker: str, counts: JobCounts, now: dt.datetime,
             stage_seconds: dict[str, float], summary: dict[str, Any]) -> ReconciliationJob:
    check_holder(job, attempt=attempt, worker=worker)
    return replace(
        job, status=JobStatus.COMPLETED, progress=100, stage=Stage.FINISHED.value,
        total_rows=counts.total_rows, processed_rows=counts.processed_rows, matched_rows=counts.matched_rows,
        exception_rows=counts.exception_rows, match_rate=counts.match_rate,
        processing_time_seconds=_elapsed_seconds(job.started_at, now), completed_at=now, updated_at=now,
        lease_owner=None, lease_expires_at=None, stage_seconds=dict(stage_seconds), summary=summary,
        error_message=None,
    )


def fail(job: ReconciliationJob, *, attempt: int, worker: str, message: str, now: dt.datetime,
         stage_seconds: dict[str, float] | None = None) -> ReconciliationJob:
    """The worker gives up with an actionable message. A stale worker cannot fail a job."""
    check_holder_ignoring_cancel(job, attempt=attempt, worker=worker)
    return _failed(job, message, now, stage_seconds)


def check_holder_ignoring_cancel(job: ReconciliationJob, *, attempt: int, worker: str) -> None:
    if job.status is not JobStatus.PROCESSING or job.attempt != attempt or job.lease_owner != worker:
        raise StaleAttempt(job.id, f"attempt {attempt} on {worker} no longer holds the job")


def acknowledge_cancel(job: ReconciliationJob, *, attempt: int, worker: str, now: dt.datetime,
                       stage_seconds: dict[str, float] | None = None) -> ReconciliationJob:
    check_holder_ignoring_cancel(job, attempt=attempt, worker=worker)
    return _cancelled(job, now, stage_seconds)


def _failed(job: ReconciliationJob, message: str, now: dt.datetime,
            stage_seconds: dict[str, float] | None) -> ReconciliationJob:
    text = " ".join(message.split())[:ERROR_MESSAGE_MAX_CHARS] or "the job failed"
    return replace(job, status=JobStatus.FAILED, error_message=text, completed_at=now, updated_at=now,
                   processing_time_seconds=_elapsed_seconds(job.started_at, now), lease_owner=None,
                   lease_expires_at=None, stage_seconds=dict(stage_seconds or job.stage_seconds))


def _cancelled(job: ReconciliationJob, now: dt.datetime,
               stage_seconds: dict[str, float] | None = None) -> ReconciliationJob:
    return replace(job, status=JobStatus.CANCELLED, completed_at=now, updated_at=now, lease_owner=None,
                   lease_expires_at=None, cancel_requested=True,
                   processing_time_seconds=_elapsed_seconds(job.started_at, now),
                   stage_seconds=dict(stage_seconds or job.stage_seconds))


def _elapsed_seconds(started_at: dt.datetime | None, now: dt.datetime) -> int | None:
    if started_at is None:
        return None
    return max(0, round((now - started_at).total_seconds()))


# --- the user's side: cancel -------------------------------------------------------------------

def request_cancel(job: ReconciliationJob, now: dt.datetime) -> ReconciliationJob:
    """A pending job is cancelled at once; a processing one is flagged and its worker stops at its
    next check (within seconds). A finished job raises JobAlreadyFinished."""
    if job.is_finished:
        raise JobAlreadyFinished(job.id, job.status)
    if job.status is JobStatus.PENDING:
        return _cancelled(job, now)
    return replace(job, cancel_requested=True, updated_at=now)


# --- the sweeper's side ------------------------------------------------------------------------

class SweepAction(str, Enum):
    NOTHING = "nothing"
    REQUEUE = "requeue"  # a new attempt, enqueued again
    RESEND = "resend"  # still pending: send the current attempt's message again (duplicates are harmless)
    GIVE_UP = "give_up"  # attempts spent: failed
    CANCEL = "cancel"  # its worker died after a cancel was requested


@dataclass(frozen=True)
class SweepDecision:
    action: SweepAction
    job: ReconciliationJob


def sweep(job: ReconciliationJob, now: dt.datetime, pending_after: dt.timedelta) -> SweepDecision:
    """Decide what to do with a job whose worker may be dead (lease expired) or whose message may
    be lost (pending for longer than `pending_after`)."""
    if job.status is JobStatus.PENDING:
        if job.updated_at is not None and now - job.updated_at < pending_after:
            return SweepDecision(SweepAction.NOTHING, job)
        return SweepDecision(SweepAction.RESEND, replace(job, updated_at=now))
    if job.status is not JobStatus.PROCESSING:
        return SweepDecision(SweepAction.NOTHING, job)
    if job.lease_expires_at is not None and job.lease_expires_at > now:
        return SweepDecision(SweepAction.NOTHING, job)
    if job.cancel_requested:
        return SweepDecision(SweepAction.CANCEL, _cancelled(job, now))
    if job.attempt >= job.max_attempts:
        message = (f"The job was interrupted {job.attempt} times: the worker running it stopped responding "
                   f"(killed, out of memory, or its machine went away) during the "
                   f"'{job.stage or 'unknown'}' stage each time. Retries are spent. Check the workers' "
                   "logs and memory limits, or split the files into smaller periods, then run the "
                   "reconciliation again.")
        return SweepDecision(SweepAction.GIVE_UP, _failed(job, message, now, None))
    return SweepDecision(SweepAction.REQUEUE, replace(
        job, status=JobStatus.PENDING, attempt=job.attempt + 1, lease_owner=None, lease_expires_at=None,
        progress=0, stage=Stage.QUEUED.value, updated_at=now,
        error_message=f"attempt {job.attempt} was interrupted (worker lost); retrying as attempt {job.attempt + 1}",
    ))
