"""Contract of the reconciliation repositories, run over the in-memory adapter
(tests/unit/test_reconciliation_jobs_repositories.py) and PostgreSQL
(tests/integration/test_reconciliation_jobs_repositories_postgres.py), so the fake cannot drift."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from reckai.application.ports.reconciliations import JobFileLink, JobFilter, ResultsRejected
from reckai.application.ports.repositories import TenantIsolationViolation
from reckai.application.ports.workflow import ExceptionQuery
from reckai.domain.exceptions.lifecycle import (
    INHERITED_FIELDS,
    BreakAction,
    Comment,
    ExceptionStatus,
    Resolution,
    inheritance_changes,
)
from reckai.domain.reconciliation import jobs as j
from reckai.domain.reconciliation.jobs import JobStatus

NOW = dt.datetime(2025, 12, 31, 12, 0, tzinfo=dt.UTC)
# (database, organization id, user id) of two tenants
Tenants = tuple[Any, tuple[uuid.UUID, uuid.UUID], tuple[uuid.UUID, uuid.UUID]]

MATCH = b"auto,,{l},{r},rrn-exact,1,0.9500,0,0,,K{l},K{r},,\n"
EXCEPTION = (b'missing_entry,low,12.50,NGN,2025-12-01,Row {l} has no counterpart,"Bank debit",0.9000,'
             b'Investigate,{l},,,,1250,"{""a"":1}",RRN{l},,STAN{l},,539983******1234,POS\n')


def _job(organization_id: uuid.UUID, user_id: uuid.UUID, name: str = "job") -> j.ReconciliationJob:
    now = dt.datetime.now(dt.UTC)  # time-ordered ids, as the use cases make them (bench_persist uses these jobs)
    return j.new_job(job_id=j.new_job_id(now), organization_id=organization_id, name=name, created_by=user_id,
                     snapshot={"rules": [{"name": "r"}]}, now=now)


def _processing(database: Any, organization_id: uuid.UUID, user_id: uuid.UUID) -> j.ReconciliationJob:
    job = _job(organization_id, user_id)
    with database.unit_of_work(organization_id) as uow:
        job = uow.reconciliation_jobs.add(job)
        job = j.claim(job, attempt=1, worker="w", now=dt.datetime.now(dt.UTC), lease=dt.timedelta(minutes=5))
        uow.reconciliation_jobs.update(job)
        uow.commit()
    return job


def _rows(template: bytes, lines: range) -> list[bytes]:
    return [b"".join(template.replace(b"{l}", str(i).encode()).replace(b"{r}", str(i + 1).encode())
                     for i in lines)]


def check_job_round_trip_and_isolation(tenants: Tenants) -> None:
    database, (org_a, user_a), (org_b, _) = tenants
    job = _job(org_a, user_a, "round trip")
    with database.unit_of_work(org_a) as uow:
        stored = uow.reconciliation_jobs.add(job)
        assert stored.created_at is not None and stored.created_at.tzinfo is not None
        changed = dataclasses.replace(stored, progress=35, stage="matching", stage_seconds={"load": 1.5},
                                      summary={"matched_pairs": 3}, cancel_requested=True)
        uow.reconciliation_jobs.update(changed)
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        back = uow.reconciliation_jobs.get(job.id)
    assert back is not None and (back.progress, back.stage, back.stage_seconds, back.summary, back.cancel_requested) == (
        35, "matching", {"load": 1.5}, {"matched_pairs": 3}, True)
    assert back.snapshot == {"rules": [{"name": "r"}]} and back.status is JobStatus.PENDING
    with database.unit_of_work(org_b) as uow:
        assert uow.reconciliation_jobs.get(job.id) is None
        with pytest.raises(TenantIsolationViolation):
            uow.reconciliation_jobs.add(_job(org_a, user_a))


def check_list_filter_and_count(tenants: Tenants) -> None:
    database, (org_a, user_a), _ = tenants
    with database.unit_of_work(org_a) as uow:
        before = uow.reconciliation_jobs.count_created_since(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        for name in ("l1", "l2", "l3"):
            uow.reconciliation_jobs.add(_job(org_a, user_a, name))
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.reconciliation_jobs.count_created_since(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) == before + 3
        page, total = uow.reconciliation_jobs.list(JobFilter(status=JobStatus.PENDING), limit=2, offset=0)
        assert len(page) == 2 and total >= 3 and all(job.status is JobStatus.PENDING for job in page)
        future = uow.reconciliation_jobs.list(JobFilter(created_from=dt.datetime(2999, 1, 1, tzinfo=dt.UTC)),
                                              limit=10, offset=0)
        assert future == ([], 0)


def check_results_are_replaced_never_duplicated(tenants: Tenants) -> None:
    database, (org_a, user_a), (org_b, _) = tenants
    job = _processing(database, org_a, user_a)
    for _ in range(2):  # a second write (another attempt's) replaces the first
        with database.unit_of_work(org_a) as uow:
            written = uow.reconciliation_results.replace_results(job.id, 1, _rows(MATCH, range(1, 6)),
                                                                 _rows(EXCEPTION, range(10, 13)))
            uow.commit()
        assert written == (5, 3)
    with database.unit_of_work(org_a) as uow:
        page = uow.reconciliation_results.list_matches(job.id, status="auto", limit=2, offset=2)
        assert uow.reconciliation_results.count_matches(job.id, status="auto") == 5
        assert [(m.left_row, m.right_row) for m in page] == [(3, 4), (4, 5)]
        after = uow.reconciliation_results.list_matches(job.id, status="auto", limit=2, after=(2, 3))
        assert after == page  # keyset: the pairs after (2, 3), the same as offset 2
        assert uow.reconciliation_results.list_matches(job.id, status="auto", limit=2, after=(3, 3))[0] == page[0]
        assert uow.reconciliation_results.list_matches(job.id, status="auto", limit=9, after=(5, 6)) == []
        assert page[0].evidence["left_key"] == "K3" and str(page[0].confidence) in ("0.9500", "0.95")
        assert uow.reconciliation_results.exception_counts(job.id) == {"missing_entry": 3}
        rows = uow.reconciliation_results.exception_rows(job.id)
        assert [r["left_row"] for r in rows] == [10, 11, 12] and rows[0]["transaction_date"] == dt.date(2025, 12, 1)
        # the search keys travel with the rows (issue 16 item 3) and are what the search reads
        found = uow.exceptions.list(ExceptionQuery(job_id=job.id, reference="RRN11")).items
        assert [(e.left_row, e.reference, e.secondary_reference, e.masked_account, e.channel) for e in found] == [
            (11, "RRN11", "STAN11", "539983******1234", "POS")]
    with database.unit_of_work(org_b) as uow:
        assert uow.reconciliation_results.count_matches(job.id, status="auto") == 0


def check_match_pages_by_group_and_status(tenants: Tenants) -> None:
    database, (org_a, user_a), _ = tenants
    job = _processing(database, org_a, user_a)
    grouped = b"auto,G7,{l},9,sum-group,1,0.9000,0,0,,,,2,\n"  # one right row, two left rows: a 1:n group
    suggested = b"suggested,,{l},{r},fuzzy,2,0.6000,100,1,8000,,,,\n"
    with database.unit_of_work(org_a) as uow:
        uow.reconciliation_results.replace_results(
            job.id, 1, [*_rows(MATCH, range(1, 4)), *_rows(grouped, range(7, 9)), *_rows(suggested, range(20, 22))], [])
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        results = uow.reconciliation_results
        assert results.count_matches(job.id, status="auto") == 5
        assert results.count_matches(job.id, status="suggested") == 2
        assert results.count_matches(job.id, status="auto", group_key="G7") == 2
        members = results.list_matches(job.id, status="auto", limit=10, group_key="G7")
        assert [(m.left_row, m.right_row, m.group_key) for m in members] == [(7, 9, "G7"), (8, 9, "G7")]
        assert results.list_matches(job.id, status="auto", limit=10, group_key="G7", after=(7, 9)) == members[1:]
        assert [m.left_row for m in results.list_matches(job.id, status="suggested", limit=10)] == [20, 21]
        assert results.list_matches(job.id, status="auto", limit=2, offset=1, after=(1, 2))[0].left_row == 3


def check_results_refused_for_a_stale_attempt_or_bad_data(tenants: Tenants) -> None:
    database, (org_a, user_a), _ = tenants
    job = _processing(database, org_a, user_a)
    with database.unit_of_work(org_a) as uow, pytest.raises(ResultsRejected):
        uow.reconciliation_results.replace_results(job.id, 2, _rows(MATCH, range(1, 3)), [])
    with database.unit_of_work(org_a) as uow, pytest.raises(ResultsRejected):
        uow.reconciliation_results.replace_results(job.id, 1, [b"auto,,not-a-number,1,r,1,0.5,,,,,,,\n"], [])
    with database.unit_of_work(org_a) as uow:
        assert uow.reconciliation_results.count_matches(job.id, status="auto") == 0


def check_delete_links_and_stuck(tenants: Tenants, add_file: Callable[[uuid.UUID, uuid.UUID], uuid.UUID]) -> None:
    database, (org_a, user_a), _ = tenants
    left, right = add_file(org_a, user_a), add_file(org_a, user_a)
    job = _processing(database, org_a, user_a)
    with database.unit_of_work(org_a) as uow:
        uow.reconciliation_jobs.link_files(job.id, [JobFileLink(left, "left"), JobFileLink(right, "right")])
        uow.reconciliation_results.replace_results(job.id, 1, _rows(MATCH, range(1, 3)), _rows(EXCEPTION, range(1, 2)))
        expired = dataclasses.replace(uow.reconciliation_jobs.get(job.id),
                                      lease_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        uow.reconciliation_jobs.update(expired)
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.reconciliation_jobs.latest_for_files(left, right) == job.id
        assert uow.reconciliation_jobs.latest_for_files(right, left) is None
    with database.unit_of_work(None) as uow:
        stuck = uow.reconciliation_jobs.find_stuck(1000, 3600)
    # Every tenant's stuck jobs: the store must hold no one else's (PostgreSQL: a database of its own).
    assert [(s.job_id, s.organization_id, s.status) for s in stuck] == [(job.id, org_a, "processing")]
    with database.unit_of_work(org_a) as uow:
        assert uow.reconciliation_jobs.delete(job.id)
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.reconciliation_jobs.get(job.id) is None
        assert uow.reconciliation_jobs.linked_files(job.id) == []
        assert uow.reconciliation_results.exception_counts(job.id) == {}
        assert uow.reconciliation_results.count_matches(job.id, status="auto") == 0
        assert uow.files.get(left) is not None  # an upload outlives the job
        assert not uow.reconciliation_jobs.delete(job.id)


def _exception_line(kind: str, left: tuple[uuid.UUID, int] | None, right: tuple[uuid.UUID, int] | None,
                    description: str) -> bytes:
    """One exception CSV line (EXCEPTION_COLUMNS) about these (file, row) of each side."""
    lf, lr = (str(left[0]), str(left[1])) if left else ("", "")
    rf, rr = (str(right[0]), str(right[1])) if right else ("", "")
    return (f"{kind},medium,12.50,NGN,2025-12-01,{description},,,,{lr},{rr},{lf},{rf},1250,,,,,,,\n").encode()


def check_forced_job_inherits_by_key(tenants: Tenants, add_file: Callable[[uuid.UUID, uuid.UUID], uuid.UUID]) -> None:
    """A forced re-run's exceptions take the state of the earlier job's with the same key (type,
    left file and row, right file and row): status, assignee, resolution, escalation, SLA clock,
    comments; an `inherit` history entry each; one only in the new job stays new, one only in the
    earlier job is untouched; several with one key pair in the order written."""
    database, (org, user), (org_b, _) = tenants
    left, right = add_file(org, user), add_file(org, user)
    earlier_job, new_job = _processing(database, org, user), _processing(database, org, user)
    a, b = _exception_line("missing_entry", (left, 1), None, "A"), _exception_line("amount_mismatch", (left, 2), (right, 2), "B")
    c = _exception_line("missing_entry", (left, 3), None, "C only earlier")
    d1, d2 = _exception_line("duplicate", (left, 5), None, "D first"), _exception_line("duplicate", (left, 5), None, "D second")
    e = _exception_line("missing_entry", None, (right, 9), "E only new")
    d_again = _exception_line("duplicate", (left, 5), None, "D again")  # pairs with the first written: "D first"
    with database.unit_of_work(org) as uow:
        uow.reconciliation_results.replace_results(earlier_job.id, 1, [], [a + b + c + d1 + d2])
        uow.commit()
    with database.unit_of_work(org) as uow:
        earlier = {x.description: x for x in uow.exceptions.list(ExceptionQuery(job_id=earlier_job.id, limit=50)).items}
        resolved, worked, escalated = (uow.exceptions.get_for_update(earlier[name].id) for name in ("A", "B", "D first"))
        assert resolved and worked and escalated
        for entry in resolved.close(BreakAction.RESOLVE, actor_id=user, at=NOW,
                                    resolution=Resolution.of("corrected_at_source", "fixed at the bank")):
            uow.exceptions.add_history(entry)
        for entry in (worked.apply(BreakAction.START, actor_id=user, at=NOW), worked.assign(user, actor_id=user, at=NOW),
                      escalated.apply(BreakAction.START, actor_id=user, at=NOW),
                      escalated.apply(BreakAction.ESCALATE, actor_id=user, at=NOW)):
            uow.exceptions.add_history(entry)
        for item in (resolved, worked, escalated):
            uow.exceptions.update(item)
        for minutes, text in enumerate(("asked the bank", "bank says tomorrow")):
            uow.exceptions.add_comment(Comment.write(organization_id=org, exception_id=worked.id, user_id=user,
                                                     content=text, at=NOW + dt.timedelta(minutes=minutes)))
        uow.commit()
    with database.unit_of_work(org) as uow:
        before = {x.description: x for x in uow.exceptions.list(ExceptionQuery(job_id=earlier_job.id, limit=50)).items}
        uow.reconciliation_results.replace_results(new_job.id, 1, [], [e + d_again + b + a])
        assert uow.reconciliation_results.inherit_exceptions(new_job.id, earlier_job.id, at=NOW) == 3
        uow.commit()
    with database.unit_of_work(org_b) as uow:  # another tenant sees nothing to inherit
        assert uow.reconciliation_results.inherit_exceptions(new_job.id, earlier_job.id, at=NOW) == 0
    with database.unit_of_work(org) as uow:
        assert uow.reconciliation_results.inherit_exceptions(new_job.id, earlier_job.id, at=NOW) == 0  # once
        later = {x.description: x for x in uow.exceptions.list(ExceptionQuery(job_id=new_job.id, limit=50)).items}
        after = {x.description: x for x in uow.exceptions.list(ExceptionQuery(job_id=earlier_job.id, limit=50)).items}
        assert after == before  # the earlier job's exceptions are only read
        for name, source in (("A", "A"), ("B", "B"), ("D again", "D first")):
            item, origin = later[name], before[source]
            assert item.id != origin.id and item.inherited_from == origin.id and item.updated_at == NOW
            assert {f: getattr(item, f) for f in INHERITED_FIELDS} == {f: getattr(origin, f) for f in INHERITED_FIELDS}
            history = uow.exceptions.history(item.id)
            assert [(h.action, h.actor_id, h.from_status, h.to_status, h.changes) for h in history] == [
                ("inherit", None, "open", origin.status.value, inheritance_changes(
                    origin.id, earlier_job.id, origin.status.value, 2 if name == "B" else 0))]
        assert later["A"].status is ExceptionStatus.RESOLVED and later["A"].resolution_note == "fixed at the bank"
        assert (later["B"].status, later["B"].assigned_to) == (ExceptionStatus.IN_PROGRESS, user)
        assert later["D again"].status is ExceptionStatus.ESCALATED and later["D again"].escalated_at == NOW
        copied = [(c.content, c.user_id, c.created_at) for c in uow.exceptions.comments(later["B"].id)]
        assert copied == [(c.content, c.user_id, c.created_at) for c in uow.exceptions.comments(before["B"].id)]
        assert [text for text, _, _ in copied] == ["asked the bank", "bank says tomorrow"]
        only_new = later["E only new"]  # no counterpart: as written
        assert (only_new.status, only_new.inherited_from, list(uow.exceptions.history(only_new.id))) == (
            ExceptionStatus.OPEN, None, [])
        assert before["C only earlier"].status is ExceptionStatus.OPEN
    with database.unit_of_work(org) as uow:  # deleting the earlier job keeps the later exceptions, unlinked
        assert uow.reconciliation_jobs.delete(earlier_job.id)
        uow.commit()
    with database.unit_of_work(org) as uow:
        kept = uow.exceptions.list(ExceptionQuery(job_id=new_job.id, limit=50)).items
        assert len(kept) == 4 and all(item.inherited_from is None for item in kept)
        assert [h.action for h in uow.exceptions.history(later["A"].id)] == ["inherit"]


CHECKS = [check_job_round_trip_and_isolation, check_list_filter_and_count, check_results_are_replaced_never_duplicated,
          check_match_pages_by_group_and_status, check_results_refused_for_a_stale_attempt_or_bad_data]
