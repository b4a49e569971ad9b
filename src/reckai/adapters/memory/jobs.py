"""In-memory job outbox (JobQueue + OutboxRelayStore) on the memory database, for unit tests and
in-memory containers.

Rows live in the `MemoryDatabase`'s table "outbox_messages" and are written through the caller's
`MemoryUnitOfWork`, so they keep the real adapter's promises, checked by the same contract tests
(tests/unit/test_jobs_outbox_contract.py, tests/integration/test_jobs_postgres.py):

- a message enqueued in a unit of work is visible only after that unit of work commits and is
  gone if it rolls back; a tenant sees only its rows, no tenant only the system rows;
- a claim is all-or-nothing: if dispatching raises, the rows stay as they were;
- rows one relay is claiming are skipped by another, and recording an outcome on such a row waits
  for the claim to end (as the row lock makes it wait in PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from reckai.adapters.clock import utc_now
from reckai.adapters.memory.store import MemoryTransaction
from reckai.adapters.memory.unit_of_work import MemoryDatabase, MemoryUnitOfWork
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
from reckai.application.ports.unit_of_work import UnitOfWork

TABLE = "outbox_messages"
_PERIODIC_LOCKS = "outbox_periodic_locks"
_MAX_ERROR_CHARS = 4000

# System jobs have no organization: like the SQL policy, only a unit of work without tenant sees them.


def _transaction_of(uow: UnitOfWork) -> MemoryTransaction:
    if not isinstance(uow, MemoryTransaction):
        raise TypeError("InMemoryOutbox needs an in-memory unit of work")
    return uow


class InMemoryOutbox:
    def __init__(
        self,
        database: MemoryDatabase,
        known_jobs: Mapping[str, Queue] | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._database = database
        # Job name -> queue (from the worker's handler registry). None accepts any job type.
        self._known_jobs = known_jobs
        self._clock = clock
        self._claims = threading.Condition()
        self._claiming: set[uuid.UUID] = set()

    # --- JobQueue ------------------------------------------------------------------------

    def enqueue(self, uow: UnitOfWork, job: JobRequest) -> uuid.UUID:
        transaction = _transaction_of(uow)
        record = self._new_record(transaction, job)
        transaction.put(TABLE, record.id, record)
        return record.id

    def enqueue_periodic(self, uow: UnitOfWork, job: JobRequest,
                         period_seconds: int) -> uuid.UUID | None:
        transaction = _transaction_of(uow)
        record = self._new_record(transaction, job)
        # Held until the unit of work ends, like the transaction-scoped advisory lock in SQL.
        transaction.lock_row(_PERIODIC_LOCKS, job.job_type.name)
        since = self._clock() - dt.timedelta(seconds=period_seconds)
        for _, row in transaction.rows(TABLE):
            if row.actor_name == job.job_type.name and row.created_at and row.created_at > since:
                return None
        transaction.put(TABLE, record.id, record)
        return record.id

    def _new_record(self, uow: MemoryTransaction, job: JobRequest) -> OutboxRecord:
        job.validate()
        name = job.job_type.name
        if self._known_jobs is not None:
            queue = self._known_jobs.get(name)
            if queue is None:
                raise InvalidJob(name, "no worker handles this job type")
            if queue is not job.job_type.queue:
                raise InvalidJob(name, f"it runs on queue {queue.value!r}, not {job.job_type.queue.value!r}")
        if uow.organization_id != job.organization_id:
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
            created_at=now,
        )

    # --- OutboxRelayStore ----------------------------------------------------------------

    @contextmanager
    def _system(self) -> Iterator[MemoryUnitOfWork]:
        with self._database.unit_of_work(None) as uow:
            yield uow
            uow.commit()

    def claim_and_dispatch(
        self, limit: int, stale_after_seconds: int | None, dispatch: DispatchBatch
    ) -> ClaimOutcome:
        now = self._clock()
        with self._claims:
            with self._system() as uow:
                due = [
                    row
                    for _, row in uow.all_rows(TABLE)
                    if row.id not in self._claiming
                    and row.attempts < row.max_attempts
                    and _is_due(row, now, stale_after_seconds)
                ]
            due.sort(key=lambda row: (row.available_at, row.created_at))
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
            # As in the claim's transaction: the rows change only if dispatching returns.
            rejected = dispatch(messages) if messages else {}
            with self._system() as uow:
                for row in claimed:
                    uow.put(TABLE, row.id, replace(
                        row, status=OutboxStatus.DISPATCHED, dispatched_at=now, attempts=row.attempts + 1
                    ), system=True)
                for outbox_id, reason in rejected.items():
                    self._fail_attempt(uow, outbox_id, reason, 2)
        finally:
            with self._claims:
                self._claiming.difference_update(row.id for row in claimed)
                self._claims.notify_all()
        return ClaimOutcome(dispatched=len(claimed) - len(rejected), rejected=len(rejected))

    @contextmanager
    def _row_unclaimed(self, outbox_id: uuid.UUID) -> Iterator[None]:
        with self._claims:
            while outbox_id in self._claiming:
                self._claims.wait(10)
            yield

    def fail_exhausted(self, stale_after_seconds: int) -> int:
        now = self._clock()
        failed = 0
        with self._claims, self._system() as uow:
            for _, row in list(uow.all_rows(TABLE)):
                if (
                    row.id not in self._claiming
                    and row.status is OutboxStatus.DISPATCHED
                    and row.attempts >= row.max_attempts
                    and row.dispatched_at is not None
                    and row.dispatched_at < now - dt.timedelta(seconds=stale_after_seconds)
                ):
                    uow.put(TABLE, row.id, replace(
                        row, status=OutboxStatus.FAILED, completed_at=now,
                        last_error=_lost_error(row.attempts, row.last_error),
                    ), system=True)
                    failed += 1
        return failed

    def mark_done(self, outbox_id: uuid.UUID) -> bool:
        with self._row_unclaimed(outbox_id), self._system() as uow:
            row = _find(uow, outbox_id)
            if row is None or row.status not in (OutboxStatus.PENDING, OutboxStatus.DISPATCHED):
                return False
            uow.put(TABLE, outbox_id, replace(
                row, status=OutboxStatus.DONE, completed_at=self._clock(), last_error=None
            ), system=True)
            return True

    def mark_failed(self, outbox_id: uuid.UUID, error: str, retry_after_seconds: int) -> OutboxStatus | None:
        with self._row_unclaimed(outbox_id), self._system() as uow:
            return self._fail_attempt(uow, outbox_id, error, retry_after_seconds)

    def _fail_attempt(
        self, uow: MemoryUnitOfWork, outbox_id: uuid.UUID, error: str, retry_after_seconds: int
    ) -> OutboxStatus | None:
        row = _find(uow, outbox_id)
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
        uow.put(TABLE, outbox_id, updated, system=True)
        return updated.status

    def get(self, outbox_id: uuid.UUID, organization_id: uuid.UUID | None) -> OutboxRecord | None:
        with self._database.unit_of_work(organization_id) as uow:
            row: OutboxRecord | None = uow.get(TABLE, outbox_id)
            return row

    def records(self) -> list[OutboxRecord]:
        """Every row of every tenant, oldest first (tests and operators)."""
        with self._database.unit_of_work(None) as uow:
            rows = [row for _, row in uow.all_rows(TABLE)]
        return sorted(rows, key=lambda row: row.created_at or dt.datetime.min.replace(tzinfo=dt.UTC))


def _find(uow: MemoryUnitOfWork, outbox_id: uuid.UUID) -> OutboxRecord | None:
    for key, row in uow.all_rows(TABLE):
        if key == outbox_id:
            record: OutboxRecord = row
            return record
    return None


def _is_due(row: OutboxRecord, now: dt.datetime, stale_after_seconds: int | None) -> bool:
    if row.status is OutboxStatus.PENDING:
        return row.available_at <= now
    if row.status is OutboxStatus.DISPATCHED and stale_after_seconds is not None:
        return row.dispatched_at is not None and row.dispatched_at < now - dt.timedelta(seconds=stale_after_seconds)
    return False


def _lost_error(attempts: int, last_error: str | None) -> str:
    text = f"no outcome recorded after {attempts} attempt(s): the worker was lost each time"
    return f"{text}; last error: {last_error}" if last_error else text


if TYPE_CHECKING:

    def _fits_queue(outbox: InMemoryOutbox) -> JobQueue:
        return outbox

    def _fits_store(outbox: InMemoryOutbox) -> OutboxRelayStore:
        return outbox
