"""The audit log contract, run over the in-memory adapter here and over PostgreSQL in
tests/integration/test_audit_postgres.py (class AuditLogContract is imported there).

A concrete test class provides three fixtures:
- `audit_log`: the adapter under test (with `.signer`);
- `new_organization`: a callable returning the id of a fresh organization;
- `short_lock_audit_log`: the adapter with a lock timeout well under a second;
- `new_user`: a callable `new_user(organization_id)` returning the id of a fresh user in it;
- `unit_of_work`: a callable `unit_of_work(organization_id)` returning a context manager that yields
  a unit of work the adapter accepts; it commits when `uow.commit()` was called, else rolls back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from reckai.adapters.memory.audit import MemoryAuditLog
from reckai.adapters.memory.unit_of_work import MemoryDatabase
from reckai.application.audit import purge_expired, verify_chains
from reckai.application.audit import verify_chain as verify_stored_chain
from reckai.application.ports.audit import AuditPurgeRefused, AuditQuery, AuditWriteFailed
from reckai.domain.audit.chain import AuditSigner, BreakReason
from reckai.domain.audit.events import GENESIS_HASH, SYSTEM_CHAIN_KEY, AuditEvent
from reckai.domain.audit.redaction import REDACTED

KEY = "contract-test-audit-key-0123456789abcdef"


def event(organization_id: uuid.UUID | None, action: str = "reconciliation.job.created", **fields: Any) -> AuditEvent:
    return AuditEvent(action=action, organization_id=organization_id, **fields)


class AuditLogContract:
    def test_an_independent_record_reads_back_exactly_and_verifies(
        self, audit_log: Any, new_organization: Callable[[], uuid.UUID], new_user: Callable[[uuid.UUID], uuid.UUID]
    ) -> None:
        org = new_organization()
        written = audit_log.record_independently(
            event(
                org,
                user_id=new_user(org),
                resource_type="reconciliation_job",
                resource_id=uuid.uuid4(),
                ip_address="2001:DB8::1",
                user_agent="Mozilla/5.0",
                request_method="post",
                request_path="/api/reconciliation/jobs?token=abc",
                request_body={"name": "POS Dec", "password": "pw", "amounts": [1, 2.5, 10**20], "nested": {"x": None}},
                response_status=201,
                metadata={"job_name": "POS Settlement Dec 2025", "file_count": 2, "match_rate": 0.93},
            )
        )
        assert (written.sequence_number, written.previous_hash, written.chain_key) == (1, GENESIS_HASH, org)
        [stored] = audit_log.read_chain(org, 0, 10)
        assert stored.id == written.id and stored.hash == written.hash
        assert stored.event.request_body["password"] == REDACTED
        assert "abc" not in stored.event.request_path
        assert stored.event.request_method == "POST"
        assert stored.event.ip_address == "2001:db8::1"
        assert audit_log.signer.compute_hash(stored) == stored.hash
        [result] = verify_chains(audit_log, audit_log.signer, org)
        assert result.ok and result.records_checked == 1

    def test_records_in_a_unit_of_work_commit_with_it(
        self, audit_log: Any, new_organization: Callable[[], uuid.UUID], unit_of_work: Callable[..., Any]
    ) -> None:
        org = new_organization()
        with unit_of_work(org) as uow:
            audit_log.record(uow, event(org, "a.one"))
            audit_log.record(uow, event(org, "a.two"))
            uow.commit()
        assert [r.event.action for r in audit_log.read_chain(org, 0, 10)] == ["a.one", "a.two"]
        assert [r.sequence_number for r in audit_log.read_chain(org, 0, 10)] == [1, 2]

    def test_records_in_a_rolled_back_unit_of_work_vanish_without_a_gap(
        self, audit_log: Any, new_organization: Callable[[], uuid.UUID], unit_of_work: Callable[..., Any]
    ) -> None:
        org = new_organization()
        audit_log.record_independently(event(org, "kept.first"))
        with unit_of_work(org) as uow:
            audit_log.record(uow, event(org, "lost"))
            # no commit: rolled back
        audit_log.record_independently(event(org, "kept.second"))
        records = audit_log.read_chain(org, 0, 10)
        assert [(r.sequence_number, r.event.action) for r in records] == [(1, "kept.first"), (2, "kept.second")]
        assert all(result.ok for result in verify_chains(audit_log, audit_log.signer, org))

    def test_an_independent_record_survives_the_outer_unit_of_work_rolling_back(
        self, audit_log: Any, new_organization: Callable[[], uuid.UUID], unit_of_work: Callable[..., Any]
    ) -> None:
        org = new_organization()
        with unit_of_work(org) as uow:
            audit_log.record_independently(event(org, "auth.login.failed"))
            audit_log.record(uow, event(org, "request.work"))
            # the request fails: the unit of work is left without commit
        assert [r.event.action for r in audit_log.read_chain(org, 0, 10)] == ["auth.login.failed"]
        assert audit_log.chain_head(org).last_sequence == 1

    def test_an_independent_write_to_a_chain_held_by_a_unit_of_work_gives_up_instead_of_deadlocking(
        self, short_lock_audit_log: Any, new_organization: Callable[[], uuid.UUID], unit_of_work: Callable[..., Any]
    ) -> None:
        org = new_organization()
        with unit_of_work(org) as uow:
            short_lock_audit_log.record(uow, event(org, "holds.the.chain"))
            with pytest.raises(AuditWriteFailed):
                short_lock_audit_log.record_independently(event(org, "waits"))
            uow.commit()
        assert [r.event.action for r in short_lock_audit_log.read_chain(org, 0, 10)] == ["holds.the.chain"]

    def test_a_unit_of_work_cannot_write_another_organizations_chain(
        self, audit_log: Any, new_organization: Callable[[], uuid.UUID], unit_of_work: Callable[..., Any]
    ) -> None:
        mine, theirs = new_organization(), new_organization()
        with unit_of_work(mine) as uow, pytest.raises(AuditWriteFailed):
            audit_log.record(uow, event(theirs, "sneaky"))
        assert audit_log.read_chain(theirs, 0, 10) == []

    @pytest.mark.global_state  # verifies the whole system chain: a shared store gives it a fresh one
    def test_events_without_an_organization_go_to_the_system_chain(
        self, audit_log: Any, new_organization: Callable[[], uuid.UUID]
    ) -> None:
        org = new_organization()
        before = audit_log.chain_head(SYSTEM_CHAIN_KEY)
        start = before.last_sequence if before else 0
        record = audit_log.record_independently(
            event(None, "auth.login.failed", request_body={"organization_code": "nope", "email": "x@y.z"})
        )
        assert record.chain_key == SYSTEM_CHAIN_KEY and record.sequence_number == start + 1
        assert SYSTEM_CHAIN_KEY in audit_log.chain_keys()
        assert audit_log.list_records(org, AuditQuery()).records == ()
        assert audit_log.list_records(SYSTEM_CHAIN_KEY, AuditQuery()).records == ()
        [result] = [r for r in verify_chains(audit_log, audit_log.signer) if r.chain_key == SYSTEM_CHAIN_KEY]
        assert result.ok

    def test_listing_filters_and_pages_newest_first(
        self, audit_log: Any, new_organization: Callable[[], uuid.UUID], new_user: Callable[[uuid.UUID], uuid.UUID]
    ) -> None:
        org, other = new_organization(), new_organization()
        alice, bob = new_user(org), new_user(org)
        job = uuid.uuid4()
        for index in range(7):
            audit_log.record_independently(
                event(org, "job.created" if index % 2 == 0 else "job.updated", user_id=alice if index < 4 else bob,
                      resource_type="reconciliation_job", resource_id=job if index == 3 else uuid.uuid4())
            )
        audit_log.record_independently(event(other, "job.created", user_id=new_user(other)))

        everything = audit_log.list_records(org, AuditQuery(limit=500)).records
        assert [r.sequence_number for r in everything] == [7, 6, 5, 4, 3, 2, 1]

        first = audit_log.list_records(org, AuditQuery(action="job.created", limit=2))
        assert [r.sequence_number for r in first.records] == [7, 5]
        second = audit_log.list_records(org, AuditQuery(action="job.created", limit=2,
                                                         before_sequence=first.next_before_sequence))
        assert [r.sequence_number for r in second.records] == [3, 1]
        assert second.next_before_sequence is None

        assert [r.sequence_number for r in audit_log.list_records(org, AuditQuery(user_id=bob)).records] == [7, 6, 5]
        assert [r.sequence_number for r in audit_log.list_records(
            org, AuditQuery(resource_type="reconciliation_job", resource_id=job)).records] == [4]

        middle = everything[3].created_at
        newer = audit_log.list_records(org, AuditQuery(created_from=middle)).records
        older = audit_log.list_records(org, AuditQuery(created_to=middle)).records
        assert {r.sequence_number for r in newer} | {r.sequence_number for r in older} == set(range(1, 8))
        assert not {r.sequence_number for r in newer} & {r.sequence_number for r in older}

    def test_concurrent_writers_never_fork_the_chain(
        self, audit_log: Any, new_organization: Callable[[], uuid.UUID]
    ) -> None:
        org = new_organization()
        threads, per_thread = 6, 8
        errors: list[BaseException] = []
        start = threading.Barrier(threads)

        def write(worker: int) -> None:
            try:
                start.wait()
                for index in range(per_thread):
                    audit_log.record_independently(event(org, "concurrent.write", metadata={"w": worker, "i": index}))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert errors == []
        records = audit_log.read_chain(org, 0, 1000)
        assert [r.sequence_number for r in records] == list(range(1, threads * per_thread + 1))
        [result] = verify_chains(audit_log, audit_log.signer, org)
        assert result.ok and result.records_checked == threads * per_thread

    def test_verification_with_the_wrong_key_fails_at_the_first_row(
        self, audit_log: Any, new_organization: Callable[[], uuid.UUID]
    ) -> None:
        org = new_organization()
        audit_log.record_independently(event(org))
        wrong = AuditSigner(audit_log.signer.key_id, "not-the-key-0000000000000000000000000000")
        result = verify_stored_chain(audit_log, wrong, org)
        assert result.first_break is not None
        assert (result.first_break.reason, result.first_break.sequence_number) == (BreakReason.HASH_MISMATCH, 1)

    def test_a_purge_of_young_rows_removes_nothing(
        self, audit_log: Any, new_organization: Callable[[], uuid.UUID]
    ) -> None:
        org = new_organization()
        audit_log.record_independently(event(org))
        outcome = purge_expired(audit_log, audit_log.signer, org, dt.datetime.now(dt.UTC))
        assert outcome.rows_removed == 0 and outcome.through_sequence is None
        assert len(audit_log.read_chain(org, 0, 10)) == 1


# --- the in-memory adapter ---------------------------------------------------------------------


class TestMemoryAuditLog(AuditLogContract):
    @pytest.fixture
    def database(self) -> MemoryDatabase:
        return MemoryDatabase()

    @pytest.fixture
    def audit_log(self, database: MemoryDatabase) -> MemoryAuditLog:
        return MemoryAuditLog(AuditSigner("test-1", KEY), database)

    @pytest.fixture
    def short_lock_audit_log(self, database: MemoryDatabase) -> MemoryAuditLog:
        return MemoryAuditLog(AuditSigner("test-1", KEY), database, lock_timeout_seconds=0.3)

    @pytest.fixture
    def new_organization(self) -> Callable[[], uuid.UUID]:
        return uuid.uuid4

    @pytest.fixture
    def new_user(self) -> Callable[[uuid.UUID], uuid.UUID]:
        return lambda organization_id: uuid.uuid4()

    @pytest.fixture
    def unit_of_work(self, database: MemoryDatabase) -> Callable[..., Any]:
        return database.unit_of_work


# Memory-only: tampering through the fake's back door, and purging with a controllable clock.


def _memory_chain(count: int, clock: Callable[[], dt.datetime] | None = None) -> tuple[MemoryAuditLog, uuid.UUID]:
    audit_log = MemoryAuditLog(AuditSigner("test-1", KEY), **({"clock": clock} if clock else {}))
    org = uuid.uuid4()
    for index in range(count):
        audit_log.record_independently(event(org, metadata={"n": index}))
    return audit_log, org


def test_memory_tampering_is_named_by_verification() -> None:
    audit_log, org = _memory_chain(5)
    audit_log.tamper(org, 3, lambda r: dataclasses.replace(r, created_at=r.created_at + dt.timedelta(seconds=1)))
    [result] = verify_chains(audit_log, audit_log.signer, org)
    assert result.first_break is not None
    assert (result.first_break.sequence_number, result.first_break.reason) == (3, BreakReason.HASH_MISMATCH)

    audit_log, org = _memory_chain(5)
    audit_log.tamper(org, 5, lambda r: None)
    [result] = verify_chains(audit_log, audit_log.signer, org)
    assert result.first_break is not None and result.first_break.reason is BreakReason.MISSING_TAIL


def test_memory_purge_removes_only_rows_past_retention_and_leaves_a_verifiable_checkpoint() -> None:
    now = [dt.datetime(2020, 1, 1)]
    audit_log, org = _memory_chain(4, clock=lambda: now[0])
    now[0] = dt.datetime(2027, 6, 1)
    audit_log.record_independently(event(org, "young"))
    now[0] = dt.datetime(2027, 6, 2)

    outcome = purge_expired(audit_log, audit_log.signer, org, now[0])
    assert (outcome.rows_removed, outcome.through_sequence) == (4, 4)
    assert [r.sequence_number for r in audit_log.read_chain(org, 0, 10)] == [5]
    [result] = verify_chains(audit_log, audit_log.signer, org, now=now[0])
    assert result.ok and result.records_checked == 1
    assert purge_expired(audit_log, audit_log.signer, org, now[0]).rows_removed == 0


def test_memory_purge_refuses_a_tampered_prefix() -> None:
    now = [dt.datetime(2010, 1, 1)]
    audit_log, org = _memory_chain(3, clock=lambda: now[0])
    audit_log.tamper(org, 2, lambda r: dataclasses.replace(r, hash="f" * 64))
    now[0] = dt.datetime(2024, 1, 1)
    with pytest.raises(AuditPurgeRefused):
        purge_expired(audit_log, audit_log.signer, org, now[0])
    assert len(audit_log.read_chain(org, 0, 10)) == 3
