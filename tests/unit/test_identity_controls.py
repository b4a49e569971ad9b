"""Issue 12, items 5-7 over HTTP with the in-memory adapters (docs/identity.md): revoking a session
ends its access tokens at once; make run's secrets are not the published ones; password reset does
the same work for every address; sign-in lockout per account and source with an account-wide
delay; names that reach mail headers or log lines refuse line breaks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.application.context import RequestInfo
from reckai.application.identity.errors import InvalidCredentials
from reckai.application.identity.login import login as login_case
from reckai.application.outbox import retry_delay_seconds
from reckai.application.ports.audit import AuditQuery
from reckai.application.ports.mail import MailerUnavailable
from reckai.application.ports.rate_limit import TIERS, auth_account_subject
from reckai.bootstrap import Container
from reckai.domain.identity.entities import LINE_BREAK_MESSAGE
from reckai.domain.identity.password_policy import (
    ACCOUNT_DELAY_CAP,
    MAX_TRACKED_SOURCES,
    SignInState,
    account_delay,
    record_sign_in_failure,
    sources_from_json,
    sources_to_json,
)
from reckai.domain.identity.tokens import hash_refresh_token
from reckai.entrypoints.http.app import create_app
from reckai.settings import Settings, SettingsError
from tests.support.identity import DEFAULT_PASSWORD, bearer, login_tokens, onboard, relax_auth_limits
from tests.support.identity_flow import FakeClock
from tests.support.jobs import run_queued_jobs
from tests.unit.test_identity_usecases import make_container


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def container(clock: FakeClock) -> Container:
    return make_container(clock)


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), raise_server_exceptions=False) as test_client:
        yield test_client


# --- item 6: revoking a session ends its access tokens at once ------------------------------------


def _me(client: TestClient, token: str) -> int:
    return client.get("/api/auth/me", headers=bearer(token)).status_code


def test_deleting_a_session_ends_its_access_tokens_at_once(client: TestClient) -> None:
    _, admin = onboard(client)
    first = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    second = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    assert _me(client, first["access_token"]) == 200 and _me(client, second["access_token"]) == 200

    ended = client.delete(f"/api/sessions/{first['session_id']}", headers=bearer(second["access_token"]))
    assert ended.status_code == 200, ended.text
    refused = client.get("/api/auth/me", headers=bearer(first["access_token"]))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHENTICATED"
    assert _me(client, second["access_token"]) == 200  # the other session lives on


def test_a_session_ended_by_its_owner_ends_its_own_access_token(client: TestClient) -> None:
    _, admin = onboard(client)
    tokens = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    assert client.delete(f"/api/sessions/{tokens['session_id']}",
                         headers=bearer(tokens["access_token"])).status_code == 200
    assert _me(client, tokens["access_token"]) == 401


def test_refresh_token_reuse_ends_every_access_token_of_the_family(client: TestClient, clock: FakeClock) -> None:
    _, admin = onboard(client)
    first = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    rotated = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["data"]
    assert second["session_id"] == first["session_id"]
    other = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    assert _me(client, first["access_token"]) == 200 and _me(client, second["access_token"]) == 200

    clock.advance(dt.timedelta(seconds=16))  # past the grace window: reuse means theft
    reused = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401, reused.text
    assert _me(client, first["access_token"]) == 401
    assert _me(client, second["access_token"]) == 401
    assert _me(client, other["access_token"]) == 200  # another login is another session


def test_logout_with_the_refresh_token_ends_the_sessions_other_access_tokens(client: TestClient) -> None:
    _, admin = onboard(client)
    first = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    second = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()["data"]
    out = client.post("/api/auth/logout", json={"refresh_token": second["refresh_token"]},
                      headers=bearer(second["access_token"]))
    assert out.status_code == 200, out.text
    assert _me(client, first["access_token"]) == 401  # not blacklisted itself: its session ended


def test_an_access_token_past_its_sessions_absolute_end_is_refused(client: TestClient, container: Container,
                                                                   clock: FakeClock) -> None:
    _, admin = onboard(client)
    tokens = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    with container.database.unit_of_work(None) as uow:
        found = uow.sessions.find_by_token_hash(hash_refresh_token(tokens["refresh_token"]))
    assert found is not None and found.family_id is not None
    with container.database.unit_of_work(found.organization_id) as uow:
        family = uow.sessions.get_family(found.family_id)
    assert family is not None
    refresh_token = tokens["refresh_token"]
    for moment in (*(clock() + dt.timedelta(days=6 * n) for n in range(1, 5)),
                   family.absolute_expires_at - dt.timedelta(minutes=1)):
        clock.current = moment
        fresh = client.post("/api/auth/refresh", json={"refresh_token": refresh_token})
        assert fresh.status_code == 200, fresh.text
        refresh_token = fresh.json()["data"]["refresh_token"]
    access_token = fresh.json()["data"]["access_token"]
    assert _me(client, access_token) == 200
    clock.advance(dt.timedelta(minutes=1))  # the token has 14 minutes left, its session none
    assert _me(client, access_token) == 401


# --- item 7: password reset does the same work for every address ------------------------------------


class CountingHasher:
    """The container's hasher, counting every call (hash, verify, verify_dummy, needs_rehash)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return attribute(*args, **kwargs)

        return counted


def _stored_reset_tokens(container: Container) -> int:
    return len(container.database.store.tables.get("user_tokens", {}))  # type: ignore[attr-defined]


def _reset_work(container: Container, client: TestClient, hasher: CountingHasher, org_code: str,
                email: str) -> dict[str, Any]:
    """What one POST /api/auth/password/reset did, in the request itself."""
    outbox_before = len(container.job_outbox.records())  # type: ignore[attr-defined]
    mails_before = len(container.mailer.sent)  # type: ignore[attr-defined]
    calls_before = hasher.calls
    tokens_before = _stored_reset_tokens(container)
    relax_auth_limits(client, org_code, email)
    response = client.post("/api/auth/password/reset", json={"organization_code": org_code, "email": email})
    records = container.job_outbox.records()  # type: ignore[attr-defined]
    tokens_after = _stored_reset_tokens(container)
    return {"status": response.status_code, "body": response.json(),
            "outbox": [(r.actor_name, r.queue.value) for r in records[outbox_before:]],
            "hasher_calls": hasher.calls - calls_before, "mails": len(container.mailer.sent) - mails_before,  # type: ignore[attr-defined]
            "tokens": tokens_after - tokens_before}


def test_password_reset_does_the_same_work_for_known_and_unknown_addresses(clock: FakeClock) -> None:
    base = make_container(clock)
    hasher = CountingHasher(base.password_hasher)
    container = dataclasses.replace(base, identity=dataclasses.replace(base.identity, password_hasher=hasher))
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        _, admin = onboard(client)
        run_queued_jobs(container)  # the sign-up's verification job (onboard verified the admin: no mail)
        known = _reset_work(container, client, hasher, admin.org_code, admin.email)
        unknown = _reset_work(container, client, hasher, admin.org_code, "nobody@example.com")
        other_org = _reset_work(container, client, hasher, "no-such-org", admin.email)
        assert known == unknown == other_org == {
            "status": 202, "body": known["body"], "outbox": [("send_password_reset", "high")],
            "hasher_calls": 0, "mails": 0, "tokens": 0}

        # the worker sends the one mail, to the known address only, and audits both
        done = run_queued_jobs(container)
        assert [(actor, result.status.value if result.status else None) for actor, result in done] == [
            ("send_password_reset", "done")] * 3
        mails = [m for m in container.mailer.sent if "Reset your ReckAI password" in m.subject]  # type: ignore[attr-defined]
        assert [m.to for m in mails] == [admin.email]
        assert "/reset-password?token=" in mails[0].text_body


def test_a_reset_mail_that_fails_is_retried_by_the_outbox_and_leaves_no_token(clock: FakeClock) -> None:
    class DownMailer:
        def __init__(self) -> None:
            self.down, self.sent = True, []  # type: ignore[var-annotated]

        def send(self, mail: Any) -> None:
            if self.down:
                raise MailerUnavailable("smtp down")
            self.sent.append(mail)

    mailer = DownMailer()
    container = make_container(clock)
    container = dataclasses.replace(container, identity=dataclasses.replace(container.identity, mailer=mailer))
    handlers = container.job_handlers
    # the registered job took the container's identity services at bootstrap: rebuild it over ours
    from reckai.application.identity.passwords import send_password_reset_job
    from reckai.application.job_handlers import JobHandlers

    replaced = JobHandlers()
    for job in handlers:
        run = (functools.partial(send_password_reset_job, container.identity)
               if job.job_type.name == "send_password_reset" else job.run)
        replaced.register(job.job_type, run, time_limit_seconds=job.time_limit_seconds)
    container = dataclasses.replace(container, job_handlers=replaced)
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        _, admin = onboard(client)
        run_queued_jobs(container)  # the sign-up's verification job (onboard verified the admin: no mail)
        relax_auth_limits(client, admin.org_code, admin.email)
        assert client.post("/api/auth/password/reset", json={"organization_code": admin.org_code,
                                                              "email": admin.email}).status_code == 202
        [(_, failed)] = run_queued_jobs(container)
        assert failed.status is not None and failed.status.value == "pending"  # retried after a backoff
        assert _stored_reset_tokens(container) == 0
        mailer.down = False
        time.sleep(retry_delay_seconds(1) + 0.2)  # the outbox's backoff runs on the store's own clock
        retried = run_queued_jobs(container)
        assert [r.status.value for _, r in retried if r.status] == ["done"]
        assert [m.to for m in mailer.sent] == [admin.email]


# --- item 7: the per-IP sign-in limit is a setting ----------------------------------------------------


def test_six_people_behind_one_address_sign_in_within_a_minute(client: TestClient) -> None:
    _, admin = onboard(client)
    admin_token = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]["access_token"]
    people = [admin.email]
    for n in range(5):
        email = f"colleague{n}@example.com"
        created = client.post("/api/users", json={"email": email, "name": "A Colleague", "role": "auditor",
                                                  "password": DEFAULT_PASSWORD}, headers=bearer(admin_token))
        assert created.status_code == 201, created.text
        people.append(email)
    relax_auth_limits(client)
    answers = [client.post("/api/auth/login", json={"organization_code": admin.org_code, "email": email,
                                                    "password": DEFAULT_PASSWORD}) for email in people]
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers if a.status_code != 200]


def test_the_per_ip_limit_comes_from_the_settings(clock: FakeClock, tmp_path: Any) -> None:
    settings = Settings.from_env({"RECKAI_MODE": "embedded", "RECKAI_VAR_DIR": str(tmp_path),
                                  "AUTH_IP_LIMIT_PER_MINUTE": "7"})
    container = make_container(clock, settings)
    assert container.identity.tiers["auth_ip"].limit == 7
    assert container.identity.tiers["auth_account"].limit == 5  # the spec's, per account
    assert Settings().operator.values == {}  # no operator value: the registry's default, 30
    assert make_container(clock, Settings()).identity.tiers["auth_ip"].limit == 30
    with pytest.raises(SettingsError, match="AUTH_IP_LIMIT_PER_MINUTE"):
        Settings.from_env({"RECKAI_MODE": "embedded", "RECKAI_VAR_DIR": str(tmp_path),
                           "AUTH_IP_LIMIT_PER_MINUTE": "0"})
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        answers = [client.post("/api/auth/login", json={"organization_code": "x", "email": f"u{i}@example.com",
                                                        "password": "pw"}) for i in range(8)]
    assert [a.status_code for a in answers] == [401] * 7 + [429]


# --- item 7: names that reach mail headers or log lines are one line -----------------------------------

BROKEN_NAMES = ["Ada\r\nBcc: victim@example.com", "Ada\nAdmin", "Ada\rAdmin", "Ada\u2028Admin"]


def _line_break_error(response: Any, field: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert {"field": field, "message": LINE_BREAK_MESSAGE} in error["details"], error


@pytest.mark.parametrize("name", BROKEN_NAMES)
def test_sign_up_refuses_a_line_break_in_either_name(client: TestClient, name: str) -> None:
    for field, body in (("name", {"name": name, "admin_name": "Ada Admin"}),
                        ("admin_name", {"name": "Acme", "admin_name": name})):
        code = f"crlf-{uuid.uuid4().hex[:8]}"
        relax_auth_limits(client)
        _line_break_error(client.post("/api/organizations", json={
            **body, "code": code, "admin_email": f"{code}@example.com", "admin_password": DEFAULT_PASSWORD}), field)


@pytest.mark.parametrize("name", BROKEN_NAMES)
def test_user_create_update_and_settings_refuse_a_line_break_in_a_name(client: TestClient, name: str) -> None:
    _, admin = onboard(client)
    token = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]["access_token"]
    _line_break_error(client.post("/api/users", json={"email": f"u{uuid.uuid4().hex[:6]}@example.com",
                                                      "name": name, "role": "auditor"}, headers=bearer(token)), "name")
    _line_break_error(client.put(f"/api/users/{admin.user_id}", json={"name": name}, headers=bearer(token)), "name")
    _line_break_error(client.put("/api/settings", json={"name": name}, headers=bearer(token)), "name")
    _line_break_error(client.post("/api/approvals", json={
        "type": "user_onboarding", "title": "t", "description": "d",
        "metadata": {"email": "new@example.com", "name": name, "role": "auditor"}}, headers=bearer(token)),
        "metadata.name")
    users = client.get("/api/users", headers=bearer(token)).json()["data"]
    assert [u["name"] for u in users] == ["Ada Admin"]  # nothing created or changed
    assert client.put(f"/api/users/{admin.user_id}", json={"name": "Ada Lovelace"},
                      headers=bearer(token)).status_code == 200


# --- item 7: lockout per account and source, account-wide progressive delay ---------------------------


def _sign_in(container: Container, org_code: str, email: str, password: str, ip: str) -> str:
    """One sign-in from `ip` through the use case (the test client has no address): "ok" or the
    failure's audit reason. The per-minute rate limits are not what is tested here."""
    container.rate_limiter.reset(TIERS["auth_ip"], ip)
    container.rate_limiter.reset(TIERS["auth_account"], auth_account_subject(org_code, email))
    try:
        login_case(container.identity, organization_code=org_code, email=email, password=password,
                   request=RequestInfo(ip_address=ip, user_agent="pytest"))
    except InvalidCredentials as refused:
        assert str(refused) == InvalidCredentials("x").args[0]  # one generic answer whatever the reason
        return str(refused.reason)
    return "ok"


def test_five_failures_lock_out_that_source_only(client: TestClient, container: Container,
                                                 clock: FakeClock) -> None:
    org_id, admin = onboard(client)
    attacker, owner = "203.0.113.9", "198.51.100.4"
    tries = [_sign_in(container, admin.org_code, admin.email, "Wrong!Pass-1", attacker) for _ in range(5)]
    assert tries == ["bad_password"] * 5
    clock.advance(dt.timedelta(seconds=2))  # past the account-wide delay the fifth failure started
    assert _sign_in(container, admin.org_code, admin.email, admin.password, attacker) == "locked"
    assert _sign_in(container, admin.org_code, admin.email, admin.password, owner) == "ok"  # not locked out
    assert _sign_in(container, admin.org_code, admin.email, admin.password, attacker) == "locked"  # still
    clock.advance(dt.timedelta(minutes=30))
    assert _sign_in(container, admin.org_code, admin.email, admin.password, attacker) == "ok"

    locked = [r for r in container.audit_log.list_records(org_id, AuditQuery(limit=500)).records
              if r.event.action == "auth.account.locked"]
    assert len(locked) == 1 and locked[0].event.metadata["source"] == attacker
    assert locked[0].event.ip_address == attacker


def _failures(container: Container, org_id: uuid.UUID, user_id: uuid.UUID) -> tuple[int, dict[str, Any]]:
    with container.database.unit_of_work(org_id) as uow:
        user = uow.users.get(user_id)
    assert user is not None
    return user.failed_login_attempts, user.login_sources


def test_failures_from_many_sources_slow_the_account_down_without_locking_it(
        client: TestClient, container: Container, clock: FakeClock) -> None:
    org_id, admin = onboard(client)
    owner = "198.51.100.4"
    spray = iter(f"192.0.2.{n}" for n in range(1, 100))  # a new address for every guess

    def guess() -> str:
        return _sign_in(container, admin.org_code, admin.email, "Wrong!Pass-1", next(spray))

    assert [guess() for _ in range(4)] == ["bad_password"] * 4
    assert _sign_in(container, admin.org_code, admin.email, admin.password, owner) == "ok"  # no delay below 5
    assert _failures(container, org_id, admin.user_id)[0] == 0  # a success ends the series

    assert [guess() for _ in range(5)] == ["bad_password"] * 5  # the 5th consecutive failure: 1 s
    assert _sign_in(container, admin.org_code, admin.email, admin.password, owner) == "delayed"
    for expected in (1, 2, 4, 8):  # each failure after the 5th doubles the wait
        waited = dt.timedelta(0)
        while (answer := guess()) == "delayed":  # refused unchecked: neither counted nor extending it
            clock.advance(dt.timedelta(milliseconds=250))
            waited += dt.timedelta(milliseconds=250)
        assert answer == "bad_password" and waited == dt.timedelta(seconds=expected)
    assert _failures(container, org_id, admin.user_id)[0] == 9
    assert _sign_in(container, admin.org_code, admin.email, admin.password, owner) == "delayed"
    clock.advance(dt.timedelta(seconds=16))
    assert _sign_in(container, admin.org_code, admin.email, admin.password, owner) == "ok"
    count, sources = _failures(container, org_id, admin.user_id)
    assert count == 0 and all(entry["locked_until"] is None for entry in sources.values())  # no source locked
    assert account_delay(5) == dt.timedelta(seconds=1) and account_delay(7) == dt.timedelta(seconds=4)
    assert account_delay(4) is None and account_delay(5 + 30) == ACCOUNT_DELAY_CAP == dt.timedelta(seconds=60)


def test_the_sources_a_user_row_tracks_are_bounded_and_forgotten_after_the_window() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    state = SignInState()
    for n in range(MAX_TRACKED_SOURCES + 50):
        state = record_sign_in_failure(state, f"10.0.{n // 256}.{n % 256}", now + dt.timedelta(seconds=n)).state
    assert len(state.sources) == MAX_TRACKED_SOURCES
    assert "10.0.0.0" not in state.sources  # the oldest went first
    later = record_sign_in_failure(state, "10.9.9.9", now + dt.timedelta(minutes=40)).state
    assert list(later.sources) == ["10.9.9.9"]  # failures older than the 30-minute window are forgotten
    assert sources_from_json(sources_to_json(later.sources)) == later.sources
