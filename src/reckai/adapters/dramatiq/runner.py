"""The job machinery of one process: per-queue Dramatiq workers, the outbox relay, the scheduler.

`JobWorkerRunner` is the container's `worker_runner`. In embedded mode `reckai serve` starts it
(everything in the API process, in-process brokers); `reckai worker` builds one per worker process
with the queues and threads asked for (`reckai.bootstrap.build_worker_runner`). Three kinds of
background thread:

- Dramatiq workers: one Worker with its own threads per queue (adapters/dramatiq/runtime.py);
- the relay: every `relay_interval_seconds`, moves committed outbox rows to the broker until none
  is due, and now and then fails messages whose worker died on their last attempt;
- the scheduler: enqueues the periodic jobs of the registry (through the outbox, de-duplicated
  across processes) when their period has elapsed.

Each loop survives errors (database or Redis down): it logs, waits and tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from dramatiq.middleware import TimeLimitExceeded

from reckai.adapters.dramatiq.runtime import ActorSpec, BrokerFactory, DramatiqJobRuntime
from reckai.application.job_handlers import RegisteredJob
from reckai.application.outbox import (
    JobHandler,
    PeriodicJob,
    enqueue_periodic_jobs,
    relay_until_drained,
    retry_delay_seconds,
    run_delivered_job,
)
from reckai.application.ports.health import HealthReport
from reckai.application.ports.jobs import (
    QUEUES_BY_PRIORITY,
    JobDelivery,
    JobQueue,
    OutboxRelayStore,
    Queue,
    WorkerRunner,
)
from reckai.application.ports.unit_of_work import UnitOfWork

_log = logging.getLogger("reckai.jobs")

SCHEDULER_TICK_SECONDS = 30.0
EXHAUSTED_SWEEP_SECONDS = 60.0
_ERROR_LOG_EVERY_SECONDS = 30.0


def parse_queue_threads(pairs: Iterable[tuple[str, int]] | Mapping[str, int]) -> dict[Queue, int]:
    """(("critical", 2), ...) or {"critical": 2} -> {Queue.CRITICAL: 2}, in priority order."""
    given = dict(pairs)
    return {queue: int(given[queue.value]) for queue in QUEUES_BY_PRIORITY if queue.value in given}


class JobTimedOut(Exception):
    def __init__(self, job_name: str, limit_seconds: int) -> None:
        super().__init__(f"job {job_name!r} exceeded its time limit of {limit_seconds} s")
        self.job_name = job_name
        self.limit_seconds = limit_seconds


def actor_spec(job: RegisteredJob) -> ActorSpec:
    return ActorSpec(job.job_type.name, job.job_type.queue, job.time_limit_seconds)


def bind_handlers(jobs: Iterable[RegisteredJob]) -> dict[str, JobHandler]:
    """Job name -> callable(delivery); a Dramatiq time-limit interrupt becomes an ordinary error."""

    def bound(job: RegisteredJob) -> JobHandler:
        def run(delivery: JobDelivery) -> None:
            try:
                job.run(delivery)
            except TimeLimitExceeded as exc:
                # Dramatiq interrupts a hung job with a BaseException; make it an ordinary,
                # recorded failure so the outbox row says why.
                raise JobTimedOut(job.job_type.name, job.time_limit_seconds) from exc

        return run

    return {job.job_type.name: bound(job) for job in jobs}


def build_runtime(
    jobs: Iterable[RegisteredJob],
    broker_factory: BrokerFactory,
    store: OutboxRelayStore,
    *,
    worker_timeout_ms: int = 1000,
    retry_delay: Callable[[int], int] = retry_delay_seconds,
) -> DramatiqJobRuntime:
    """Declare every registered job on the brokers; deliveries run through the outbox bookkeeping."""
    jobs = list(jobs)
    bound = bind_handlers(jobs)

    def deliver(delivery: JobDelivery) -> None:
        run_delivered_job(delivery, store, bound, retry_delay)

    return DramatiqJobRuntime(broker_factory, [actor_spec(job) for job in jobs], deliver,
                              worker_timeout_ms=worker_timeout_ms)


class JobWorkerRunner:
    def __init__(
        self,
        runtime: DramatiqJobRuntime,
        store: OutboxRelayStore,
        job_queue: JobQueue,
        *,
        threads: Mapping[Queue, int],
        relay: bool = True,
        schedule: list[PeriodicJob] | None = None,
        open_system_uow: Callable[[], UnitOfWork] | None = None,
        relay_interval_seconds: float = 0.5,
        stale_after_seconds: int = 1800,
        scheduler_tick_seconds: float = SCHEDULER_TICK_SECONDS,
    ) -> None:
        if schedule and open_system_uow is None:
            raise ValueError("a schedule needs open_system_uow to enqueue through the outbox")
        self.runtime = runtime
        self.store = store
        self.job_queue = job_queue
        self.threads = dict(threads)
        self.relay_enabled = relay
        self.schedule = list(schedule or [])
        self._open_system_uow = open_system_uow
        self.relay_interval_seconds = relay_interval_seconds
        self.stale_after_seconds = stale_after_seconds
        self.scheduler_tick_seconds = scheduler_tick_seconds
        self._stopping = threading.Event()
        self._wake_relay = threading.Event()
        self._loops: list[threading.Thread] = []
        self._started = False
        self._lock = threading.Lock()
        self._last_error_log: dict[str, float] = {}

    @property
    def consumes(self) -> bool:
        return any(count > 0 for count in self.threads.values())

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._stopping.clear()
            self.runtime.start_workers(self.threads)
            if self.relay_enabled:
                self._spawn("reckai-outbox-relay", self._relay_loop)
            if self.schedule:
                self._spawn("reckai-job-scheduler", self._scheduler_loop)
            self._started = True

    def stop(self, timeout_seconds: float = 30.0) -> None:
        with self._lock:
            if not self._started:
                return
            self._stopping.set()
            self._wake_relay.set()
            for thread in self._loops:
                thread.join(timeout_seconds)
            self._loops = []
            self.runtime.stop_workers(timeout_seconds)
            self._started = False

    def wake_relay(self) -> None:
        """Relay now instead of at the next tick (tests, and after a burst of enqueues)."""
        self._wake_relay.set()

    def health(self) -> HealthReport:
        broker = self.runtime.broker_health()
        if not broker.ok:
            return broker
        if not self.consumes and not self.relay_enabled:
            return HealthReport(ok=True, detail=f"{broker.detail}; jobs run in `reckai worker` processes")
        if not self._started:
            return HealthReport(ok=False, detail="job worker is not running")
        alive = self.runtime.workers_alive()
        dead = sorted(queue.value for queue, ok in alive.items() if not ok)
        dead += [thread.name for thread in self._loops if not thread.is_alive()]
        if dead:
            return HealthReport(ok=False, detail="job worker threads stopped: " + ", ".join(dead))
        queues = ",".join(queue.value for queue in alive)
        return HealthReport(ok=True, detail=f"{broker.detail}; workers alive on {queues or 'no queue'}")

    # --- loops -------------------------------------------------------------------------------

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._loops.append(thread)

    def _relay_loop(self) -> None:
        next_exhausted_sweep = 0.0
        while not self._stopping.is_set():
            try:
                relay_until_drained(self.store, self.runtime, stale_after_seconds=self.stale_after_seconds)
                if time.monotonic() >= next_exhausted_sweep:
                    self.store.fail_exhausted(self.stale_after_seconds)
                    next_exhausted_sweep = time.monotonic() + EXHAUSTED_SWEEP_SECONDS
            except Exception as exc:  # noqa: BLE001 - the loop must outlive a database or broker outage
                self._log_loop_error("relay", exc)
            self._wake_relay.wait(self.relay_interval_seconds)
            self._wake_relay.clear()

    def _scheduler_loop(self) -> None:
        assert self._open_system_uow is not None
        while not self._stopping.is_set():
            try:
                if enqueue_periodic_jobs(self._open_system_uow, self.job_queue, self.schedule):
                    self._wake_relay.set()
            except Exception as exc:  # noqa: BLE001 - same: log, wait, try again
                self._log_loop_error("scheduler", exc)
            self._stopping.wait(self.scheduler_tick_seconds)

    def _log_loop_error(self, loop: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log.get(loop, -_ERROR_LOG_EVERY_SECONDS) >= _ERROR_LOG_EVERY_SECONDS:
            self._last_error_log[loop] = now
            _log.error(
                "job %s loop failed; retrying", loop,
                extra={"action": f"jobs.{loop}_error", "metadata": {"error": f"{type(exc).__name__}: {exc}"}},
            )


if TYPE_CHECKING:

    def _fits(runner: JobWorkerRunner) -> WorkerRunner:
        return runner
