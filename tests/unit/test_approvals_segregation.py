"""Issue 12 item 4: segregation of duties (docs/workflow.md, "Segregation of duties").

- an account that may approve (supervisor, admin) is created, or raised to such a role, only
  through a user_onboarding approval by another checker, whatever the organization's flag;
- a checker may not approve a request of whoever created or last changed their account (role,
  activation, an administrator's MFA reset) within the cooling-off period, nor a request about
  themselves;
- a request nobody could approve is refused when it is made (409 NO_ELIGIBLE_CHECKER);
- a new organization starts with a resolution threshold.

The flows take a TestClient, its container and a way to read the last mail to an address, so the
PostgreSQL test (tests/integration/test_workflow_optional_approvals_postgres.py) runs them too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.adapters.memory.token_blacklist import MemoryTokenBlacklist
from reckai.adapters.security.jwt_tokens import JwtKeyRing, JwtTokenService
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.domain.exceptions.policy import DEFAULT_RESOLUTION_APPROVAL_THRESHOLD
from reckai.entrypoints.http.app import create_app
from reckai.settings import Settings
from tests.support.identity import (
    DEFAULT_PASSWORD,
    SECOND_PASSWORD,
    Credentials,
    bearer,
    create_user_with_role,
    login,
    onboard,
    relax_auth_limits,
)
from tests.support.identity_flow import FakeClock, token_from_mail

EXACT = {"rule_type": "exact", "priority": 1, "field_mappings": [{"left": "reference", "right": "reference"}],
         "tolerance_amount": "0.50", "date_tolerance_days": 1}
ATTACKER_PASSWORD = "Velvet&Kestrel-6142"

LastMail = Callable[[str], str]


@dataclass
class Org:
    client: TestClient
    container: Container
    organization_id: uuid.UUID
    admin: Credentials
    admin_token: str
    supervisor_id: uuid.UUID  # added by an operator: independent of the admin
    supervisor: str

    def call(self, method: str, path: str, token: str, status: int, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=bearer(token), **kwargs)
        assert response.status_code == status, response.text
        return response.json()

    def error(self, method: str, path: str, token: str, status: int, code: str, **kwargs: Any) -> dict[str, Any]:
        body = self.call(method, path, token, status, **kwargs)
        assert body["error"]["code"] == code, body
        return body["error"]  # type: ignore[no-any-return]

    def user(self, user_id: uuid.UUID | str) -> dict[str, Any]:
        return self.call("GET", f"/api/users/{user_id}", self.admin_token, 200)["data"]  # type: ignore[no-any-return]

    def propose_rule(self, token: str | None = None, status: int = 202) -> Any:
        return self.call("POST", "/api/rules", token or self.admin_token, status,
                         json={"name": f"Rule {uuid.uuid4().hex[:8]}", "definition": EXACT})

    def approvals(self) -> list[dict[str, Any]]:
        return self.call("GET", "/api/approvals?per_page=100", self.admin_token, 200)["data"]  # type: ignore[no-any-return]

    def sign_in_fresh(self, email: str, password: str) -> str:
        relax_auth_limits(self.client, self.admin.org_code, email)
        return login(self.client, self.admin.org_code, email, password)


def make_org(client: TestClient, container: Container) -> Org:
    organization_id, admin = onboard(client)
    admin_token = login(client, admin.org_code, admin.email, admin.password)
    supervisor_id, supervisor = create_user_with_role(client, admin_token, "supervisor")
    return Org(client, container, organization_id, admin, admin_token, supervisor_id, supervisor)


# --- the attack of the issue ---------------------------------------------------------------------


def flow_one_admin_cannot_be_their_own_checker(org: Org, last_mail_to: LastMail) -> None:
    """One admin proposes deactivating a rule, creates a supervisor with a provisional password,
    signs in as it and approves: refused at every step."""
    created = org.propose_rule()
    org.call("POST", f"/api/approvals/{created['data']['approval']['id']}/approve", org.supervisor, 200, json={})
    rule_id = created["data"]["rule"]["id"]
    deactivation = org.call("DELETE", f"/api/rules/{rule_id}", org.admin_token, 202)["data"]["approval"]

    # A supervisor with a provisional password: refused, whatever the onboarding flag (off here).
    email = f"shadow.{uuid.uuid4().hex[:6]}@example.com"
    refused = org.error("POST", "/api/users", org.admin_token, 400, "VALIDATION_ERROR",
                        json={"email": email, "name": "Shadow Checker", "role": "supervisor",
                              "password": DEFAULT_PASSWORD})
    assert refused["details"][0]["field"] == "password"
    # Without a password: a user_onboarding request, nobody created yet.
    pending = org.call("POST", "/api/users", org.admin_token, 202,
                       json={"email": email, "name": "Shadow Checker", "role": "supervisor"})["data"]
    onboarding = pending["pending_approval"]
    assert onboarding["type"] == "user_onboarding" and onboarding["metadata"]["role"] == "supervisor"
    users = org.call("GET", "/api/users?per_page=100", org.admin_token, 200)["data"]
    assert email not in {u["email"] for u in users}

    # Even when the real supervisor lets it through and the admin controls the new mailbox, the
    # account the admin made may not approve the admin's requests.
    approved = org.call("POST", f"/api/approvals/{onboarding['id']}/approve", org.supervisor, 200, json={})
    shadow_id = approved["data"]["effect"]["resource_id"]
    assert org.user(shadow_id)["created_by"] == str(org.admin.user_id)
    org.call("POST", f"/api/users/{shadow_id}/invite", org.admin_token, 200)
    token = token_from_mail(last_mail_to(email))
    relax_auth_limits(org.client)
    accepted = org.client.post("/api/auth/invitations/accept", json={"token": token, "password": ATTACKER_PASSWORD})
    assert accepted.status_code == 200, accepted.text
    shadow = org.sign_in_fresh(email, ATTACKER_PASSWORD)
    blocked = org.error("POST", f"/api/approvals/{deactivation['id']}/approve", shadow, 403, "CHECKER_NOT_INDEPENDENT",
                        json={})
    assert "created this account" in blocked["message"]
    assert org.call("GET", f"/api/rules/{rule_id}", org.admin_token, 200)["data"]["rule"]["is_active"] is True
    still = org.call("GET", f"/api/approvals/{deactivation['id']}", org.admin_token, 200)["data"]
    assert still["approval"]["status"] == "pending"
    # The independent supervisor still may.
    org.call("POST", f"/api/approvals/{deactivation['id']}/approve", org.supervisor, 200, json={})


def flow_a_lone_admin_is_told_at_once_that_nobody_can_approve(client: TestClient) -> None:
    _, admin = onboard(client)
    token = login(client, admin.org_code, admin.email, admin.password)
    answer = client.post("/api/rules", json={"name": "Alone", "definition": EXACT}, headers=bearer(token))
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "NO_ELIGIBLE_CHECKER", answer.text
    assert "reckai org add-user" in answer.json()["error"]["message"]
    users = client.post("/api/users", json={"email": "s@example.com", "name": "Sue Pervisor", "role": "supervisor"},
                        headers=bearer(token))
    assert users.status_code == 409 and users.json()["error"]["code"] == "NO_ELIGIBLE_CHECKER", users.text
    listed = client.get("/api/approvals", headers=bearer(token)).json()["data"]
    rules = client.get("/api/rules", headers=bearer(token)).json()["data"]
    assert listed == [] and rules == []  # nothing half-written


# --- raising a role ------------------------------------------------------------------------------


def flow_a_raise_to_a_checker_role_needs_another_checker(org: Org) -> None:
    analyst_id, _ = create_user_with_role(org.client, org.admin_token, "analyst")
    # Not a raise: direct, and the change is recorded as the admin's.
    auditor = org.call("PUT", f"/api/users/{analyst_id}", org.admin_token, 200, json={"role": "auditor"})["data"]
    assert auditor["role"] == "auditor"
    mixed = org.error("PUT", f"/api/users/{analyst_id}", org.admin_token, 400, "VALIDATION_ERROR",
                      json={"role": "supervisor", "name": "Renamed"})
    assert mixed["details"][0]["field"] == "role"
    pending = org.call("PUT", f"/api/users/{analyst_id}", org.admin_token, 202,
                       json={"role": "supervisor"})["data"]["pending_approval"]
    assert pending["metadata"] == {"action": "change_role", "user_id": str(analyst_id), "role": "supervisor"}
    assert org.user(analyst_id)["role"] == "auditor"  # nothing yet
    org.error("POST", f"/api/approvals/{pending['id']}/approve", org.admin_token, 403, "SELF_APPROVAL_FORBIDDEN",
              json={})
    approved = org.call("POST", f"/api/approvals/{pending['id']}/approve", org.supervisor, 200, json={})["data"]
    assert approved["effect"]["kind"] == "user_role_changed"
    assert org.user(analyst_id)["role"] == "supervisor"
    # The raised user may not check the admin who raised them (cooling-off) ...
    raised = org.sign_in_fresh(org.user(analyst_id)["email"], SECOND_PASSWORD)
    proposal = org.propose_rule()["data"]["approval"]
    org.error("POST", f"/api/approvals/{proposal['id']}/approve", raised, 403, "CHECKER_NOT_INDEPENDENT", json={})
    # ... and a demotion needs nobody.
    back = org.call("PUT", f"/api/users/{analyst_id}", org.admin_token, 200, json={"role": "analyst"})["data"]
    assert back["role"] == "analyst"


def flow_nobody_approves_a_request_about_themselves(org: Org) -> None:
    second_id, second = create_user_with_role(org.client, org.admin_token, "supervisor")
    pending = org.call("PUT", f"/api/users/{second_id}", org.admin_token, 202,
                       json={"role": "admin"})["data"]["pending_approval"]
    refused = org.error("POST", f"/api/approvals/{pending['id']}/approve", second, 403, "CHECKER_NOT_INDEPENDENT",
                        json={})
    assert "about this user" in refused["message"]
    assert org.user(second_id)["role"] == "supervisor"
    org.call("POST", f"/api/approvals/{pending['id']}/approve", org.supervisor, 200, json={})
    assert org.user(second_id)["role"] == "admin"


def flow_an_org_whose_only_checker_is_blocked_is_told_when_it_asks(org: Org) -> None:
    # The admin deactivates and reactivates the only other checker: that account was just changed
    # by the admin, so it may not check the admin's requests for the cooling-off period.
    org.call("PUT", f"/api/users/{org.supervisor_id}", org.admin_token, 200, json={"is_active": False})
    org.call("PUT", f"/api/users/{org.supervisor_id}", org.admin_token, 200, json={"is_active": True})
    before = len(org.approvals())
    refused = org.error("POST", "/api/rules", org.admin_token, 409, "NO_ELIGIBLE_CHECKER",
                        json={"name": "Blocked", "definition": EXACT})
    assert "last changed this account" in refused["message"]
    assert refused["details"][0]["message"].endswith("changed_by_requester")
    assert len(org.approvals()) == before


# --- in memory only: the clock, the settings, an administrator's MFA reset ----------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def container(clock: FakeClock) -> Container:
    security = Settings().security
    ring = JwtKeyRing({security.jwt_key_id: security.jwt_secret}, security.jwt_key_id)
    return bootstrap_in_memory(clock=clock, token_service=JwtTokenService(ring, clock=clock.timestamp),
                               token_blacklist=MemoryTokenBlacklist(clock))


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def org(client: TestClient, container: Container) -> Org:
    return make_org(client, container)


def memory_last_mail(container: Container) -> LastMail:
    def last_mail_to(address: str) -> str:
        return str([m for m in container.mailer.sent if m.to.lower() == address.lower()][-1].text_body)  # type: ignore[attr-defined]
    return last_mail_to


def test_one_admin_cannot_be_their_own_checker(org: Org, container: Container) -> None:
    flow_one_admin_cannot_be_their_own_checker(org, memory_last_mail(container))


def test_a_lone_admin_is_told_at_once_that_nobody_can_approve(client: TestClient) -> None:
    flow_a_lone_admin_is_told_at_once_that_nobody_can_approve(client)


def test_a_raise_to_a_checker_role_needs_another_checker(org: Org) -> None:
    flow_a_raise_to_a_checker_role_needs_another_checker(org)


def test_nobody_approves_a_request_about_themselves(org: Org) -> None:
    flow_nobody_approves_a_request_about_themselves(org)


def test_an_org_whose_only_checker_is_blocked_is_told_when_it_asks(org: Org) -> None:
    flow_an_org_whose_only_checker_is_blocked_is_told_when_it_asks(org)


def test_the_cooling_off_ends_and_is_a_setting_under_system_setting_approval(org: Org, clock: FakeClock) -> None:
    org.call("PUT", f"/api/users/{org.supervisor_id}", org.admin_token, 200, json={"is_active": False})
    org.call("PUT", f"/api/users/{org.supervisor_id}", org.admin_token, 200, json={"is_active": True})
    org.supervisor = org.sign_in_fresh(org.user(org.supervisor_id)["email"], SECOND_PASSWORD)
    org.error("POST", "/api/rules", org.admin_token, 409, "NO_ELIGIBLE_CHECKER",
              json={"name": "Too soon", "definition": EXACT})
    clock.advance(dt.timedelta(days=7, seconds=1))  # the default: 7 days
    org.admin_token = org.sign_in_fresh(org.admin.email, org.admin.password)
    org.supervisor = org.sign_in_fresh(org.user(org.supervisor_id)["email"], SECOND_PASSWORD)
    proposal = org.propose_rule()["data"]["approval"]
    org.call("POST", f"/api/approvals/{proposal['id']}/approve", org.supervisor, 200, json={})

    def ask_workflow(value: dict[str, Any], status: int) -> Any:
        return org.call("POST", "/api/approvals", org.admin_token, status, json={
            "type": "system_setting", "title": "Cooling-off", "description": "separation of duties",
            "metadata": {"key": "workflow", "value": value}})

    below = ask_workflow({"checker_cooling_off_days": 0}, 400)
    assert below["error"]["details"][0]["field"] == "metadata.value.checker_cooling_off_days"
    ask_workflow({"checker_cooling_off_days": 1.5}, 400)
    one_day = ask_workflow({"checker_cooling_off_days": 1,
                            "resolution_approval_threshold": DEFAULT_RESOLUTION_APPROVAL_THRESHOLD}, 201)["data"]
    org.call("POST", f"/api/approvals/{one_day['id']}/approve", org.supervisor, 200, json={})
    org.call("PUT", f"/api/users/{org.supervisor_id}", org.admin_token, 200, json={"is_active": False})
    org.call("PUT", f"/api/users/{org.supervisor_id}", org.admin_token, 200, json={"is_active": True})
    org.error("POST", "/api/rules", org.admin_token, 409, "NO_ELIGIBLE_CHECKER",
              json={"name": "Too soon again", "definition": EXACT})
    clock.advance(dt.timedelta(days=1, seconds=1))
    org.admin_token = org.sign_in_fresh(org.admin.email, org.admin.password)
    org.supervisor = org.sign_in_fresh(org.user(org.supervisor_id)["email"], SECOND_PASSWORD)
    later = org.propose_rule()["data"]["approval"]
    org.call("POST", f"/api/approvals/{later['id']}/approve", org.supervisor, 200, json={})


def test_an_administrators_mfa_reset_starts_a_cooling_off(org: Org, container: Container) -> None:
    with container.database.unit_of_work(org.organization_id) as uow:
        user = uow.users.get(org.supervisor_id)
        user.mfa_enabled, user.mfa_secret = True, "sealed-secret"  # enrolled (the secret is never read here)
        uow.users.update(user)
        uow.commit()
    org.call("POST", f"/api/users/{org.supervisor_id}/mfa/reset", org.admin_token, 200,
             json={"password": org.admin.password})
    reset = org.user(org.supervisor_id)
    assert reset["mfa_enabled"] is False
    org.error("POST", "/api/rules", org.admin_token, 409, "NO_ELIGIBLE_CHECKER",
              json={"name": "After reset", "definition": EXACT})


def test_a_checker_created_by_another_admin_may_check_this_admin(org: Org) -> None:
    # The cooling-off binds a checker to the admin who made or changed the account, not to everyone.
    other_id, other_admin = create_user_with_role(org.client, org.admin_token, "admin")
    pending = org.call("POST", "/api/users", other_admin, 202,
                       json={"email": "fresh@example.com", "name": "Fresh Supervisor", "role": "supervisor"})["data"]
    approved = org.call("POST", f"/api/approvals/{pending['pending_approval']['id']}/approve", org.supervisor, 200,
                        json={})["data"]
    fresh_id = approved["effect"]["resource_id"]
    with org.container.database.unit_of_work(org.organization_id) as uow:  # give it a known password
        user = uow.users.get(uuid.UUID(fresh_id))
        user.password_hash = org.container.identity.password_hasher.hash(SECOND_PASSWORD)
        user.password_changed_at = org.container.clock()
        uow.users.update(user)
        uow.commit()
    fresh = org.sign_in_fresh("fresh@example.com", SECOND_PASSWORD)
    mine = org.propose_rule()["data"]["approval"]
    org.call("POST", f"/api/approvals/{mine['id']}/approve", fresh, 200, json={})
    theirs = org.propose_rule(other_admin)["data"]["approval"]
    org.error("POST", f"/api/approvals/{theirs['id']}/approve", fresh, 403, "CHECKER_NOT_INDEPENDENT", json={})
    assert other_id


def test_a_new_organization_starts_with_a_resolution_threshold(org: Org) -> None:
    with org.container.database.unit_of_work(org.organization_id) as uow:
        organization = uow.organizations.get(org.organization_id)
    assert organization is not None
    assert organization.settings["workflow"]["resolution_approval_threshold"] == {"NGN": "100000.00", "*": "100.00"}


def test_an_operator_adds_the_first_checker_of_a_lone_admin(client: TestClient, container: Container) -> None:
    import argparse
    import io

    from reckai.entrypoints.cli.org import add_user_command

    _, admin = onboard(client)
    token = login(client, admin.org_code, admin.email, admin.password)
    refused = client.post("/api/rules", json={"name": "Alone", "definition": EXACT}, headers=bearer(token))
    assert refused.status_code == 409
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(code=admin.org_code.upper(), email="first.checker@example.com", name="First Checker",
                              role="supervisor")
    assert add_user_command(container, args, DEFAULT_PASSWORD, out, err) == 0, err.getvalue()
    assert add_user_command(container, args, DEFAULT_PASSWORD, out, err) == 2  # the e-mail is taken
    relax_auth_limits(client)
    first = client.post("/api/auth/login", json={"organization_code": admin.org_code,
                                                 "email": "first.checker@example.com", "password": DEFAULT_PASSWORD})
    assert first.json()["data"]["status"] == "password_change_required"  # provisional
    proposed = client.post("/api/rules", json={"name": "Now checked", "definition": EXACT}, headers=bearer(token))
    assert proposed.status_code == 202, proposed.text
