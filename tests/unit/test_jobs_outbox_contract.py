"""The outbox contract (JobQueue + OutboxRelayStore), run over the in-memory adapter here and over
PostgreSQL in tests/integration/test_jobs_postgres.py, so the fake cannot drift from the real one."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pytest

from reckai.adapters.memory.jobs import InMemoryOutbox
from reckai.adapters.memory.unit_of_work import MemoryDatabase
from reckai.application.ports.jobs import (
    BrokerUnavailable,
    InvalidJob,
    JobQueue,
    JobType,
    OutboxMessage,
    OutboxRelayStore,
    OutboxStatus,
    Queue,
)

NOTIFY = JobType("contract_notify", Queue.HIGH, max_attempts=2)
SWEEP = JobType("contract_sweep", Queue.LOW, max_attempts=3)
KNOWN_JOBS = {NOTIFY.name: NOTIFY.queue, SWEEP.name: SWEEP.queue}


@dataclass
class OutboxEnv:
    queue: JobQueue
    store: OutboxRelayStore
    uow: Callable[[uuid.UUID | None], AbstractContextManager[Any]]
    org_a: uuid.UUID
    org_b: uuid.UUID


class Collect:
    """A dispatcher callback that records what it was given."""

    def __init__(self, fail: bool = False, reject: set[str] | None = None, delay: float = 0.0) -> None:
        self.sent: list[OutboxMessage] = []
        self.fail = fail
        self.reject = reject or set()
        self.delay = delay

    def __call__(self, messages: list[OutboxMessage]) -> dict[uuid.UUID, str]:
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise BrokerUnavailable("broker down (test)")
        self.sent.extend(messages)
        return {m.id: "no handler (test)" for m in messages if m.actor_name in self.reject}


def claim(env: OutboxEnv, limit: int = 100, stale: int | None = None, **kwargs: Any) -> Collect:
    collect = Collect(**kwargs)
    env.store.claim_and_dispatch(limit, stale, collect)
    return collect


def enqueue(env: OutboxEnv, job: Any, organization_id: uuid.UUID | None = None, commit: bool = True) -> uuid.UUID:
    with env.uow(organization_id) as uow:
        outbox_id = env.queue.enqueue(uow, job)
        if commit:
            uow.commit()
    return outbox_id


class OutboxContract:
    """Subclasses provide the `env` fixture."""

    def test_committed_job_is_claimed_once_with_its_payload(self, env: OutboxEnv) -> None:
        outbox_id = enqueue(env, NOTIFY.request({"exception_id": "e-1"}, organization_id=env.org_a), env.org_a)
        first = claim(env)
        assert [(m.id, m.actor_name, m.queue, m.payload, m.attempt, m.organization_id) for m in first.sent] == [
            (outbox_id, NOTIFY.name, Queue.HIGH, {"exception_id": "e-1"}, 1, env.org_a)
        ]
        assert claim(env).sent == []  # dispatched: not due again
        record = env.store.get(outbox_id, env.org_a)
        assert record is not None and record.status is OutboxStatus.DISPATCHED and record.attempts == 1

    def test_rolled_back_job_never_exists(self, env: OutboxEnv) -> None:
        outbox_id = enqueue(env, SWEEP.request(), commit=False)
        assert claim(env).sent == []
        assert env.store.get(outbox_id, None) is None

    def test_job_is_invisible_to_relays_until_its_transaction_commits(self, env: OutboxEnv) -> None:
        with env.uow(None) as uow:
            outbox_id = env.queue.enqueue(uow, SWEEP.request({"n": 1}))
            assert claim(env).sent == []
            uow.commit()
        assert [m.id for m in claim(env).sent] == [outbox_id]

    def test_broker_failure_rolls_the_claim_back_without_spending_an_attempt(self, env: OutboxEnv) -> None:
        outbox_id = enqueue(env, SWEEP.request())
        with pytest.raises(BrokerUnavailable):
            claim(env, fail=True)
        record = env.store.get(outbox_id, None)
        assert record is not None and record.status is OutboxStatus.PENDING and record.attempts == 0
        assert [m.attempt for m in claim(env).sent] == [1]

    def test_done_is_final(self, env: OutboxEnv) -> None:
        outbox_id = enqueue(env, SWEEP.request())
        claim(env)
        assert env.store.mark_done(outbox_id) is True
        assert env.store.mark_done(outbox_id) is False  # a duplicate delivery changes nothing
        assert env.store.mark_failed(outbox_id, "late failure", 0) is None
        record = env.store.get(outbox_id, None)
        assert record is not None and record.status is OutboxStatus.DONE and record.completed_at is not None
        assert claim(env, stale=0).sent == []

    def test_failures_retry_then_fail_for_good_with_the_last_error(self, env: OutboxEnv) -> None:
        outbox_id = enqueue(env, NOTIFY.request(organization_id=env.org_a), env.org_a)  # max_attempts=2
        claim(env)
        assert env.store.mark_failed(outbox_id, "smtp down", 0) is OutboxStatus.PENDING
        record = env.store.get(outbox_id, env.org_a)
        assert record is not None and record.last_error == "smtp down" and record.attempts == 1
        second = claim(env)
        assert [m.attempt for m in second.sent] == [2]
        assert env.store.mark_failed(outbox_id, "smtp still down", 0) is OutboxStatus.FAILED
        record = env.store.get(outbox_id, env.org_a)
        assert record is not None
        assert (record.status, record.attempts, record.last_error) == (OutboxStatus.FAILED, 2, "smtp still down")
        assert claim(env, stale=0).sent == []

    def test_retry_waits_for_its_backoff(self, env: OutboxEnv) -> None:
        outbox_id = enqueue(env, SWEEP.request())
        claim(env)
        env.store.mark_failed(outbox_id, "boom", 3600)
        assert claim(env).sent == []

    def test_delayed_job_is_not_due_yet(self, env: OutboxEnv) -> None:
        enqueue(env, SWEEP.request(delay_seconds=3600))
        assert claim(env).sent == []

    def test_message_without_handler_is_recorded_as_a_failed_attempt(self, env: OutboxEnv) -> None:
        outbox_id = enqueue(env, SWEEP.request())
        claim(env, reject={SWEEP.name})
        record = env.store.get(outbox_id, None)
        assert record is not None and record.status is OutboxStatus.PENDING and record.attempts == 1
        assert record.last_error and "no handler" in record.last_error

    def test_stale_dispatch_is_sent_again_and_exhausted_ones_fail(self, env: OutboxEnv) -> None:
        outbox_id = enqueue(env, SWEEP.request())  # max_attempts=3
        for attempt in (1, 2, 3):
            time.sleep(0.01)
            assert [m.attempt for m in claim(env, stale=0).sent] == [attempt]
        time.sleep(0.01)
        assert claim(env, stale=0).sent == []  # no attempt left
        assert env.store.fail_exhausted(3600) == 0  # not stale yet by that measure
        assert env.store.fail_exhausted(0) == 1
        record = env.store.get(outbox_id, None)
        assert record is not None and record.status is OutboxStatus.FAILED
        assert record.last_error and "no outcome recorded after 3 attempt(s)" in record.last_error

    def test_concurrent_relays_never_claim_a_message_twice(self, env: OutboxEnv) -> None:
        ids = {enqueue(env, SWEEP.request({"i": i})) for i in range(12)}
        collected: list[Collect] = []
        barrier = threading.Barrier(3)

        def relay() -> None:
            collect = Collect(delay=0.2)
            barrier.wait()
            env.store.claim_and_dispatch(5, None, collect)
            collected.append(collect)

        threads = [threading.Thread(target=relay) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        sent = [m.id for collect in collected for m in collect.sent]
        assert len(sent) == len(set(sent))
        assert set(sent) <= ids
        assert len(sent) >= 5  # skipping locked rows, not waiting on them: others got work too
        rest = [m.id for m in claim(env).sent]
        assert set(sent) | set(rest) == ids

    def test_periodic_job_is_enqueued_once_per_period(self, env: OutboxEnv) -> None:
        with env.uow(None) as uow:
            first = env.queue.enqueue_periodic(uow, SWEEP.request(), 3600)
            uow.commit()
        with env.uow(None) as uow:
            second = env.queue.enqueue_periodic(uow, SWEEP.request(), 3600)
            uow.commit()
        assert first is not None and second is None
        assert [m.id for m in claim(env).sent] == [first]

    def test_concurrent_periodic_enqueues_yield_one_job(self, env: OutboxEnv) -> None:
        results: list[uuid.UUID | None] = []
        barrier = threading.Barrier(4)

        def schedule() -> None:
            barrier.wait()
            with env.uow(None) as uow:
                results.append(env.queue.enqueue_periodic(uow, SWEEP.request(), 3600))
                time.sleep(0.05)
                uow.commit()

        threads = [threading.Thread(target=schedule) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(results) == 4 and len([r for r in results if r is not None]) == 1

    def test_tenant_rows_are_seen_only_by_their_tenant(self, env: OutboxEnv) -> None:
        outbox_id = enqueue(env, NOTIFY.request(organization_id=env.org_a), env.org_a)
        assert env.store.get(outbox_id, env.org_b) is None
        assert env.store.get(outbox_id, None) is None
        assert env.store.get(outbox_id, env.org_a) is not None

    def test_job_for_another_tenant_is_refused(self, env: OutboxEnv) -> None:
        with env.uow(env.org_a) as uow, pytest.raises(InvalidJob):
            env.queue.enqueue(uow, NOTIFY.request(organization_id=env.org_b))

    @pytest.mark.parametrize(
        "job",
        [
            JobType("contract_unknown", Queue.LOW).request(),
            JobType(SWEEP.name, Queue.CRITICAL).request(),  # a known job on the wrong queue
            SWEEP.request({"amount": 1.5j}),
            SWEEP.request({"blob": "x" * 70_000}),
            SWEEP.request(delay_seconds=-1),
        ],
        ids=["unknown-type", "wrong-queue", "not-json", "too-big", "negative-delay"],
    )
    def test_bad_jobs_are_refused_and_nothing_is_written(self, env: OutboxEnv, job: Any) -> None:
        with env.uow(None) as uow:
            with pytest.raises(InvalidJob):
                env.queue.enqueue(uow, job)
            uow.commit()
        assert claim(env).sent == []


# --- the in-memory adapter --------------------------------------------------------------------


class TestInMemoryOutbox(OutboxContract):
    @pytest.fixture
    def env(self) -> Iterator[OutboxEnv]:
        database = MemoryDatabase()
        outbox = InMemoryOutbox(database, known_jobs=KNOWN_JOBS)
        yield OutboxEnv(outbox, outbox, database.unit_of_work, uuid.uuid4(), uuid.uuid4())
