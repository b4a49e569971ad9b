"""The dashboard's contract, run over the in-memory container (tests/unit/test_dashboard.py) and the
PostgreSQL one (tests/integration/test_dashboard_postgres.py): one scenario, the same figures.

The clock is Monday 2026-03-16 10:00 in Lagos (09:00 UTC); the organization's days are Lagos days.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import uuid
from decimal import Decimal
from typing import Any

from reckai.application.dashboard import read_dashboard
from reckai.application.ports.workflow import REPORT_EXCEPTION_COLUMNS, ExceptionQuery
from reckai.domain.approvals.workflow import Approval, ApprovalStatus, ApprovalType
from reckai.domain.exceptions.aging import earliest_transaction_date
from reckai.domain.exceptions.lifecycle import ACTIVE_STATUSES, ExceptionItem, ExceptionStatus
from reckai.domain.exceptions.policy import SlaPolicy
from reckai.domain.reconciliation.jobs import JobStatus, ReconciliationJob
from tests.unit.workflow_builders import Org

NOW = dt.datetime(2026, 3, 16, 9, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 3, 16)


def _job(org: Org, created_at: dt.datetime, status: JobStatus, total_rows: int = 0, matched_rows: int = 0) -> None:
    with org.uow() as uow:
        uow.reconciliation_jobs.add(ReconciliationJob(
            id=uuid.uuid4(), organization_id=org.organization_id, name="job", created_by=org.users["admin"].id,
            status=status, total_rows=total_rows, matched_rows=matched_rows, created_at=created_at,
            updated_at=created_at))
        uow.commit()


def _approval(org: Org, kind: ApprovalType, status: ApprovalStatus = ApprovalStatus.PENDING) -> None:
    with org.uow() as uow:
        approval = Approval.request(organization_id=org.organization_id, type=kind, title="t", description="d",
                                    metadata={}, requested_by=org.users["analyst"].id, at=NOW)
        approval.status = status
        uow.approvals.add(approval)
        uow.commit()


def seed(org: Org) -> None:
    job = org.job
    long_ago = NOW - dt.timedelta(days=40)  # created long ago: due long ago, whatever the severity
    for age in (0, 1, 2, 3, 6, 7, 29, 30):  # one high-severity open break per boundary age
        org.add_exception(job_id=job, severity="high", type="amount_mismatch", amount="100.00", currency="NGN",
                          transaction_date=TODAY - dt.timedelta(days=age), created_at=NOW)
    org.add_exception(job_id=job, severity="low", type="duplicate", amount=None, transaction_date=None,
                      created_at=NOW)  # no date
    org.add_exception(job_id=job, severity="low", type="duplicate", amount="5.00", currency="NGN",
                      transaction_date=TODAY + dt.timedelta(days=2), created_at=NOW)  # future-dated: age 0
    # its right row is older than its transaction_date: it ages from the right row
    org.add_exception(job_id=job, severity="critical", type="missing_entry", amount="-2500.50", currency="USD",
                      transaction_date=TODAY, created_at=long_ago,
                      evidence={"left": {"date": f"{TODAY.isoformat()}T08:00:00"},
                                "right": {"date": f"{(TODAY - dt.timedelta(days=12)).isoformat()}T23:59:00"}})
    org.add_exception(job_id=job, severity="medium", type="timing_difference", amount="7", currency="JPY",
                      transaction_date=TODAY, created_at=long_ago)  # overdue, zero-decimal currency
    closed = org.add_exception(job_id=job, severity="critical", type="non_settlement", amount="999.99",
                               currency="NGN", transaction_date=TODAY, created_at=long_ago)
    ignored = org.add_exception(job_id=job, severity="low", type="duplicate", amount="3.00", currency="NGN",
                                transaction_date=TODAY - dt.timedelta(days=5), created_at=NOW)
    for item_id, status in ((closed.id, ExceptionStatus.RESOLVED), (ignored.id, ExceptionStatus.IGNORED)):
        with org.uow() as uow:  # closed: counted by type, not in the backlog
            item = uow.exceptions.get_for_update(item_id)
            item.status = status
            uow.exceptions.update(item)
            uow.commit()
    for _ in range(2):
        org.add_exception(job_id=job, severity="low", type="date_mismatch", amount="1.00", currency="NGN",
                          transaction_date=TODAY - dt.timedelta(days=5), created_at=NOW)
    org.add_exception(job_id=job, severity="low", type="date_mismatch", amount="1.00", currency="EUR",
                      transaction_date=TODAY - dt.timedelta(days=20), created_at=NOW)  # before the period
    # jobs: Lagos is UTC+1, so 23:30 UTC on the 14th is the 15th in Lagos
    _job(org, dt.datetime(2026, 3, 14, 23, 30, tzinfo=dt.UTC), JobStatus.COMPLETED, 200, 150)
    _job(org, dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC), JobStatus.COMPLETED, 100, 100)
    _job(org, dt.datetime(2026, 3, 15, 13, 0, tzinfo=dt.UTC), JobStatus.FAILED)
    _job(org, dt.datetime(2026, 3, 14, 22, 59, tzinfo=dt.UTC), JobStatus.FAILED)  # the 14th in Lagos
    _job(org, dt.datetime(2026, 2, 28, 22, 59, tzinfo=dt.UTC), JobStatus.COMPLETED, 10, 1)  # Feb 28 in Lagos: before
    _approval(org, ApprovalType.EXCEPTION_RESOLUTION)
    _approval(org, ApprovalType.EXCEPTION_RESOLUTION)
    _approval(org, ApprovalType.RULE_CONFIGURATION)
    _approval(org, ApprovalType.SYSTEM_SETTING, ApprovalStatus.APPROVED)


PERIOD_START = dt.date(2026, 3, 1)


def check(org: Org) -> None:
    seed(org)
    figures = read_dashboard(org.container.database, lambda: NOW, org.p("analyst"),
                             period_start=PERIOD_START, period_end=TODAY)
    assert figures.timezone == "Africa/Lagos"
    assert (figures.period_start, figures.period_end, figures.as_of) == (PERIOD_START, TODAY, NOW)
    days = {d.day: d for d in figures.days}
    assert len(days) == 16 and days[PERIOD_START].jobs_run == 0 and days[PERIOD_START].match_rate is None
    assert (days[dt.date(2026, 3, 14)].jobs_run, days[dt.date(2026, 3, 14)].jobs_failed) == (1, 1)
    fifteenth = days[dt.date(2026, 3, 15)]
    assert (fifteenth.jobs_run, fifteenth.jobs_completed, fifteenth.jobs_failed) == (3, 2, 1)
    assert (fifteenth.total_rows, fifteenth.matched_rows, fifteenth.match_rate) == (300, 250, Decimal("83.33"))
    assert (figures.jobs_run, figures.jobs_completed, figures.jobs_failed) == (4, 2, 2)

    zero = {"[0,1)": 0, "[1,3)": 0, "[3,7)": 0, "[7,30)": 0, "[30,inf)": 0, "no_date": 0}
    assert figures.open_by_severity == {
        "high": {**zero, "[0,1)": 1, "[1,3)": 2, "[3,7)": 2, "[7,30)": 2, "[30,inf)": 1},  # ages 0,1,2,3,6,7,29,30
        "low": {**zero, "[0,1)": 1, "[3,7)": 2, "[7,30)": 1, "no_date": 1},  # future-dated: age 0
        "critical": {**zero, "[7,30)": 1},  # twelve days, from its right row's date
        "medium": {**zero, "[0,1)": 1},
    }
    assert figures.open_total == 8 + 5 + 1 + 1
    assert figures.overdue == 2  # the two open ones created 40 days ago

    risk = {m.currency: (m.count, m.amount_minor) for m in figures.amount_at_risk}
    # never summed across currencies; JPY has no minor digits; no amount adds nothing
    assert risk == {"NGN": (12, 800_00 + 5_00 + 2 * 1_00), "USD": (1, 2500_50), "JPY": (1, 7), "EUR": (1, 1_00)}
    assert [m.currency for m in figures.amount_at_risk] == ["EUR", "JPY", "NGN", "USD"]

    # by earliest transaction date within the period, any status: six types, the top five by
    # count, ties by name (timing_difference drops out)
    assert [(b.type, b.count) for b in figures.top_break_types] == [
        ("amount_mismatch", 6), ("date_mismatch", 2), ("duplicate", 1), ("missing_entry", 1), ("non_settlement", 1)]
    by_type = {b.type: [(m.currency, m.count, m.amount_minor) for m in b.amounts] for b in figures.top_break_types}
    assert by_type["non_settlement"] == [("NGN", 1, 999_99)]  # resolved, still a break of the period
    assert by_type["duplicate"] == [("NGN", 1, 3_00)]  # ignored, likewise
    assert by_type["missing_entry"] == [("USD", 1, 2500_50)]

    assert figures.pending_approvals == {"exception_resolution": 2, "rule_configuration": 1}
    auditor = read_dashboard(org.container.database, lambda: NOW, org.p("auditor"),
                             period_start=PERIOD_START, period_end=TODAY)
    assert auditor.pending_approvals is None  # auditors may not read approvals
    assert auditor.open_total == figures.open_total


def check_report_csv(org: Org) -> None:
    """`ExceptionRepository.report_csv` (the reports' columnar read) holds, for every exception the
    query finds and no other, what the stored exception says: the same rows on both adapters, the
    filters applied as `list_batch` applies them, text with commas, quotes and newlines intact."""
    seed(org)
    tricky = ExceptionItem.new(organization_id=org.organization_id, job_id=org.job, type="duplicate", severity="low",
                               description='He said "pay", then,\nleft;\r=cmd', created_at=NOW, sla=SlaPolicy(),
                               amount=Decimal("12.5"), amount_minor=1250, currency="usd",
                               ai_explanation="two, lines\nhere", assigned_to=org.users["analyst"].id)
    with org.uow() as uow:
        uow.exceptions.add(tricky)
        uow.commit()
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

    def micros(moment: dt.datetime | None) -> str:
        return "" if moment is None else str((moment - epoch) // dt.timedelta(microseconds=1))

    def expected(item: ExceptionItem) -> dict[str, Any]:
        earliest = earliest_transaction_date(item.transaction_date, item.evidence)
        return {"id": str(item.id), "job_id": str(item.job_id), "type": item.type, "severity": item.severity,
                "status": item.status.value, "currency": (item.currency or "NGN").upper(),
                "amount": None if item.amount is None else Decimal(item.amount),
                "amount_minor": "" if item.amount_minor is None else str(item.amount_minor),
                "earliest_day": "" if earliest is None else str((earliest - dt.date(1970, 1, 1)).days),
                "created_us": micros(item.created_at), "due_us": micros(item.due_at),
                "resolved_us": micros(item.resolved_at), "escalated_us": micros(item.escalated_at),
                "assigned_to": str(item.assigned_to) if item.assigned_to else "unassigned",
                "description": item.description, "explanation": item.ai_explanation or ""}

    queries = [ExceptionQuery(), ExceptionQuery(statuses=ACTIVE_STATUSES), ExceptionQuery(overdue_at=NOW),
               ExceptionQuery(created_from=NOW - dt.timedelta(days=1), created_to=NOW + dt.timedelta(days=1)),
               ExceptionQuery(job_id=org.job, severities=("low", "critical"))]
    for query in queries:
        with org.uow() as uow:
            document = uow.exceptions.report_csv(query)
            items = list(uow.exceptions.list_batch(dataclasses.replace(query, sort="created_at", descending=False),
                                                   10_000))
        rows = list(csv.DictReader(io.StringIO(document.decode("utf-8"))))
        got = [{**row, "amount": Decimal(row["amount"]) if row["amount"] else None} for row in rows]
        assert got == [expected(item) for item in items], query
        assert items, query
    with org.uow() as uow:
        header = uow.exceptions.report_csv(ExceptionQuery(job_id=uuid.uuid4())).decode().splitlines()
    assert header == [",".join(REPORT_EXCEPTION_COLUMNS)]  # nothing found: the header alone
