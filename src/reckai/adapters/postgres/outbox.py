"""PostgreSQL job outbox: `outbox_messages` (migration 0001) and its system functions.

- `PostgresJobQueue.enqueue` INSERTs as the app role inside the caller's unit of work, so the row
  (and thus the job) exists only if that transaction commits. Row-level security admits it only for
  the unit of work's tenant (or a system row, organization NULL, when no tenant is bound).
- `PostgresOutboxStore` is the relay's side. Rows of every tenant are claimed and finished through
  SECURITY DEFINER functions owned by reckai_system (`outbox_claim_due`, `outbox_mark_done`,
  `outbox_mark_failed`, `outbox_fail_exhausted`): the app role itself can only SELECT and INSERT.
  The claim takes `FOR UPDATE SKIP LOCKED`, so concurrent relays never wait for or double-claim a
  row; it commits only after the messages were handed to the broker.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from reckai.adapters.postgres.transaction import PostgresTransaction
from reckai.application.ports.jobs import (
    ClaimOutcome,
    DispatchBatch,
    InvalidJob,
    JobError,
    JobQueue,
    JobRequest,
    OutboxMessage,
    OutboxRecord,
    OutboxRelayStore,
    OutboxStatus,
    Queue,
)
from reckai.application.ports.unit_of_work import Database, UnitOfWork

_INSERT = text(
    "INSERT INTO outbox_messages (id, organization_id, queue, actor_name, payload, max_attempts, available_at)"
    " VALUES (:id, :organization_id, :queue, :actor_name, CAST(:payload AS jsonb), :max_attempts,"
    " now() + make_interval(secs => :delay))"
)
# Serialises periodic enqueues of one job type across processes until the transaction ends.
_PERIODIC_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended('reckai.outbox.periodic:' || :name, 0))")
_RECENT = text(
    "SELECT 1 FROM outbox_messages WHERE actor_name = :name"
    " AND organization_id IS NOT DISTINCT FROM :organization_id"
    " AND created_at > now() - make_interval(secs => :period) LIMIT 1"
)
_CLAIM = text(
    "SELECT id, organization_id, queue, actor_name, payload, attempts, max_attempts"
    " FROM outbox_claim_due(:limit, :stale)"
)
_MARK_DONE = text("SELECT outbox_mark_done(:id)")
_MARK_FAILED = text("SELECT outbox_mark_failed(:id, :error, :retry_after)")
_FAIL_EXHAUSTED = text("SELECT outbox_fail_exhausted(:stale)")
_GET = text(
    "SELECT id, organization_id, queue, actor_name, payload, status, attempts, max_attempts, available_at,"
    " dispatched_at, completed_at, last_error, created_at FROM outbox_messages WHERE id = :id"
)


class OutboxStoreError(JobError):
    """The outbox table could not be read or written (database down, permissions)."""


def _transaction_of(uow: UnitOfWork) -> PostgresTransaction:
    if not isinstance(uow, PostgresTransaction):
        raise TypeError("PostgresJobQueue needs a PostgreSQL unit of work")
    return uow


class PostgresJobQueue:
    def __init__(self, known_jobs: Mapping[str, Queue] | None = None) -> None:
        # Job name -> queue, from the worker's handler registry. None accepts any job type.
        self._known_jobs = known_jobs

    def enqueue(self, uow: UnitOfWork, job: JobRequest) -> uuid.UUID:
        transaction = _transaction_of(uow)
        payload = self._validate(transaction, job)
        return self._insert(transaction.connection, job, payload)

    def enqueue_periodic(self, uow: UnitOfWork, job: JobRequest,
                         period_seconds: int) -> uuid.UUID | None:
        transaction = _transaction_of(uow)
        payload = self._validate(transaction, job)
        connection = transaction.connection
        connection.execute(_PERIODIC_LOCK, {"name": job.job_type.name})
        recent = connection.execute(
            _RECENT,
            {"name": job.job_type.name, "organization_id": job.organization_id, "period": period_seconds},
        ).first()
        if recent is not None:
            return None
        return self._insert(connection, job, payload)

    def _validate(self, uow: PostgresTransaction, job: JobRequest) -> str:
        payload = job.validate()
        name = job.job_type.name
        if self._known_jobs is not None:
            queue = self._known_jobs.get(name)
            if queue is None:
                raise InvalidJob(name, "no worker handles this job type")
            if queue is not job.job_type.queue:
                raise InvalidJob(name, f"it runs on queue {queue.value!r}, not {job.job_type.queue.value!r}")
        if uow.organization_id != job.organization_id:
            raise InvalidJob(name, "the job's organization is not the unit of work's tenant")
        return payload

    @staticmethod
    def _insert(connection: Connection, job: JobRequest, payload: str) -> uuid.UUID:
        outbox_id = uuid.uuid4()
        connection.execute(
            _INSERT,
            {
                "id": outbox_id,
                "organization_id": job.organization_id,
                "queue": job.job_type.queue.value,
                "actor_name": job.job_type.name,
                "payload": payload,
                "max_attempts": job.job_type.max_attempts,
                "delay": job.delay_seconds,
            },
        )
        return outbox_id


class PostgresOutboxStore:
    def __init__(self, database: Database[UnitOfWork]) -> None:
        self._database = database  # PostgresDatabase: units of work bound to a tenant or none

    @contextmanager
    def _transaction(self, organization_id: uuid.UUID | None = None) -> Iterator[Connection]:
        try:
            with self._database.unit_of_work(organization_id) as uow:
                yield _connection_of(uow)
                uow.commit()
        except (DBAPIError, SQLAlchemyError) as exc:
            raise OutboxStoreError(f"outbox unavailable: {type(exc).__name__}") from exc

    def claim_and_dispatch(
        self, limit: int, stale_after_seconds: int | None, dispatch: DispatchBatch
    ) -> ClaimOutcome:
        with self._transaction() as connection:
            rows = connection.execute(_CLAIM, {"limit": limit, "stale": stale_after_seconds}).all()
            messages = [
                OutboxMessage(
                    id=row.id,
                    organization_id=row.organization_id,
                    queue=Queue(row.queue),
                    actor_name=row.actor_name,
                    payload=_json(row.payload),
                    attempt=row.attempts,  # already counted by the claim
                    max_attempts=row.max_attempts,
                )
                for row in rows
            ]
            # BrokerUnavailable (or anything else) propagates: the claim is rolled back.
            rejected = dispatch(messages) if messages else {}
            for outbox_id, reason in rejected.items():
                connection.execute(_MARK_FAILED, {"id": outbox_id, "error": reason, "retry_after": 2})
        return ClaimOutcome(dispatched=len(messages) - len(rejected), rejected=len(rejected))

    def fail_exhausted(self, stale_after_seconds: int) -> int:
        with self._transaction() as connection:
            return int(connection.execute(_FAIL_EXHAUSTED, {"stale": stale_after_seconds}).scalar_one())

    def mark_done(self, outbox_id: uuid.UUID) -> bool:
        with self._transaction() as connection:
            return bool(connection.execute(_MARK_DONE, {"id": outbox_id}).scalar_one())

    def mark_failed(self, outbox_id: uuid.UUID, error: str, retry_after_seconds: int) -> OutboxStatus | None:
        with self._transaction() as connection:
            status = connection.execute(
                _MARK_FAILED, {"id": outbox_id, "error": error, "retry_after": retry_after_seconds}
            ).scalar_one_or_none()
        return OutboxStatus(status) if status else None

    def get(self, outbox_id: uuid.UUID, organization_id: uuid.UUID | None) -> OutboxRecord | None:
        with self._transaction(organization_id) as connection:
            row = connection.execute(_GET, {"id": outbox_id}).first()
        if row is None:
            return None
        return OutboxRecord(
            id=row.id,
            organization_id=row.organization_id,
            queue=Queue(row.queue),
            actor_name=row.actor_name,
            payload=_json(row.payload),
            status=OutboxStatus(row.status),
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            available_at=_utc(row.available_at),
            dispatched_at=_utc(row.dispatched_at) if row.dispatched_at else None,
            completed_at=_utc(row.completed_at) if row.completed_at else None,
            last_error=row.last_error,
            created_at=_utc(row.created_at) if row.created_at else None,
        )


def _connection_of(uow: UnitOfWork) -> Connection:
    if not isinstance(uow, PostgresTransaction):
        raise TypeError("PostgresOutboxStore needs a PostgreSQL database (units of work with .connection)")
    return uow.connection


def _utc(value: dt.datetime) -> dt.datetime:
    # TIMESTAMP columns hold UTC (every session runs in UTC); hand out aware datetimes.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


if TYPE_CHECKING:

    def _fits_queue(queue: PostgresJobQueue) -> JobQueue:
        return queue

    def _fits_store(store: PostgresOutboxStore) -> OutboxRelayStore:
        return store
