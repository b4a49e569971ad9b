"""The whole identity flow over HTTP against real PostgreSQL (row-level security, SECURITY
DEFINER look-ups), Redis (rate limits, blacklist) and SMTP (aiosmtpd): onboard -> invite ->
accept -> login -> MFA enrol -> two-step login -> refresh rotation -> reuse detection -> logout ->
lockout -> expiry -> reset. Plus the races that only a real database shows."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.adapters.security.jwt_tokens import JwtKeyRing, JwtTokenService
from reckai.application.context import RequestInfo
from reckai.application.errors import QuotaExceeded
from reckai.application.identity import users as user_cases
from reckai.application.identity.login import refresh_session
from reckai.application.ports.audit import AuditQuery
from reckai.bootstrap import Container, bootstrap
from reckai.domain.identity.permissions import permissions_for
from reckai.domain.identity.principal import Principal
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, MailerSettings, Mode, RedisSettings, Settings, StorageSettings
from tests.support.identity import bearer, login_tokens, onboard, relax_auth_limits
from tests.support.identity_flow import FakeClock, run_whole_flow
from tests.support.jobs import run_queued_jobs

pytestmark = pytest.mark.integration


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def container(pg_database: Any, redis_test_url: str, smtp_server: Any, tmp_path: Path,
              clock: FakeClock) -> Iterator[Container]:
    settings = Settings(
        mode=Mode.EMBEDDED,
        database=DatabaseSettings(url=pg_database.app_url, pool_size=4),
        redis=RedisSettings(url=redis_test_url),
        storage=StorageSettings(backend="filesystem", filesystem_root=tmp_path / "storage"),
        mailer=MailerSettings(backend="smtp", smtp_host=smtp_server.host, smtp_port=smtp_server.port),
    )
    security = settings.security
    ring = JwtKeyRing({security.jwt_key_id: security.jwt_secret}, security.jwt_key_id)
    built = bootstrap(settings, clock=clock, token_service=JwtTokenService(ring, clock=clock.timestamp))
    try:
        yield built
    finally:
        built.close()


def _body(message: Any) -> str:
    return str(message.get_body(preferencelist=("plain",)).get_content())


def test_whole_flow_against_postgres_redis_and_smtp(container: Container, smtp_server: Any, clock: FakeClock) -> None:
    def last_mail_to(address: str) -> str:
        matching = [m for m in smtp_server.messages if m["To"].lower() == address.lower()]
        assert matching, [m["To"] for m in smtp_server.messages]
        return _body(matching[-1])

    def actions(org_id: Any) -> list[str]:
        page = container.audit_log.list_records(org_id, AuditQuery(limit=500))
        return [record.event.action for record in page.records]

    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        run_whole_flow(client, clock, last_mail_to, actions)


def test_max_users_is_reserved_under_a_row_lock(container: Container) -> None:
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        org_id, admin = onboard(client)
    services = container.identity
    principal = Principal(admin.user_id, org_id, "admin", permissions_for("admin"), None, "jti", admin.email, True)
    for i in range(8):  # 1 admin + 8 = 9 of 10
        user_cases.create_user(services, principal, email=f"u{i}@example.com", name="Some One", role="analyst",
                               password=None, request=RequestInfo())
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def create(n: int) -> None:
        barrier.wait()
        try:
            user_cases.create_user(services, principal, email=f"race{n}@example.com", name="Racer", role="auditor",
                                   password=None, request=RequestInfo())
            outcomes.append("created")
        except QuotaExceeded:
            outcomes.append("quota")

    threads = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "quota", "quota", "quota"]
    with container.database.unit_of_work(org_id) as uow:
        assert uow.users.count(is_active=True) == 10


def test_concurrent_refreshes_of_one_token_get_the_same_successor(container: Container) -> None:
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        _, admin = onboard(client)
        tokens = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    services = container.identity
    results: list[str] = []
    barrier = threading.Barrier(3)

    def refresh() -> None:
        barrier.wait()
        try:
            results.append(refresh_session(services, refresh_token=tokens["refresh_token"],
                                           request=RequestInfo(ip_address="10.0.0.1", user_agent="testclient")).refresh_token)
        except Exception as exc:  # noqa: BLE001 - recorded and asserted below
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=refresh) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(results[0]) > 30, results


def test_rate_limit_auth_per_ip_is_shared_through_redis(container: Container) -> None:
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        limit = container.identity.tiers["auth_ip"].limit
        answers = [client.post("/api/auth/login", json={"organization_code": "nope", "email": f"x{i}@example.com",
                                                        "password": "whatever"}) for i in range(limit + 1)]
    assert [a.status_code for a in answers] == [401] * limit + [429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert answers[-1].json()["error"]["code"] == "RATE_LIMITED"


def test_blacklisted_token_is_refused_by_another_app_instance(container: Container) -> None:
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        _, admin = onboard(client)
        tokens = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
        assert client.post("/api/auth/logout", headers=bearer(tokens["access_token"])).status_code == 200
    with TestClient(create_app(container), raise_server_exceptions=False) as other:
        refused = other.get("/api/auth/me", headers=bearer(tokens["access_token"]))
    assert refused.status_code == 401
    assert str(uuid.UUID(admin.user_id.hex)) == str(admin.user_id)


def test_ending_a_session_or_reusing_its_refresh_token_ends_its_access_tokens_on_postgres(
        container: Container, clock: FakeClock) -> None:
    """Issue 12 item 6: the guard reads the token's session (refresh-token family) in PostgreSQL, so
    a revocation is seen by every app instance at once."""
    from datetime import timedelta

    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        _, admin = onboard(client)
        ended = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
        stolen = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
        kept = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
        rotated = client.post("/api/auth/refresh", json={"refresh_token": stolen["refresh_token"]}).json()["data"]
        deleted = client.delete(f"/api/sessions/{ended['session_id']}", headers=bearer(kept["access_token"]))
        assert deleted.status_code == 200, deleted.text
        clock.advance(timedelta(seconds=16))
        assert client.post("/api/auth/refresh", json={"refresh_token": stolen["refresh_token"]}).status_code == 401
    with TestClient(create_app(container), raise_server_exceptions=False) as other:
        statuses = {name: other.get("/api/auth/me", headers=bearer(tokens["access_token"])).status_code
                    for name, tokens in (("ended", ended), ("stolen", stolen), ("rotated", rotated), ("kept", kept))}
    assert statuses == {"ended": 401, "stolen": 401, "rotated": 401, "kept": 200}


def test_lockout_is_per_source_and_the_sources_are_stored_on_postgres(container: Container, clock: FakeClock) -> None:
    """Issue 12 item 7: users.login_sources (migration 0013) round-trips through PostgreSQL."""
    from datetime import timedelta

    from tests.unit.test_identity_controls import _failures, _sign_in

    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        org_id, admin = onboard(client)
    attacker, owner = "203.0.113.9", "198.51.100.4"
    assert [_sign_in(container, admin.org_code, admin.email, "Wrong!Pass-1", attacker)
            for _ in range(5)] == ["bad_password"] * 5
    count, sources = _failures(container, org_id, admin.user_id)
    assert count == 5 and sources[attacker]["failed_attempts"] == 5 and sources[attacker]["locked_until"]
    clock.advance(timedelta(seconds=2))
    assert _sign_in(container, admin.org_code, admin.email, admin.password, attacker) == "locked"
    assert _sign_in(container, admin.org_code, admin.email, admin.password, owner) == "ok"
    count, sources = _failures(container, org_id, admin.user_id)
    assert count == 0 and list(sources) == [attacker]


def test_the_invitation_page_over_real_mail_sets_the_password_and_leaves_no_token_in_audit_rows(
        container: Container, smtp_server: Any) -> None:
    """The page behind the invitation mail (issue 16 item 9) on PostgreSQL: the link from the real
    SMTP message opens the form, the form sets the password through the same use case, and the
    stored audit rows name the page's path without the token."""
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        org_id, admin = onboard(client)
        admin_token = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]["access_token"]
        email = f"page.{uuid.uuid4().hex[:8]}@example.com"
        created = client.post("/api/users", json={"email": email, "name": "Paula Page", "role": "analyst"},
                              headers=bearer(admin_token))
        assert client.post(f"/api/users/{created.json()['data']['id']}/invite",
                           headers=bearer(admin_token)).status_code == 200
        mail = _body([m for m in smtp_server.messages if m["To"].lower() == email][-1])
        link = re.search(r"http://\S+/accept-invitation\?token=([A-Za-z0-9_\-]+)", mail)
        assert link, mail
        token = link.group(1)
        page = client.get("/accept-invitation", params={"token": token})
        assert page.status_code == 200 and "At least one digit." in page.text
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
        password = "Meadow$Abacus-4471"
        done = client.post("/accept-invitation", data={**fields, "password": password,
                                                       "password_confirmation": password})
        assert done.status_code == 200 and 'id="done"' in done.text, done.text
        assert login_tokens(client, admin.org_code, email, password)["status"] == "authenticated"
    records = container.audit_log.list_records(org_id, AuditQuery(limit=500)).records
    accepted = [r for r in records if r.event.action == "user.invitation_accepted"]
    assert [r.event.request_path for r in accepted] == ["/accept-invitation"]
    assert not [r for r in records if token in (r.event.request_path or "")]


def test_email_verification_over_real_mail_on_postgres_gates_users_and_jobs(
        container: Container, smtp_server: Any, clock: FakeClock) -> None:
    """Issue 17 item 8 on PostgreSQL (RLS, the SECURITY DEFINER token look-up) and SMTP: a sign-up's
    admin is refused users and jobs, the outbox mails the link, the page verifies, the admin invites;
    the link then works no more, and a later link expires."""
    from datetime import timedelta

    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        org_id, admin = onboard(client, verify_email=False)
        token = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]["access_token"]
        unknown = str(uuid.uuid4())
        start = client.post("/api/reconciliations", headers=bearer(token),
                            json={"name": "June", "left_file_id": unknown, "right_file_id": unknown})
        assert start.status_code == 403 and start.json()["error"]["code"] == "EMAIL_NOT_VERIFIED"
        invite = client.post(f"/api/users/{admin.user_id}/invite", headers=bearer(token))
        assert invite.status_code == 403 and invite.json()["error"]["code"] == "EMAIL_NOT_VERIFIED"

        # (earlier tests' sign-ups in this database queued theirs too)
        assert "send_email_verification" in {actor for actor, _ in run_queued_jobs(container)}
        mail = _body([m for m in smtp_server.messages if m["To"].lower() == admin.email.lower()][-1])
        link = re.search(r"http://\S+/verify-email\?token=([A-Za-z0-9_\-]+)", mail)
        assert link, mail
        page = client.get("/verify-email", params={"token": link.group(1)})
        assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
        done = client.post("/verify-email", data=fields)
        assert done.status_code == 200 and 'id="done"' in done.text, done.text
        assert client.post("/verify-email", data=fields).status_code == 400  # single use

        email = f"verified.{uuid.uuid4().hex[:8]}@example.com"
        created = client.post("/api/users", json={"email": email, "name": "Vera Verified", "role": "analyst"},
                              headers=bearer(token))
        assert created.status_code == 201, created.text
        assert client.post(f"/api/users/{created.json()['data']['id']}/invite",
                           headers=bearer(token)).status_code == 200
        with container.database.unit_of_work(org_id) as uow:
            stored = uow.users.get(admin.user_id)
        assert stored is not None and stored.is_email_verified

        # a second sign-up's link, past its 72 hours, is refused
        _, late = onboard(client, verify_email=False)
        run_queued_jobs(container)
        late_mail = _body([m for m in smtp_server.messages if m["To"].lower() == late.email.lower()][-1])
        late_token = re.search(r"/verify-email\?token=([A-Za-z0-9_\-]+)", late_mail)
        assert late_token
        clock.advance(timedelta(hours=72, seconds=1))
        relax_auth_limits(client)
        expired = client.post("/api/auth/email-verification/confirm", json={"token": late_token.group(1)})
        assert expired.status_code == 400 and expired.json()["error"]["code"] == "INVALID_TOKEN"
    records = container.audit_log.list_records(org_id, AuditQuery(limit=500)).records
    verified = [r for r in records if r.event.action == "user.email_verified"]
    assert [r.event.request_path for r in verified] == ["/verify-email"]
    assert not [r for r in records if link.group(1) in repr(r.event)]
