"""Identity over HTTP with the in-memory adapters: the whole flow, and the state rules one by one
(lockout, expiry, rotation, reuse, fingerprint, MFA replay, quotas, settings, tenant isolation,
rate limits, instant revocation). The clock is injected (`container.clock`)."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.adapters.memory.token_blacklist import MemoryTokenBlacklist
from reckai.adapters.security.jwt_tokens import JwtKeyRing, JwtTokenService
from reckai.adapters.security.passwords import ConfiguredPasswordHasher
from reckai.application.ports.audit import AuditQuery
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from reckai.settings import Mode, SecuritySettings, Settings
from tests.support.identity import (
    DEFAULT_PASSWORD,
    SECOND_PASSWORD,
    bearer,
    create_user_with_role,
    login,
    login_tokens,
    onboard,
    relax_auth_limits,
)
from tests.support.identity_flow import FakeClock, login_body, run_whole_flow


def make_container(clock: FakeClock, settings: Settings | None = None) -> Container:
    security = (settings or Settings(mode=Mode.EMBEDDED)).security
    ring = JwtKeyRing({security.jwt_key_id: security.jwt_secret}, security.jwt_key_id)
    container = bootstrap_in_memory(settings, clock=clock, token_service=JwtTokenService(ring, clock=clock.timestamp),
                                    token_blacklist=MemoryTokenBlacklist(clock))
    return container


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


def audit_actions(container: Container, org_id: Any) -> list[str]:
    return [record.event.action for record in audit_records(container, org_id)]


def audit_records(container: Container, org_id: Any) -> list[Any]:
    records: list[Any] = []
    before = None
    while True:
        page = container.audit_log.list_records(org_id, AuditQuery(limit=500, before_sequence=before))
        records.extend(page.records)
        if page.next_before_sequence is None:
            return records
        before = page.next_before_sequence


def mails_to(container: Container, address: str) -> list[Any]:
    return [m for m in container.mailer.sent if m.to.lower() == address.lower()]


def test_whole_flow_in_memory(client: TestClient, container: Container, clock: FakeClock) -> None:
    run_whole_flow(client, clock, lambda to: mails_to(container, to)[-1].text_body,
                   lambda org: audit_actions(container, org))


# --- helpers ------------------------------------------------------------------------------------


def admin_session(client: TestClient) -> tuple[Any, Any, str]:
    org_id, admin = onboard(client)
    return org_id, admin, login(client, admin.org_code, admin.email, admin.password)


def error_of(response: Any) -> dict:
    return response.json()["error"]  # type: ignore[no-any-return]


# --- login --------------------------------------------------------------------------------------


def test_every_failed_login_looks_the_same(client: TestClient, container: Container) -> None:
    org_id, admin, admin_token = admin_session(client)
    analyst_id, _ = create_user_with_role(client, admin_token, "analyst", email="ana@example.com")
    client.delete(f"/api/users/{analyst_id}", headers=bearer(admin_token))
    attempts = {
        "unknown organization": ("no-such-org", admin.email, admin.password),
        "unknown user": (admin.org_code, "nobody@example.com", admin.password),
        "wrong password": (admin.org_code, admin.email, "Wrong!Password-1234"),
        "inactive user": (admin.org_code, "ana@example.com", SECOND_PASSWORD),
    }
    answers = {}
    for name, (code, email, password) in attempts.items():
        relax_auth_limits(client, code, email)
        response = client.post("/api/auth/login", json=login_body(code, email, password))
        answers[name] = (response.status_code, response.json())
    assert len({repr(a) for a in answers.values()}) == 1, answers
    assert answers["unknown user"][0] == 401
    assert answers["unknown user"][1]["error"]["code"] == "INVALID_CREDENTIALS"
    reasons = [r.event.metadata.get("reason") for r in audit_records(container, org_id)
               if r.event.action == "auth.login.failed"]
    assert {"bad_password", "user_inactive"} <= set(reasons)


def test_lockout_threshold_follows_a_tightened_policy_and_ends_after_its_time(
    client: TestClient, clock: FakeClock
) -> None:
    _, admin, token = admin_session(client)
    put = client.put("/api/settings", json={"password_policy": {"lockout_threshold": 3, "lockout_minutes": 45}},
                     headers=bearer(token))
    assert put.status_code == 200, put.text
    for _ in range(3):
        relax_auth_limits(client, admin.org_code, admin.email)
        client.post("/api/auth/login", json=login_body(admin.org_code, admin.email, "Wrong!Password-1234"))
    relax_auth_limits(client, admin.org_code, admin.email)
    assert client.post("/api/auth/login", json=login_body(admin.org_code, admin.email, admin.password)).status_code == 401
    clock.advance(dt.timedelta(minutes=44))
    relax_auth_limits(client, admin.org_code, admin.email)
    assert client.post("/api/auth/login", json=login_body(admin.org_code, admin.email, admin.password)).status_code == 401
    clock.advance(dt.timedelta(minutes=2))
    relax_auth_limits(client, admin.org_code, admin.email)
    assert client.post("/api/auth/login", json=login_body(admin.org_code, admin.email, admin.password)).status_code == 200


def test_a_stored_hash_of_another_scheme_is_rehashed_on_login(client: TestClient, container: Container) -> None:
    org_id, admin = onboard(client)
    argon = ConfiguredPasswordHasher("argon2id").hash(admin.password)
    with container.database.unit_of_work(org_id) as uow:
        user = uow.users.get(admin.user_id)
        user.password_hash = argon
        uow.users.update(user)
        uow.commit()
    login(client, admin.org_code, admin.email, admin.password)
    with container.database.unit_of_work(org_id) as uow:
        stored = uow.users.get(admin.user_id).password_hash
    assert stored.startswith("$2") and not container.password_hasher.needs_rehash(stored)


def test_auth_rate_limit_per_ip_answers_429_with_retry_after(client: TestClient, container: Container) -> None:
    limit = container.identity.tiers["auth_ip"].limit
    assert limit == 30  # the default of AUTH_IP_LIMIT_PER_MINUTE
    answers = [client.post("/api/auth/login", json=login_body("x", f"u{i}@example.com", "pw")) for i in range(limit + 1)]
    assert [a.status_code for a in answers] == [401] * limit + [429]
    assert answers[-1].headers["Retry-After"].isdigit() and error_of(answers[-1])["code"] == "RATE_LIMITED"


def test_auth_rate_limit_per_account_whatever_the_address(client: TestClient, container: Container) -> None:
    services = container.identity
    from reckai.application.errors import RateLimited
    from reckai.application.identity.common import RequestInfo
    from reckai.application.identity.errors import InvalidCredentials
    from reckai.application.identity.login import login as login_case

    outcomes = []
    for i in range(6):
        try:
            login_case(services, organization_code="ACME", email="Ada@Bank.example", password="x",
                       request=RequestInfo(ip_address=f"10.0.0.{i}"))
        except (InvalidCredentials, RateLimited) as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes == ["InvalidCredentials"] * 5 + ["RateLimited"]


def test_api_rate_limit_per_user(client: TestClient, container: Container) -> None:
    _, _, token = admin_session(client)
    statuses = [client.get("/api/auth/me", headers=bearer(token)).status_code for _ in range(101)]
    assert statuses[:100] == [200] * 100 and statuses[100] == 429


# --- tokens -------------------------------------------------------------------------------------


def test_access_token_lives_15_minutes(client: TestClient, clock: FakeClock) -> None:
    _, _, token = admin_session(client)
    clock.advance(dt.timedelta(minutes=14, seconds=59))
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    clock.advance(dt.timedelta(seconds=2))
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 401


def test_deactivation_and_role_change_take_effect_at_once(client: TestClient) -> None:
    _, _, admin_token = admin_session(client)
    user_id, token = create_user_with_role(client, admin_token, "analyst")
    assert client.get("/api/settings", headers=bearer(token)).status_code == 200
    changed = client.put(f"/api/users/{user_id}", json={"role": "auditor"}, headers=bearer(admin_token))
    assert changed.status_code == 200 and changed.json()["data"]["role"] == "auditor"
    assert client.get("/api/settings", headers=bearer(token)).status_code == 401
    user_id2, token2 = create_user_with_role(client, admin_token, "analyst")
    assert client.delete(f"/api/users/{user_id2}", headers=bearer(admin_token)).status_code == 200
    assert client.get("/api/auth/me", headers=bearer(token2)).status_code == 401
    kept = client.get(f"/api/users/{user_id2}", headers=bearer(admin_token)).json()["data"]
    assert kept["is_active"] is False  # deactivated, not deleted


def test_an_inactive_organization_refuses_logins_and_tokens(client: TestClient, container: Container) -> None:
    org_id, admin, token = admin_session(client)
    with container.database.unit_of_work(org_id) as uow:
        organization = uow.organizations.get(org_id)
        organization.is_active = False
        uow.organizations.update(organization)
        uow.commit()
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 401
    relax_auth_limits(client, admin.org_code, admin.email)
    answer = client.post("/api/auth/login", json=login_body(admin.org_code, admin.email, admin.password))
    assert answer.status_code == 401 and error_of(answer)["code"] == "INVALID_CREDENTIALS"


def test_refresh_from_another_device_is_refused_and_audited_an_ip_change_only_audited(
    client: TestClient, container: Container
) -> None:
    from reckai.application.identity.common import RequestInfo
    from reckai.application.identity.errors import InvalidRefreshToken
    from reckai.application.identity.login import refresh_session

    org_id, admin = onboard(client)
    tokens = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    other = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]},
                        headers={"User-Agent": "curl/8.0"})
    assert other.status_code == 401
    services = container.identity
    moved = refresh_session(services, refresh_token=tokens["refresh_token"],
                            request=RequestInfo(ip_address="203.0.113.9", user_agent="testclient"))
    assert moved.refresh_token != tokens["refresh_token"]
    with pytest.raises(InvalidRefreshToken):
        refresh_session(services, refresh_token=moved.refresh_token, request=RequestInfo(user_agent="evil"))
    actions = audit_actions(container, org_id)
    assert actions.count("auth.refresh.fingerprint_mismatch") == 2
    assert "auth.session.ip_changed" in actions


def test_rotation_does_not_extend_the_absolute_session_lifetime(client: TestClient, clock: FakeClock) -> None:
    _, admin = onboard(client)
    refresh = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]["refresh_token"]
    for days in (6, 6, 6, 6, 5):  # each token is fresh, but the session ends 30 days after the login
        clock.advance(dt.timedelta(days=days))
        answer = client.post("/api/auth/refresh", json={"refresh_token": refresh})
        assert answer.status_code == 200, answer.text
        refresh = answer.json()["data"]["refresh_token"]
        assert dt.datetime.fromisoformat(answer.json()["data"]["refresh_expires_at"]) \
            <= clock() + dt.timedelta(days=7)
    clock.advance(dt.timedelta(days=1))
    assert client.post("/api/auth/refresh", json={"refresh_token": refresh}).status_code == 401


def test_sessions_listed_and_ended_by_owner_and_by_admin(client: TestClient) -> None:
    _, admin, admin_token = admin_session(client)
    user_id, token = create_user_with_role(client, admin_token, "auditor", email="aud@example.com")
    mine = client.get("/api/sessions", headers=bearer(token)).json()["data"]
    assert len(mine) == 1 and mine[0]["user_id"] == str(user_id)
    hidden = client.get(f"/api/sessions?user_id={admin.user_id}", headers=bearer(token))
    assert hidden.status_code == 404
    theirs = client.get(f"/api/sessions?user_id={user_id}", headers=bearer(admin_token)).json()["data"]
    assert [s["id"] for s in theirs] == [mine[0]["id"]]
    assert client.delete(f"/api/sessions/{mine[0]['id']}", headers=bearer(admin_token)).status_code == 200
    assert client.get("/api/sessions", headers=bearer(token)).status_code == 401  # its access token ended too
    assert client.get(f"/api/sessions?user_id={user_id}", headers=bearer(admin_token)).json()["data"] == []


# --- passwords ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("new_password", "message"),
    [
        ("short1!A", "too common"),
        ("Password123!", "too common"),
        ("Sam.Tester!Quartz-9", "e-mail address or name"),
        ("nouppercase!42x", "uppercase"),
        ("Ä" * 40 + "a1!", "72 bytes"),
        (SECOND_PASSWORD, "last 5"),
    ],
)
def test_password_change_enforces_the_policy(client: TestClient, new_password: str, message: str) -> None:
    _, _, admin_token = admin_session(client)
    _, token = create_user_with_role(client, admin_token, "analyst", name="Sam Tester", email="sam.tester@example.com")
    answer = client.post("/api/auth/password/change", json={"current_password": SECOND_PASSWORD,
                                                            "new_password": new_password}, headers=bearer(token))
    assert answer.status_code == 400, answer.text
    assert error_of(answer)["code"] == "PASSWORD_POLICY_VIOLATION"
    assert any(message in d["message"] for d in error_of(answer)["details"]), error_of(answer)


def test_history_remembers_five_passwords(client: TestClient) -> None:
    _, _, admin_token = admin_session(client)
    _, token = create_user_with_role(client, admin_token, "analyst")
    passwords = [SECOND_PASSWORD, "Orchid#Lantern-1111", "Walnut#Compass-2222", "Tundra#Beacon-3333",
                 "Saffron#Pillar-4444", "Glacier#Meadow-5555"]
    clock = client.app.state["container"].clock
    for current, new in itertools.pairwise(passwords):
        clock.advance(dt.timedelta(seconds=1))
        answer = client.post("/api/auth/password/change", json={"current_password": current, "new_password": new},
                             headers=bearer(token))
        assert answer.status_code == 200, answer.text
        token = answer.json()["data"]["access_token"]
    # passwords[1..5] are the last five: passwords[1] is refused, passwords[0] is allowed again
    reuse = client.post("/api/auth/password/change", json={"current_password": passwords[5],
                                                           "new_password": passwords[1]}, headers=bearer(token))
    assert reuse.status_code == 400
    again = client.post("/api/auth/password/change", json={"current_password": passwords[5],
                                                           "new_password": passwords[0]}, headers=bearer(token))
    assert again.status_code == 200, again.text


def test_password_change_ends_every_session(client: TestClient) -> None:
    _, admin = onboard(client)
    one = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    two = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    changed = client.post("/api/auth/password/change", json={"current_password": admin.password,
                                                             "new_password": SECOND_PASSWORD},
                          headers=bearer(one["access_token"]))
    assert changed.status_code == 200
    for old in (one, two):
        assert client.post("/api/auth/refresh", json={"refresh_token": old["refresh_token"]}).status_code == 401
        assert client.get("/api/auth/me", headers=bearer(old["access_token"])).status_code == 401
    assert client.get("/api/auth/me", headers=bearer(changed.json()["data"]["access_token"])).status_code == 200


def test_reset_link_expires_after_one_hour(client: TestClient, container: Container, clock: FakeClock) -> None:
    _, admin = onboard(client)
    assert client.post("/api/auth/password/reset", json={"organization_code": admin.org_code,
                                                         "email": admin.email}).status_code == 202
    from tests.support.identity_flow import token_from_mail
    from tests.support.jobs import run_queued_jobs

    run_queued_jobs(container)

    token = token_from_mail(mails_to(container, admin.email)[-1].text_body)
    clock.advance(dt.timedelta(minutes=61))
    late = client.post("/api/auth/password/reset/confirm", json={"token": token, "new_password": SECOND_PASSWORD})
    assert late.status_code == 400 and error_of(late)["code"] == "INVALID_TOKEN"


# --- organizations, users, settings ---------------------------------------------------------------


def test_signup_can_be_switched_off(clock: FakeClock) -> None:
    container = make_container(clock, Settings(security=SecuritySettings(allow_public_signup=False)))
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        answer = client.post("/api/organizations", json={"name": "A", "code": "acme", "admin_email": "a@example.com",
                                                         "admin_name": "Ada", "admin_password": DEFAULT_PASSWORD})
    assert answer.status_code == 403 and error_of(answer)["code"] == "SIGNUP_DISABLED"


def test_signup_validates_and_refuses_a_taken_code(client: TestClient) -> None:
    onboard(client, "acme")
    relax_auth_limits(client)
    taken = client.post("/api/organizations", json={"name": "B", "code": "ACME", "admin_email": "b@example.com",
                                                    "admin_name": "Bob", "admin_password": DEFAULT_PASSWORD})
    assert taken.status_code == 409 and error_of(taken)["code"] == "ORGANIZATION_CODE_TAKEN"
    bad = client.post("/api/organizations", json={"name": "C", "code": "a b", "admin_email": "c@example.com",
                                                  "admin_name": "Cy", "admin_password": DEFAULT_PASSWORD,
                                                  "extra": 1})
    assert bad.status_code == 400  # unknown field refused


def test_a_public_signup_asking_for_enterprise_lands_on_standard(client: TestClient) -> None:
    # Issue 12 item 3: an anonymous body never chooses its quotas; only an operator changes a tier.
    _, admin = onboard(client, subscription_tier="enterprise")
    token = login(client, admin.org_code, admin.email, admin.password)
    settings = client.get("/api/settings", headers=bearer(token)).json()["data"]
    assert settings["subscription_tier"] == "standard"
    assert settings["quotas"]["max_users"] == 10 and settings["quotas"]["max_storage_gb"] == 100
    assert settings["quotas"]["max_jobs_per_month"] == 1000 and settings["quotas"]["features"]["sso"] is False


def test_cli_org_create(clock: FakeClock) -> None:
    import argparse
    import io

    from reckai.entrypoints.cli.org import create_command

    container = make_container(clock, Settings(security=SecuritySettings(allow_public_signup=False)))
    args = argparse.Namespace(name="Bank", code="Bank-1", domain=None, tier="standard",
                              admin_email="ops@bank.example", admin_name="Ops Admin")
    out, err = io.StringIO(), io.StringIO()
    assert create_command(container, args, DEFAULT_PASSWORD, out, err) == 0, err.getvalue()
    assert "created organization bank-1" in out.getvalue()
    assert create_command(container, args, DEFAULT_PASSWORD, out, err) == 2
    assert "already taken" in err.getvalue()
    with TestClient(create_app(container)) as client:
        login(client, "bank-1", "ops@bank.example", DEFAULT_PASSWORD)


def test_cli_org_reset_mfa_for_a_sole_admin_who_lost_both_factors(clock: FakeClock) -> None:
    import argparse
    import io

    import pyotp

    from reckai.entrypoints.cli.org import reset_mfa_command

    container = make_container(clock)
    with TestClient(create_app(container)) as client:
        org_id, admin = onboard(client)
        token = login(client, admin.org_code, admin.email, admin.password)
        enrol = client.post("/api/auth/mfa/enable", json={"password": admin.password}, headers=bearer(token))
        code = pyotp.TOTP(enrol.json()["data"]["secret"]).at(clock())
        assert client.post("/api/auth/mfa/verify", json={"code": code}, headers=bearer(token)).status_code == 200
        relax_auth_limits(client)
        step = client.post("/api/auth/login", json=login_body(admin.org_code, admin.email, admin.password))
        assert step.json()["data"]["status"] == "mfa_required"
        own = client.post(f"/api/users/{admin.user_id}/mfa/reset", json={"password": admin.password},
                          headers=bearer(token))
        assert own.status_code == 403  # the only admin cannot do it over the API
        out, err = io.StringIO(), io.StringIO()
        args = argparse.Namespace(code=admin.org_code.upper(), email=admin.email)
        assert reset_mfa_command(container, args, out, err) == 0, err.getvalue()
        assert "MFA turned off" in out.getvalue()
        assert client.get("/api/auth/me", headers=bearer(token)).status_code == 401  # sessions end
        relax_auth_limits(client)
        plain = client.post("/api/auth/login", json=login_body(admin.org_code, admin.email, admin.password))
        assert plain.json()["data"]["status"] == "authenticated"
        assert reset_mfa_command(container, args, out, err) == 2 and "not enabled" in err.getvalue()
        unknown = argparse.Namespace(code="no-such-org", email=admin.email)
        assert reset_mfa_command(container, unknown, out, err) == 2
        [reset] = [r.event for r in audit_records(container, org_id) if r.event.action == "auth.mfa.reset"]
        assert reset.user_id is None and str(reset.resource_id) == str(admin.user_id)  # a system event


def test_settings_may_only_tighten_the_password_policy(client: TestClient) -> None:
    _, _, token = admin_session(client)
    loose = client.put("/api/settings", json={"password_policy": {"min_length": 6}}, headers=bearer(token))
    assert loose.status_code == 400 and error_of(loose)["details"][0]["field"] == "password_policy.min_length"
    tight = client.put("/api/settings", json={"password_policy": {"min_length": 14}}, headers=bearer(token))
    assert tight.json()["data"]["password_policy"]["min_length"] == 14
    created = client.post("/api/users", json={"email": "x@example.com", "name": "X Y", "role": "analyst",
                                              "password": "Quartz!Ledg-1"}, headers=bearer(token))
    assert created.status_code == 400 and "14 characters" in created.text


def test_user_onboarding_approval_flag_turns_creation_into_a_request(client: TestClient) -> None:
    # The whole flow (checker, self-approval, max_users): tests/unit/test_approvals_optional_routes.py
    _, _, token = admin_session(client)
    create_user_with_role(client, token, "supervisor")  # someone who may approve (else 409 NO_ELIGIBLE_CHECKER)
    client.put("/api/settings", json={"user_onboarding_requires_approval": True}, headers=bearer(token))
    requested = client.post("/api/users", json={"email": "x@example.com", "name": "X Y", "role": "analyst"},
                            headers=bearer(token))
    assert requested.status_code == 202, requested.text
    assert requested.json()["data"]["pending_approval"]["type"] == "user_onboarding"
    users = client.get("/api/users", headers=bearer(token)).json()["data"]
    assert "x@example.com" not in [u["email"] for u in users]


def test_max_users_is_enforced_and_concurrent_creations_cannot_exceed_it(container: Container) -> None:
    from reckai.application.errors import QuotaExceeded
    from reckai.application.identity import users as user_cases
    from reckai.application.identity.common import RequestInfo
    from reckai.domain.identity.permissions import permissions_for
    from reckai.domain.identity.principal import Principal

    with TestClient(create_app(container)) as client:
        org_id, admin = onboard(client)
    services = container.identity
    principal = Principal(admin.user_id, org_id, "admin", permissions_for("admin"), None, "jti", admin.email, True)
    for i in range(8):
        user_cases.create_user(services, principal, email=f"u{i}@example.com", name="U", role="analyst",
                               password=None, request=RequestInfo())
    outcomes: list[str] = []
    barrier = threading.Barrier(5)

    def create(n: int) -> None:
        barrier.wait()
        try:
            user_cases.create_user(services, principal, email=f"r{n}@example.com", name="R", role="auditor",
                                   password=None, request=RequestInfo())
            outcomes.append("created")
        except QuotaExceeded:
            outcomes.append("quota")

    threads = [threading.Thread(target=create, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created"] + ["quota"] * 4


def test_the_last_admin_cannot_be_demoted_or_deactivated(client: TestClient) -> None:
    _, admin, token = admin_session(client)
    demote = client.put(f"/api/users/{admin.user_id}", json={"role": "analyst"}, headers=bearer(token))
    assert demote.status_code == 409 and error_of(demote)["code"] == "LAST_ADMIN"
    assert client.delete(f"/api/users/{admin.user_id}", headers=bearer(token)).status_code == 409


def test_user_events_are_audited_with_ip_and_user_agent(client: TestClient, container: Container) -> None:
    org_id, _, token = admin_session(client)
    user_id, _ = create_user_with_role(client, token, "analyst")
    client.put(f"/api/users/{user_id}", json={"role": "auditor"}, headers=bearer(token))  # no raise: direct
    client.delete(f"/api/users/{user_id}", headers=bearer(token))
    records = {r.event.action: r.event for r in audit_records(container, org_id)}
    for action in ("user.created", "user.role_changed", "user.deleted", "auth.login.succeeded"):
        assert records[action].user_agent == "testclient", action
    assert records["user.role_changed"].metadata == {"from": "analyst", "to": "auditor"}
    assert str(records["user.deleted"].resource_id) == str(user_id)
