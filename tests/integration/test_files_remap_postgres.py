"""Re-mapping a file a job used, on PostgreSQL (row-level security, the versions of 0027_file_versions,
the job links' recorded version), over HTTP in process; each job's attempt is run by the test (the
story: tests/support/file_remap.py, also run in memory by tests/unit/test_files_remap_http.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from reckai.adapters.postgres import migrations
from reckai.adapters.postgres.engine import create_engine
from reckai.application.reconciliations.worker import run_reconciliation_attempt
from reckai.bootstrap import Container, bootstrap
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, MailerSettings, Mode, ScannerSettings, Settings, StorageSettings
from tests.fixtures.postgres import create_tenant, development_master_keys
from tests.support import file_remap
from tests.support import reconciliation_jobs as rj
from tests.support.file_remap import Person

pytestmark = pytest.mark.integration


class PostgresPerson(Person):
    def work(self, job_id: uuid.UUID) -> None:
        outcome = run_reconciliation_attempt(self.container.reconciliations, self.org_id, job_id, 1, "pytest")
        assert outcome == "completed", outcome


@pytest.fixture(scope="module")
def container(pg_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root = tmp_path_factory.mktemp("remap")
    settings = Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=pg_database.app_url, pool_size=4),
                        storage=StorageSettings(backend="filesystem", filesystem_root=root / "storage"),
                        mailer=MailerSettings(backend="file", outbox_dir=root / "mail"),
                        scanner=ScannerSettings(enabled=False))
    built = bootstrap(settings)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture(scope="module")
def person(container: Container) -> Iterator[Person]:
    with TestClient(create_app(container)) as client:
        person = PostgresPerson(client, container)
        rj.seed_rules(container.database, person.org_id, person.admin.user_id)
        yield person


def test_a_remap_makes_a_new_version_that_the_next_job_reads_and_the_earlier_job_does_not(person: Person) -> None:
    file_remap.remap_story(person)


def test_a_failed_remap_keeps_the_current_version(person: Person) -> None:
    file_remap.failed_remap_story(person)


def test_the_migration_numbers_existing_forms_version_1_with_their_mapping(pg_database_factory: Any) -> None:
    """0027_file_versions on a database with data: each existing normalized form becomes version 1
    with its file's mapping rebuilt from the data_mappings rows; a job's link to a normalized file
    records version 1, a link to a file not normalized yet records nothing (its worker will)."""
    database = pg_database_factory(migrate=False)
    migrations.upgrade(database.owner_url, "0022_file_statements", master_keys=development_master_keys())
    admin = create_engine(database.admin_url, pool_size=1)
    tenant = create_tenant(admin)
    job, normalized_file, mapped_file = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    parse = {"format": "csv", "delimiter": ","}
    with admin.begin() as conn:
        params = {"org": tenant.organization_id, "user": tenant.admin_user_id, "job": job}
        conn.execute(text("INSERT INTO reconciliation_jobs (id, organization_id, name, status, created_by)"
                          " VALUES (:job, :org, 'old', 'completed', :user)"), params)
        for file_id, status, side in ((normalized_file, "processed", "left"), (mapped_file, "mapped", "right")):
            conn.execute(text(
                "INSERT INTO reconciliation_files (id, organization_id, name, original_filename, file_type, format,"
                " size_bytes, storage_path, status, uploaded_by) VALUES (:id, :org, 'f', 'f.csv', 'bank', 'csv', 1,"
                " 'k', :status, :user)"), {**params, "id": file_id, "status": status})
            for target, field in (("amount", {"column": "amt"}), ("currency", {"constant": "NGN"})):
                conn.execute(text(
                    "INSERT INTO data_mappings (organization_id, file_id, source_column, target_field, data_type,"
                    " transformation_rules) VALUES (:org, :id, 'c', :target, 'string', CAST(:rules AS jsonb))"),
                    {**params, "id": file_id, "target": target, "rules": json.dumps({"parse": parse, "field": field})})
            conn.execute(text("INSERT INTO reconciliation_job_files (job_id, file_id, organization_id, side)"
                              " VALUES (:job, :id, :org, :side)"), {**params, "id": file_id, "side": side})
        conn.execute(text("INSERT INTO normalized_files (file_id, organization_id, storage_path, row_count)"
                          " VALUES (:id, :org, 'p', 5)"), {**params, "id": normalized_file})
    migrations.upgrade(database.owner_url, "head", master_keys=development_master_keys())
    with admin.connect() as conn:
        versions = conn.execute(text("SELECT file_id, version, mapping, created_by FROM normalized_files")).all()
        links = dict(conn.execute(text("SELECT file_id, file_version FROM reconciliation_job_files")).all())
    assert versions == [(normalized_file, 1, {"parse": parse, "fields": {"amount": {"column": "amt"},
                                                                         "currency": {"constant": "NGN"}}}, None)]
    assert links == {normalized_file: 1, mapped_file: None}
    migrations.downgrade(database.owner_url, "0022_file_statements", master_keys=development_master_keys())  # and back
    with admin.connect() as conn:
        columns = set(conn.execute(text("SELECT column_name FROM information_schema.columns"
                                        " WHERE table_name IN ('normalized_files', 'reconciliation_job_files')")).scalars())
    assert not columns & {"version", "mapping", "created_by", "file_version"}
    admin.dispose()
