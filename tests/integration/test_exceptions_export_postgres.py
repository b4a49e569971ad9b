"""GET /api/exceptions/export at scale on PostgreSQL: 50,000 exceptions streamed (every row, not a
page) in keyset batches, with memory bounded by the batch, not by the number of rows; the same for
the Excel workbook (xlsxwriter constant_memory)."""

from __future__ import annotations

import csv
import io
import tracemalloc
import uuid
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from reckai.application.exceptions.export import export_exceptions
from reckai.application.ports.workflow import ExceptionQuery
from reckai.bootstrap import Container, bootstrap
from reckai.domain.identity.principal import Principal
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.fixtures.postgres import clone_database, drop_database
from tests.support.identity import bearer, create_user_with_role, login, onboard

pytestmark = pytest.mark.integration

ROWS = 50_000


@pytest.fixture(scope="module")
def export_database(pg_admin_url: str, pg_template: Any) -> Iterator[Any]:
    """A database of its own: 50,000 overdue, unassigned exceptions in the session database would
    change what other tests see (the SLA sweep across tenants, index plans chosen by statistics)."""
    database = clone_database(pg_admin_url, pg_template)
    try:
        yield database
    finally:
        drop_database(pg_admin_url, database.name)


@pytest.fixture(scope="module")
def container(export_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root = tmp_path_factory.mktemp("exceptions-export")
    settings = Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=export_database.app_url, pool_size=4),
                        storage=StorageSettings(backend="filesystem", filesystem_root=root / "storage"),
                        mailer=MailerSettings(backend="file", outbox_dir=root / "mail"))
    built = bootstrap(settings)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture(scope="module")
def tenant(container: Container) -> Iterator[tuple[TestClient, uuid.UUID, dict[str, str], uuid.UUID]]:
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        organization_id, admin = onboard(client)
        tokens = {"admin": login(client, admin.org_code, admin.email, admin.password)}
        _, tokens["auditor"] = create_user_with_role(client, tokens["admin"], "auditor")
        job_id = uuid.uuid4()
        with container.database.unit_of_work(organization_id) as uow:
            uow.connection.execute(text(
                "INSERT INTO reconciliation_jobs (id, organization_id, name, status, created_by)"
                " VALUES (:id, :org, 'big', 'completed', :by)"), {"id": job_id, "org": organization_id,
                                                                  "by": admin.user_id})
            # 50,000 breaks; every 7th has a formula for a description, odd ones a negative amount;
            # created_at repeats (ties are broken by id in the keyset order)
            uow.connection.execute(text(
                "INSERT INTO exceptions (id, organization_id, job_id, type, severity, status, description,"
                " amount, amount_minor, currency, created_at, due_at)"
                " SELECT gen_random_uuid(), :org, :job, 'amount_mismatch',"
                " (ARRAY['low','medium','high','critical'])[1 + n % 4], 'open',"
                " CASE WHEN n % 7 = 0 THEN '=HYPERLINK(\"http://evil.test\")' ELSE 'break ' || n END,"
                " CASE WHEN n % 2 = 1 THEN -16704.50 ELSE n END, CASE WHEN n % 2 = 1 THEN -1670450 ELSE n * 100 END,"
                " 'NGN', timestamptz '2026-01-01 00:00:00+00' + (n / 3) * interval '1 second',"
                " timestamptz '2026-02-01 00:00:00+00'"
                " FROM generate_series(1, :rows) AS n"), {"org": organization_id, "job": job_id, "rows": ROWS})
            uow.commit()
        tokens["admin_id"] = str(admin.user_id)
        yield client, organization_id, tokens, job_id


def test_csv_export_streams_all_50k_rows_over_http(tenant: Any, container: Container) -> None:
    client, organization_id, tokens, job_id = tenant
    answer = client.get(f"/api/exceptions/export?format=csv&job_id={job_id}", headers=bearer(tokens["auditor"]))
    assert answer.status_code == 200, answer.text[:300]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == ROWS
    with container.database.unit_of_work(organization_id) as uow:
        expected = {str(r[0]) for r in uow.connection.execute(text("SELECT id FROM exceptions WHERE job_id = :j"),
                                                              {"j": job_id})}
    assert {r["id"] for r in rows} == expected  # every row once: no row lost or repeated at batch edges
    assert sum(1 for r in rows if r["description"] == "'=HYPERLINK(\"http://evil.test\")") == ROWS // 7
    assert sum(1 for r in rows if r["amount"] == "-16704.50") == ROWS // 2
    high = client.get(f"/api/exceptions/export?job_id={job_id}&severity=high", headers=bearer(tokens["admin"]))
    assert len(list(csv.DictReader(io.StringIO(high.text)))) == ROWS // 4


@pytest.mark.parametrize(("export_format", "bound_mb"), [("csv", 16), ("excel", 16)])
def test_export_memory_is_bounded_by_the_batch_not_the_rows(tenant: Any, container: Container, export_format: str,
                                                            bound_mb: int) -> None:
    _, organization_id, tokens, job_id = tenant
    principal = Principal(user_id=uuid.UUID(tokens["admin_id"]), organization_id=organization_id, role="admin",
                          permissions=frozenset(), session_id=None, token_id="test", email="admin@test",
                          email_verified=True)
    query = ExceptionQuery(job_id=job_id)
    writer = container.table_writers.of(export_format)
    tracemalloc.start()
    try:
        total = 0
        chunks = export_exceptions(container.workflow, principal, query, writer, export_format, {})
        for chunk in chunks:
            total += len(chunk)  # the chunk is dropped at once, as the response does
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"{export_format}: {ROWS} rows, {total} bytes, peak traced memory {peak} bytes")
    assert total > 2 * 1024 * 1024
    assert peak < bound_mb * 1024 * 1024, (export_format, peak, total)
    if export_format == "excel":
        return
    assert peak < total, (peak, total)  # less than the file itself: it was never held whole


def test_excel_export_of_50k_rows_reads_back(tenant: Any) -> None:
    client, _, tokens, job_id = tenant
    answer = client.get(f"/api/exceptions/export?format=excel&job_id={job_id}&severity=critical",
                        headers=bearer(tokens["admin"]))
    assert answer.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 1 + ROWS // 4
    amount = rows[0].index("amount")
    assert all(isinstance(r[amount], (int, float)) for r in rows[1:])
