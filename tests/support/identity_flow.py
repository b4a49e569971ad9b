"""The whole identity flow over HTTP, shared by the in-memory run (tests/unit) and the run against
real PostgreSQL, Redis and SMTP (tests/integration/test_identity_flow.py):

onboard -> invite -> accept -> login -> MFA enrol -> two-step login -> refresh rotation ->
reuse detection -> logout -> lockout -> expiry -> reset.

Every step asserts on state seen through the API (and the audit log at the end).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyotp

from tests.support.identity import DEFAULT_PASSWORD, bearer, onboard, relax_auth_limits
from tests.support.jobs import run_queued_jobs

NEW_PASSWORD = "Meadow$Abacus-4471"
RESET_PASSWORD = "Copper%Falcon-9036"
WRONG_PASSWORD = "Wrong!Password-0000"


@dataclass
class FakeClock:
    """Injectable clock: `container.clock = clock`."""

    current: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, delta: dt.timedelta) -> None:
        self.current += delta

    def timestamp(self) -> float:
        return self.current.timestamp()


def token_from_mail(body: str) -> str:
    match = re.search(r"[?]token=([A-Za-z0-9_\-]+)", body)
    assert match, body
    return match.group(1)


def login_body(code: str, email: str, password: str) -> dict[str, str]:
    return {"organization_code": code, "email": email, "password": password}


def run_whole_flow(client: Any, clock: FakeClock, last_mail_to: Callable[[str], str],
                   audit_actions: Callable[[Any], list[str]]) -> None:
    post = client.post
    org_id, admin = onboard(client)
    admin_login = post("/api/auth/login", json=login_body(admin.org_code, admin.email, admin.password))
    assert admin_login.status_code == 200, admin_login.text
    admin_token = admin_login.json()["data"]["tokens"]["access_token"]

    # invite -> accept
    email = "Grace.Hopper@Example.com"
    created = post("/api/users", json={"email": email, "name": "Grace Hopper", "role": "analyst"},
                   headers=bearer(admin_token))
    assert created.status_code == 201, created.text
    user_id = created.json()["data"]["id"]
    invited = post(f"/api/users/{user_id}/invite", headers=bearer(admin_token))
    assert invited.status_code == 200, invited.text
    invitation = token_from_mail(last_mail_to(email))
    accepted = post("/api/auth/invitations/accept", json={"token": invitation, "password": DEFAULT_PASSWORD})
    assert accepted.status_code == 200, accepted.text
    again = post("/api/auth/invitations/accept", json={"token": invitation, "password": DEFAULT_PASSWORD})
    assert again.status_code == 400 and again.json()["error"]["code"] == "INVALID_TOKEN"
    relax_auth_limits(client)

    # login: the e-mail is compared case-insensitively
    first = post("/api/auth/login", json=login_body(admin.org_code, "grace.hopper@EXAMPLE.com", DEFAULT_PASSWORD))
    assert first.status_code == 200, first.text
    assert first.json()["data"]["status"] == "authenticated"
    token = first.json()["data"]["tokens"]["access_token"]

    # MFA enrol (re-authentication first)
    refused = post("/api/auth/mfa/enable", json={"password": WRONG_PASSWORD}, headers=bearer(token))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "REAUTHENTICATION_FAILED"
    enrol = post("/api/auth/mfa/enable", json={"password": DEFAULT_PASSWORD}, headers=bearer(token))
    assert enrol.status_code == 200, enrol.text
    secret = enrol.json()["data"]["secret"]
    assert enrol.json()["data"]["otpauth_uri"].startswith("otpauth://totp/")
    assert enrol.json()["data"]["qr_code_svg"].lstrip().startswith("<")
    totp = pyotp.TOTP(secret)
    verified = post("/api/auth/mfa/verify", json={"code": totp.at(clock())}, headers=bearer(token))
    assert verified.status_code == 200, verified.text
    recovery_codes = verified.json()["data"]["recovery_codes"]
    assert len(recovery_codes) == 10

    # two-step login; the code of the step just used is refused (replay)
    clock.advance(dt.timedelta(seconds=30))
    relax_auth_limits(client)
    step_one = post("/api/auth/login", json=login_body(admin.org_code, email, DEFAULT_PASSWORD))
    assert step_one.json()["data"]["status"] == "mfa_required" and step_one.json()["data"]["tokens"] is None
    mfa_token = step_one.json()["data"]["mfa_token"]
    code = totp.at(clock())
    two = post("/api/auth/mfa/login", json={"mfa_token": mfa_token, "code": code})
    assert two.status_code == 200, two.text
    tokens = two.json()["data"]["tokens"]
    relax_auth_limits(client)
    step_one_again = post("/api/auth/login", json=login_body(admin.org_code, email, DEFAULT_PASSWORD))
    replay = post("/api/auth/mfa/login", json={"mfa_token": step_one_again.json()["data"]["mfa_token"], "code": code})
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "INVALID_MFA_CODE"
    challenge_reuse = post("/api/auth/mfa/login", json={"mfa_token": mfa_token, "code": recovery_codes[0]})
    assert challenge_reuse.status_code == 401  # a challenge works once
    recovery = post("/api/auth/mfa/login",
                    json={"mfa_token": step_one_again.json()["data"]["mfa_token"], "code": recovery_codes[0]})
    assert recovery.status_code == 200, recovery.text
    relax_auth_limits(client)

    # refresh rotation
    refreshed = post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    rotated = refreshed.json()["data"]
    assert rotated["refresh_token"] != tokens["refresh_token"]
    grace = post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})  # concurrent tab
    assert grace.status_code == 200 and grace.json()["data"]["refresh_token"] == rotated["refresh_token"]

    # reuse detection: the rotated token after the grace window revokes the whole family
    clock.advance(dt.timedelta(seconds=20))
    reuse = post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reuse.status_code == 401 and reuse.json()["error"]["code"] == "INVALID_REFRESH_TOKEN"
    dead = post("/api/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert dead.status_code == 401

    # logout: the access token is refused everywhere, the session is gone
    fresh = recovery.json()["data"]["tokens"]
    out = post("/api/auth/logout", json={"refresh_token": fresh["refresh_token"]}, headers=bearer(fresh["access_token"]))
    assert out.status_code == 200 and out.json()["data"]["session_revoked"] is True
    assert client.get("/api/auth/me", headers=bearer(fresh["access_token"])).status_code == 401
    assert post("/api/auth/refresh", json={"refresh_token": fresh["refresh_token"]}).status_code == 401

    # lockout: 5 wrong passwords lock for 30 minutes; the right one is then refused the same way
    for _ in range(5):
        relax_auth_limits(client, admin.org_code, email)
        wrong = post("/api/auth/login", json=login_body(admin.org_code, email, WRONG_PASSWORD))
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "INVALID_CREDENTIALS"
    relax_auth_limits(client, admin.org_code, email)
    locked = post("/api/auth/login", json=login_body(admin.org_code, email, DEFAULT_PASSWORD))
    assert locked.status_code == 401 and locked.json()["error"] == wrong.json()["error"]
    clock.advance(dt.timedelta(minutes=31))
    relax_auth_limits(client, admin.org_code, email)
    unlocked = post("/api/auth/login", json=login_body(admin.org_code, email, DEFAULT_PASSWORD))
    assert unlocked.status_code == 200 and unlocked.json()["data"]["status"] == "mfa_required"

    # expiry: after 90 days only the change endpoint works
    clock.advance(dt.timedelta(days=91))
    relax_auth_limits(client, admin.org_code, admin.email)
    expired = post("/api/auth/login", json=login_body(admin.org_code, admin.email, admin.password))
    assert expired.json()["data"]["status"] == "password_change_required", expired.text
    expired_token = expired.json()["data"]["tokens"]["access_token"]
    blocked = client.get("/api/users", headers=bearer(expired_token))
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "PASSWORD_CHANGE_REQUIRED"
    changed = post("/api/auth/password/change", json={"current_password": admin.password, "new_password": NEW_PASSWORD},
                   headers=bearer(expired_token))
    assert changed.status_code == 200, changed.text
    assert client.get("/api/users", headers=bearer(expired_token)).status_code == 401  # version bumped
    assert client.get("/api/users", headers=bearer(changed.json()["data"]["access_token"])).status_code == 200

    # reset: always 202; a single-use link; the new password works, the old one not
    relax_auth_limits(client, admin.org_code, email)
    unknown = post("/api/auth/password/reset", json={"organization_code": admin.org_code, "email": "nobody@example.com"})
    assert unknown.status_code == 202
    relax_auth_limits(client, admin.org_code, email)
    asked = post("/api/auth/password/reset", json={"organization_code": admin.org_code, "email": email})
    assert asked.status_code == 202 and asked.json() == unknown.json()
    run_queued_jobs(client.app.state["container"])  # the mail goes out through the outbox and a worker
    reset_token = token_from_mail(last_mail_to(email))
    done = post("/api/auth/password/reset/confirm", json={"token": reset_token, "new_password": RESET_PASSWORD})
    assert done.status_code == 200, done.text
    twice = post("/api/auth/password/reset/confirm", json={"token": reset_token, "new_password": RESET_PASSWORD})
    assert twice.status_code == 400
    relax_auth_limits(client, admin.org_code, email)
    old = post("/api/auth/login", json=login_body(admin.org_code, email, DEFAULT_PASSWORD))
    assert old.status_code == 401
    relax_auth_limits(client, admin.org_code, email)
    new = post("/api/auth/login", json=login_body(admin.org_code, email, RESET_PASSWORD))
    assert new.status_code == 200 and new.json()["data"]["status"] == "mfa_required"

    # MFA reset by an administrator (lost authenticator and recovery codes): re-authenticated, never
    # one's own; the user's sessions and live tokens die; they sign in with the password alone and
    # enrol again
    user_tokens = post("/api/auth/mfa/login", json={"mfa_token": new.json()["data"]["mfa_token"],
                                                     "code": recovery_codes[1]}).json()["data"]["tokens"]
    assert client.get("/api/auth/me", headers=bearer(user_tokens["access_token"])).status_code == 200
    admin_now = changed.json()["data"]["access_token"]
    own = post(f"/api/users/{admin.user_id}/mfa/reset", json={"password": NEW_PASSWORD}, headers=bearer(admin_now))
    assert own.status_code == 403 and own.json()["error"]["code"] == "PERMISSION_DENIED"
    by_user = post(f"/api/users/{user_id}/mfa/reset", json={"password": RESET_PASSWORD},
                   headers=bearer(user_tokens["access_token"]))
    assert by_user.status_code == 403  # analysts may not
    relax_auth_limits(client, admin.org_code, admin.email)
    bad = post(f"/api/users/{user_id}/mfa/reset", json={"password": WRONG_PASSWORD}, headers=bearer(admin_now))
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "REAUTHENTICATION_FAILED"
    reset_mfa = post(f"/api/users/{user_id}/mfa/reset", json={"password": NEW_PASSWORD}, headers=bearer(admin_now))
    assert reset_mfa.status_code == 200, reset_mfa.text
    assert reset_mfa.json()["data"]["mfa_enabled"] is False
    assert client.get("/api/auth/me", headers=bearer(user_tokens["access_token"])).status_code == 401
    assert post("/api/auth/refresh", json={"refresh_token": user_tokens["refresh_token"]}).status_code == 401
    again_reset = post(f"/api/users/{user_id}/mfa/reset", json={"password": NEW_PASSWORD}, headers=bearer(admin_now))
    assert again_reset.status_code == 409 and again_reset.json()["error"]["code"] == "MFA_STATE_CONFLICT"
    relax_auth_limits(client, admin.org_code, email)
    plain = post("/api/auth/login", json=login_body(admin.org_code, email, RESET_PASSWORD))
    assert plain.status_code == 200 and plain.json()["data"]["status"] == "authenticated", plain.text
    re_enrol = post("/api/auth/mfa/enable", json={"password": RESET_PASSWORD},
                    headers=bearer(plain.json()["data"]["tokens"]["access_token"]))
    assert re_enrol.status_code == 200 and re_enrol.json()["data"]["secret"] != secret

    actions = audit_actions(org_id)
    assert "auth.mfa.reset" in actions and "auth.mfa.reset_failed" in actions
    for expected in ("organization.created", "user.created", "user.invited", "user.invitation_accepted",
                     "auth.login.succeeded", "auth.login.failed", "auth.account.locked", "auth.mfa.enrolled",
                     "auth.mfa.used", "auth.token.issued", "auth.token.revoked", "auth.refresh.reuse_detected",
                     "auth.password.changed", "auth.password.reset_requested", "auth.password.reset"):
        assert expected in actions, (expected, sorted(set(actions)))
