"""Data exports (issue 17 item 6) on the in-memory container: the scenario of
tests/support/privacy_exports.py, and the archive's format checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.application.privacy.archive import verify_archive
from reckai.bootstrap import bootstrap_in_memory
from reckai.domain.privacy.exports import chain_link_problem
from reckai.entrypoints.http.app import create_app
from tests.support import privacy_exports as scenario


@pytest.fixture(scope="module")
def world() -> Iterator[scenario.ExportWorld]:
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    container.worker_runner.start()
    try:
        with TestClient(create_app(container)) as client:
            built = scenario.ExportWorld(client, container)
            built.seed()
            yield built
    finally:
        container.worker_runner.stop()


def test_a_person_exports_their_own_data(world: scenario.ExportWorld, tmp_path: Path) -> None:
    scenario.user_export_by_self(world, tmp_path)


def test_an_admin_exports_a_persons_data(world: scenario.ExportWorld) -> None:
    scenario.user_export_by_admin(world)


def test_an_export_expires(world: scenario.ExportWorld) -> None:
    scenario.an_export_expires(world)


def test_another_analyst_is_refused(world: scenario.ExportWorld) -> None:
    scenario.user_export_refused_to_another_analyst(world)


def test_the_organization_export_needs_an_approval_and_verifies(world: scenario.ExportWorld, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    _, content = scenario.organization_export_through_an_approval(world, tmp_path)
    scenario.tampered_exports_fail(content, tmp_path, capsys)


def test_verify_refuses_what_is_not_an_export(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(b"not a zip")
    assert not verify_archive(str(path)).ok


def test_chain_links() -> None:
    rows = [{"sequence_number": 5, "previous_hash": "a", "hash": "b"},
            {"sequence_number": 6, "previous_hash": "b", "hash": "c"}]
    assert chain_link_problem(rows, start_sequence=5, start_previous_hash="a") is None
    assert "starts at sequence 5" in (chain_link_problem(rows, start_sequence=4) or "")
    assert "previous_hash" in (chain_link_problem([rows[0], {**rows[1], "previous_hash": "x"}]) or "")
    assert "expected 6" in (chain_link_problem([rows[0], {**rows[1], "sequence_number": 7}]) or "")
