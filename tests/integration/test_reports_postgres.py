"""Reports on PostgreSQL (row-level security, the filesystem storage): the figures of a generated
report, read back from its file, equal an independent SQL query over the same rows; the expiry job
finds organizations through `reports_expired_organizations`; another tenant sees no report."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from reckai.application.reports.expiry import expire_reports
from reckai.application.reports.generation import generate_report
from reckai.bootstrap import Container, bootstrap
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.fixtures.postgres import clone_database, drop_database
from tests.support.identity import bearer, login, onboard

pytestmark = pytest.mark.integration

SEVERITIES = ("low", "medium", "high", "critical")
TYPES = ("amount_mismatch", "missing_entry", "duplicate", "timing_difference")


@pytest.fixture(scope="module")
def database(pg_admin_url: str, pg_template: Any) -> Iterator[Any]:
    cloned = clone_database(pg_admin_url, pg_template)
    try:
        yield cloned
    finally:
        drop_database(pg_admin_url, cloned.name)


@pytest.fixture(scope="module")
def container(database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root = tmp_path_factory.mktemp("reports")
    settings = Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=database.app_url, pool_size=4),
                        storage=StorageSettings(backend="filesystem", filesystem_root=root / "storage"),
                        mailer=MailerSettings(backend="file", outbox_dir=root / "mail"))
    built = bootstrap(settings)
    try:
        yield built
    finally:
        built.close()


class Tenant:
    def __init__(self, client: TestClient, container: Container) -> None:
        self.client, self.container = client, container
        self.org, admin = onboard(client)
        self.org = uuid.UUID(str(self.org))
        self.token = login(client, admin.org_code, admin.email, admin.password)
        self.job_id = uuid.uuid4()
        with container.database.unit_of_work(self.org) as uow:
            conn = uow.connection
            conn.execute(text(
                "INSERT INTO reconciliation_jobs (id, organization_id, name, status, created_by, total_rows,"
                " matched_rows, exception_rows, match_rate, completed_at, summary)"
                " VALUES (:id, :org, 'month end', 'completed', :by, 1000, 880, 120, 88.00,"
                " (now() AT TIME ZONE 'UTC') - interval '1 minute',"
                " '{\"rows\": {\"left\": 520, \"right\": 480}, \"matched_pairs\": 440}')"),
                {"id": self.job_id, "org": self.org, "by": admin.user_id})
            # 400 exceptions: types, severities, two currencies, ages from 0 to 99 days, a quarter resolved
            conn.execute(text(
                "INSERT INTO exceptions (organization_id, job_id, type, severity, status, description, amount,"
                " amount_minor, currency, transaction_date, created_at, due_at, resolved_at)"
                " SELECT :org, :job, (ARRAY[:t1, :t2, :t3, :t4])[1 + n % 4],"
                " (ARRAY['low','medium','high','critical'])[1 + (n / 4) % 4],"
                " CASE WHEN n % 4 = 3 THEN 'resolved' ELSE 'open' END,"
                " CASE WHEN n % 9 = 0 THEN '@SUM(A1:A2)' ELSE 'break ' || n END,"
                " (n * 1234 - 77777) / 100.0, n * 1234 - 77777, CASE WHEN n % 3 = 0 THEN 'USD' ELSE 'NGN' END,"
                " ((now() AT TIME ZONE 'Africa/Lagos')::date - (n % 100)),"
                " (now() AT TIME ZONE 'UTC') - interval '1 hour',"
                " (now() AT TIME ZONE 'UTC') + (n % 5 - 2) * interval '1 day',"
                " CASE WHEN n % 4 = 3 THEN (now() AT TIME ZONE 'UTC') - interval '10 minutes' END"
                " FROM generate_series(1, 400) AS n"),
                {"org": self.org, "job": self.job_id, "t1": TYPES[0], "t2": TYPES[1], "t3": TYPES[2],
                 "t4": TYPES[3]})
            uow.commit()

    def generate(self, body: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        created = self.client.post("/api/reports", json=body, headers=bearer(self.token))
        assert created.status_code == 202, created.text
        report_id = uuid.UUID(created.json()["data"]["report"]["id"])
        generate_report(self.container.reports, self.org, report_id)  # what the medium-queue actor runs
        report = self.client.get(f"/api/reports/{report_id}", headers=bearer(self.token)).json()["data"]
        assert report["status"] == "completed", report
        link = self.client.get(f"/api/reports/{report_id}/download", headers=bearer(self.token))
        assert link.status_code == 200, link.text
        path = "/" + link.json()["data"]["url"].split("://", 1)[1].split("/", 1)[1]
        content = self.client.get(path)
        assert content.status_code == 200
        return report, bytes(content.content)

    def query(self, sql: str, **params: Any) -> list[Any]:
        with self.container.database.unit_of_work(self.org) as uow:
            return list(uow.connection.execute(text(sql), params).all())


@pytest.fixture(scope="module")
def tenant(container: Container) -> Iterator[Tenant]:
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield Tenant(client, container)


def test_aging_report_in_excel_equals_sql(tenant: Tenant) -> None:
    report, content = tenant.generate({"type": "aging", "format": "excel"})
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    rows = list(workbook["aging_buckets"].iter_rows(values_only=True))
    got = {(r[0], r[1], r[2], r[3]): (r[4], round(Decimal(str(r[5])) * 100)) for r in rows[1:]}
    expected = tenant.query("""
        WITH aged AS (
            SELECT severity, type, currency, amount_minor,
                   ((CAST(:as_of AS timestamptz) AT TIME ZONE 'Africa/Lagos')::date
                    - COALESCE(transaction_date, (created_at AT TIME ZONE 'UTC' AT TIME ZONE 'Africa/Lagos')::date))
                   AS age
              FROM exceptions WHERE status IN ('open', 'in_progress', 'escalated'))
        SELECT CASE WHEN age < 1 THEN '0-1d' WHEN age < 3 THEN '1-3d' WHEN age < 7 THEN '3-7d'
                    WHEN age < 30 THEN '7-30d' ELSE '30d+' END, severity, type, currency, count(*), sum(amount_minor)
          FROM aged GROUP BY 1, 2, 3, 4""", as_of=report["data_as_of"])
    assert got == {(r[0], r[1], r[2], r[3]): (r[4], int(r[5])) for r in expected}
    share = list(workbook["sla_share"].iter_rows(values_only=True))[1]
    past = tenant.query("SELECT count(*) FILTER (WHERE due_at <= CAST(:as_of AS timestamptz) AT TIME ZONE 'UTC'),"
                        " count(*) FROM exceptions WHERE status IN ('open', 'in_progress', 'escalated')",
                        as_of=report["data_as_of"])[0]
    assert (share[0], share[1]) == (past[1], past[0])
    cell = workbook["aging_buckets"].cell(2, 6)
    assert cell.data_type == "n" and cell.number_format == "#,##0.00"


def test_daily_report_as_csv_equals_sql(tenant: Tenant) -> None:
    _report, content = tenant.generate({"type": "daily", "format": "csv", "job_id": str(tenant.job_id)})
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        tables = {n.removesuffix(".csv"): list(csv.DictReader(io.StringIO(archive.read(n).decode())))
                  for n in archive.namelist()}
    got = {(r["type"], r["severity"], r["currency"]): (int(r["count"]), int(Decimal(r["amount"]) * 100))
           for r in tables["breaks_by_type"]}
    expected = tenant.query("SELECT type, severity, currency, count(*), sum(amount_minor) FROM exceptions"
                            " WHERE job_id = :job GROUP BY 1, 2, 3", job=tenant.job_id)
    assert got == {(r[0], r[1], r[2]): (r[3], int(r[4])) for r in expected}
    per_currency = {r["currency"]: r for r in tables["unmatched_amounts"]}
    sums = tenant.query("SELECT currency, count(*), sum(amount_minor), sum(amount_minor) FILTER (WHERE status <> "
                        "'resolved') FROM exceptions WHERE job_id = :job GROUP BY 1", job=tenant.job_id)
    assert {c: (int(r["exceptions"]), int(Decimal(r["amount_in_exceptions"]) * 100),
                int(Decimal(r["amount_still_open"]) * 100)) for c, r in per_currency.items()} == \
        {r[0]: (r[1], int(r[2]), int(r[3])) for r in sums}
    largest = tenant.query("SELECT id FROM exceptions WHERE job_id = :job AND status = 'open'"
                           " ORDER BY abs(amount_minor) DESC, id::text LIMIT 20", job=tenant.job_id)
    assert [r["exception_id"] for r in tables["largest_open_breaks"]] == [str(r[0]) for r in largest]
    overview = {r["metric"]: r for r in tables["overview"]}
    assert overview["left_rows"]["value"] == "520" and overview["match_rate_percent"]["value"] == "88.00"
    cells = [c for rows in tables.values() for row in rows for c in row.values()]
    assert "'@SUM(A1:A2)" in cells and not any(c.startswith(("=", "+", "@")) for c in cells)


def test_reports_are_isolated_per_tenant_and_expire(tenant: Tenant, container: Container) -> None:
    report, _ = tenant.generate({"type": "sla", "format": "csv"})
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        _, other = onboard(client)
        token = login(client, other.org_code, other.email, other.password)
        assert client.get(f"/api/reports/{report['id']}", headers=bearer(token)).status_code == 404
        assert client.get("/api/reports", headers=bearer(token)).json()["meta"]["total"] == 0
    expires = dt.datetime.fromisoformat(report["expires_at"])
    done = expire_reports(container.reports, now=expires + dt.timedelta(seconds=1))
    assert done[str(tenant.org)] >= 1
    after = tenant.client.get(f"/api/reports/{report['id']}", headers=bearer(tenant.token)).json()["data"]
    assert after["status"] == "expired"
    assert tenant.client.get(f"/api/reports/{report['id']}/download", headers=bearer(tenant.token)).status_code == 409
