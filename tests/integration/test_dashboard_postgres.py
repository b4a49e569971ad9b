"""The dashboard on PostgreSQL: the rollup the triggers of migration 0019 keep equals an independent
count over `exceptions` after every kind of change (each workflow path, the job's bulk persist, a
job's deletion, and random sequences of them: a hypothesis state machine).

The independent figures are computed here in SQL straight from `exceptions` (ages with their own
CASE, the earliest date with LEAST over the stored dates), never through the rollup or the
application's bucketing."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from reckai.application.dashboard import read_dashboard
from reckai.application.errors import ApplicationError
from reckai.application.exceptions import exceptions as cases
from reckai.application.ports.reconciliations import EXCEPTION_COLUMNS, ResultsRejected
from reckai.bootstrap import Container, bootstrap
from reckai.domain.approvals.workflow import ApprovalError
from reckai.domain.exceptions.errors import BreakError
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.contracts import dashboard as contract
from tests.integration.test_workflow_postgres import new_job, pg_org
from tests.unit import test_exceptions_use_cases as break_flows
from tests.unit.workflow_builders import Org

pytestmark = pytest.mark.integration

LAGOS = "Africa/Lagos"


def _container(database: Any, root: Any) -> Container:
    return bootstrap(Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=database.app_url, pool_size=4),
                              storage=StorageSettings(backend="filesystem", filesystem_root=root / "storage"),
                              mailer=MailerSettings(backend="file", outbox_dir=root / "mail")))


@pytest.fixture(scope="module")
def container(pg_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    built = _container(pg_database, tmp_path_factory.mktemp("dashboard"))
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def org(container: Container) -> Org:
    return pg_org(container)


@pytest.fixture
def own_org(pg_fresh_database: Any, tmp_path: Any) -> Iterator[Org]:
    """An organization alone in its database: the SLA job's flow counts every organization's items."""
    built = _container(pg_fresh_database, tmp_path)
    try:
        yield pg_org(built)
    finally:
        built.close()


# --- the independent figures -------------------------------------------------------------------

_EARLIEST = ("LEAST(transaction_date,"
             " CASE WHEN evidence #>> '{left,date}' ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}'"
             "      THEN substr(evidence #>> '{left,date}', 1, 10)::date END,"
             " CASE WHEN evidence #>> '{right,date}' ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}'"
             "      THEN substr(evidence #>> '{right,date}', 1, 10)::date END)")
_BUCKET = ("CASE WHEN e IS NULL THEN 'no_date' WHEN :today - e < 1 THEN '[0,1)' WHEN :today - e < 3 THEN '[1,3)'"
           " WHEN :today - e < 7 THEN '[3,7)' WHEN :today - e < 30 THEN '[7,30)' ELSE '[30,inf)' END")
_ACTIVE = "status IN ('open', 'in_progress', 'escalated')"


def _minor(total: Any, currency: str | None) -> int:
    return int(Decimal(total) * (1 if currency == "JPY" else 100))  # the currencies these tests use


def _money_sorted(items: Any) -> list[tuple[str | None, int, int]]:
    return sorted(items, key=lambda money: (money[0] or "", money[1], money[2]))


def independent(org: Org, now: dt.datetime, start: dt.date, end: dt.date) -> dict[str, Any]:
    today = now.astimezone(dt.timezone(dt.timedelta(hours=1))).date()  # Africa/Lagos: UTC+1, no DST
    with org.uow() as uow:
        conn = uow.connection
        ages = conn.execute(text(
            f"SELECT severity, {_BUCKET} AS bucket, count(*) AS n FROM"
            f" (SELECT severity, {_EARLIEST} AS e FROM exceptions WHERE {_ACTIVE}) t GROUP BY 1, 2"),
            {"today": today}).all()
        overdue = conn.execute(text(f"SELECT count(*) FROM exceptions WHERE {_ACTIVE} AND due_at <= :now"),
                               {"now": now.astimezone(dt.UTC).replace(tzinfo=None)}).scalar_one()
        risk = conn.execute(text(
            f"SELECT currency, count(*) AS n, COALESCE(sum(abs(amount)), 0) AS total FROM exceptions WHERE {_ACTIVE}"
            " GROUP BY currency")).all()
        kinds = conn.execute(text(
            f"SELECT type, currency, count(*) AS n, COALESCE(sum(abs(amount)), 0) AS total FROM exceptions"
            f" WHERE {_EARLIEST} BETWEEN :start AND :end GROUP BY type, currency"), {"start": start, "end": end}).all()
    by_severity: dict[str, dict[str, int]] = {}
    for row in ages:
        by_severity.setdefault(row.severity, {})[row.bucket] = int(row.n)
    counts: dict[str, int] = {}
    for row in kinds:
        counts[row.type] = counts.get(row.type, 0) + int(row.n)
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5]
    return {
        "open_by_severity": by_severity,
        "open_total": sum(int(r.n) for r in ages),
        "overdue": int(overdue),
        "amount_at_risk": _money_sorted((r.currency, int(r.n), _minor(r.total, r.currency)) for r in risk),
        "top_break_types": [(kind, n, _money_sorted((r.currency, int(r.n), _minor(r.total, r.currency))
                                                   for r in kinds if r.type == kind)) for kind, n in top],
    }


def from_dashboard(org: Org, now: dt.datetime, start: dt.date, end: dt.date) -> dict[str, Any]:
    figures = read_dashboard(org.container.database, lambda: now, org.p("analyst"), period_start=start,
                             period_end=end)
    return {
        "open_by_severity": {severity: {bucket: n for bucket, n in buckets.items() if n}
                             for severity, buckets in figures.open_by_severity.items() if any(buckets.values())},
        "open_total": figures.open_total,
        "overdue": figures.overdue,
        "amount_at_risk": _money_sorted((m.currency, m.count, m.amount_minor) for m in figures.amount_at_risk),
        "top_break_types": [(b.type, b.count, _money_sorted((m.currency, m.count, m.amount_minor) for m in b.amounts))
                            for b in figures.top_break_types],
    }


ROLLUPS = {  # rollup -> its key columns, and which exceptions it counts
    "exception_backlog_rollup": ("earliest_date, severity, currency", _ACTIVE),
    "exception_type_rollup": ("earliest_date, type, currency", "TRUE"),
}


def assert_rollup_rows_match(org: Org) -> None:
    """Each rollup's non-zero groups equal the same groups counted over `exceptions`."""
    with org.uow() as uow:
        conn = uow.connection
        for table, (key, where) in ROLLUPS.items():
            stored = {tuple(r[:3]): (int(r[3]), Decimal(r[4])) for r in conn.execute(text(
                f"SELECT {key}, sum(item_count), sum(amount_total) FROM {table} GROUP BY 1, 2, 3"
                " HAVING sum(item_count) <> 0 OR sum(amount_total) <> 0")).all()}
            counted_key = key.replace("earliest_date", _EARLIEST)
            counted = {tuple(r[:3]): (int(r[3]), Decimal(r[4])) for r in conn.execute(text(
                f"SELECT {counted_key}, count(*), COALESCE(sum(abs(amount)), 0) FROM exceptions WHERE {where}"
                " GROUP BY 1, 2, 3")).all()}
            assert stored == counted, table
        hours = dict(tuple(r) for r in conn.execute(text(
            "SELECT due_hour, sum(item_count) FROM exception_due_rollup GROUP BY 1 HAVING sum(item_count) <> 0")).all())
        counted_hours = dict(tuple(r) for r in conn.execute(text(
            f"SELECT date_trunc('hour', due_at), count(*) FROM exceptions WHERE {_ACTIVE} GROUP BY 1")).all())
    assert hours == counted_hours


def assert_consistent(org: Org, now: dt.datetime | None = None) -> None:
    now = now or dt.datetime.now(dt.UTC)
    start, end = dt.date(2025, 11, 15), dt.date(2026, 11, 15)  # 366 days: the longest period
    assert_rollup_rows_match(org)
    assert from_dashboard(org, now, start, end) == independent(org, now, start, end)


def test_the_dashboard_contract_on_postgresql(org: Org) -> None:
    contract.check(org)
    assert_consistent(org, contract.NOW)


def test_the_reports_columnar_read_on_postgresql(org: Org) -> None:
    contract.check_report_csv(org)


# --- every workflow path, one by one -----------------------------------------------------------

PATHS: list[Callable[[Org], None]] = [
    break_flows.test_patch_walks_the_state_machine_and_records_history,  # start, escalate, reopen, resolve
    break_flows.test_severity_override_needs_reason_and_auditor_cannot_write,  # severity override
    break_flows.test_assign_only_to_active_users_who_may_work_exceptions_and_notifies,  # assign
    break_flows.test_bulk_is_all_or_nothing,  # bulk resolve, rolled back on a refusal
    break_flows.test_resolution_at_threshold_creates_an_approval_that_a_checker_applies,  # closing via approval
    break_flows.test_ignoring_at_the_threshold_waits_for_a_checker,  # ignore via approval
    break_flows.test_sla_escalation_job_escalates_only_overdue_open_and_in_progress,  # the SLA job
    break_flows.test_a_manual_link_at_the_threshold_waits_and_then_keeps_the_note_and_true_difference,  # link
    break_flows.test_confirming_a_suggestion_at_the_threshold_waits_for_a_checker,  # manual match
]


@pytest.mark.parametrize("path", PATHS, ids=lambda path: path.__name__.removeprefix("test_"))
def test_the_rollup_follows_every_workflow_path(own_org: Org, path: Callable[[Org], None]) -> None:
    path(own_org)
    with own_org.uow() as uow:
        assert uow.connection.execute(text("SELECT count(*) FROM exceptions")).scalar_one() > 0
    assert_consistent(own_org)


def test_deleting_a_job_takes_its_exceptions_out_of_the_rollup(org: Org) -> None:
    job = new_job(org.container, org)
    org.add_exception(job_id=job, severity="high", transaction_date=dt.date(2026, 3, 1))
    org.add_exception(job_id=new_job(org.container, org), severity="low", transaction_date=dt.date(2026, 3, 2))
    with org.uow() as uow:
        assert uow.reconciliation_jobs.delete(job)
        uow.commit()
    assert_consistent(org)
    assert from_dashboard(org, dt.datetime.now(dt.UTC), dt.date(2026, 1, 1), dt.date(2026, 12, 1))["open_total"] == 1


def test_a_rolled_back_change_leaves_the_rollup_as_it_was(org: Org) -> None:
    item = org.add_exception(job_id=org.job, severity="critical")
    with org.uow() as uow:
        uow.connection.execute(text("UPDATE exceptions SET status = 'resolved' WHERE id = :id"), {"id": item.id})
        # no commit: rolled back
    assert_consistent(org)
    assert from_dashboard(org, dt.datetime.now(dt.UTC), dt.date(2026, 1, 1), dt.date(2026, 12, 1))["open_total"] == 1


# --- the job's bulk persist --------------------------------------------------------------------


def processing_job(org: Org) -> uuid.UUID:
    job_id = uuid.uuid4()
    with org.uow() as uow:
        uow.connection.execute(text(
            "INSERT INTO reconciliation_jobs (id, organization_id, name, status, created_by, attempt)"
            " VALUES (:id, :org, 'job', 'processing', :by, 1)"),
            {"id": job_id, "org": org.organization_id, "by": org.users["admin"].id})
        uow.commit()
    return job_id


def copy_chunk(rows: list[dict[str, Any]]) -> bytes:
    """Exceptions in EXCEPTION_COLUMNS order as the job's CSV chunk."""
    frame = pl.DataFrame([{column: row.get(column) for column in EXCEPTION_COLUMNS} for row in rows],
                         schema={column: pl.String for column in EXCEPTION_COLUMNS})
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, null_value="")
    return buffer.getvalue()


def persist(org: Org, job_id: uuid.UUID, rows: list[dict[str, Any]]) -> None:
    with org.uow() as uow:
        uow.reconciliation_results.replace_results(job_id, 1, [], [copy_chunk(rows)] if rows else [])
        uow.commit()


def job_row(kind: str, severity: str, currency: str | None, amount: str | None, day: dt.date | None,
            left_day: dt.date | None = None, right_day: dt.date | None = None) -> dict[str, Any]:
    evidence: dict[str, Any] = {}
    for side, moment in (("left", left_day), ("right", right_day)):
        if moment is not None:
            evidence[side] = {"date": f"{moment.isoformat()}T10:00:00", "amount_minor": 1}
    return {"type": kind, "severity": severity, "currency": currency, "amount": amount,
            "transaction_date": None if day is None else day.isoformat(), "description": "break",
            "evidence": json.dumps(evidence) if evidence else None}


def test_the_bulk_persist_and_its_replacement_keep_the_rollup(org: Org) -> None:
    job = processing_job(org)
    persist(org, job, [job_row("amount_mismatch", "high", "NGN", "-1500.25", dt.date(2026, 2, 10),
                               left_day=dt.date(2026, 2, 10), right_day=dt.date(2026, 2, 1)),
                       job_row("missing_entry", "low", "USD", "20.00", dt.date(2026, 2, 11)),
                       job_row("duplicate", "critical", None, None, None)])
    assert_consistent(org)
    figures = from_dashboard(org, dt.datetime(2026, 2, 11, 12, tzinfo=dt.UTC), dt.date(2026, 2, 1),
                             dt.date(2026, 2, 28))
    # the mismatch ages from its right row's date (Feb 1), ten days before Feb 11
    assert figures["open_by_severity"]["high"] == {"[7,30)": 1}
    assert figures["open_by_severity"]["critical"] == {"no_date": 1}
    assert ("NGN", 1, 150025) in figures["amount_at_risk"]
    persist(org, job, [job_row("timing_difference", "medium", "NGN", "10.00", dt.date(2026, 2, 12))])  # a retry
    assert_consistent(org)
    with org.uow() as uow:  # the persist folded the rows appended before it: one row per group
        rows, groups = uow.connection.execute(text(
            "SELECT count(*), count(DISTINCT (earliest_date, severity, currency)) FROM exception_backlog_rollup")).one()
    assert rows == groups


def test_concurrent_changes_in_opposite_group_orders_do_not_deadlock(org: Org) -> None:
    """Two transactions each change a critical and a low exception, in opposite orders: with shared
    counters updated in place they would wait for each other's rows (a deadlock); the rollups only
    append, so both commit."""
    job = org.job
    items = {name: org.add_exception(job_id=job, severity=severity, transaction_date=dt.date(2026, 3, 1)).id
             for name, severity in (("a", "critical"), ("b", "low"), ("c", "low"), ("d", "critical"))}
    barrier = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def change(first: str, second: str) -> None:
        try:
            with org.uow() as uow:
                uow.connection.execute(text("SET LOCAL lock_timeout = '20s'"))
                for name in (first, second):
                    uow.connection.execute(text("UPDATE exceptions SET status = 'resolved' WHERE id = :id"),
                                           {"id": items[name]})
                    if name == first:
                        barrier.wait()
                uow.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=change, args=pair) for pair in (("a", "b"), ("c", "d"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert_consistent(org)
    assert from_dashboard(org, dt.datetime.now(dt.UTC), dt.date(2026, 1, 1), dt.date(2026, 12, 1))["open_total"] == 0


# --- random sequences of changes ---------------------------------------------------------------

SEVERITY = st.sampled_from(["low", "medium", "high", "critical"])
KIND = st.sampled_from(["amount_mismatch", "date_mismatch", "missing_entry", "duplicate", "timing_difference",
                        "non_settlement"])
CURRENCY = st.sampled_from(["NGN", "USD", None])
AMOUNT = st.one_of(st.none(), st.decimals(min_value=-10**6, max_value=10**6, places=2, allow_nan=False,
                                          allow_infinity=False).map(str))
DAY = st.one_of(st.none(), st.dates(min_value=dt.date(2025, 11, 1), max_value=dt.date(2026, 1, 10)))
NOW = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC)


@contextlib.contextmanager
def refused_or_done() -> Iterator[None]:
    """A change the workflow refuses (a transition it does not allow, an exception gone with its
    job, a closing waiting for a checker) is part of the random walk: nothing was written."""
    try:
        yield
    except (ApplicationError, BreakError, ApprovalError, ResultsRejected):
        pass


class RollupMachine(RuleBasedStateMachine):
    """Random exceptions, bulk persists and workflow changes; after each step the rollup-backed
    dashboard equals the independent count."""

    container: Container
    items = Bundle("items")
    jobs = Bundle("jobs")

    @initialize()
    def start(self) -> None:
        self.org = pg_org(self.container)
        self.org.container = dataclasses.replace(
            self.container, workflow=dataclasses.replace(self.container.workflow, clock=lambda: NOW))

    @rule(target=items, severity=SEVERITY, kind=KIND, currency=CURRENCY, amount=AMOUNT, day=DAY,
          hours_ago=st.integers(min_value=0, max_value=400))
    def add(self, severity: str, kind: str, currency: str | None, amount: str | None, day: dt.date | None,
            hours_ago: int) -> uuid.UUID:
        item = self.org.add_exception(job_id=self.org.job, severity=severity, type=kind, currency=currency,
                                      amount=amount, transaction_date=day,
                                      created_at=NOW - dt.timedelta(hours=hours_ago, minutes=7))
        return item.id

    @rule(target=jobs, rows=st.lists(st.tuples(KIND, SEVERITY, CURRENCY, AMOUNT, DAY, DAY), max_size=6))
    def persist_new_job(self, rows: list[tuple[Any, ...]]) -> uuid.UUID:
        job = processing_job(self.org)
        persist(self.org, job, [job_row(k, s, c, a, d, left_day=d, right_day=r) for k, s, c, a, d, r in rows])
        return job

    @rule(job=jobs, rows=st.lists(st.tuples(KIND, SEVERITY, CURRENCY, AMOUNT, DAY, DAY), max_size=4))
    def persist_again(self, job: uuid.UUID, rows: list[tuple[Any, ...]]) -> None:
        with refused_or_done():  # a deleted job's results are refused
            persist(self.org, job, [job_row(k, s, c, a, d, left_day=d, right_day=r) for k, s, c, a, d, r in rows])

    @rule(job=jobs)
    def delete_job(self, job: uuid.UUID) -> None:
        with self.org.uow() as uow:
            uow.reconciliation_jobs.delete(job)
            uow.commit()

    @rule(item=items, status=st.sampled_from(["in_progress", "escalated", "open", "resolved", "ignored"]))
    def change_status(self, item: uuid.UUID, status: str) -> None:
        with refused_or_done():
            cases.change_exception(self.org.services, self.org.p("analyst"), item, status=status,
                                   reason="checked", resolution_code="corrected_at_source")

    @rule(item=items, severity=SEVERITY)
    def override_severity(self, item: uuid.UUID, severity: str) -> None:
        with refused_or_done():
            cases.change_exception(self.org.services, self.org.p("analyst"), item, severity=severity,
                                   reason="re-rated")

    @rule(picked=st.lists(items, min_size=1, max_size=4))
    def bulk_resolve(self, picked: list[uuid.UUID]) -> None:
        with refused_or_done():
            cases.bulk_resolve(self.org.services, self.org.p("analyst"), picked, "false_positive", None)

    @rule(picked=st.lists(items, min_size=1, max_size=3))
    def assign(self, picked: list[uuid.UUID]) -> None:
        with refused_or_done():
            cases.assign_exceptions(self.org.services, self.org.p("analyst"), picked, self.org.users["analyst2"].id)

    @rule()
    def sla_job(self) -> None:
        cases.escalate_overdue(self.org.services, self.org.organization_id, NOW)

    @invariant()
    def dashboard_equals_an_independent_count(self) -> None:
        if hasattr(self, "org"):
            assert_consistent(self.org, NOW)


def test_random_workflow_changes_keep_the_rollup_equal_to_the_exceptions(container: Container) -> None:
    RollupMachine.container = container
    run_state_machine_as_test(RollupMachine, settings=settings(
        max_examples=8, stateful_step_count=10, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
