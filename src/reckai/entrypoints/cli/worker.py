"""`reckai worker`: Dramatiq worker processes on REDIS_URL, as many as asked, on any machine.

    reckai worker [--queues critical,high,medium,low] [--processes N] [--threads M]

Each process bootstraps once (pools, clients), then runs one Dramatiq Worker per queue with M
threads of its own (so low-priority work never starves critical work), the outbox relay and the
periodic scheduler (both safe with any number of processes). With --processes N > 1 this process
only supervises: it restarts a child that dies and, on SIGTERM or Ctrl-C, stops them all
gracefully. docs/jobs.md has the details and scaling examples.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import signal
import sys
import threading
import time
from typing import Any

from reckai.application.ports.jobs import QUEUES_BY_PRIORITY, Queue
from reckai.settings import Settings, SettingsError

logger = logging.getLogger("reckai.worker")

EXIT_CONFIGURATION = 2
EXIT_START_FAILED = 1
DEFAULT_THREADS = 2
STOP_TIMEOUT_SECONDS = 30.0
# A child that dies sooner than this after starting is crash-looping: wait before the next restart.
_QUICK_DEATH_SECONDS = 10.0
_RESTART_BACKOFF_MAX_SECONDS = 30.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run background-job worker processes (needs REDIS_URL)",
        description="Run Dramatiq worker processes on REDIS_URL: per-queue threads, the outbox relay and "
                    "the periodic sweepers. Start as many as needed, on one or many machines.",
    )
    parser.add_argument("--queues", type=parse_queues, default=list(QUEUES_BY_PRIORITY),
                        help="comma-separated queues to consume (default: critical,high,medium,low)")
    parser.add_argument("--processes", type=_positive, default=1, help="worker processes (default 1)")
    parser.add_argument("--threads", default=str(DEFAULT_THREADS),
                        help=f"threads per queue in each process (default {DEFAULT_THREADS}); "
                             "or per queue: critical=4,low=1")
    parser.set_defaults(handler=run)


def parse_queues(text: str) -> list[Queue]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    try:
        queues = [Queue(name) for name in names]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"queues are a comma-separated subset of critical,high,medium,low, not {text!r}"
        ) from None
    if not queues:
        raise argparse.ArgumentTypeError("name at least one queue")
    return [queue for queue in QUEUES_BY_PRIORITY if queue in queues]


def thread_plan(queues: list[Queue], threads: str) -> dict[Queue, int]:
    """queue -> threads for this process; ValueError with a readable message on bad input."""
    text = threads.strip()
    if text.isdigit():
        count = int(text)
        if count < 1:
            raise ValueError("--threads must be at least 1")
        return {queue: count for queue in queues}
    given: dict[Queue, int] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, count_text = part.partition("=")
        try:
            queue = Queue(name.strip())
        except ValueError:
            raise ValueError(f"--threads: unknown queue {name.strip()!r}") from None
        if not sep or not count_text.strip().isdigit() or int(count_text) < 1:
            raise ValueError(f"--threads: write QUEUE=N with N >= 1, not {part!r}")
        given[queue] = int(count_text)
    missing = [queue.value for queue in queues if queue not in given]
    if missing:
        raise ValueError(f"--threads names no thread count for queue(s) {', '.join(missing)}")
    return {queue: given[queue] for queue in queues}


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {text!r}")
    return int(text)


def _fail(message: str, code: int) -> int:
    print(f"reckai worker: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except (SettingsError, ValueError) as exc:
        return _fail(str(exc), EXIT_CONFIGURATION)
    if not settings.redis.url:
        return _fail(
            "REDIS_URL is required: workers take jobs from the Redis broker shared by every process "
            "(in embedded mode without Redis, `reckai serve` runs the jobs in-process)",
            EXIT_CONFIGURATION,
        )
    try:
        threads = thread_plan(args.queues, args.threads)
    except ValueError as exc:
        return _fail(str(exc), EXIT_CONFIGURATION)
    if args.processes == 1:
        return run_worker_process(settings, threads)
    return supervise(settings, threads, args.processes)


def run_worker_process(settings: Settings, threads: dict[Queue, int]) -> int:
    """One worker process: bootstrap once, consume until SIGTERM/SIGINT, stop gracefully."""
    from reckai.adapters.redis.connection import describe
    from reckai.bootstrap import bootstrap, build_worker_runner
    from reckai.logging_setup import configure_logging, log_event

    configure_logging(settings.log_level)
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        container = bootstrap(settings)
    except SettingsError as exc:
        return _fail(str(exc), EXIT_CONFIGURATION)
    except Exception as exc:  # noqa: BLE001 - one readable line, the traceback in the log
        log_event(logger, "worker.start_failed", level=logging.ERROR, exc_info=True)
        return _fail(f"could not start: {type(exc).__name__}: {exc}", EXIT_START_FAILED)
    try:
        runner = build_worker_runner(container, threads)
        runner.start()
        plan = {queue.value: count for queue, count in threads.items()}
        log_event(logger, "worker.started", metadata={"threads_per_queue": plan})
        print(f"reckai worker: consuming {plan} (threads per queue) from {describe(settings.redis.url or '')}",
              file=sys.stderr)
        while not stop.wait(1.0):
            report = runner.health()
            if not report.ok and "threads stopped" in report.detail:
                # A dead worker thread will not come back: exit so the supervisor restarts us.
                log_event(logger, "worker.unhealthy", level=logging.ERROR, metadata={"detail": report.detail})
                runner.stop(STOP_TIMEOUT_SECONDS)
                return EXIT_START_FAILED
        runner.stop(STOP_TIMEOUT_SECONDS)
        log_event(logger, "worker.stopped")
    finally:
        container.close()
    return 0


def _child(settings: Settings, threads: dict[Queue, int]) -> None:
    sys.exit(run_worker_process(settings, threads))


def supervise(settings: Settings, threads: dict[Queue, int], processes: int) -> int:
    """Run `processes` worker processes; restart any that dies; stop all on SIGTERM/SIGINT."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited pools or threads
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    def spawn(slot: int) -> Any:
        process = context.Process(target=_child, args=(settings, threads), name=f"reckai-worker-{slot}")
        process.start()
        return process

    children = {slot: spawn(slot) for slot in range(processes)}
    started = {slot: time.monotonic() for slot in children}
    backoff = {slot: 0.0 for slot in children}
    print(f"reckai worker: supervising {processes} processes", file=sys.stderr)
    while not stopping.wait(1.0):
        for slot, process in list(children.items()):
            if process.is_alive():
                continue
            lived = time.monotonic() - started[slot]
            if process.exitcode == EXIT_CONFIGURATION:
                _stop_all(children.values())
                return _fail("a worker process refused its configuration; stopping", EXIT_CONFIGURATION)
            backoff[slot] = min(_RESTART_BACKOFF_MAX_SECONDS, max(1.0, backoff[slot] * 2)) \
                if lived < _QUICK_DEATH_SECONDS else 0.0
            logger.warning("worker process %s exited with %s after %.0fs; restarting in %.0fs",
                           process.pid, process.exitcode, lived, backoff[slot])
            if backoff[slot] and stopping.wait(backoff[slot]):
                break
            children[slot] = spawn(slot)
            started[slot] = time.monotonic()
    _stop_all(children.values())
    return 0


def _stop_all(children: Any) -> None:
    children = list(children)
    for process in children:
        if process.is_alive() and process.pid is not None:
            process.terminate()  # SIGTERM: each child stops its workers gracefully
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS + 10
    for process in children:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(5)
