"""The right to erasure (issue 17 item 5) on PostgreSQL (row-level security, forced): the scenario
of tests/support/privacy_erasure.py — erasure through an approval and then `reckai audit verify`
over the organization's chain, a legal hold's refusal, the operator's command — and the stored
row of the key gone from `subject_keys`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine, text

from reckai.bootstrap import Container, bootstrap
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.fixtures.postgres import clone_database, drop_database
from tests.support import privacy_erasure as scenario

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
    root: Path = tmp_path_factory.mktemp("erasure")
    settings = Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=database.app_url, pool_size=4),
                        storage=StorageSettings(backend="filesystem", filesystem_root=root / "storage"),
                        mailer=MailerSettings(backend="file", outbox_dir=root / "mail"))
    built = bootstrap(settings)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture(scope="module")
def world(container: Container) -> Iterator[scenario.ErasureWorld]:
    with TestClient(create_app(container)) as client:
        yield scenario.ErasureWorld(client, container)


def test_personal_data_is_sealed_in_the_row_and_shown_to_readers(world: scenario.ErasureWorld,
                                                                  database: Any) -> None:
    scenario.personal_data_is_sealed_in_the_row_and_shown_to_readers(world)
    # What the database holds: ciphertext in the JSONB, and a wrapped key (no address in either).
    engine = create_engine(database.app_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT set_config('app.current_org_id', :org, false)"), {"org": str(world.org)})
            stored = conn.execute(text("SELECT metadata::text FROM audit_logs WHERE action = 'user.created'"
                                       " AND resource_id = :user"), {"user": world.ids["analyst"]}).scalar_one()
            wrapped = conn.execute(text("SELECT wrapped_key FROM subject_keys WHERE subject_id = :user"),
                                   {"user": world.ids["analyst"]}).scalar_one()
    finally:
        engine.dispose()
    assert "erasable:v1:" in stored and world.emails["analyst"] not in stored
    assert wrapped.startswith("v1:") and world.emails["analyst"] not in wrapped


def test_erasure_then_audit_verify(world: scenario.ErasureWorld, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    scenario.erasure_through_an_approval(world, capsys, monkeypatch)


def test_a_legal_hold_refuses_erasure_naming_its_end(world: scenario.ErasureWorld) -> None:
    scenario.a_legal_hold_refuses_erasure_naming_its_end(world)


def test_the_operator_erases_from_the_command_line(world: scenario.ErasureWorld,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    scenario.the_operator_erases_from_the_command_line(world, capsys, monkeypatch)
