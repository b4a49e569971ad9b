"""Run what the outbox holds, in the test's thread: for tests that need a job's effect (a mail)
without starting the worker. Claims every due message through the container's relay store, then
runs each through `run_delivered_job`, as a worker would, recording the outcome on its row."""

from __future__ import annotations

from reckai.application.outbox import DeliveryResult, relay_until_drained, run_delivered_job
from reckai.application.ports.jobs import JobDelivery, OutboxMessage
from reckai.bootstrap import Container


class _Collect:
    def __init__(self) -> None:
        self.messages: list[OutboxMessage] = []

    def dispatch(self, message: OutboxMessage) -> None:
        self.messages.append(message)


def run_queued_jobs(container: Container) -> list[tuple[str, DeliveryResult]]:
    collected = _Collect()
    relay_until_drained(container.job_outbox, collected, stale_after_seconds=None)
    handlers = {job.job_type.name: job.run for job in container.job_handlers}
    return [(message.actor_name, run_delivered_job(JobDelivery.of(message), container.job_outbox, handlers))
            for message in collected.messages]
