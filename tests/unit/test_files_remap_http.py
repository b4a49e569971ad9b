"""Re-mapping a file a job used, over HTTP on the in-memory container with its in-process worker
(the story: tests/support/file_remap.py; on PostgreSQL: tests/integration/test_files_remap_postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.bootstrap import bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from tests.support import file_remap
from tests.support import reconciliation_jobs as rj
from tests.support.file_remap import Person


@pytest.fixture(scope="module")
def person() -> Iterator[Person]:
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    container.worker_runner.start()
    try:
        with TestClient(create_app(container)) as client:
            person = Person(client, container)
            rj.seed_rules(container.database, person.org_id, person.admin.user_id)
            yield person
    finally:
        container.worker_runner.stop()


def test_a_remap_makes_a_new_version_that_the_next_job_reads_and_the_earlier_job_does_not(person: Person) -> None:
    file_remap.remap_story(person)


def test_a_failed_remap_keeps_the_current_version(person: Person) -> None:
    file_remap.failed_remap_story(person)
