"""In-memory job outbox (JobQueue + OutboxRelayStore) for unit tests and in-process apps.

It keeps the real adapter's promises, and the same contract tests run over both
(tests/unit/test_jobs_outbox_contract.py, tests/integration/test_jobs_postgres.py):

- a message written inside a unit of work becomes visible only when that unit of work commits and
  vanishes if it rolls back. The unit of work must therefore offer `on_commit(callback)` and
  `on_rollback(callback)` (the memory unit of work does); enqueueing on one that cannot say when it
  ends is refused rather than silently made non-transactional;
- a claim is all-or-nothing: if dispatching raises, the rows go back as they were;
- rows being claimed by one relay are skipped by another.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from reckai.application.ports.jobs import (
    ClaimOutcome,
    DispatchBatch,
    InvalidJob,
    JobQueue,
    JobRequest,
    OutboxMessage,
    OutboxRecord,
    OutboxRelayStore,
    OutboxStatus,
    Queue,
)

_MAX_ERROR_CHARS = 4000


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class InMemoryOutbox:
    def __init__(
        self,
        known_jobs: dict[str, Queue] | None = None,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        # Job name -> queue. None accepts any job type (tests of the outbox alone).
        self._known_jobs = known_jobs
        self._clock = clock
        self._lock = threading.RLock()
        self._rows: dict[uuid.UUID, OutboxRecord] = {}
        self._created: dict[uuid.UUID, dt.datetime] = {}
        self._claiming: set[uuid.UUID] = set()
        self._periodic_lock = threading.Lock()

    # --- JobQueue ------------------------------------------------------------------------

    def enqueue(self, uow: Any, job: JobRequest) -> uuid.UUID:
        record = self._new_record(uow, job)
        self._stage(uow, record)
        return record.id

    def enqueue_periodic(self, uow: Any, job: JobRequest, period_seconds: int) -> uuid.UUID | None:
        record = self._new_record(uow, job)
        # Held until the unit of work ends, as the transaction-scoped advisory lock is in Postgres.
        self._periodic_lock.acquire()
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                self._periodic_lock.release()

        try:
            since = self._clock() - dt.timedelta(seconds=period_seconds)
            with self._lock:
                recent = any(
                    row.actor_name == job.job_type.name
                    and row.organization_id == job.organization_id
                    and self._created[row.id] > since
                    for row in self._rows.values()
                )
            if recent:
                release()
                return None
            self._stage(uow, record, on_end=release)
        except BaseException:
            release()
            raise
        return record.id

    def _new_record(self, uow: Any, job: JobRequest) -> OutboxRecord:
        job.validate()
        name = job.job_type.name
        if self._known_jobs is not None:
            queue = self._known_jobs.get(name)
            if queue is None:
                raise InvalidJob(name, "no worker handles this job type")
            if queue is not job.job_type.queue:
                raise InvalidJob(name, f"it runs on queue {queue.value!r}, not {job.job_type.queue.value!r}")
        tenant = getattr(uow, "organization_id", job.organization_id)
        if tenant != job.organization_id:
            raise InvalidJob(name, "the job's organization is not the unit of work's tenant")
        now = self._clock()
        return OutboxRecord(
            id=uuid.uuid4(),
            organization_id=job.organization_id,
            queue=job.job_type.queue,
            actor_name=name,
            payload=dict(job.payload),
            status=OutboxStatus.PENDING,
            attempts=0,
            max_attempts=job.job_type.max_attempts,
            available_at=now + dt.timedelta(seconds=job.delay_seconds),
            dispatched_at=None,
            completed_at=None,
            last_error=None,
        )

    def _stage(self, uow: Any, record: OutboxRecord, on_end: Callable[[], None] | None = None) -> None:
        on_commit = getattr(uow, "on_commit", None)
        on_rollback = getattr(uow, "on_rollback", None)
        if on_commit is None or on_rollback is None:
            raise TypeError("the in-memory outbox needs a unit of work with on_commit/on_rollback")
        created = self._clock()

        def publish() -> None:
            with self._lock:
                self._rows[record.id] = record
                self._created[record.id] = created
            if on_end:
                on_end()

        on_commit(publish)
        if on_end:
            on_rollback(on_end)

    # --- OutboxRelayStore ----------------------------------------------------------------

    def claim_and_dispatch(
        self, limit: int, stale_after_seconds: int | None, dispatch: DispatchBatch
    ) -> ClaimOutcome:
        now = self._clock()
        with self._lock:
            due = [
                row
                for row in self._rows.values()
                if row.id not in self._claiming and row.attempts < row.max_attempts and self._is_due(
                    row, now, stale_after_seconds
                )
            ]
            due.sort(key=lambda row: (row.available_at, self._created[row.id]))
            claimed = due[: max(limit, 0)]
            self._claiming.update(row.id for row in claimed)
        try:
            messages = [
                OutboxMessage(
                    id=row.id,
                    organization_id=row.organization_id,
                    queue=row.queue,
                    actor_name=row.actor_name,
                    payload=dict(row.payload),
                    attempt=row.attempts + 1,
                    max_attempts=row.max_attempts,
                )
                for row in claimed
            ]
            # Like the claim's transaction: the rows change only if dispatching returns.
            rejected = dispatch(messages) if messages else {}
            with self._lock:
                for row in claimed:
                    current = self._rows[row.id]
                    self._rows[row.id] = replace(
                        current, status=OutboxStatus.DISPATCHED, dispatched_at=now, attempts=current.attempts + 1
                    )
                for outbox_id, reason in rejected.items():
                    self._fail_attempt(outbox_id, reason, 2)
        finally:
            with self._lock:
                self._claiming.difference_update(row.id for row in claimed)
        return ClaimOutcome(dispatched=len(claimed) - len(rejected), rejected=len(rejected))

    @staticmethod
    def _is_due(row: OutboxRecord, now: dt.datetime, stale_after_seconds: int | None) -> bool:
        if row.status is OutboxStatus.PENDING:
            return row.available_at <= now
        if row.status is OutboxStatus.DISPATCHED and stale_after_seconds is not None:
            return row.dispatched_at is not None and row.dispatched_at < now - dt.timedelta(
                seconds=stale_after_seconds
            )
        return False

    def fail_exhausted(self, stale_after_seconds: int) -> int:
        now = self._clock()
        failed = 0
        with self._lock:
            for row in list(self._rows.values()):
                if (
                    row.status is OutboxStatus.DISPATCHED
                    and row.attempts >= row.max_attempts
                    and row.dispatched_at is not None
                    and row.dispatched_at < now - dt.timedelta(seconds=stale_after_seconds)
                ):
                    self._rows[row.id] = replace(
                        row,
                        status=OutboxStatus.FAILED,
                        completed_at=now,
                        last_error=_lost_error(row.attempts, row.last_error),
                    )
                    failed += 1
        return failed

    def mark_done(self, outbox_id: uuid.UUID) -> bool:
        with self._lock:
            row = self._rows.get(outbox_id)
            if row is None or row.status not in (OutboxStatus.PENDING, OutboxStatus.DISPATCHED):
                return False
            self._rows[outbox_id] = replace(row, status=OutboxStatus.DONE, completed_at=self._clock(), last_error=None)
            return True

    def mark_failed(self, outbox_id: uuid.UUID, error: str, retry_after_seconds: int) -> OutboxStatus | None:
        with self._lock:
            return self._fail_attempt(outbox_id, error, retry_after_seconds)

    def _fail_attempt(self, outbox_id: uuid.UUID, error: str, retry_after_seconds: int) -> OutboxStatus | None:
        row = self._rows.get(outbox_id)
        if row is None or row.status not in (OutboxStatus.PENDING, OutboxStatus.DISPATCHED):
            return None
        now = self._clock()
        if row.attempts >= row.max_attempts:
            updated = replace(row, status=OutboxStatus.FAILED, completed_at=now, last_error=error[:_MAX_ERROR_CHARS])
        else:
            updated = replace(
                row,
                status=OutboxStatus.PENDING,
                available_at=now + dt.timedelta(seconds=max(retry_after_seconds, 0)),
                last_error=error[:_MAX_ERROR_CHARS],
            )
        self._rows[outbox_id] = updated
        return updated.status

    def get(self, outbox_id: uuid.UUID, organization_id: uuid.UUID | None) -> OutboxRecord | None:
        with self._lock:
            row = self._rows.get(outbox_id)
        if row is None or row.organization_id != organization_id:
            return None
        return row

    # --- for tests and operators -------------------------------------------------------------

    def records(self) -> list[OutboxRecord]:
        with self._lock:
            return sorted(self._rows.values(), key=lambda row: self._created[row.id])


def _lost_error(attempts: int, last_error: str | None) -> str:
    text = f"no outcome recorded after {attempts} attempt(s): the worker was lost each time"
    return f"{text}; last error: {last_error}" if last_error else text


if TYPE_CHECKING:

    def _fits_queue(outbox: InMemoryOutbox) -> JobQueue:
        return outbox

    def _fits_store(outbox: InMemoryOutbox) -> OutboxRelayStore:
        return outbox
