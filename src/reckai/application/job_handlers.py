"""The one registry of background jobs: job type -> handler, plus the periodic ones.

Each feature registers its jobs in bootstrap (`JobHandlers.register`), with a handler that closes
over that feature's services and decodes the delivery's payload; the worker derives its Dramatiq
actors from the registry and the job queue refuses, at enqueue time, a job type it does not list
(docs/jobs.md). To add a job: declare its `JobType` (queue, retry budget) beside the feature's use
cases, write the handler there, and add one `register` line (and `every` line if it is periodic)
in the feature's section of `reckai/bootstrap.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from reckai.application.outbox import PeriodicJob
from reckai.application.ports.jobs import JobDelivery, JobType, Queue

# How long a handler may run before the worker interrupts it (a hung job becomes a recorded failure).
DEFAULT_TIME_LIMIT_SECONDS = 600

RunJob = Callable[[JobDelivery], None]


@dataclass(frozen=True)
class RegisteredJob:
    job_type: JobType
    run: RunJob
    time_limit_seconds: int = DEFAULT_TIME_LIMIT_SECONDS


class JobHandlers:
    def __init__(self) -> None:
        self._jobs: dict[str, RegisteredJob] = {}
        self._queues: dict[str, Queue] = {}
        self._periodic: list[PeriodicJob] = []

    def register(self, job_type: JobType, run: RunJob, *,
                 time_limit_seconds: int = DEFAULT_TIME_LIMIT_SECONDS) -> None:
        if job_type.name in self._jobs:
            raise ValueError(f"job type {job_type.name!r} already has a handler")
        self._jobs[job_type.name] = RegisteredJob(job_type, run, time_limit_seconds)
        self._queues[job_type.name] = job_type.queue

    def every(self, job_type: JobType, period_seconds: int) -> None:
        """Enqueue `job_type` (no payload, no tenant) once every `period_seconds`."""
        if job_type.name not in self._jobs:
            raise ValueError(f"periodic job {job_type.name!r} has no handler")
        self._periodic.append(PeriodicJob(job_type.request(), period_seconds))

    def __iter__(self) -> Iterator[RegisteredJob]:
        return iter(self._jobs.values())

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, name: str) -> RegisteredJob | None:
        return self._jobs.get(name)

    @property
    def queues(self) -> Mapping[str, Queue]:
        """Job name -> queue: a live view, for the job queue's enqueue-time check."""
        return self._queues

    @property
    def schedule(self) -> list[PeriodicJob]:
        return list(self._periodic)
