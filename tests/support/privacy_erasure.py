"""The right to erasure (issue 17 item 5) over HTTP, one scenario for the in-memory container
(tests/unit/test_privacy_erasure.py) and PostgreSQL (tests/integration/test_privacy_erasure_postgres.py):
an admin requests a user's erasure, a checker approves it; the user row is pseudonymised, the
sessions end, the personal values of the user's audit rows read as [erased] while the stored rows
are unchanged and `reckai audit verify` passes; a legal hold refuses erasure naming its end; the
operator's `reckai privacy erase`."""

from __future__ import annotations

import argparse
import dataclasses
import io
import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.application.ports.audit import AuditQuery
from reckai.bootstrap import Container
from reckai.domain.audit.chain import AuditSigner
from reckai.domain.audit.events import AuditEvent
from reckai.domain.audit.personal import ERASED
from reckai.domain.identity.erasure import ERASED_NAME, erased_email
from reckai.entrypoints.cli import audit as audit_cli
from reckai.entrypoints.cli.main import main as cli_main
from reckai.entrypoints.cli.privacy import erase_command
from tests.support.identity import (
    SECOND_PASSWORD,
    bearer,
    create_user_with_role,
    login,
    onboard,
    relax_auth_limits,
)


class ErasureWorld:
    def __init__(self, client: TestClient, container: Container) -> None:
        self.client, self.container = client, container
        org, admin = onboard(client)
        self.org, self.org_code = uuid.UUID(str(org)), admin.org_code
        self.tokens = {"admin": login(client, admin.org_code, admin.email, admin.password)}
        self.ids = {"admin": uuid.UUID(str(admin.user_id))}
        self.emails: dict[str, str] = {}
        for name, role in (("supervisor", "supervisor"), ("analyst", "analyst")):
            self.add(name, role)

    def add(self, name: str, role: str) -> uuid.UUID:
        email = f"{name}.{uuid.uuid4().hex[:6]}@erasure.test"
        user_id, token = create_user_with_role(self.client, self.tokens["admin"], role, email=email,
                                               name=f"Person {name.title()}")
        self.tokens[name], self.ids[name], self.emails[name] = token, user_id, email
        return user_id

    def get(self, path: str, who: str = "admin") -> Any:
        return self.client.get(path, headers=bearer(self.tokens[who]))

    def post(self, path: str, body: Any, who: str = "admin") -> Any:
        return self.client.post(path, json=body, headers=bearer(self.tokens[who]))

    def stored(self, action: str, resource_id: uuid.UUID) -> list[AuditEvent]:
        """The rows as stored (what the chain covers), not as a reader sees them."""
        page = self.container.audit_log.list_records(self.org, AuditQuery(action=action, resource_id=resource_id,
                                                                          limit=500))
        return [record.event for record in page.records]

    def shown(self, action: str, resource_id: uuid.UUID) -> list[dict[str, Any]]:
        listed = self.get(f"/api/audit-logs?action={action}&resource_id={resource_id}")
        assert listed.status_code == 200, listed.text
        return list(listed.json()["data"])

    def verify_chain(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
        """`reckai audit verify --organization ORG` on this container's audit log."""

        @dataclasses.dataclass
        class Tools:
            audit_log: Any
            audit_signer: AuditSigner
            audit_anchors: Any

            def close(self) -> None:
                pass

        container = self.container
        monkeypatch.setattr(audit_cli, "container_factory",
                            lambda: Tools(container.audit_log, container.audit_signer, container.audit_anchors))
        capsys.readouterr()
        code = cli_main(["audit", "verify", "--organization", str(self.org)])
        out = capsys.readouterr().out
        assert code == 0, out
        return out

    def set_legal_hold(self, hold: dict[str, str]) -> None:
        with self.container.database.unit_of_work(self.org) as uow:
            organization = uow.organizations.get(self.org)
            assert organization is not None
            settings = dict(organization.settings or {})
            settings["retention"] = {**dict(settings.get("retention") or {}), "legal_hold": hold}
            organization.settings = settings
            uow.organizations.update(organization)
            uow.commit()


def personal_data_is_sealed_in_the_row_and_shown_to_readers(world: ErasureWorld) -> None:
    subject, email = world.ids["analyst"], world.emails["analyst"]
    [stored] = world.stored("user.created", subject)
    assert stored.metadata["email"].startswith("erasable:v1:"), stored.metadata
    assert email not in str(stored.metadata) and email.lower() not in str(stored.metadata).lower()
    [shown] = world.shown("user.created", subject)
    assert shown["metadata"]["email"] == email
    with world.container.database.unit_of_work(world.org) as uow:
        assert uow.subject_keys.get(subject) is not None


def erasure_through_an_approval(world: ErasureWorld, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    subject, email = world.ids["analyst"], world.emails["analyst"]
    [before] = world.stored("user.created", subject)
    refused = world.post(f"/api/users/{subject}/erase", {}, "supervisor")
    assert refused.status_code == 403, refused.text

    asked = world.post(f"/api/users/{subject}/erase", {"reason": "DSAR 2026-114"})
    assert asked.status_code == 202, asked.text
    approval = asked.json()["data"]["pending_approval"]
    assert approval["type"] == "data_erasure" and approval["metadata"]["user_id"] == str(subject)
    assert email not in str(approval)  # the request itself holds no personal data
    # Nothing happened yet: the analyst still works.
    assert world.get("/api/auth/me", "analyst").status_code == 200
    own = world.post(f"/api/approvals/{approval['id']}/approve", {}, "admin")
    assert own.status_code == 403 and own.json()["error"]["code"] == "SELF_APPROVAL_FORBIDDEN", own.text
    review = world.get(f"/api/approvals/{approval['id']}", "supervisor")
    assert review.status_code == 200, review.text
    assert review.json()["data"]["subject"]["user"]["email"] == email

    approved = world.post(f"/api/approvals/{approval['id']}/approve", {}, "supervisor")
    assert approved.status_code == 200, approved.text

    user = world.get(f"/api/users/{subject}").json()["data"]
    assert user["email"] == erased_email(subject) and user["name"] == ERASED_NAME
    assert user["is_active"] is False and user["mfa_enabled"] is False
    assert world.get("/api/auth/me", "analyst").status_code == 401  # the live token died at once
    relax_auth_limits(world.client)
    signin = world.client.post("/api/auth/login", json={"organization_code": world.org_code, "email": email,
                                                        "password": SECOND_PASSWORD})
    relax_auth_limits(world.client, world.org_code, email)
    assert signin.status_code == 401
    with world.container.database.unit_of_work(world.org) as uow:
        assert uow.subject_keys.get(subject) is None
        assert all(s.revoked_at is not None for s in uow.sessions.list_for_user(subject))

    # The row is unchanged; a reader sees the tombstone; the chain verifies end to end.
    [after] = world.stored("user.created", subject)
    assert after == before
    [shown] = world.shown("user.created", subject)
    assert shown["metadata"]["email"] == ERASED
    exported = world.get(f"/api/audit-logs/export?action=user.created&resource_id={subject}")
    assert exported.status_code == 200 and ERASED in exported.text and email not in exported.text
    [erased] = world.stored("privacy.user.erased", subject)
    assert erased.user_id == world.ids["supervisor"]
    assert erased.metadata["by"] == "approval" and erased.metadata["personal_audit_data_erased"] is True
    assert email not in str(erased.metadata)
    out = world.verify_chain(capsys, monkeypatch)
    assert f"OK organization {world.org}" in out

    again = world.post(f"/api/users/{subject}/erase", {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "USER_ALREADY_ERASED", again.text


def a_legal_hold_refuses_erasure_naming_its_end(world: ErasureWorld) -> None:
    subject = world.add("held", "analyst")
    world.set_legal_hold({"until": "2099-12-31", "reason": "litigation 2026/41"})
    try:
        refused = world.post(f"/api/users/{subject}/erase", {})
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "LEGAL_HOLD"
        assert "2099-12-31" in error["message"] and "litigation 2026/41" in error["message"]
        [audited] = world.stored("privacy.erasure.requested", subject)
        assert audited.metadata["refused"] == "legal_hold" and audited.metadata["legal_hold_until"] == "2099-12-31"
        args = argparse.Namespace(org=world.org_code, user=subject, reason="ticket 7", yes=True)
        out, err = io.StringIO(), io.StringIO()
        assert erase_command(world.container, args, out, err) == 2
        assert "2099-12-31" in err.getvalue()
    finally:
        world.set_legal_hold({})
    # A request made before the hold is refused when it would be applied, too.
    asked = world.post(f"/api/users/{subject}/erase", {})
    assert asked.status_code == 202, asked.text
    world.set_legal_hold({"until": "2099-12-31", "reason": "litigation 2026/41"})
    try:
        approving = world.post(f"/api/approvals/{asked.json()['data']['pending_approval']['id']}/approve", {},
                               "supervisor")
        assert approving.status_code == 409 and "2099-12-31" in approving.json()["error"]["message"], approving.text
        user = world.get(f"/api/users/{subject}").json()["data"]
        assert user["is_active"] is True and user["email"] == world.emails["held"]
    finally:
        world.set_legal_hold({})


def the_operator_erases_from_the_command_line(world: ErasureWorld, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    subject = world.add("operated", "analyst")
    args = argparse.Namespace(org=world.org_code, user=subject, reason="DSAR by post", yes=False)
    out, err = io.StringIO(), io.StringIO()
    assert erase_command(world.container, args, out, err) == 2 and "--yes" in err.getvalue()
    args.yes = True
    assert erase_command(world.container, args, out, err) == 0, err.getvalue()
    assert f"ERASED user {subject}" in out.getvalue() and "audit key destroyed" in out.getvalue()
    [erased] = world.stored("privacy.user.erased", subject)
    assert erased.user_id is None and erased.metadata["by"] == "operator"
    assert erased.metadata["reason"] == "DSAR by post"
    [shown] = world.shown("user.created", subject)
    assert shown["metadata"]["email"] == ERASED
    assert erase_command(world.container, args, out, err) == 2 and "erased already" in err.getvalue()
    world.verify_chain(capsys, monkeypatch)
