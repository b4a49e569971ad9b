"""Contract of the stream repository (application/ports/streams.py), run over the in-memory
adapter (tests/unit/test_stream_repositories.py) and PostgreSQL
(tests/integration/test_stream_repositories_postgres.py), so the fake cannot drift."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from reckai.application.ports.periods import ExceptionFacts, FrozenIn
from reckai.application.ports.reconciliations import JobFileLink
from reckai.application.ports.repositories import DuplicateEntity, TenantIsolationViolation
from reckai.application.ports.streams import RowKey, StoredRow
from reckai.domain.approvals.workflow import Approval, ApprovalType
from reckai.domain.exceptions.lifecycle import ExceptionItem
from reckai.domain.exceptions.policy import SlaPolicy
from reckai.domain.reconciliation import jobs as j
from reckai.domain.streams.periods import PeriodAdjustment, PeriodItem, StreamPeriod
from reckai.domain.streams.streams import PinnedRule, Stream, StreamFile, StreamRun, StreamSide

Tenants = tuple[Any, tuple[uuid.UUID, uuid.UUID], tuple[uuid.UUID, uuid.UUID]]
FileAdder = Callable[[uuid.UUID, uuid.UUID], uuid.UUID]
NOW = dt.datetime(2026, 1, 2, 8, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 1, 1)  # a transaction day of the stream rows below


def stream_of(organization_id: uuid.UUID, user_id: uuid.UUID, name: str = "card vs bank") -> Stream:
    return Stream(id=uuid.uuid4(), organization_id=organization_id, name=name,
                  left=StreamSide("bank", {"parse": {"format": "csv"}, "fields": {"amount": {"column": "a"}}}),
                  right=StreamSide("switch", {"parse": {"format": "csv"}, "fields": {}}),
                  rules=(PinnedRule(uuid.uuid4(), 2, "rrn", {"rule_type": "exact"}),), leading_side="right",
                  currency="NGN", owner_id=user_id, created_by=user_id, options={"cutoff": {"days": 1}},
                  created_at=NOW, updated_at=NOW)


def check_round_trip_names_and_isolation(tenants: Tenants, add_file: FileAdder) -> None:
    database, (org_a, user_a), (org_b, _) = tenants
    stream = stream_of(org_a, user_a)
    with database.unit_of_work(org_a) as uow:
        stored = uow.streams.add(stream)
        uow.commit()
    assert stored == stream
    with database.unit_of_work(org_a) as uow:
        assert uow.streams.get(stream.id) == stream
        with pytest.raises(DuplicateEntity):
            uow.streams.add(dataclasses.replace(stream_of(org_a, user_a), name=stream.name))
    with database.unit_of_work(org_a) as uow:
        renamed = dataclasses.replace(stream, name="renamed", rules=(), updated_at=NOW + dt.timedelta(hours=1))
        uow.streams.update(renamed)
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.streams.get(stream.id) == renamed
        page, total = uow.streams.list(limit=10, offset=0)
        assert total == 1 and page == [renamed]
    with database.unit_of_work(org_b) as uow:
        assert uow.streams.get(stream.id) is None
        assert uow.streams.list(limit=10, offset=0) == ([], 0)
        with pytest.raises(TenantIsolationViolation):
            uow.streams.add(stream_of(org_a, user_a, "sneaky"))


def check_files_runs_rows_and_breaks(tenants: Tenants, add_file: FileAdder) -> None:
    database, (org_a, user_a), (org_b, _) = tenants
    stream = stream_of(org_a, user_a, "files")
    left, right = add_file(org_a, user_a), add_file(org_a, user_a)
    job = j.new_job(job_id=uuid.uuid4(), organization_id=org_a, name="run 1", created_by=user_a, snapshot={},
                    now=NOW)
    with database.unit_of_work(org_a) as uow:
        uow.streams.add(stream)
        uow.streams.add_file(StreamFile(stream.id, left, "left", "a" * 64, user_a, NOW))
        uow.streams.add_file(StreamFile(stream.id, right, "right", "b" * 64, user_a, NOW + dt.timedelta(seconds=1)))
        uow.reconciliation_jobs.add(job)
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.streams.file_taken_by_checksum(stream.id, "a" * 64) == left
        assert uow.streams.file_taken_by_checksum(stream.id, "c" * 64) is None
        assert uow.streams.stream_of_file(right) == stream.id
        assert [f.file_id for f in uow.streams.waiting_files(stream.id)] == [left, right]
        assert uow.streams.job_using_file(left) is None
        uow.streams.assign_files(stream.id, [left, right], job.id)
        uow.reconciliation_jobs.link_files(job.id, [JobFileLink(left, "left")])
        uow.streams.add_run(StreamRun(stream.id, 1, job.id, user_a, NOW))
        rows = [RowKey("left", "f1", 0, 1, left, 1, DAY), RowKey("left", "f1", 1, 2, left, 2, DAY),
                RowKey("right", "f9", 0, 1, right, 1, DAY), RowKey("right", "f8", 0, 2, right, 2, None)]
        assert uow.streams.add_rows(stream.id, 1, rows) == 4
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.streams.waiting_files(stream.id) == []  # the run is pending: its files are taken
        assert uow.streams.job_using_file(left) == job.id and uow.streams.job_using_file(right) is None
        assert uow.streams.known_keys(stream.id, "left", [(DAY, "f1", 1), (DAY, "f1", 2), (DAY, "f9", 0)]) \
            == {("f1", 1)}
        # a key is looked for under its day (equal fingerprints have equal days) ...
        assert uow.streams.known_keys(stream.id, "left", [(DAY + dt.timedelta(days=1), "f1", 1), (None, "f1", 0)]) \
            == set()
        # ... and among the rows of unknown day (taken before 0032, or dateless), whatever its day
        assert uow.streams.known_keys(stream.id, "right", [(DAY, "f8", 0), (None, "f9", 0)]) == {("f8", 0)}
        assert uow.streams.last_seq(stream.id, "left") == 2 and uow.streams.last_seq(stream.id, "right") == 2
        assert uow.streams.row(stream.id, "left", 2) == StoredRow(RowKey("left", "f1", 1, 2, left, 2, DAY), 1)
        assert uow.streams.row(stream.id, "right", 2) == StoredRow(RowKey("right", "f8", 0, 2, right, 2, None), 1)
        assert uow.streams.row(stream.id, "right", 3) is None and uow.streams.row(stream.id, "left", 9) is None
        with pytest.raises(DuplicateEntity):
            uow.streams.add_rows(stream.id, 1, [RowKey("left", "f1", 0, 7, left, 9, DAY)])
    sla = SlaPolicy()
    item = ExceptionItem.new(organization_id=org_a, job_id=job.id, type="missing_entry", severity="low",
                             description="d", created_at=NOW, sla=sla, left_file_id=left, left_row=2)
    with database.unit_of_work(org_a) as uow:
        uow.exceptions.add(item)
        origins = uow.streams.job_exception_origins(job.id)
        assert [(o.exception_id, o.left_file_id, o.left_row, o.right_file_id) for o in origins] == \
            [(item.id, left, 2, None)]
        assert uow.streams.link_exceptions(stream.id, 1, [(item.id, 2, None)]) == 1
        uow.streams.update_run(StreamRun(stream.id, 1, job.id, user_a, carry_key="k", figures={"new_rows": 3}))
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        found = uow.streams.breaks(stream.id, active_only=True)
        assert [(b.exception_id, b.left_seq, b.right_seq, b.status) for b in found] == [(item.id, 2, None, "open")]
        assert uow.streams.breaks(stream.id, active_only=False, seqs=[("left", 1), ("right", 2)]) == []
        assert len(uow.streams.breaks(stream.id, active_only=False, seqs=[("left", 2)])) == 1
        run = uow.streams.run_of_job(job.id)
        assert run is not None and run.carry_key == "k" and run.figures == {"new_rows": 3}
        assert [r.run_number for r in uow.streams.runs(stream.id)] == [1]
        assert [f.job_id for f in uow.streams.files(stream.id)] == [job.id, job.id]
    with database.unit_of_work(org_b) as uow:
        assert uow.streams.files(stream.id) == [] and uow.streams.runs(stream.id) == []
        assert uow.streams.known_keys(stream.id, "left", [(DAY, "f1", 0)]) == set()
        assert uow.streams.breaks(stream.id, active_only=False) == []
        assert uow.streams.stream_of_file(left) is None
        assert uow.streams.row(stream.id, "left", 2) is None


def check_periods_items_and_adjustments(tenants: Tenants, add_file: FileAdder) -> None:
    """The period repository (application/ports/periods.py): a closed period freezes the items it
    settled (not those it carried), a reopened one none; an adjustment is recorded and marks the
    transaction that applies it; another organization sees nothing."""
    database, (org_a, user_a), (org_b, _) = tenants
    stream = stream_of(org_a, user_a, "periods")
    job = j.new_job(job_id=uuid.uuid4(), organization_id=org_a, name="run 1", created_by=user_a, snapshot={},
                    now=NOW)
    sla = SlaPolicy()
    settled, carried = (ExceptionItem.new(organization_id=org_a, job_id=job.id, type="missing_entry", severity="low",
                                          description="d", created_at=NOW, sla=sla, transaction_date=day,
                                          evidence={"right": {"date": "2025-12-29T23:10:00"}})
                        for day in (dt.date(2025, 12, 31), dt.date(2025, 12, 30)))
    close_approval = Approval.request(organization_id=org_a, type=ApprovalType.PERIOD_CLOSE, title="t",
                                      description="d", metadata={}, requested_by=user_a, at=NOW)
    adjust_approval = Approval.request(organization_id=org_a, type=ApprovalType.PERIOD_ADJUSTMENT, title="t",
                                       description="d", metadata={}, requested_by=user_a, at=NOW)
    period = StreamPeriod(organization_id=org_a, stream_id=stream.id, key="2025-12-31", granularity="day",
                          status="closed", timezone="Africa/Lagos", figures={"open_items": {"count": 1}},
                          closed_at=NOW, closed_by=user_a, close_approved_by=user_a,
                          close_approval_id=close_approval.id)
    with database.unit_of_work(org_a) as uow:
        uow.streams.add(stream)
        uow.reconciliation_jobs.add(job)
        uow.exceptions.add(settled)
        uow.exceptions.add(carried)
        uow.approvals.add(close_approval)
        uow.approvals.add(adjust_approval)
        uow.stream_periods.save(period)
        uow.stream_periods.replace_items(stream.id, period.key, [PeriodItem(settled.id, False, "resolved"),
                                                                 PeriodItem(carried.id, True, "open")], [(1, job.id)])
        uow.streams.link_exceptions(stream.id, 1, [(settled.id, 1, None), (carried.id, None, 2)])
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.stream_periods.get(stream.id, "2025-12-31") == period
        assert uow.stream_periods.list(stream.id) == [period]
        assert uow.stream_periods.frozen([settled.id, carried.id]) == {settled.id: FrozenIn(stream.id, "2025-12-31")}
        assert uow.stream_periods.frozen_in_stream(stream.id) == {settled.id}
        facts = {f.exception_id: f for f in uow.stream_periods.exception_facts(stream.id)}
        assert set(facts) == {settled.id, carried.id}
        assert facts[carried.id] == ExceptionFacts(carried.id, 1, "missing_entry", "open", carried.currency,
                                                   None, None, dt.date(2025, 12, 29), None)
        assert [i.exception_id for i in uow.stream_periods.items(stream.id, period.key)] == \
            sorted([settled.id, carried.id], key=str)
        assert uow.stream_periods.adjusting() is None
        adjustment = PeriodAdjustment(uuid.uuid4(), stream.id, period.key, adjust_approval.id, "reopen",
                                      (settled.id,), "why", user_a, user_a, NOW, {})
        uow.stream_periods.begin_adjustment(adjustment)
        assert uow.stream_periods.adjusting() == adjustment
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.stream_periods.adjusting() is None  # one transaction only
        assert uow.stream_periods.adjustments(stream.id, period.key) == [adjustment]
        reopened = dataclasses.replace(period, status="reopened", reopened_at=NOW, reopened_by=user_a,
                                       reopen_approval_id=adjust_approval.id)
        uow.stream_periods.save(reopened)
        uow.stream_periods.replace_items(stream.id, period.key, [PeriodItem(carried.id, True, "open")], [])
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.stream_periods.get(stream.id, period.key) == reopened
        assert uow.stream_periods.frozen([settled.id, carried.id]) == {}
        assert [i.exception_id for i in uow.stream_periods.items(stream.id, period.key)] == [carried.id]
    with database.unit_of_work(org_b) as uow:
        assert uow.stream_periods.get(stream.id, period.key) is None and uow.stream_periods.list(stream.id) == []
        assert uow.stream_periods.items(stream.id, period.key) == []
        assert uow.stream_periods.adjustments(stream.id, period.key) == []
        with pytest.raises(TenantIsolationViolation):
            uow.stream_periods.save(period)


CHECKS = [check_round_trip_names_and_isolation, check_files_runs_rows_and_breaks, check_periods_items_and_adjustments]
