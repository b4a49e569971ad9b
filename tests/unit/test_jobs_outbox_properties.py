"""Properties of the outbox under any interleaving of enqueue, commit/rollback, relay (succeeding or
failing), outcomes, stale re-dispatch and the exhausted sweep (hypothesis state machine over the
in-memory adapter, which the contract tests tie to PostgreSQL):

- only committed jobs ever exist or get dispatched;
- a job is dispatched exactly `attempts` times and never more than `max_attempts`;
- `done` and `failed` are final; a job fails only with its attempts spent;
- a failed relay spends no attempt.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from reckai.adapters.memory.jobs import InMemoryOutbox
from reckai.adapters.memory.unit_of_work import MemoryDatabase
from reckai.application.ports.jobs import BrokerUnavailable, JobType, OutboxMessage, OutboxStatus, Queue

FINAL = (OutboxStatus.DONE, OutboxStatus.FAILED)


class OutboxMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self.database = MemoryDatabase()
        self.outbox = InMemoryOutbox(self.database, clock=lambda: self.now)
        self.committed: set[uuid.UUID] = set()
        self.rolled_back: set[uuid.UUID] = set()
        self.dispatches: Counter[uuid.UUID] = Counter()
        self.in_flight: list[OutboxMessage] = []
        self.final: dict[uuid.UUID, OutboxStatus] = {}

    @rule(commit=st.booleans(), max_attempts=st.integers(1, 3))
    def enqueue(self, commit: bool, max_attempts: int) -> None:
        job = JobType("property_job", Queue.LOW, max_attempts=max_attempts).request()
        with self.database.unit_of_work(None) as uow:
            outbox_id = self.outbox.enqueue(uow, job)
            if commit:
                uow.commit()
        (self.committed if commit else self.rolled_back).add(outbox_id)

    @rule(broker_up=st.booleans(), stale=st.sampled_from([None, 0, 60]), limit=st.integers(1, 4))
    def relay(self, broker_up: bool, stale: int | None, limit: int) -> None:
        before = {r.id: r.attempts for r in self.outbox.records()}

        def send(messages: list[OutboxMessage]) -> dict[uuid.UUID, str]:
            if not broker_up:
                raise BrokerUnavailable("down")
            for message in messages:
                self.dispatches[message.id] += 1
                assert message.attempt == before[message.id] + 1
            self.in_flight.extend(messages)
            return {}

        try:
            self.outbox.claim_and_dispatch(limit, stale, send)
        except BrokerUnavailable:
            assert {r.id: r.attempts for r in self.outbox.records()} == before

    @rule(data=st.data(), succeed=st.booleans(), retry_after=st.sampled_from([0, 30]))
    def finish(self, data: st.DataObject, succeed: bool, retry_after: int) -> None:
        if not self.in_flight:
            return
        message = self.in_flight.pop(data.draw(st.integers(0, len(self.in_flight) - 1)))
        if succeed:
            self.outbox.mark_done(message.id)
        else:
            self.outbox.mark_failed(message.id, "boom", retry_after)

    @rule(seconds=st.sampled_from([1, 31, 120]))
    def time_passes(self, seconds: int) -> None:
        self.now += dt.timedelta(seconds=seconds)

    @rule()
    def sweep_exhausted(self) -> None:
        self.outbox.fail_exhausted(60)

    @invariant()
    def only_committed_jobs_exist(self) -> None:
        ids = {r.id for r in self.outbox.records()}
        assert ids == self.committed
        assert not set(self.dispatches) & self.rolled_back

    @invariant()
    def attempts_are_dispatches_and_bounded(self) -> None:
        for record in self.outbox.records():
            assert record.attempts == self.dispatches[record.id] <= record.max_attempts

    @invariant()
    def final_states_are_final(self) -> None:
        for record in self.outbox.records():
            if record.id in self.final:
                assert record.status is self.final[record.id]
            elif record.status in FINAL:
                self.final[record.id] = record.status
            if record.status is OutboxStatus.FAILED:
                assert record.attempts == record.max_attempts and record.last_error


TestOutboxProperties = OutboxMachine.TestCase
TestOutboxProperties.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
