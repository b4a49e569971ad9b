"""The pages behind mail links (issue 16 item 9): invitation and password reset as HTML forms that
call the same use cases as the JSON API, with CSRF protection, the password rules shown, errors for
people, no token in any log line or audit row, and `Referrer-Policy: no-referrer`."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from reckai.entrypoints.http.pages import CSRF_COOKIE, PAGE_CONTENT_SECURITY_POLICY
from tests.support.identity import DEFAULT_PASSWORD, bearer, login, onboard, relax_auth_limits
from tests.support.identity_flow import NEW_PASSWORD, token_from_mail
from tests.support.jobs import run_queued_jobs

WEAK_PASSWORD = "short"


@dataclass
class Invited:
    client: TestClient
    container: Container
    org_code: str
    email: str
    token: str
    link: str


def _last_mail_to(container: Container, address: str) -> str:
    sent = container.mailer.sent  # type: ignore[attr-defined]
    return str([mail for mail in sent if mail.to.lower() == address.lower()][-1].text_body)


@pytest.fixture
def invited() -> Iterator[Invited]:
    container = bootstrap_in_memory()
    with TestClient(create_app(container)) as client:
        _, admin = onboard(client)
        admin_token = login(client, admin.org_code, admin.email, admin.password)
        email = f"new.analyst.{admin.org_code}@example.com"
        created = client.post("/api/users", json={"email": email, "name": "Nora Analyst", "role": "analyst"},
                              headers=bearer(admin_token))
        assert created.status_code == 201, created.text
        assert client.post(f"/api/users/{created.json()['data']['id']}/invite",
                           headers=bearer(admin_token)).status_code == 200
        body = _last_mail_to(container, email)
        link = re.search(r"(\S+/accept-invitation\?token=\S+)", body)
        assert link, body
        yield Invited(client, container, admin.org_code, email, token_from_mail(body), link.group(1))


def _form_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))


def _open(client: TestClient, path: str, token: str) -> tuple[Any, dict[str, str]]:
    page = client.get(path, params={"token": token})
    return page, _form_fields(page.text)


def _submit(client: TestClient, path: str, fields: dict[str, str], password: str,
            confirmation: str | None = None) -> Any:
    return client.post(path, data={**fields, "password": password,
                                   "password_confirmation": password if confirmation is None else confirmation})


def _can_sign_in(client: TestClient, org_code: str, email: str, password: str) -> bool:
    relax_auth_limits(client)
    answer = client.post("/api/auth/login", json={"organization_code": org_code, "email": email, "password": password})
    return answer.status_code == 200 and answer.json()["data"]["status"] == "authenticated"


def test_the_invitation_mail_links_to_a_page_that_shows_the_password_rules(invited: Invited) -> None:
    assert invited.link.startswith("http://127.0.0.1:8000/accept-invitation?token=")
    page, fields = _open(invited.client, "/accept-invitation", invited.token)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["content-security-policy"] == PAGE_CONTENT_SECURITY_POLICY
    assert "script-src" not in PAGE_CONTENT_SECURITY_POLICY and "default-src 'none'" in PAGE_CONTENT_SECURITY_POLICY
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text
    assert "At least 8 and at most 128 characters" in page.text and "At least one digit." in page.text
    assert fields["token"] == invited.token and fields["_csrf_token"]
    cookie = next(value for name, value in page.headers.multi_items()
                  if name == "set-cookie" and value.startswith(f"{CSRF_COOKIE}="))
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()


def test_accepting_through_the_page_sets_the_password_the_api_signs_in_with(invited: Invited) -> None:
    _, fields = _open(invited.client, "/accept-invitation", invited.token)
    done = _submit(invited.client, "/accept-invitation", fields, NEW_PASSWORD)
    assert done.status_code == 200 and 'id="done"' in done.text, done.text
    assert _can_sign_in(invited.client, invited.org_code, invited.email, NEW_PASSWORD)
    # the link worked once, on the page as on the API
    again = _submit(invited.client, "/accept-invitation", fields, NEW_PASSWORD)
    assert again.status_code == 400 and 'id="invalid-link"' in again.text
    api = invited.client.post("/api/auth/invitations/accept", json={"token": invited.token, "password": NEW_PASSWORD})
    assert api.status_code == 400 and api.json()["error"]["code"] == "INVALID_TOKEN"


@pytest.mark.parametrize("forged", ["no field", "no cookie", "wrong field"])
def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(invited: Invited, forged: str) -> None:
    _, fields = _open(invited.client, "/accept-invitation", invited.token)
    if forged == "no field":
        del fields["_csrf_token"]
    elif forged == "wrong field":
        fields["_csrf_token"] = "0" * 128
    else:
        invited.client.cookies.clear()
    refused = _submit(invited.client, "/accept-invitation", fields, NEW_PASSWORD)
    assert refused.status_code == 403 and 'id="csrf-refused"' in refused.text
    assert refused.headers["content-type"].startswith("text/html")
    assert not _can_sign_in(invited.client, invited.org_code, invited.email, NEW_PASSWORD)
    # the link is still unused: the real form goes through
    _, fresh = _open(invited.client, "/accept-invitation", invited.token)
    assert _submit(invited.client, "/accept-invitation", fresh, NEW_PASSWORD).status_code == 200


def test_a_weak_password_is_shown_back_with_every_broken_rule_and_the_link_stays_usable(invited: Invited) -> None:
    _, fields = _open(invited.client, "/accept-invitation", invited.token)
    weak = _submit(invited.client, "/accept-invitation", fields, WEAK_PASSWORD)
    assert weak.status_code == 422
    assert 'role="alert"' in weak.text
    assert "The password must be at least 8 characters long." in weak.text
    assert "The password must contain a digit." in weak.text
    assert WEAK_PASSWORD not in weak.text  # the password is never echoed
    assert _form_fields(weak.text)["token"] == invited.token
    differ = _submit(invited.client, "/accept-invitation", fields, NEW_PASSWORD, confirmation=NEW_PASSWORD + "x")
    assert differ.status_code == 422 and "The two passwords are not the same." in differ.text
    assert _submit(invited.client, "/accept-invitation", fields, NEW_PASSWORD).status_code == 200


@pytest.mark.parametrize("path", ["/accept-invitation", "/reset-password"])
@pytest.mark.parametrize("token", ["", "not-a-real-token"])
def test_a_bad_link_is_explained_on_the_page(invited: Invited, path: str, token: str) -> None:
    page = invited.client.get(path, params={"token": token} if token else None)
    assert page.status_code == 400 and 'id="invalid-link"' in page.text
    assert "<form" not in page.text
    _, fields = _open(invited.client, "/accept-invitation", invited.token)
    posted = _submit(invited.client, path, {**fields, "token": token}, NEW_PASSWORD)
    assert posted.status_code == 400 and 'id="invalid-link"' in posted.text


def test_the_invitation_token_from_the_mail_is_scoped_to_its_page(invited: Invited) -> None:
    # an invitation token is no reset token: one purpose per link
    page = invited.client.get("/reset-password", params={"token": invited.token})
    assert page.status_code == 400 and 'id="invalid-link"' in page.text


def test_a_password_reset_through_the_page_ends_sessions_and_the_new_password_signs_in() -> None:
    container = bootstrap_in_memory()
    with TestClient(create_app(container)) as client:
        _, admin = onboard(client)
        assert client.post("/api/auth/password/reset",
                           json={"organization_code": admin.org_code, "email": admin.email}).status_code == 202
        run_queued_jobs(container)
        body = _last_mail_to(container, admin.email)
        assert "/reset-password?token=" in body
        token = token_from_mail(body)
        page, fields = _open(client, "/reset-password", token)
        assert page.status_code == 200 and "At least one special character" in page.text
        weak = _submit(client, "/reset-password", fields, WEAK_PASSWORD)
        assert weak.status_code == 422 and 'role="alert"' in weak.text
        reused = _submit(client, "/reset-password", fields, DEFAULT_PASSWORD)  # the history rule, via the use case
        assert reused.status_code == 422 and "must differ from your last 5 passwords" in reused.text
        done = _submit(client, "/reset-password", fields, NEW_PASSWORD)
        assert done.status_code == 200 and 'id="done"' in done.text
        assert _can_sign_in(client, admin.org_code, admin.email, NEW_PASSWORD)
        assert not _can_sign_in(client, admin.org_code, admin.email, DEFAULT_PASSWORD)


def test_the_link_token_is_in_no_log_line_and_no_audit_row(invited: Invited, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _, fields = _open(invited.client, "/accept-invitation", invited.token)
    _submit(invited.client, "/accept-invitation", fields, WEAK_PASSWORD)
    assert _submit(invited.client, "/accept-invitation", fields, NEW_PASSWORD).status_code == 200
    request_lines = [record for record in caplog.records if record.name == "reckai.http"]
    assert any("/accept-invitation" in record.getMessage() for record in request_lines)
    server_records = [record for record in caplog.records if not record.name.startswith(("httpx", "httpcore"))]
    for record in server_records:  # httpx's lines are the test client's own, not the server's
        assert invited.token not in record.getMessage()
        assert invited.token not in repr(record.__dict__)
    audit = invited.container.audit_log
    paths = [record.event.request_path or "" for key in audit.chain_keys()  # type: ignore[attr-defined]
             for record in audit.read_chain(key, 0, 100_000)]  # type: ignore[attr-defined]
    assert "/accept-invitation" in paths  # the page's acceptance is audited like the API's
    assert not [path for path in paths if invited.token in path]
