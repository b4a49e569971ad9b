"""Re-mapping a file a job used, on PostgreSQL (row-level security, the versions of 0027_file_versions,
the job links' recorded version), over HTTP in process; each job's attempt is run by the test (the
story: tests/support/file_remap.py, also run in memory by tests/unit/test_files_remap_http.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.application.reconciliations.worker import run_reconciliation_attempt
from reckai.bootstrap import Container, bootstrap
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, MailerSettings, Mode, ScannerSettings, Settings, StorageSettings
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
