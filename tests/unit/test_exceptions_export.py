"""The exceptions export's reading loop (application/exceptions/export.py) over the repository's
keyset batches: every matching row exactly once, in order, whatever the batch size and however
many rows share a sort value. The same flow runs on PostgreSQL (tests/integration/test_workflow_postgres.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from reckai.application.errors import PermissionDenied
from reckai.application.exceptions import export
from reckai.application.ports.workflow import ExceptionQuery
from reckai.bootstrap import bootstrap_in_memory
from tests.unit.workflow_builders import Org, memory_org


@pytest.fixture
def org() -> Org:
    return memory_org(bootstrap_in_memory())


def test_export_rows_cover_every_row_once_in_keyset_order(org: Org) -> None:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    job = org.job_factory()
    made = [org.add_exception(job_id=job, amount=str(-10 * i), severity=("low", "high", "critical")[i % 3],
                              created_at=base + dt.timedelta(hours=i // 4)) for i in range(23)]
    other_job = org.add_exception(job_id=org.job_factory(), severity="high", created_at=base)
    auditor = org.p("auditor")
    for batch in (1, 3, 4, 5, 100):
        for descending in (True, False):
            for sort in ("created_at", "due_at"):
                query = ExceptionQuery(job_id=job, sort=sort, descending=descending)
                rows = list(export.exception_rows(org.services, auditor, query, batch_rows=batch))
                ids = [row[0] for row in rows]
                assert sorted(ids) == sorted(str(i.id) for i in made), (batch, descending, sort)
                keys = [(getattr(i, sort), str(i.id)) for i in made]
                assert ids == [k[1] for k in sorted(keys, reverse=descending)]
    high = ExceptionQuery(job_id=job, severities=("high",))
    rows = list(export.exception_rows(org.services, auditor, high, batch_rows=2))
    assert {row[0] for row in rows} == {str(i.id) for i in made if i.severity == "high"}
    assert str(other_job.id) not in {row[0] for row in export.exception_rows(
        org.services, auditor, dataclasses.replace(high, job_id=job), batch_rows=2)}
    columns = [c.name for c in export.EXCEPTION_COLUMNS]
    assert rows[0][columns.index("amount")] == next(i.amount for i in made if str(i.id) == rows[0][0])


def test_export_needs_exceptions_read_and_is_audited(org: Org) -> None:
    writer = org.container.table_writers.csv
    with pytest.raises(PermissionDenied):
        export.export_exceptions(org.services, org.p("supervisor"), ExceptionQuery(), writer, "csv", {})
    chunks = export.export_exceptions(org.services, org.p("auditor"), ExceptionQuery(), writer, "csv",
                                      {"severity": "high"})
    assert b"".join(chunks).startswith(b"id,job_id,type")
    from reckai.application.ports.audit import AuditQuery
    records = org.container.audit_log.list_records(org.organization_id, AuditQuery(action="exception.exported")).records
    assert [(r.event.user_id, r.event.metadata) for r in records] == [
        (org.p("auditor").user_id, {"format": "csv", "filters": {"severity": "high"}})]
