"""Contract of the report repository, run over the in-memory adapter
(tests/unit/test_report_repositories.py) and PostgreSQL
(tests/integration/test_report_repositories_postgres.py), so the fake cannot drift."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from reckai.application.ports.reports import ReportQuery
from reckai.application.ports.repositories import DuplicateEntity, TenantIsolationViolation
from reckai.domain.ingestion.storage_keys import report_key
from reckai.domain.reports.report import Report, ReportStatus

Tenants = tuple[Any, tuple[uuid.UUID, uuid.UUID], tuple[uuid.UUID, uuid.UUID]]
NOW = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)


def _report(organization_id: uuid.UUID, user_id: uuid.UUID, *, type: str = "aging", format: str = "csv",
            at: dt.datetime = NOW) -> Report:
    report_id = uuid.uuid4()
    return Report(id=report_id, organization_id=organization_id, type=type, format=format,
                  storage_path=report_key(organization_id, report_id, at.date(), "zip"), generated_by=user_id,
                  generated_at=at, period_start=at.date(), period_end=at.date(),
                  parameters={"period_start": at.date().isoformat()}, updated_at=at)


def check_round_trip_lifecycle_and_isolation(tenants: Tenants) -> None:
    database, (org_a, user_a), (org_b, user_b) = tenants
    report = _report(org_a, user_a)
    with database.unit_of_work(org_a) as uow:
        stored = uow.reports.add(report)
        assert stored == report
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        locked = uow.reports.get_for_update(report.id)
        assert locked == report
        running = locked.started(NOW)
        uow.reports.update(running)
        done = running.completed(size_bytes=10, sha256="a" * 64, data_as_of=NOW, now=NOW,
                                 expires_at=NOW + dt.timedelta(days=30))
        uow.reports.update(done)
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        back = uow.reports.get(report.id)
    assert back == done and back.status is ReportStatus.COMPLETED and back.sha256 == "a" * 64
    with database.unit_of_work(org_b) as uow:
        assert uow.reports.get(report.id) is None
        assert uow.reports.list(ReportQuery())[1] == 0
        with pytest.raises(TenantIsolationViolation):
            uow.reports.add(_report(org_a, user_b))


def check_storage_path_is_unique(tenants: Tenants) -> None:
    database, (org_a, user_a), _ = tenants
    first = _report(org_a, user_a)
    with database.unit_of_work(org_a) as uow:
        uow.reports.add(first)
        uow.commit()
    with database.unit_of_work(org_a) as uow, pytest.raises(DuplicateEntity):
        uow.reports.add(dataclasses.replace(first, id=uuid.uuid4()))


def check_list_filters_order_and_pages(tenants: Tenants) -> None:
    database, (org_a, user_a), (_, user_b) = tenants
    made = [_report(org_a, user_a, type=kind, format=fmt, at=NOW + dt.timedelta(minutes=i))
            for i, (kind, fmt) in enumerate([("aging", "csv"), ("daily", "excel"), ("aging", "excel"),
                                             ("sla", "csv")])]
    with database.unit_of_work(org_a) as uow:
        for report in made:
            uow.reports.add(report)
        uow.reports.update(made[0].started(NOW).failed("boom", NOW))
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        everything, total = uow.reports.list(ReportQuery(limit=100))
        assert total == 4 and [r.id for r in everything] == [r.id for r in reversed(made)]
        aging, total = uow.reports.list(ReportQuery(types=("aging",)))
        assert total == 2 and {r.id for r in aging} == {made[0].id, made[2].id}
        excel, _ = uow.reports.list(ReportQuery(formats=("excel",), statuses=("pending",)))
        assert {r.id for r in excel} == {made[1].id, made[2].id}
        failed, _ = uow.reports.list(ReportQuery(statuses=("failed",)))
        assert [r.error_message for r in failed] == ["boom"]
        page, total = uow.reports.list(ReportQuery(limit=2, offset=2))
        assert total == 4 and [r.id for r in page] == [made[1].id, made[0].id]
        assert uow.reports.list(ReportQuery(generated_by=user_b))[1] == 0
        window, _ = uow.reports.list(ReportQuery(requested_from=NOW + dt.timedelta(minutes=1),
                                                 requested_to=NOW + dt.timedelta(minutes=3)))
        assert [r.id for r in window] == [made[2].id, made[1].id]


def check_expired(tenants: Tenants) -> None:
    database, (org_a, user_a), (org_b, user_b) = tenants
    later = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    reports = {}
    for org, user in ((org_a, user_a), (org_b, user_b)):
        report = _report(org, user)
        with database.unit_of_work(org) as uow:
            uow.reports.add(report)
            uow.reports.update(report.started(NOW).completed(size_bytes=1, sha256="b" * 64, data_as_of=NOW, now=NOW,
                                                              expires_at=later))
            uow.commit()
        reports[org] = report
    with database.unit_of_work(org_a) as uow:
        assert uow.reports.expired(later - dt.timedelta(seconds=1), 10) == []
        assert [r.id for r in uow.reports.expired(later, 10)] == [reports[org_a].id]
    with database.unit_of_work(None) as uow:
        found = set(uow.reports.organizations_with_expired(later))
    assert {org_a, org_b} <= found


CHECKS: list[Callable[[Tenants], None]] = [
    check_round_trip_lifecycle_and_isolation, check_storage_path_is_unique, check_list_filters_order_and_pages,
    check_expired,
]
