"""E-mail verification (issue 17 item 8) over HTTP on the in-memory container: a sign-up queues a
verification mail through the outbox; its link opens the page `/verify-email` (CSRF, no-referrer,
the GET verifies nothing); until the admin presses the button they may sign in but not add or
invite users nor start jobs (403 EMAIL_NOT_VERIFIED); links are single use, expire after 72 hours,
and a resend replaces the earlier link. The same flow on PostgreSQL and SMTP is in
tests/integration/test_identity_flow.py, in Chromium in tests/integration/test_browser.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.application.context import RequestInfo
from reckai.application.identity.email_verification import send_email_verification_job
from reckai.application.identity.organizations import onboard_organization
from reckai.application.job_handlers import JobHandlers
from reckai.application.outbox import retry_delay_seconds
from reckai.application.ports.mail import MailerUnavailable
from reckai.bootstrap import Container
from reckai.entrypoints.http.app import create_app
from reckai.entrypoints.http.pages import CSRF_COOKIE
from tests.support.identity import DEFAULT_PASSWORD, Credentials, bearer, login, onboard, relax_auth_limits
from tests.support.identity_flow import FakeClock, token_from_mail
from tests.support.jobs import run_queued_jobs
from tests.unit.test_identity_usecases import make_container


@dataclasses.dataclass
class SignedUp:
    client: TestClient
    container: Container
    clock: FakeClock
    org_id: uuid.UUID
    admin: Credentials
    token: str  # the admin's access token

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        relax_auth_limits(self.client)
        self.container.rate_limiter.reset(self.container.identity.tiers["api"], str(self.admin.user_id))
        return self.client.request(method, path, headers=bearer(self.token), **kwargs)

    def me_verified(self) -> bool:
        return bool(self.call("GET", "/api/auth/me").json()["data"]["email_verified"])

    def mails_to_admin(self) -> list[str]:
        sent = self.container.mailer.sent  # type: ignore[attr-defined]
        return [str(m.text_body) for m in sent if m.to.lower() == self.admin.email.lower()]


@pytest.fixture
def signed_up() -> Iterator[SignedUp]:
    clock = FakeClock()
    container = make_container(clock)
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        org_id, admin = onboard(client, verify_email=False)
        token = login(client, admin.org_code, admin.email, admin.password)
        yield SignedUp(client, container, clock, org_id, admin, token)


def _fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))


def _mailed_token(world: SignedUp) -> str:
    run_queued_jobs(world.container)
    mails = world.mails_to_admin()
    assert mails, "no verification mail"
    assert "/verify-email?token=" in mails[-1]
    return token_from_mail(mails[-1])


def _press_the_button(world: SignedUp, token: str) -> Any:
    page = world.client.get("/verify-email", params={"token": token})
    assert page.status_code == 200, page.text
    return world.client.post("/verify-email", data=_fields(page.text))


def _refused_as_unverified(response: Any) -> bool:
    return response.status_code == 403 and response.json()["error"]["code"] == "EMAIL_NOT_VERIFIED"


def _gated_calls(world: SignedUp) -> dict[str, Any]:
    """Every gated door, with bodies that pass decoding: the gate answers before anything else."""
    unknown = str(uuid.uuid4())
    return {
        "create user": world.call("POST", "/api/users", json={"email": f"new.{uuid.uuid4().hex[:6]}@example.com",
                                                            "name": "New Person", "role": "analyst"}),
        "invite user": world.call("POST", f"/api/users/{world.admin.user_id}/invite"),
        "start job": world.call("POST", "/api/reconciliations", json={"name": "June", "left_file_id": unknown,
                                                                      "right_file_id": unknown}),
        "start stream run": world.call("POST", f"/api/streams/{unknown}/runs"),
    }


def test_sign_up_mails_a_link_and_the_admin_is_refused_users_and_jobs_until_verified(signed_up: SignedUp) -> None:
    world = signed_up
    assert not world.me_verified()
    refused = _gated_calls(world)
    assert all(_refused_as_unverified(r) for r in refused.values()), {k: r.text for k, r in refused.items()}
    message = refused["start job"].json()["error"]["message"]
    assert "verification mail" in message and "/api/auth/email-verification/resend" in message
    # everything else works: the admin can sign in and read
    assert world.call("GET", "/api/users").status_code == 200

    # the mail leaves through the outbox (nothing sent in the sign-up request itself)
    assert world.mails_to_admin() == []
    token = _mailed_token(world)
    assert not world.me_verified()
    done = _press_the_button(world, token)
    assert done.status_code == 200 and 'id="done"' in done.text, done.text
    assert world.me_verified()  # the same access token: no new sign-in needed

    allowed = _gated_calls(world)
    assert not any(_refused_as_unverified(r) for r in allowed.values()), {k: r.text for k, r in allowed.items()}
    assert allowed["create user"].status_code == 201
    assert allowed["invite user"].status_code == 200
    assert allowed["start job"].status_code in (400, 404, 422)  # the body's files, no longer the gate
    actions = [r.event.action for r in world.container.audit_log.list_records(  # type: ignore[attr-defined]
        world.org_id, _query()).records]
    assert "user.email_verification_sent" in actions and "user.email_verified" in actions


def _query() -> Any:
    from reckai.application.ports.audit import AuditQuery

    return AuditQuery(limit=500)


def test_opening_the_link_verifies_nothing_until_the_button_is_pressed(signed_up: SignedUp) -> None:
    world = signed_up
    token = _mailed_token(world)
    for _ in range(3):  # a mail scanner or link preview fetching the link
        page = world.client.get("/verify-email", params={"token": token})
        assert page.status_code == 200 and "Confirm my e-mail address" in page.text
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        assert CSRF_COOKIE in page.cookies or CSRF_COOKIE in world.client.cookies
    assert not world.me_verified()


def test_the_form_without_its_csrf_field_is_refused(signed_up: SignedUp) -> None:
    world = signed_up
    token = _mailed_token(world)
    world.client.get("/verify-email", params={"token": token})
    refused = world.client.post("/verify-email", data={"token": token})
    assert refused.status_code == 403 and 'id="csrf-refused"' in refused.text
    assert not world.me_verified()


def test_a_link_works_once(signed_up: SignedUp) -> None:
    world = signed_up
    token = _mailed_token(world)
    page = world.client.get("/verify-email", params={"token": token})
    fields = _fields(page.text)
    assert world.client.post("/verify-email", data=fields).status_code == 200
    again = world.client.post("/verify-email", data=fields)
    assert again.status_code == 400 and 'id="invalid-link"' in again.text
    assert world.client.get("/verify-email", params={"token": token}).status_code == 400
    relax_auth_limits(world.client)
    api = world.client.post("/api/auth/email-verification/confirm", json={"token": token})
    assert api.status_code == 400 and api.json()["error"]["code"] == "INVALID_TOKEN"


def test_a_link_expires_after_72_hours(signed_up: SignedUp) -> None:
    world = signed_up
    token = _mailed_token(world)
    page = world.client.get("/verify-email", params={"token": token})
    fields = _fields(page.text)
    world.clock.advance(dt.timedelta(hours=72, seconds=1))
    expired = world.client.post("/verify-email", data=fields)
    assert expired.status_code == 400 and 'id="invalid-link"' in expired.text
    assert world.client.get("/verify-email", params={"token": token}).status_code == 400
    world.token = login(world.client, world.admin.org_code, world.admin.email, world.admin.password)  # 15 min tokens
    assert not world.me_verified()


def test_a_resend_replaces_the_earlier_link_and_the_new_one_verifies(signed_up: SignedUp) -> None:
    world = signed_up
    first = _mailed_token(world)
    resent = world.call("POST", "/api/auth/email-verification/resend")
    assert resent.status_code == 200 and resent.json()["data"]["queued"] is True
    second = _mailed_token(world)
    assert second != first
    assert world.client.get("/verify-email", params={"token": first}).status_code == 400
    relax_auth_limits(world.client)
    confirmed = world.client.post("/api/auth/email-verification/confirm", json={"token": second})
    assert confirmed.status_code == 200 and confirmed.json()["data"]["email_verified"] is True
    assert world.me_verified()
    again = world.call("POST", "/api/auth/email-verification/resend")
    assert again.json()["data"] == {"already_verified": True, "queued": False,
                                    "message": "Your e-mail address is already verified"}
    run_queued_jobs(world.container)
    assert len(world.mails_to_admin()) == 2  # nothing more for a verified address


def test_the_link_token_is_in_no_log_line_and_no_audit_row(signed_up: SignedUp,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    world = signed_up
    token = _mailed_token(world)
    caplog.set_level(logging.DEBUG)
    assert _press_the_button(world, token).status_code == 200
    assert any("/verify-email" in record.getMessage() for record in caplog.records if record.name == "reckai.http")
    for record in caplog.records:
        if not record.name.startswith(("httpx", "httpcore")):
            assert token not in record.getMessage() and token not in repr(record.__dict__)
    audit = world.container.audit_log
    rows = [record.event for key in audit.chain_keys()  # type: ignore[attr-defined]
            for record in audit.read_chain(key, 0, 100_000)]  # type: ignore[attr-defined]
    verified = [row for row in rows if row.action == "user.email_verified"]
    assert [row.request_path for row in verified] == ["/verify-email"]
    assert not [row for row in rows if token in repr(row)]
    # only its hash is stored
    stored = world.container.database.store.tables["user_tokens"]  # type: ignore[attr-defined]
    assert stored and not [row for row in stored.values() if token in repr(row)]


def test_the_mail_is_retried_by_the_outbox_and_a_failed_send_leaves_no_token() -> None:
    class DownMailer:
        def __init__(self) -> None:
            self.down, self.sent = True, []  # type: ignore[var-annotated]

        def send(self, mail: Any) -> None:
            if self.down:
                raise MailerUnavailable("smtp down")
            self.sent.append(mail)

    mailer = DownMailer()
    container = make_container(FakeClock())
    container = dataclasses.replace(container, identity=dataclasses.replace(container.identity, mailer=mailer))
    replaced = JobHandlers()
    for job in container.job_handlers:
        run = (functools.partial(send_email_verification_job, container.identity)
               if job.job_type.name == "send_email_verification" else job.run)
        replaced.register(job.job_type, run, time_limit_seconds=job.time_limit_seconds)
    container = dataclasses.replace(container, job_handlers=replaced)
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        _, admin = onboard(client, verify_email=False)
        [(actor, failed)] = run_queued_jobs(container)
        assert actor == "send_email_verification"
        assert failed.status is not None and failed.status.value == "pending"  # retried after a backoff
        assert not container.database.store.tables.get("user_tokens")  # type: ignore[attr-defined]
        mailer.down = False
        time.sleep(retry_delay_seconds(1) + 0.2)
        retried = run_queued_jobs(container)
        assert [r.status.value for _, r in retried if r.status] == ["done"]
        assert [m.to for m in mailer.sent] == [admin.email]


def test_an_operator_created_admin_and_an_invited_user_are_verified(signed_up: SignedUp) -> None:
    world = signed_up
    created = onboard_organization(
        world.container.identity, name="Operator Bank", code=f"op-{uuid.uuid4().hex[:8]}", domain=None,
        subscription_tier="standard", admin_email="op.admin@example.com", admin_name="Op Admin",
        admin_password=DEFAULT_PASSWORD, request=RequestInfo(), public=False)
    with world.container.database.unit_of_work(created.organization_id) as uow:
        admin = uow.users.get(created.admin_user_id)
    assert admin is not None and admin.is_email_verified
    run_queued_jobs(world.container)
    assert not [m for m in world.container.mailer.sent if m.to == "op.admin@example.com"]  # type: ignore[attr-defined]

    # accepting an invitation proves the address: the invited user needs no second mail
    token = _mailed_token(world)
    assert _press_the_button(world, token).status_code == 200
    email = f"invited.{uuid.uuid4().hex[:6]}@example.com"
    user = world.call("POST", "/api/users", json={"email": email, "name": "Ivy Invited", "role": "analyst"})
    assert world.call("POST", f"/api/users/{user.json()['data']['id']}/invite").status_code == 200
    sent = world.container.mailer.sent  # type: ignore[attr-defined]
    invitation = token_from_mail(str([m for m in sent if m.to == email][-1].text_body))
    relax_auth_limits(world.client)
    accepted = world.client.post("/api/auth/invitations/accept",
                                 json={"token": invitation, "password": "Meadow$Abacus-4471"})
    assert accepted.status_code == 200, accepted.text
    detail = world.call("GET", f"/api/users/{user.json()['data']['id']}").json()["data"]
    assert detail["is_email_verified"] is True
