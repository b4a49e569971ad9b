"""Dramatiq: one broker and one Worker per priority queue, so each queue has its own threads.

Why not one Worker over all queues: a Dramatiq Worker pulls every queue it consumes into one
local work queue served by one pool of threads. Ten slow cleanup jobs would occupy every thread,
and a reconciliation message would wait behind them however high its priority. Here each queue
(critical, high, medium, low) gets a broker instance, a Worker and threads of its own: low-priority
work can only ever use the low queue's threads (docs/jobs.md).

Nothing here runs at import: brokers and actors are declared by `DramatiqJobRuntime`, which
bootstrap builds. Actors are declared per runtime (never on Dramatiq's global broker).

Dramatiq's own retries (20 over days by default) are cut to a few quick ones that only cover a
failure to *record* an outcome (the database briefly down); the job's real retry budget lives on
the outbox row (`max_attempts`), where it is durable and visible.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dramatiq
import redis
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries, ShutdownNotifications, TimeLimit

from reckai.application.ports.health import HealthReport
from reckai.application.ports.jobs import (
    QUEUES_BY_PRIORITY,
    BrokerUnavailable,
    JobDelivery,
    JobDispatcher,
    OutboxMessage,
    Queue,
    UnknownActor,
)

_log = logging.getLogger("reckai.jobs")

# Retries that cover only "the outcome could not be recorded": 3, starting at 1 s, capped at 30 s.
DRAMATIQ_MAX_RETRIES = 3
DRAMATIQ_MIN_BACKOFF_MS = 1_000
DRAMATIQ_MAX_BACKOFF_MS = 30_000
DEFAULT_TIME_LIMIT_SECONDS = 600


@dataclass(frozen=True)
class ActorSpec:
    """A job handler as the broker knows it. `deliver` runs it (the application wraps the handler
    with the outbox bookkeeping); `time_limit_seconds` interrupts a job that hangs."""

    name: str
    queue: Queue
    time_limit_seconds: int = DEFAULT_TIME_LIMIT_SECONDS


DeliverJob = Callable[[JobDelivery], None]
BrokerFactory = Callable[[Queue], dramatiq.Broker]


_time_limit: TimeLimit | None = None
_time_limit_lock = threading.Lock()


def _shared_time_limit() -> TimeLimit:
    """One TimeLimit per process, shared by every broker: its watcher is a thread that never ends,
    so it is started once (lazily, never at import) rather than once per broker. Its state is
    keyed by worker-thread id, so sharing it is safe."""
    global _time_limit
    with _time_limit_lock:
        if _time_limit is None:
            _time_limit = TimeLimit(time_limit=DEFAULT_TIME_LIMIT_SECONDS * 1000, interval=250)
            # dramatiq leaves TimeLimit.after_process_boot unannotated.
            _time_limit.after_process_boot(None)  # type: ignore[no-untyped-call]  # starts the watcher thread
        return _time_limit


def broker_middleware() -> list[dramatiq.Middleware]:
    """The middleware every ReckAI broker runs (fresh instances, except the shared TimeLimit)."""
    return [
        _shared_time_limit(),
        ShutdownNotifications(),
        Retries(
            max_retries=DRAMATIQ_MAX_RETRIES,
            min_backoff=DRAMATIQ_MIN_BACKOFF_MS,
            max_backoff=DRAMATIQ_MAX_BACKOFF_MS,
        ),
    ]


def stub_broker_factory() -> BrokerFactory:
    """In-process brokers (embedded mode, unit tests): messages live in this process only."""

    def build(queue: Queue) -> dramatiq.Broker:
        return StubBroker(middleware=broker_middleware())

    return build


def redis_broker_factory(client_factory: Callable[[], redis.Redis], namespace: str = "reckai") -> BrokerFactory:
    """Brokers on one Redis (production, integration tests). `namespace` prefixes every key, so
    two deployments (or two tests) can share a Redis server without seeing each other's queues."""
    from dramatiq.brokers.redis import RedisBroker

    def build(queue: Queue) -> dramatiq.Broker:
        # dramatiq leaves RedisBroker.__init__ unannotated.
        return RedisBroker(  # type: ignore[no-untyped-call]
            client=client_factory(), namespace=namespace, middleware=broker_middleware()
        )

    return build


class DramatiqJobRuntime:
    """Sends claimed outbox messages (JobDispatcher) and runs the per-queue Workers."""

    def __init__(
        self,
        broker_factory: BrokerFactory,
        actors: Iterable[ActorSpec],
        deliver: DeliverJob,
        *,
        worker_timeout_ms: int = 1000,
    ) -> None:
        self._deliver = deliver
        self._worker_timeout_ms = worker_timeout_ms
        self._brokers: dict[Queue, dramatiq.Broker] = {}
        self._actors: dict[str, dramatiq.Actor[Any, Any]] = {}
        self._workers: dict[Queue, dramatiq.Worker] = {}
        self._lock = threading.Lock()
        specs = list(actors)
        # Every priority queue exists (and can have workers) even before a handler uses it.
        for queue in QUEUES_BY_PRIORITY:
            broker = broker_factory(queue)
            broker.declare_queue(queue.value)
            self._brokers[queue] = broker
        for spec in specs:
            if spec.name in self._actors:
                raise ValueError(f"job handler {spec.name!r} is declared twice")
            self._actors[spec.name] = dramatiq.Actor(
                self._actor_function(spec.name),
                broker=self._brokers[spec.queue],
                actor_name=spec.name,
                queue_name=spec.queue.value,
                priority=0,
                options={"time_limit": spec.time_limit_seconds * 1000},
            )

    def _actor_function(self, actor_name: str) -> Callable[..., None]:
        deliver = self._deliver

        def run(outbox_id: str, attempt: int, organization_id: str | None, payload: dict[str, Any]) -> None:
            deliver(
                JobDelivery(
                    outbox_id=uuid.UUID(outbox_id),
                    attempt=attempt,
                    organization_id=uuid.UUID(organization_id) if organization_id else None,
                    actor_name=actor_name,
                    payload=payload,
                )
            )

        run.__name__ = actor_name
        return run

    @property
    def queues(self) -> frozenset[Queue]:
        return frozenset(self._brokers)

    def broker(self, queue: Queue) -> dramatiq.Broker:
        return self._brokers[queue]

    # --- JobDispatcher ---------------------------------------------------------------------

    def dispatch(self, message: OutboxMessage) -> None:
        actor = self._actors.get(message.actor_name)
        if actor is None or actor.queue_name != message.queue.value:
            raise UnknownActor(message.actor_name)
        try:
            actor.send_with_options(
                kwargs={
                    "outbox_id": str(message.id),
                    "attempt": message.attempt,
                    "organization_id": str(message.organization_id) if message.organization_id else None,
                    "payload": message.payload,
                }
            )
        except (redis.RedisError, dramatiq.errors.ConnectionError) as exc:
            raise BrokerUnavailable(f"could not send job {message.actor_name!r} to the broker: {exc}") from exc

    # --- workers -----------------------------------------------------------------------------

    def start_workers(self, threads: Mapping[Queue, int]) -> None:
        """Start one Worker per queue in `threads` (queue -> thread count) that is not running."""
        with self._lock:
            for queue, count in threads.items():
                if queue in self._workers or count <= 0:
                    continue
                broker = self._brokers[queue]
                worker = dramatiq.Worker(
                    broker,
                    queues={queue.value},
                    worker_threads=count,
                    worker_timeout=self._worker_timeout_ms,
                )
                # Take no more messages than there are threads (Dramatiq prefetches 2 per thread):
                # a prefetched message waits for this process's busy thread while another process
                # sits idle, so two long jobs would run one after the other (docs/jobs.md).
                worker.queue_prefetch = count
                worker.start()
                self._workers[queue] = worker
                _log.info("job worker started", extra={"action": "jobs.worker_started",
                                                      "metadata": {"queue": queue.value, "threads": count}})

    def stop_workers(self, timeout_seconds: float = 30.0) -> None:
        """Stop every Worker, in parallel (each lets its running jobs finish, up to the timeout)."""
        with self._lock:
            workers, self._workers = self._workers, {}

        def stop(queue: Queue, worker: dramatiq.Worker) -> None:
            worker.stop(timeout=int(timeout_seconds * 1000))
            # The stopped Worker's hook stays on the broker otherwise; a restart would add a second.
            broker = self._brokers[queue]
            broker.middleware = [m for m in broker.middleware if getattr(m, "worker", None) is not worker]

        stoppers = [
            threading.Thread(target=stop, args=(queue, worker), name=f"reckai-stop-{queue.value}")
            for queue, worker in workers.items()
        ]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()

    def close(self) -> None:
        self.stop_workers()
        for broker in self._brokers.values():
            broker.close()

    def workers_alive(self) -> dict[Queue, bool]:
        with self._lock:
            return {
                queue: bool(worker.workers) and all(thread.is_alive() for thread in worker.workers)
                for queue, worker in self._workers.items()
            }

    def broker_health(self) -> HealthReport:
        """PING the Redis behind the brokers; an in-process broker is always reachable."""
        for broker in self._brokers.values():
            client = getattr(broker, "client", None)
            if client is None:
                continue
            try:
                client.ping()
            except redis.RedisError as exc:
                return HealthReport(ok=False, detail=f"broker unreachable: {type(exc).__name__}")
        return HealthReport(ok=True, detail="broker reachable")


if TYPE_CHECKING:

    def _fits(runtime: DramatiqJobRuntime) -> JobDispatcher:
        return runtime
