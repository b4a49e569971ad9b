"""The dashboard (issue 14 §3) in memory: the shared contract (tests/contracts/dashboard.py, also run
on PostgreSQL), age buckets, the period's validation, and GET /api/dashboard over HTTP for each
role (the approvals section only for callers who may read approvals)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient

from reckai.application.dashboard import DEFAULT_TIMEZONE, organization_timezone, read_dashboard
from reckai.application.errors import PermissionDenied, ValidationFailed
from reckai.bootstrap import bootstrap_in_memory
from reckai.domain.exceptions.aging import (
    AGE_BUCKETS,
    BUCKET_LABELS,
    NO_DATE,
    age_bucket,
    earliest_transaction_date,
)
from reckai.domain.exceptions.lifecycle import ExceptionItem
from reckai.domain.exceptions.policy import SlaPolicy
from reckai.domain.identity.permissions import Role, has_permission
from reckai.entrypoints.http.app import create_app
from tests.contracts import dashboard as contract
from tests.support.identity import bearer, create_user_with_role, login, onboard
from tests.unit.workflow_builders import Org, memory_org


@pytest.fixture
def org() -> Org:
    return memory_org(bootstrap_in_memory())


def test_the_dashboard_contract_in_memory(org: Org) -> None:
    contract.check(org)


def test_the_reports_columnar_read_in_memory(org: Org) -> None:
    contract.check_report_csv(org)


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1)),
       st.integers(min_value=-400, max_value=4000))
def test_every_age_falls_in_exactly_one_bucket_by_its_bounds(today: dt.date, age: int) -> None:
    try:
        earliest = today - dt.timedelta(days=age)
    except OverflowError:
        return
    label = age_bucket(earliest, today)
    (low, high), = [bounds for bounds, name in zip(AGE_BUCKETS, BUCKET_LABELS, strict=True) if name == label]
    effective = max(age, 0)  # a future date is age 0
    assert low <= effective and (high is None or effective < high)
    assert age_bucket(None, today) == NO_DATE


def test_the_earliest_date_reads_both_rows_and_ignores_what_is_no_date() -> None:
    assert earliest_transaction_date(dt.date(2026, 3, 5), {"left": {"date": "2026-03-05T10:00:00"},
                                                           "right": {"date": "2026-03-01T23:59:59"}}) == dt.date(2026, 3, 1)
    assert earliest_transaction_date(None, {"right": {"date": "2026-02-01"}}) == dt.date(2026, 2, 1)
    assert earliest_transaction_date(dt.date(2026, 3, 5), {"left": {"date": "not a date"}, "right": 7}) == \
        dt.date(2026, 3, 5)
    assert earliest_transaction_date(None, None) is None


def test_the_timezone_is_the_organizations_else_lagos() -> None:
    assert organization_timezone({"timezone": "Europe/London"}) == "Europe/London"
    assert organization_timezone({}) == organization_timezone(None) == DEFAULT_TIMEZONE == "Africa/Lagos"
    assert organization_timezone({"timezone": "Not/AZone"}) == DEFAULT_TIMEZONE


def test_days_follow_the_organizations_timezone(org: Org) -> None:
    org.set_settings({"timezone": "Asia/Tokyo"})  # UTC+9
    contract._job(org, dt.datetime(2026, 3, 14, 16, 0, tzinfo=dt.UTC), contract.JobStatus.COMPLETED, 10, 5)
    figures = read_dashboard(org.container.database, lambda: contract.NOW, org.p("analyst"),
                             period_start=dt.date(2026, 3, 14), period_end=dt.date(2026, 3, 15))
    assert figures.timezone == "Asia/Tokyo"
    assert [(d.day, d.jobs_run) for d in figures.days] == [(dt.date(2026, 3, 14), 0), (dt.date(2026, 3, 15), 1)]


def test_the_period_defaults_to_the_last_30_days_and_is_validated(org: Org) -> None:
    read = read_dashboard
    figures = read(org.container.database, lambda: contract.NOW, org.p("analyst"))
    assert (figures.period_start, figures.period_end) == (dt.date(2026, 2, 15), dt.date(2026, 3, 16))
    only_start = read(org.container.database, lambda: contract.NOW, org.p("analyst"), period_start=dt.date(2026, 3, 1))
    assert (only_start.period_start, only_start.period_end) == (dt.date(2026, 3, 1), dt.date(2026, 3, 16))
    ahead = read(org.container.database, lambda: contract.NOW, org.p("analyst"), period_start=dt.date(2026, 4, 1))
    assert (ahead.period_start, ahead.period_end) == (dt.date(2026, 4, 1), dt.date(2026, 4, 1))
    only_end = read(org.container.database, lambda: contract.NOW, org.p("analyst"), period_end=dt.date(2026, 1, 30))
    assert (only_end.period_start, only_end.period_end) == (dt.date(2026, 1, 1), dt.date(2026, 1, 30))
    with pytest.raises(ValidationFailed) as caught:
        read(org.container.database, lambda: contract.NOW, org.p("analyst"),
             period_start=dt.date(2026, 3, 2), period_end=dt.date(2026, 3, 1))
    assert caught.value.details[0].field == "period_end"
    with pytest.raises(ValidationFailed):
        read(org.container.database, lambda: contract.NOW, org.p("analyst"),
             period_start=dt.date(2025, 1, 1), period_end=dt.date(2026, 1, 2))
    assert len(read(org.container.database, lambda: contract.NOW, org.p("analyst"),
                    period_start=dt.date(2025, 1, 1), period_end=dt.date(2026, 1, 1)).days) == 366
    with pytest.raises(PermissionDenied):
        read(org.container.database, lambda: contract.NOW, org.p("supervisor"))


# --- HTTP --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client_and_tokens() -> Iterator[tuple[TestClient[Any], dict[str, str]]]:
    container = bootstrap_in_memory()
    app = create_app(container)
    app.state["dashboard_test_container"] = container
    with TestClient(app, raise_server_exceptions=False) as client:
        _, admin = onboard(client)
        tokens = {"admin": login(client, admin.org_code, admin.email, admin.password)}
        for role in ("analyst", "auditor", "supervisor"):
            tokens[role] = create_user_with_role(client, tokens["admin"], role)[1]
        yield client, tokens


@pytest.mark.parametrize("role", [role.value for role in Role])
def test_get_dashboard_per_role(client_and_tokens: tuple[TestClient[Any], dict[str, str]], role: str) -> None:
    client, tokens = client_and_tokens
    response = client.get("/api/dashboard?period_start=2026-03-01&period_end=2026-03-16",
                          headers=bearer(tokens[role]))
    if not has_permission(role, "reports:read"):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "PERMISSION_DENIED"
        return
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["period_start"], data["period_end"], data["timezone"]) == ("2026-03-01", "2026-03-16",
                                                                            "Africa/Lagos")
    assert len(data["match_rate_per_day"]) == 16
    assert set(data) >= {"jobs", "open_exceptions", "overdue", "amount_at_risk", "top_break_types", "as_of"}
    assert set(data["open_exceptions"]["by_severity"]) == {"low", "medium", "high", "critical"}
    assert ("pending_approvals" in data) is has_permission(role, "approvals:read")


@pytest.mark.parametrize("query, field", [
    ("period_start=2026-03-02&period_end=2026-03-01", "period_end"),
    ("period_start=2020-01-01&period_end=2026-03-01", "period_end"),
    ("period_start=yesterday", "period_start"),
    ("period_end=2026-02-30", "period_end"),
])
def test_a_bad_period_is_a_400_naming_the_field(client_and_tokens: tuple[TestClient[Any], dict[str, str]],
                                                 query: str, field: str) -> None:
    client, tokens = client_and_tokens
    response = client.get(f"/api/dashboard?{query}", headers=bearer(tokens["analyst"]))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in str(error["details"])


def test_amounts_are_integer_minor_units_per_currency_over_http(
        client_and_tokens: tuple[TestClient[Any], dict[str, str]]) -> None:
    client, tokens = client_and_tokens
    container = client.app.state["dashboard_test_container"]
    organization_id = uuid.UUID(client.get("/api/auth/me", headers=bearer(tokens["admin"])).json()["data"]
                                ["organization_id"])
    with container.database.unit_of_work(organization_id) as uow:
        for amount, currency in (("-1500.25", "NGN"), ("20.10", "NGN"), ("99.99", "USD")):
            uow.exceptions.add(ExceptionItem.new(
                organization_id=organization_id, job_id=uuid.uuid4(), type="amount_mismatch", severity="high",
                description="a break", created_at=dt.datetime.now(dt.UTC), sla=SlaPolicy(), amount=Decimal(amount),
                currency=currency, transaction_date=dt.date.today()))
        uow.commit()
    data = client.get("/api/dashboard", headers=bearer(tokens["auditor"])).json()["data"]
    assert data["amount_at_risk"] == [{"currency": "NGN", "count": 2, "amount_minor": 152035},
                                      {"currency": "USD", "count": 1, "amount_minor": 9999}]
    assert data["open_exceptions"]["total"] == 3
