"""Streams on PostgreSQL (row-level security, COPY, the stream tables of 0021_streams): the scenarios
of tests/support/stream_scenarios.py, which also run in memory (tests/unit/test_streams.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reckai.bootstrap import Container, bootstrap
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.support import stream_scenarios as scenarios
from tests.support.streams import StreamWorld, stream_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def container(pg_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root = tmp_path_factory.mktemp("streams")
    settings = Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=pg_database.app_url, pool_size=4),
                        storage=StorageSettings(backend="filesystem", filesystem_root=root / "storage"),
                        mailer=MailerSettings(backend="file", outbox_dir=root / "mail"))
    built = bootstrap(settings)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def world(container: Container) -> StreamWorld:
    return stream_world(container)


def test_three_days_carry_forward_and_closing(world: StreamWorld) -> None:
    scenarios.three_days(world)


def test_re_running_over_the_same_inputs_gives_no_new_exception(world: StreamWorld) -> None:
    scenarios.rerun_gives_no_new_exception(world)


def test_files_are_refused_with_a_reason(world: StreamWorld) -> None:
    scenarios.files_are_refused_with_a_reason(world)


def test_a_file_repeating_earlier_rows_does_not_bring_them_twice(world: StreamWorld) -> None:
    scenarios.a_file_repeating_earlier_rows_does_not_bring_them_twice(world)
