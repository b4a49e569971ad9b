"""`reckai org offboard` on PostgreSQL as the runtime role, with the filesystem storage (issue 17
item 7): the scenario of tests/support/offboarding.py, including `reckai audit verify` of the
offboarded organization's chain."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reckai.bootstrap import Container, bootstrap
from reckai.settings import DatabaseSettings, MailerSettings, Mode, RedisSettings, Settings, StorageSettings
from tests.support.offboarding import check_offboarding

pytestmark = pytest.mark.integration


@pytest.fixture
def container(pg_database: Any, redis_test_url: str, tmp_path: Path) -> Iterator[Container]:
    settings = Settings(
        mode=Mode.EMBEDDED,
        database=DatabaseSettings(url=pg_database.app_url, pool_size=4),
        redis=RedisSettings(url=redis_test_url),
        storage=StorageSettings(backend="filesystem", filesystem_root=tmp_path / "storage"),
        mailer=MailerSettings(backend="file", outbox_dir=tmp_path / "mail"),
    )
    built = bootstrap(settings)
    try:
        yield built
    finally:
        built.close()


def test_offboarding_on_postgres(container: Container) -> None:
    check_offboarding(container, encrypted=True)
