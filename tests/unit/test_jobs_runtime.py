"""The job machinery in one process with in-process (stub) brokers: outbox -> relay -> per-queue
Dramatiq workers -> outcome on the row. The same scenarios run on a real Redis in
tests/integration/test_jobs_redis.py."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from reckai.adapters.dramatiq.runner import JobWorkerRunner, build_runtime
from reckai.adapters.dramatiq.runtime import BrokerFactory, stub_broker_factory
from reckai.adapters.memory.jobs import InMemoryOutbox
from reckai.adapters.memory.unit_of_work import MemoryDatabase
from reckai.application.job_handlers import RegisteredJob
from reckai.application.outbox import run_delivered_job
from reckai.application.ports.jobs import JobDelivery, JobType, OutboxStatus, Queue

URGENT = JobType("test_urgent_reconcile", Queue.CRITICAL)
SLOW_CLEANUP = JobType("test_slow_cleanup", Queue.LOW)
FLAKY = JobType("test_flaky_notify", Queue.HIGH, max_attempts=3)
HANGS = JobType("test_hanging_report", Queue.MEDIUM, max_attempts=1)


@dataclass
class Recorder:
    """What the test handlers did, with times (time.monotonic)."""

    slow_seconds: float = 1.0
    flaky_failures: int = 0
    started: dict[str, list[float]] = field(default_factory=dict)
    finished: dict[str, list[float]] = field(default_factory=dict)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _mark(self, book: dict[str, list[float]], name: str) -> None:
        with self.lock:
            book.setdefault(name, []).append(time.monotonic())

    def count(self, book: dict[str, list[float]], name: str) -> int:
        with self.lock:
            return len(book.get(name, []))

    def handlers(self) -> tuple[RegisteredJob, ...]:
        def urgent(delivery: JobDelivery) -> None:
            self._mark(self.started, URGENT.name)
            with self.lock:
                self.payloads.append(delivery.payload)
            self._mark(self.finished, URGENT.name)

        def slow(delivery: JobDelivery) -> None:
            self._mark(self.started, SLOW_CLEANUP.name)
            time.sleep(self.slow_seconds)
            self._mark(self.finished, SLOW_CLEANUP.name)

        def flaky(delivery: JobDelivery) -> None:
            self._mark(self.started, FLAKY.name)
            if self.count(self.started, FLAKY.name) <= self.flaky_failures:
                raise ConnectionError(f"smtp refused (attempt {delivery.attempt})")
            self._mark(self.finished, FLAKY.name)

        def hangs(delivery: JobDelivery) -> None:
            self._mark(self.started, HANGS.name)
            for _ in range(100):
                time.sleep(0.05)  # interruptible: Dramatiq raises into the thread between sleeps
            self._mark(self.finished, HANGS.name)

        return (
            RegisteredJob(URGENT, urgent),
            RegisteredJob(SLOW_CLEANUP, slow),
            RegisteredJob(FLAKY, flaky),
            RegisteredJob(HANGS, hangs, time_limit_seconds=1),
        )


@dataclass
class Machinery:
    outbox: Any
    runner: JobWorkerRunner
    recorder: Recorder
    open_uow: Callable[[uuid.UUID | None], Any]

    def enqueue(self, job: Any, organization_id: uuid.UUID | None = None) -> uuid.UUID:
        with self.open_uow(organization_id) as uow:
            outbox_id = self.outbox.enqueue(uow, job)
            uow.commit()
        self.runner.wake_relay()
        return outbox_id

    def wait_for_status(self, outbox_id: uuid.UUID, statuses: set[OutboxStatus], timeout: float = 10.0,
                        organization_id: uuid.UUID | None = None) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.outbox.get(outbox_id, organization_id)
            if record is not None and record.status in statuses:
                return record
            time.sleep(0.02)
        raise AssertionError(f"outbox row {outbox_id} never reached {statuses}: {self.outbox.get(outbox_id, organization_id)}")


def start_machinery(
    broker_factory: BrokerFactory,
    outbox: Any,
    open_uow: Callable[[uuid.UUID | None], Any],
    threads: dict[Queue, int],
    recorder: Recorder | None = None,
) -> Machinery:
    recorder = recorder or Recorder()
    handlers = recorder.handlers()
    runtime = build_runtime(handlers, broker_factory, outbox, worker_timeout_ms=100, retry_delay=lambda attempt: 0)
    runner = JobWorkerRunner(runtime, outbox, outbox, threads=threads, relay_interval_seconds=0.05,
                             stale_after_seconds=3600)
    runner.start()
    return Machinery(outbox, runner, recorder, open_uow)


def assert_critical_is_not_starved(machinery: Machinery, *, low_jobs: int = 10, bound_seconds: float = 1.0,
                                   busy: int = 1) -> float:
    """Flood `low` with slow jobs, then, once `busy` of them run, enqueue one critical job; it must
    finish within the bound while the low queue is still busy. Returns its latency in seconds."""
    recorder = machinery.recorder
    for i in range(low_jobs):
        machinery.enqueue(SLOW_CLEANUP.request({"i": i}))
    deadline = time.monotonic() + 5
    while recorder.count(recorder.started, SLOW_CLEANUP.name) < busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert recorder.count(recorder.started, SLOW_CLEANUP.name) >= busy, "the low queue never started"

    enqueued_at = time.monotonic()
    outbox_id = machinery.enqueue(URGENT.request({"job_id": "rec-1"}))
    machinery.wait_for_status(outbox_id, {OutboxStatus.DONE}, timeout=10)
    finished_at = recorder.finished[URGENT.name][0]
    latency = finished_at - enqueued_at
    low_done_then = len([t for t in recorder.finished.get(SLOW_CLEANUP.name, []) if t <= finished_at])
    assert latency < bound_seconds, f"critical job took {latency:.2f}s behind the low-priority flood"
    assert low_done_then < low_jobs - 2, "the low queue was not busy any more: the test proves nothing"
    assert recorder.payloads == [{"job_id": "rec-1"}]
    return latency


@pytest.fixture
def machinery_factory() -> Iterator[Callable[..., Machinery]]:
    started: list[Machinery] = []

    def make(threads: dict[Queue, int], recorder: Recorder | None = None) -> Machinery:
        database = MemoryDatabase()
        outbox = InMemoryOutbox(database, known_jobs=known_jobs((recorder or Recorder()).handlers()))
        machinery = start_machinery(stub_broker_factory(), outbox, database.unit_of_work, threads, recorder)
        started.append(machinery)
        return machinery

    yield make
    for machinery in started:
        machinery.runner.stop(timeout_seconds=5)


ALL_QUEUES = {Queue.CRITICAL: 1, Queue.HIGH: 1, Queue.MEDIUM: 1, Queue.LOW: 1}


def test_committed_job_runs_once_and_its_row_ends_done(machinery_factory: Callable[..., Machinery]) -> None:
    machinery = machinery_factory(ALL_QUEUES)
    outbox_id = machinery.enqueue(URGENT.request({"job_id": "rec-7"}))
    record = machinery.wait_for_status(outbox_id, {OutboxStatus.DONE})
    assert record.attempts == 1 and record.last_error is None
    time.sleep(0.2)
    assert machinery.recorder.payloads == [{"job_id": "rec-7"}]


def test_low_priority_flood_does_not_starve_critical(machinery_factory: Callable[..., Machinery]) -> None:
    machinery = machinery_factory({Queue.CRITICAL: 1, Queue.LOW: 2}, Recorder(slow_seconds=1.0))
    assert_critical_is_not_starved(machinery, low_jobs=10, bound_seconds=1.0)


def test_failing_job_retries_a_bounded_number_of_times_then_fails_with_its_error(
    machinery_factory: Callable[..., Machinery],
) -> None:
    machinery = machinery_factory(ALL_QUEUES, Recorder(flaky_failures=99))
    outbox_id = machinery.enqueue(FLAKY.request())
    record = machinery.wait_for_status(outbox_id, {OutboxStatus.FAILED})
    assert record.attempts == FLAKY.max_attempts == 3
    assert record.last_error == "ConnectionError: smtp refused (attempt 3)"
    time.sleep(0.3)  # nothing keeps retrying after the final failure
    assert machinery.recorder.count(machinery.recorder.started, FLAKY.name) == 3


def test_job_that_fails_once_succeeds_on_retry(machinery_factory: Callable[..., Machinery]) -> None:
    machinery = machinery_factory(ALL_QUEUES, Recorder(flaky_failures=1))
    outbox_id = machinery.enqueue(FLAKY.request())
    record = machinery.wait_for_status(outbox_id, {OutboxStatus.DONE})
    assert record.attempts == 2 and record.last_error is None


def test_hung_job_is_interrupted_by_its_time_limit_and_recorded(machinery_factory: Callable[..., Machinery]) -> None:
    machinery = machinery_factory(ALL_QUEUES)
    outbox_id = machinery.enqueue(HANGS.request())
    record = machinery.wait_for_status(outbox_id, {OutboxStatus.FAILED}, timeout=10)
    assert record.last_error == f"JobTimedOut: job {HANGS.name!r} exceeded its time limit of 1 s"
    assert machinery.recorder.count(machinery.recorder.finished, HANGS.name) == 0


def test_duplicate_and_superseded_deliveries_do_not_run_the_handler() -> None:
    database = MemoryDatabase()
    outbox = InMemoryOutbox(database)
    runs: list[int] = []
    handlers = {SLOW_CLEANUP.name: lambda delivery: runs.append(delivery.attempt)}
    with database.unit_of_work(None) as uow:
        outbox_id = outbox.enqueue(uow, SLOW_CLEANUP.request())
        uow.commit()
    messages: list[Any] = []
    outbox.claim_and_dispatch(10, None, lambda batch: messages.extend(batch) or {})
    first = JobDelivery.of(messages[0])
    assert run_delivered_job(first, outbox, handlers).ran is True
    again = run_delivered_job(first, outbox, handlers)
    assert (again.ran, again.status) == (False, OutboxStatus.DONE)
    assert runs == [1]

    # An older attempt arriving after a newer dispatch is dropped too.
    with database.unit_of_work(None) as uow:
        second_id = outbox.enqueue(uow, SLOW_CLEANUP.request())
        uow.commit()
    batch: list[Any] = []
    outbox.claim_and_dispatch(10, None, lambda b: batch.extend(b) or {})
    stale = JobDelivery.of(batch[0])
    outbox.claim_and_dispatch(10, 0, lambda b: None or {})  # re-dispatched as attempt 2
    time.sleep(0.01)
    outbox.claim_and_dispatch(10, 0, lambda b: None or {})
    result = run_delivered_job(stale, outbox, handlers)
    assert (result.ran, result.reason) == (False, "superseded by a newer attempt")
    assert outbox_id != second_id and runs == [1]


def test_health_reports_the_worker_state(machinery_factory: Callable[..., Machinery]) -> None:
    machinery = machinery_factory(ALL_QUEUES)
    report = machinery.runner.health()
    assert report.ok, report.detail
    machinery.runner.stop(timeout_seconds=5)
    report = machinery.runner.health()
    assert not report.ok and "not running" in report.detail


def test_control_one_shared_worker_pool_would_starve_critical() -> None:
    """Why every queue has its own Worker: the same flood against ONE Dramatiq Worker consuming
    both queues (Dramatiq's default shape) holds the critical job behind the slow ones. This also
    shows the starvation assertion above can fail. The critical job is enqueued once all three
    threads run a slow job (2 s each, twice the bound): before that a free thread could take it at
    once, and with 1 s jobs a thread freed within the bound (a flaky control)."""
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    from reckai.adapters.dramatiq.runtime import broker_middleware

    shared = StubBroker(middleware=broker_middleware())
    recorder = Recorder(slow_seconds=2.0)
    database = MemoryDatabase()
    outbox = InMemoryOutbox(database, known_jobs=known_jobs(recorder.handlers()))
    runtime = build_runtime(recorder.handlers(), lambda queue: shared, outbox, worker_timeout_ms=100,
                            retry_delay=lambda attempt: 0)
    runner = JobWorkerRunner(runtime, outbox, outbox, threads={}, relay_interval_seconds=0.05)
    runner.start()
    worker = dramatiq.Worker(shared, queues={Queue.CRITICAL.value, Queue.LOW.value}, worker_threads=3)
    worker.start()
    try:
        with pytest.raises(AssertionError, match="behind the low-priority flood"):
            assert_critical_is_not_starved(Machinery(outbox, runner, recorder, database.unit_of_work), low_jobs=10,
                                           busy=3)
    finally:
        worker.stop(timeout=5000)
        runner.stop(timeout_seconds=5)


def known_jobs(jobs: tuple[RegisteredJob, ...]) -> dict[str, Queue]:
    """Job name -> queue, as the registry gives the job queue for its enqueue-time check."""
    return {job.job_type.name: job.job_type.queue for job in jobs}
