"""Data exports (issue 17 item 6) on PostgreSQL (row-level security, the filesystem storage, the
in-process worker): the scenario of tests/support/privacy_exports.py, and another tenant seeing
neither the export nor its rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from reckai.bootstrap import Container, bootstrap
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
