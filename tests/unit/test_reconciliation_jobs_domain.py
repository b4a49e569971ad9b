"""The job state machine: attempts, leases, cancel, sweep (domain only, standard library)."""

from __future__ import annotations

import ast
import datetime as dt
import pathlib
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reckai.domain.reconciliation import jobs as j

NOW = dt.datetime(2025, 12, 31, 12, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=60)


def pending(**changes: object) -> j.ReconciliationJob:
    job = j.new_job(job_id=uuid.uuid4(), organization_id=uuid.uuid4(), name="  Dec  bank vs switch ",
                    created_by=uuid.uuid4(), snapshot={"profile": {}}, now=NOW)
    return j.ReconciliationJob(**{**job.__dict__, **changes})  # type: ignore[arg-type]


def test_new_job_is_pending_at_attempt_one_with_a_clean_name() -> None:
    job = pending()
    assert (job.status, job.attempt, job.progress, job.name) == (j.JobStatus.PENDING, 1, 0, "Dec bank vs switch")
    with pytest.raises(j.InvalidJobName):
        j.check_name("   ")
    with pytest.raises(j.InvalidJobName):
        j.check_name("x" * 256)


@given(st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2999, 12, 31), timezones=st.just(dt.UTC)),
       st.integers(min_value=1, max_value=10**9))
def test_job_ids_are_version_7_and_sort_by_creation_time(earlier: dt.datetime, micros_later: int) -> None:
    """new_job_id: RFC 9562 version 7 with the creation millisecond in front, so a later job's id
    sorts after an earlier job's (as uuid values, which PostgreSQL compares byte by byte like these
    ints): its result rows are appended at the right edge of the job_id indexes."""
    later = earlier + dt.timedelta(microseconds=micros_later)
    first, second = j.new_job_id(earlier), j.new_job_id(later)
    for made, at in ((first, earlier), (second, later)):
        assert made.version == 7 and made.variant == uuid.RFC_4122
        assert made.int >> 80 == int(at.timestamp() * 1000)
    if int(later.timestamp() * 1000) > int(earlier.timestamp() * 1000):
        assert first < second and first.bytes < second.bytes
    assert len({j.new_job_id(earlier) for _ in range(100)}) == 100  # 74 random bits within a millisecond


def test_only_the_current_attempt_of_a_pending_job_can_be_claimed() -> None:
    job = pending()
    claimed = j.claim(job, attempt=1, worker="w1", now=NOW, lease=LEASE)
    assert claimed.status is j.JobStatus.PROCESSING and claimed.lease_owner == "w1"
    assert claimed.lease_expires_at == NOW + LEASE and claimed.started_at == NOW
    with pytest.raises(j.StaleAttempt):  # duplicate message for the same attempt
        j.claim(claimed, attempt=1, worker="w2", now=NOW, lease=LEASE)
    with pytest.raises(j.StaleAttempt):  # message of an older attempt
        j.claim(pending(attempt=2), attempt=1, worker="w2", now=NOW, lease=LEASE)
    for status in j.TERMINAL_STATUSES:
        with pytest.raises(j.StaleAttempt):
            j.claim(pending(status=status), attempt=1, worker="w2", now=NOW, lease=LEASE)


def test_a_worker_that_lost_its_lease_can_neither_renew_nor_complete() -> None:
    claimed = j.claim(pending(), attempt=1, worker="w1", now=NOW, lease=LEASE)
    requeued = j.sweep(claimed, NOW + 2 * LEASE, dt.timedelta(minutes=15)).job
    assert requeued.status is j.JobStatus.PENDING and requeued.attempt == 2
    with pytest.raises(j.StaleAttempt):
        j.renew_lease(requeued, attempt=1, worker="w1", now=NOW, lease=LEASE)
    counts = j.JobCounts(10, 10, 8, 2)
    with pytest.raises(j.StaleAttempt):
        j.complete(requeued, attempt=1, worker="w1", counts=counts, now=NOW, stage_seconds={}, summary={})
    with pytest.raises(j.StaleAttempt):
        j.fail(requeued, attempt=1, worker="w1", message="x", now=NOW)


def test_complete_sets_counts_rate_and_timing() -> None:
    claimed = j.claim(pending(), attempt=1, worker="w1", now=NOW, lease=LEASE)
    done = j.complete(claimed, attempt=1, worker="w1", counts=j.JobCounts(3, 3, 2, 1), now=NOW + dt.timedelta(seconds=7),
                      stage_seconds={"match": 1.5}, summary={"matched_pairs": 1})
    assert (done.status, done.progress, done.match_rate, done.processing_time_seconds) == (
        j.JobStatus.COMPLETED, 100, Decimal("66.67"), 7)
    assert done.lease_owner is None and done.completed_at == NOW + dt.timedelta(seconds=7)


@given(st.integers(0, 10**9), st.integers(0, 10**9))
def test_match_rate_is_a_two_decimal_percentage_of_total_rows(matched: int, extra: int) -> None:
    total = matched + extra
    rate = j.match_rate(matched, total)
    assert rate == rate.quantize(Decimal("0.01"))
    assert Decimal(0) <= rate <= Decimal(100)
    if total:
        assert abs(rate - Decimal(matched) * 100 / Decimal(total)) <= Decimal("0.005")


def test_cancel_pending_is_immediate_processing_is_cooperative_finished_is_refused() -> None:
    assert j.request_cancel(pending(), NOW).status is j.JobStatus.CANCELLED
    claimed = j.claim(pending(), attempt=1, worker="w1", now=NOW, lease=LEASE)
    flagged = j.request_cancel(claimed, NOW)
    assert flagged.status is j.JobStatus.PROCESSING and flagged.cancel_requested
    with pytest.raises(j.CancelRequested):
        j.advance(flagged, attempt=1, worker="w1", stage=j.Stage.MATCHING, now=NOW)
    with pytest.raises(j.CancelRequested):  # a cancelled job is never completed
        j.complete(flagged, attempt=1, worker="w1", counts=j.JobCounts(0, 0, 0, 0), now=NOW, stage_seconds={},
                   summary={})
    assert j.acknowledge_cancel(flagged, attempt=1, worker="w1", now=NOW).status is j.JobStatus.CANCELLED
    with pytest.raises(j.JobAlreadyFinished):
        j.request_cancel(j.request_cancel(pending(), NOW), NOW)


def test_sweeper_requeues_then_gives_up_with_a_clear_message() -> None:
    job = pending(max_attempts=2)
    pending_after = dt.timedelta(minutes=15)
    later = NOW
    for attempt in (1, 2):
        claimed = j.claim(job, attempt=attempt, worker=f"w{attempt}", now=later, lease=LEASE)
        assert j.sweep(claimed, later + LEASE / 2, pending_after).action is j.SweepAction.NOTHING  # lease alive
        later = later + 2 * LEASE
        decision = j.sweep(claimed, later, pending_after)
        job = decision.job
    assert decision.action is j.SweepAction.GIVE_UP and job.status is j.JobStatus.FAILED
    assert "interrupted 2 times" in (job.error_message or "") and "Retries are spent" in (job.error_message or "")


def test_sweeper_cancels_a_dead_job_that_was_asked_to_stop_and_resends_old_pending() -> None:
    flagged = j.request_cancel(j.claim(pending(), attempt=1, worker="w1", now=NOW, lease=LEASE), NOW)
    assert j.sweep(flagged, NOW + 2 * LEASE, dt.timedelta(minutes=15)).action is j.SweepAction.CANCEL
    old = pending(updated_at=NOW - dt.timedelta(hours=1))
    decision = j.sweep(old, NOW, dt.timedelta(minutes=15))
    assert decision.action is j.SweepAction.RESEND and decision.job.attempt == 1
    assert j.sweep(pending(), NOW, dt.timedelta(minutes=15)).action is j.SweepAction.NOTHING


def test_running_job_cannot_be_deleted() -> None:
    with pytest.raises(j.JobIsRunning):
        j.check_deletable(j.claim(pending(), attempt=1, worker="w1", now=NOW, lease=LEASE))
    j.check_deletable(pending())


def test_jobs_module_imports_only_the_standard_library() -> None:
    source = pathlib.Path(j.__file__).read_text()
    modules = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    modules |= {alias.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import)
                for alias in node.names}
    assert all(not (m or "").startswith("reckai") or m == "__future__" for m in modules), modules
    assert not {m for m in modules if (m or "").split(".")[0] in {"polars", "sqlalchemy", "psycopg", "dramatiq"}}
