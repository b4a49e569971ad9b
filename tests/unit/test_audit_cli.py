"""`reckai audit verify` / `purge-expired` over the in-memory container (exit codes and output)."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from reckai.bootstrap import Container, bootstrap, bootstrap_in_memory
from reckai.domain.audit.events import AuditEvent
from reckai.entrypoints.cli import audit as audit_cli
from reckai.entrypoints.cli.main import main
from reckai.settings import Mode, Settings


@pytest.fixture
def container(monkeypatch: pytest.MonkeyPatch) -> Container:
    container = bootstrap_in_memory()
    monkeypatch.setattr(audit_cli, "container_factory", lambda: container)
    return container


def test_verify_prints_ok_for_every_chain_and_exits_zero(container: Container, capsys: pytest.CaptureFixture[str]) -> None:
    org = uuid.uuid4()
    for action in ("a", "b", "c"):
        container.audit_log.record_independently(AuditEvent(action=action, organization_id=org))
    container.audit_log.record_independently(AuditEvent(action="auth.login.failed"))
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert f"OK organization {org}: 3 records" in out
    assert "OK system: 1 records" in out
    assert out.strip().endswith("OK: 2 chains, 4 records")


def test_verify_names_the_first_broken_row_and_exits_one(container: Container, capsys: pytest.CaptureFixture[str]) -> None:
    org = uuid.uuid4()
    records = [container.audit_log.record_independently(AuditEvent(action=f"step.{i}", organization_id=org))
               for i in range(4)]
    container.audit_log.inner.tamper(org, 2, lambda r: dataclasses.replace(r, hash="0" * 64))
    assert main(["audit", "verify", "--organization", str(org)]) == 1
    out = capsys.readouterr().out
    assert f"BROKEN organization {org}: row {records[1].id} at sequence 2: hash_mismatch" in out


def test_verify_without_a_usable_configuration_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Production settings with nothing configured (no DATABASE_URL, development secrets): the
    # container cannot be built, and the command says why in one line instead of a traceback.
    monkeypatch.setattr(audit_cli, "container_factory", lambda: bootstrap(Settings(mode=Mode.PRODUCTION)))
    assert main(["audit", "verify"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reckai audit: ") and "Traceback" not in err


def test_purge_expired_with_nothing_old_removes_nothing(container: Container, capsys: pytest.CaptureFixture[str]) -> None:
    org = uuid.uuid4()
    container.audit_log.record_independently(AuditEvent(action="young", organization_id=org))
    assert main(["audit", "purge-expired"]) == 0
    assert len(container.audit_log.read_chain(org, 0, 10)) == 1
