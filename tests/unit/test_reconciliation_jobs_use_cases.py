"""Reconciliation use cases and the worker step over the in-memory container (state, never mocks)."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.application.context import Caller
from reckai.application.context import Caller as FileCaller
from reckai.application.errors import QuotaExceeded, ValidationFailed
from reckai.application.files import confirm_mapping, upload_file, validate_form
from reckai.application.ports.reconciliations import JobFilter
from reckai.application.reconciliations.commands import (
    StartRequest,
    cancel_reconciliation,
    delete_reconciliation,
    rename_reconciliation,
    start_reconciliation,
)
from reckai.application.reconciliations.errors import (
    FileNotReady,
    JobAlreadyFinishedError,
    JobNotFound,
    NoRules,
)
from reckai.application.reconciliations.queries import get_reconciliation, get_results, list_reconciliations
from reckai.application.reconciliations.services import ReconciliationServices
from reckai.application.reconciliations.worker import (
    notify_job_creator,
    run_reconciliation_attempt,
    sweep_stuck_jobs,
)
from reckai.application.streams.errors import FilesAlreadyReconciled
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.domain.ingestion.storage_keys import processed_prefix
from reckai.domain.reconciliation.jobs import JobStatus
from reckai.settings import ReconciliationSettings
from tests.contracts.identity_repositories import signup
from tests.support import reconciliation_jobs as rj


@dataclass
class World:
    container: Container
    services: ReconciliationServices
    caller: Caller
    left_id: uuid.UUID
    right_id: uuid.UUID

    def request(self, **changes: Any) -> StartRequest:
        body = rj.start_body(self.left_id, self.right_id)
        request = StartRequest(
            name=body["name"], left_file_id=self.left_id, right_file_id=self.right_id,
            leading_side=body["leading_side"], period_start=rj.PERIOD[0], period_end=rj.PERIOD[1],
            options=body["options"], force=True)  # these tests reconcile the same two files again and again
        return dataclasses.replace(request, **changes)

    def job(self, job_id: uuid.UUID) -> Any:
        return get_reconciliation(self.services, self.caller, job_id).job

    def outbox(self, actor: str) -> list[dict[str, Any]]:
        store = self.container.job_outbox
        return [m.payload for m in store.records() if m.actor_name == actor]

    def audit_actions(self) -> list[str]:
        return [r.event.action for r in self.container.audit_log.read_chain(self.caller.organization_id, 0, 1000)]


def _upload(container: Container, caller: FileCaller, data: bytes, name: str, file_type: str, mapping: Any) -> uuid.UUID:
    services = container.files
    file = upload_file(services, caller, validate_form(name, file_type, None), [data]).file
    confirm_mapping(services, caller, file.id, mapping)
    return file.id  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def base() -> tuple[Container, Caller, uuid.UUID, uuid.UUID]:
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    created, _ = signup(container.database)
    file_caller = FileCaller(organization_id=created.organization_id, user_id=created.admin_user_id)
    profile = rj.profile()
    left = _upload(container, file_caller, rj.bank_bytes(), "bank.csv", "bank", profile["left"]["mapping"])
    right = _upload(container, file_caller, rj.switch_bytes(), "switch.csv", "switch", profile["right"]["mapping"])
    rj.seed_rules(container.database, created.organization_id, created.admin_user_id)
    return container, Caller(created.organization_id, created.admin_user_id, ip_address="10.0.0.1"), left, right


@pytest.fixture
def world(base: tuple[Container, Caller, uuid.UUID, uuid.UUID]) -> World:
    container, caller, left, right = base
    services = dataclasses.replace(container.reconciliations,
                                   settings=ReconciliationSettings(lease_seconds=30, heartbeat_seconds=0.05))
    return World(container, services, caller, left, right)


def test_start_creates_a_pending_job_with_a_snapshot_and_enqueues_it_on_critical(world: World) -> None:
    job = start_reconciliation(world.services, world.caller, world.request())
    assert job.status is JobStatus.PENDING and job.attempt == 1
    assert job.created_at is not None and job.id.version == 7  # time-ordered (new_job_id)
    assert job.id.int >> 80 == int(job.created_at.timestamp() * 1000)
    snapshot = job.snapshot
    assert [r["name"] for r in snapshot["rules"]] == [r["name"] for r in rj.profile()["rules"]]
    assert snapshot["files"]["left"]["mapping"] == rj.profile()["left"]["mapping"]
    assert {"job_id": str(job.id), "attempt": 1} in world.outbox("run_reconciliation")
    details = get_reconciliation(world.services, world.caller, job.id)
    assert {(f.file_id, f.side) for f in details.files} == {(world.left_id, "left"), (world.right_id, "right")}
    assert "reconciliation.job.created" in world.audit_actions()


def test_worker_step_completes_with_the_counts_of_reckai_reconcile(world: World) -> None:
    job = start_reconciliation(world.services, world.caller, world.request())
    assert run_reconciliation_attempt(world.services, world.caller.organization_id, job.id, 1, "w1") == "completed"
    done = world.job(job.id)
    cli = rj.cli_summary()
    total = cli["rows"]["left"] + cli["rows"]["right"]
    assert done.status is JobStatus.COMPLETED and done.progress == 100
    assert done.total_rows == total == done.processed_rows
    assert done.matched_rows == cli["matched_rows"]["left"] + cli["matched_rows"]["right"]
    assert str(done.match_rate) == f"{cli['match_rate']:.2f}"
    assert done.summary["matched_pairs"] == cli["matched_pairs"]
    assert done.summary["exceptions_by_type"] == {k: v for k, v in cli["exceptions_by_type"].items() if v}
    page = get_results(world.services, world.caller, job.id, kind="matches", page=1, per_page=5000)
    assert sorted((m.left_row, m.right_row) for m in page.items) == cli["match_pairs"]
    with world.services.database.unit_of_work(world.caller.organization_id) as uow:
        rows = uow.reconciliation_results.exception_rows(job.id)
        files = [uow.files.get(world.left_id), uow.files.get(world.right_id)]
    assert sorted((r["type"], r["left_row"] or 0, r["right_row"] or 0) for r in rows) == cli["exception_keys"]
    assert all(r["transaction_date"] is not None for r in rows)
    assert all(f.status == "processed" and f.processed_at is not None for f in files)
    keys = list(world.services.storage.list_keys(processed_prefix(world.caller.organization_id, job.id)))
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == ["results.csv", "results.parquet"]
    with world.services.storage.open(next(k for k in keys if k.endswith(".parquet"))) as stream:
        table = pl.read_parquet(stream.read())
    assert table.filter(pl.col("kind") == "match").height == cli["matched_pairs"]
    assert {"job_id": str(job.id)} in world.outbox("notify_reconciliation_job")
    assert "reconciliation.job.completed" in world.audit_actions()
    assert done.stage_seconds["persist"] >= 0 and "match.matching" in done.stage_seconds


def test_the_job_writes_the_same_rows_as_reckai_reconcile(world: World, tmp_path: Any) -> None:
    """One result path: the CLI's exceptions.csv and matches.csv are, byte for byte, the job's
    results.csv rows of kind exception and match in the CLI's columns."""
    from reckai.entrypoints.cli.main import main

    out = tmp_path / "cli"
    assert main(["reconcile", "--left", str(rj.DATA / "bank.csv"), "--right", str(rj.DATA / "switch.csv"),
                 "--profile", str(rj.PROFILE_PATH), "--out", str(out), "--period-start", rj.PERIOD[0].isoformat(),
                 "--period-end", rj.PERIOD[1].isoformat()]) == 0
    job = start_reconciliation(world.services, world.caller, world.request())
    assert run_reconciliation_attempt(world.services, world.caller.organization_id, job.id, 1, "w1") == "completed"
    keys = list(world.services.storage.list_keys(processed_prefix(world.caller.organization_id, job.id)))
    with world.services.storage.open(next(k for k in keys if k.endswith(".csv"))) as stream:
        results = pl.read_csv(stream.read(), infer_schema=False)
    sources = ["left_source", "right_source"]
    pairs = ["left_reference", "right_reference", "left_amount_minor", "right_amount_minor"]
    for kind, name, columns in (
            ("exception", "exceptions.csv", ["type", "severity", "left_row", "right_row", "amount_minor", "currency",
                                             "explanation", *sources]),
            ("match", "matches.csv", ["left_row", "right_row", "group_id", "rule", "status", "confidence", *sources,
                                      *pairs, "currency"])):
        rows = results.filter(pl.col("kind") == kind).select(columns)
        assert rows.height > 100
        assert rows.write_csv(null_value="") == (out / name).read_text(encoding="utf-8")
    # where a person finds each row: the CSV files' lines (the header is line 1)
    match = results.filter(pl.col("kind") == "match").row(0, named=True)
    assert (match["left_source"], match["right_source"]) == (f"line {int(match['left_row']) + 1}",
                                                             f"line {int(match['right_row']) + 1}")
    assert match["left_reference"] == match["right_reference"] and match["left_amount_minor"]


def test_duplicate_and_stale_messages_do_nothing(world: World) -> None:
    job = start_reconciliation(world.services, world.caller, world.request())
    org = world.caller.organization_id
    assert run_reconciliation_attempt(world.services, org, job.id, 2, "w-future") == "ignored"
    assert world.job(job.id).status is JobStatus.PENDING
    assert run_reconciliation_attempt(world.services, org, job.id, 1, "w1") == "completed"
    first = get_results(world.services, world.caller, job.id, kind="matches", page=1, per_page=10_000)
    assert run_reconciliation_attempt(world.services, org, job.id, 1, "w2") == "ignored"  # redelivered
    again = get_results(world.services, world.caller, job.id, kind="matches", page=1, per_page=10_000)
    assert again.total == first.total and again.items == first.items


def test_re_run_of_the_same_files_is_a_new_job_linked_to_the_earlier_one(world: World) -> None:
    first = start_reconciliation(world.services, world.caller, world.request())
    # Without force, two files already reconciled together are refused, naming the earlier job
    # (issue 15), whichever side each is on.
    for swapped in (False, True):
        request = world.request(name="again", force=False)
        if swapped:
            request = dataclasses.replace(request, left_file_id=world.right_id, right_file_id=world.left_id)
        with pytest.raises(FilesAlreadyReconciled) as refused:
            start_reconciliation(world.services, world.caller, request)
        assert refused.value.job_id == first.id and str(first.id) in refused.value.message
    second = start_reconciliation(world.services, world.caller, world.request(name="again"))
    assert second.id != first.id and second.previous_job_id == first.id


def test_cancel_stops_a_running_attempt_cooperatively(world: World) -> None:
    job = start_reconciliation(world.services, world.caller, world.request())
    release = threading.Event()
    engine = world.services.engine

    class SlowEngine:
        def load(self, data: bytes) -> Any:
            return engine.load(data)

        def run(self, *args: Any, **kwargs: Any) -> Any:
            release.wait(10)
            return engine.run(*args, **kwargs)

    services = dataclasses.replace(world.services, engine=SlowEngine())
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(
        run_reconciliation_attempt(services, world.caller.organization_id, job.id, 1, "w1")))
    thread.start()
    deadline = time.monotonic() + 10
    while world.job(job.id).status is not JobStatus.PROCESSING and time.monotonic() < deadline:
        time.sleep(0.01)
    cancel_reconciliation(world.services, world.caller, job.id)
    time.sleep(0.3)  # a few heartbeats
    release.set()
    thread.join(20)
    assert outcome == ["cancelled"]
    cancelled = world.job(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    page = get_results  # no results were stored for a cancelled job
    with world.services.database.unit_of_work(world.caller.organization_id) as uow:
        assert uow.reconciliation_results.count_matches(job.id, status="auto") == 0
    with pytest.raises(JobAlreadyFinishedError):
        cancel_reconciliation(world.services, world.caller, job.id)
    assert page is get_results


def test_pending_cancel_is_immediate_and_the_message_is_then_ignored(world: World) -> None:
    job = start_reconciliation(world.services, world.caller, world.request())
    assert cancel_reconciliation(world.services, world.caller, job.id).status is JobStatus.CANCELLED
    assert run_reconciliation_attempt(world.services, world.caller.organization_id, job.id, 1, "w1") == "ignored"


def test_unreadable_normalized_file_fails_the_job_with_an_actionable_message(world: World) -> None:
    job = start_reconciliation(world.services, world.caller, world.request())
    with world.services.database.unit_of_work(world.caller.organization_id) as uow:
        key = uow.normalized_files.get_for_file(world.left_id).storage_path
    with world.services.storage.open(key) as stream:
        original = stream.read()
    world.services.storage.put(key, [b"not parquet at all"])
    try:
        assert run_reconciliation_attempt(world.services, world.caller.organization_id, job.id, 1, "w1") == "failed"
    finally:
        world.services.storage.put(key, [original])
    failed = world.job(job.id)
    assert failed.status is JobStatus.FAILED
    assert "left file 'bank.csv' is unreadable" in failed.error_message
    assert "Confirm its mapping again" in failed.error_message
    assert {"job_id": str(job.id)} in world.outbox("notify_reconciliation_job")


def test_sweeper_requeues_a_dead_workers_job_and_the_next_attempt_completes(world: World) -> None:
    job = start_reconciliation(world.services, world.caller, world.request())
    org = world.caller.organization_id
    with world.services.database.unit_of_work(org) as uow:  # a worker claimed it, then died
        current = uow.reconciliation_jobs.get_for_update(job.id)
        uow.reconciliation_jobs.update(dataclasses.replace(
            current, status=JobStatus.PROCESSING, lease_owner="dead", lease_expires_at=world.services.now()))
        uow.commit()
    time.sleep(0.01)
    assert sweep_stuck_jobs(world.services)["requeue"] >= 1
    requeued = world.job(job.id)
    assert requeued.status is JobStatus.PENDING and requeued.attempt == 2
    assert {"job_id": str(job.id), "attempt": 2} in world.outbox("run_reconciliation")
    assert run_reconciliation_attempt(world.services, org, job.id, 1, "late") == "ignored"
    assert run_reconciliation_attempt(world.services, org, job.id, 2, "w2") == "completed"


def test_start_validates_files_rules_period_and_the_monthly_quota(world: World) -> None:
    with pytest.raises(ValidationFailed):
        start_reconciliation(world.services, world.caller, world.request(right_file_id=world.left_id))
    with pytest.raises(ValidationFailed):
        start_reconciliation(world.services, world.caller, world.request(period_end=None))
    with pytest.raises(FileNotReady):
        start_reconciliation(world.services, world.caller, world.request(left_file_id=uuid.uuid4()))
    with pytest.raises(NoRules):
        start_reconciliation(world.services, world.caller, world.request(rule_ids=[uuid.uuid4()]))
    org = world.caller.organization_id
    with world.services.database.unit_of_work(org) as uow:
        used = uow.reconciliation_jobs.count_created_since(world.services.now().replace(day=1, hour=0, minute=0,
                                                                                          second=0, microsecond=0))
        quota = uow.quotas.get(org)
        uow.quotas.update(dataclasses.replace(quota, max_jobs_per_month=used))
        uow.commit()
    try:
        with pytest.raises(QuotaExceeded):
            start_reconciliation(world.services, world.caller, world.request())
    finally:
        with world.services.database.unit_of_work(org) as uow:
            uow.quotas.update(dataclasses.replace(uow.quotas.get(org), max_jobs_per_month=1000))
            uow.commit()


def test_list_rename_delete_and_notification(world: World) -> None:
    job = start_reconciliation(world.services, world.caller, world.request(name="to delete"))
    run_reconciliation_attempt(world.services, world.caller.organization_id, job.id, 1, "w1")
    renamed = rename_reconciliation(world.services, world.caller, job.id, "  renamed   job ")
    assert renamed.name == "renamed job"
    completed, total = list_reconciliations(world.services, world.caller, JobFilter(status=JobStatus.COMPLETED),
                                            page=1, per_page=100)
    assert job.id in {j.id for j in completed} and total == len(completed)
    assert notify_job_creator(world.services, world.caller.organization_id, job.id)
    sent = world.container.mailer.sent
    assert sent[-1].subject == "Reconciliation 'renamed job' completed" and sent[-1].to.lower() == "admin@example.com"
    delete_reconciliation(world.services, world.caller, job.id)
    with pytest.raises(JobNotFound):
        get_reconciliation(world.services, world.caller, job.id)
    assert list(world.services.storage.list_keys(processed_prefix(world.caller.organization_id, job.id))) == []
    with world.services.database.unit_of_work(world.caller.organization_id) as uow:
        assert uow.files.get(world.left_id) is not None  # uploads stay
        assert uow.reconciliation_results.exception_counts(job.id) == {}


def test_cancel_interrupts_the_matching_engine_between_its_passes(world: World) -> None:
    from reckai.adapters.polars.job_results import PolarsJobMatchingEngine
    from reckai.adapters.polars.matcher import PolarsMatcher

    job = start_reconciliation(world.services, world.caller, world.request())
    calls: list[str] = []

    class CancelledWhileMatching(PolarsMatcher):
        """The real engine; the cancel arrives once its first pass is about to start."""

        def reconcile_frames(self, *args: Any, should_stop: Any = None, **kwargs: Any) -> Any:
            def between_passes() -> None:
                calls.append("check")
                if len(calls) == 1:
                    cancel_reconciliation(world.services, world.caller, job.id)
                    # generous: on a loaded CI machine the heartbeat thread may be slow to run;
                    # the loop ends as soon as should_stop raises, so this costs nothing when it works
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline:  # until the heartbeat has seen the cancel
                        should_stop()
                        time.sleep(0.01)
                should_stop()

            return super().reconcile_frames(*args, should_stop=between_passes, **kwargs)

    services = dataclasses.replace(world.services, engine=PolarsJobMatchingEngine(CancelledWhileMatching()))
    outcome = run_reconciliation_attempt(services, world.caller.organization_id, job.id, 1, "w1")
    assert outcome == "cancelled"
    assert calls == ["check"]  # no pass ran after the cancel was seen
    cancelled = world.job(job.id)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.stage == "matching"
    with world.services.database.unit_of_work(world.caller.organization_id) as uow:
        assert uow.reconciliation_results.count_matches(job.id, status="auto") == 0


def test_the_matcher_calls_should_stop_before_each_pass_and_stops_when_it_raises() -> None:
    from reckai.adapters.polars.matcher import PolarsMatcher
    from reckai.adapters.polars.matcher_input import PolarsCanonicalSource
    from reckai.application.reconcile import load_profile
    from reckai.domain.reconciliation.profile import ReconciliationPeriod

    profile = load_profile(rj.PROFILE_PATH)
    source = PolarsCanonicalSource()
    raw = rj.profile()
    left, _ = source.read(str(rj.DATA / "bank.csv"), raw["left"]["mapping"])
    right, _ = source.read(str(rj.DATA / "switch.csv"), raw["right"]["mapping"])
    seen: list[int] = []
    PolarsMatcher().reconcile_frames(left, right, profile, ReconciliationPeriod(*rj.PERIOD),
                                     should_stop=lambda: seen.append(1))
    assert len(seen) == len(profile.passes) + 1  # before each pass, and before classification

    class Stop(Exception):
        pass

    def stop_at_second() -> None:
        seen.append(2)
        if seen.count(2) == 2:
            raise Stop

    with pytest.raises(Stop):
        PolarsMatcher().reconcile_frames(left, right, profile, ReconciliationPeriod(*rj.PERIOD),
                                         should_stop=stop_at_second)
    assert seen.count(2) == 2
