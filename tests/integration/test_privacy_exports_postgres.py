"""Data exports (issue 17 item 6) on PostgreSQL (row-level security, the filesystem storage, the
in-process worker): the scenario of tests/support/privacy_exports.py, and another tenant seeing
neither the export nor its rows."""

from __future__ import annotations

import json
import tracemalloc
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from reckai.application.privacy.archive import verify_archive
from reckai.application.privacy.exports import new_export
from reckai.application.privacy.generation import generate_export
from reckai.bootstrap import Container, bootstrap
from reckai.domain.privacy.exports import ExportScope, ExportStatus
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.fixtures.postgres import clone_database, drop_database
from tests.support import privacy_exports as scenario

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def database(pg_admin_url: str, pg_template: Any) -> Iterator[Any]:
    cloned = clone_database(pg_admin_url, pg_template)
    try:
        yield cloned
    finally:
        drop_database(pg_admin_url, cloned.name)


@pytest.fixture(scope="module")
def container(database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root = tmp_path_factory.mktemp("exports")
    settings = Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=database.app_url, pool_size=6),
                        storage=StorageSettings(backend="filesystem", filesystem_root=root / "storage"),
                        mailer=MailerSettings(backend="file", outbox_dir=root / "mail"))
    built = bootstrap(settings)
    built.worker_runner.start()
    try:
        yield built
    finally:
        built.worker_runner.stop()
        built.close()


@pytest.fixture(scope="module")
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def world(client: TestClient, container: Container) -> scenario.ExportWorld:
    built = scenario.ExportWorld(client, container)
    built.seed()
    return built


def test_a_person_exports_their_own_data(world: scenario.ExportWorld, tmp_path: Path) -> None:
    scenario.user_export_by_self(world, tmp_path)


def test_an_admin_exports_a_persons_data(world: scenario.ExportWorld) -> None:
    scenario.user_export_by_admin(world)


def test_an_export_expires(world: scenario.ExportWorld) -> None:
    scenario.an_export_expires(world)


def test_another_analyst_is_refused(world: scenario.ExportWorld) -> None:
    scenario.user_export_refused_to_another_analyst(world)


def test_the_organization_export_needs_an_approval_and_verifies(
        world: scenario.ExportWorld, client: TestClient, container: Container, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    export_id, content = scenario.organization_export_through_an_approval(world, tmp_path)
    scenario.tampered_exports_fail(content, tmp_path, capsys)
    other = scenario.ExportWorld(client, container)
    scenario.organization_export_is_not_another_tenants(world, other, export_id)
    # row-level security: the other tenant's unit of work sees none of the rows
    with container.database.unit_of_work(other.org) as uow:
        assert uow.data_exports.get(uuid.UUID(export_id)) is None
        assert uow.connection.execute(text("SELECT count(*) FROM data_exports")).scalar_one() == 0
        assert list(uow.export_data.rows("users")) and all(
            row["organization_id"] == other.org for row in uow.export_data.rows("users"))


ROWS = 50_000


def test_an_organization_export_is_written_in_bounded_memory(client: TestClient, container: Container,
                                                             tmp_path: Path) -> None:
    """50,000 exceptions: the export's peak traced memory stays far below the rows' size (they are
    streamed from a server-side cursor into the zip, never held)."""
    tenant = scenario.ExportWorld(client, container)
    job_id = uuid.uuid4()
    with container.database.unit_of_work(tenant.org) as uow:
        uow.connection.execute(text(
            "INSERT INTO reconciliation_jobs (id, organization_id, name, status, created_by)"
            " VALUES (:id, :org, 'big', 'completed', :by)"), {"id": job_id, "org": tenant.org, "by": tenant.ids["admin"]})
        uow.connection.execute(text(
            "INSERT INTO exceptions (organization_id, job_id, type, severity, status, description, amount,"
            " amount_minor, currency, transaction_date)"
            " SELECT :org, :job, 'amount_mismatch', 'low', 'open', 'break number ' || n || repeat(' x', 40),"
            " n / 100.0, n, 'NGN', DATE '2026-11-01' FROM generate_series(1, :rows) AS n"),
            {"org": tenant.org, "job": job_id, "rows": ROWS})
        export = new_export(tenant.org, ExportScope.ORGANIZATION, None, tenant.ids["admin"], container.clock())
        uow.data_exports.add(export)
        uow.commit()
    tracemalloc.start()
    try:
        done = generate_export(container.privacy, tenant.org, export.id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert done is not None and done.status is ExportStatus.COMPLETED, done
    path = tmp_path / "big.zip"
    with container.storage.open(export.storage_path) as stored:
        path.write_bytes(stored.read())
    checked = verify_archive(str(path))
    assert checked.ok, checked.message
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    entry = next(e for e in manifest["files"] if e["path"] == "data/exceptions.jsonl")
    assert entry["rows"] == ROWS
    print(f"{ROWS} exceptions, {entry['size_bytes']} bytes of JSON Lines, peak traced memory {peak} bytes")
    assert entry["size_bytes"] > 20 * 1024 * 1024
    assert peak < 16 * 1024 * 1024, peak
