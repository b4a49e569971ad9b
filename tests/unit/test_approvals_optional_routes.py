"""The optional approval types through the ordinary routes (docs/workflow.md, docs/identity.md):
POST /api/users with a user_onboarding approval required, PUT /api/settings with a system_setting
approval required. Both ways: without the requirement the change is direct (201/200); with it the
route answers 202 with the approval, nothing changes until a checker (never the requester)
approves, and max_users is enforced when the approval is decided.

The flows take a TestClient and its container, so the PostgreSQL test
(tests/integration/test_workflow_optional_approvals_postgres.py) runs the same ones."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from tests.support.identity import bearer, create_user_with_role, login, onboard


@dataclass
class Org:
    client: TestClient
    container: Container
    organization_id: uuid.UUID
    admin: str
    supervisor: str
    second_admin: str

    def call(self, method: str, path: str, token: str, status: int, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=bearer(token), **kwargs)
        assert response.status_code == status, response.text
        return response.json()

    def settings(self) -> dict[str, Any]:
        return self.call("GET", "/api/settings", self.admin, 200)["data"]  # type: ignore[no-any-return]

    def emails(self) -> set[str]:
        return {u["email"] for u in self.call("GET", "/api/users?per_page=100", self.admin, 200)["data"]}

    def require(self, *types: str) -> None:
        """Route these types through a checker (a system_setting approval of its own, approved)."""
        asked = self.call("POST", "/api/approvals", self.admin, 201, json={
            "type": "system_setting", "title": "Controls", "description": "maker-checker for these",
            "metadata": {"key": "workflow", "value": {"approval_required_for": list(types)}}})["data"]
        self.call("POST", f"/api/approvals/{asked['id']}/approve", self.supervisor, 200, json={})

    def set_max_users(self, limit: int) -> None:
        with self.container.database.unit_of_work(self.organization_id) as uow:
            quota = uow.quotas.get_for_update(self.organization_id)
            quota.max_users = limit
            uow.quotas.update(quota)
            uow.commit()

    def audited(self, action: str, approval_id: str) -> bool:
        """Whether `action` was audited as the effect of this approval."""
        return any(r.event.action == action and (r.event.metadata or {}).get("approval_id") == approval_id
                   for r in self.container.audit_log.read_chain(self.organization_id, 0, 10_000))


def make_org(client: TestClient, container: Container) -> Org:
    organization_id, admin = onboard(client)
    admin_token = login(client, admin.org_code, admin.email, admin.password)
    _, supervisor = create_user_with_role(client, admin_token, "supervisor")
    _, second_admin = create_user_with_role(client, admin_token, "admin")
    return Org(client, container, organization_id, admin_token, supervisor, second_admin)


def error_code(body: dict[str, Any]) -> str:
    return str(body["error"]["code"])


# --- POST /api/users and user_onboarding ---------------------------------------------------------


def flow_user_creation_is_direct_without_the_requirement(org: Org) -> None:
    created = org.call("POST", "/api/users", org.admin, 201,
                       json={"email": "direct@example.com", "name": "Dee Rect", "role": "analyst"})["data"]
    assert created["email"] == "direct@example.com" and "direct@example.com" in org.emails()


def flow_user_creation_becomes_a_user_onboarding_request(org: Org, via: str) -> None:
    if via == "flag":
        org.call("PUT", "/api/settings", org.admin, 200, json={"user_onboarding_requires_approval": True})
    else:
        org.require("user_onboarding")
    email = f"new.{uuid.uuid4().hex[:6]}@example.com"
    answer = org.call("POST", "/api/users", org.admin, 202, json={"email": email, "name": "Nina New", "role": "auditor"})
    pending = answer["data"]["pending_approval"]
    assert pending["type"] == "user_onboarding" and pending["status"] == "pending"
    assert pending["metadata"] == {"email": email, "name": "Nina New", "role": "auditor"}
    assert email not in org.emails()
    # The requester can never approve their own request, even as an admin who may approve.
    refused = org.call("POST", f"/api/approvals/{pending['id']}/approve", org.admin, 403, json={})
    assert error_code(refused) == "SELF_APPROVAL_FORBIDDEN"
    assert email not in org.emails()
    approved = org.call("POST", f"/api/approvals/{pending['id']}/approve", org.supervisor, 200, json={})["data"]
    assert approved["effect"]["kind"] == "user_created"
    assert email in org.emails()
    assert org.audited("user.created", pending["id"])
    # A password is never stored in a request: refused with a clear message, nothing requested.
    before = len(org.call("GET", "/api/approvals?type=user_onboarding&per_page=100", org.admin, 200)["data"])
    with_password = org.call("POST", "/api/users", org.admin, 400, json={
        "email": "p@example.com", "name": "Pat Word", "role": "analyst", "password": "Quartz!Ledger-7291"})
    assert with_password["error"]["details"][0]["field"] == "password"
    bad_email = org.call("POST", "/api/users", org.admin, 400,
                         json={"email": "not-an-address", "name": "N", "role": "analyst"})
    assert bad_email["error"]["details"][0]["field"] == "email"
    after = len(org.call("GET", "/api/approvals?type=user_onboarding&per_page=100", org.admin, 200)["data"])
    assert after == before


def flow_max_users_is_enforced_when_the_request_is_approved(org: Org) -> None:
    org.call("PUT", "/api/settings", org.admin, 200, json={"user_onboarding_requires_approval": True})
    active = len(org.emails())
    org.set_max_users(active + 1)
    first = org.call("POST", "/api/users", org.admin, 202,
                     json={"email": "one@example.com", "name": "One", "role": "analyst"})["data"]["pending_approval"]
    second = org.call("POST", "/api/users", org.second_admin, 202,
                      json={"email": "two@example.com", "name": "Two", "role": "analyst"})["data"]["pending_approval"]
    org.call("POST", f"/api/approvals/{first['id']}/approve", org.supervisor, 200, json={})
    full = org.call("POST", f"/api/approvals/{second['id']}/approve", org.supervisor, 403, json={})
    assert error_code(full) == "QUOTA_EXCEEDED"
    assert "two@example.com" not in org.emails()
    still = org.call("GET", f"/api/approvals/{second['id']}", org.admin, 200)["data"]["approval"]
    assert still["status"] == "pending"  # nothing was decided: a slot freed later lets it through
    # A new request while the organization is full is refused at once.
    refused = org.call("POST", "/api/users", org.admin, 403,
                       json={"email": "three@example.com", "name": "Three", "role": "analyst"})
    assert error_code(refused) == "QUOTA_EXCEEDED"
    org.set_max_users(active + 2)
    org.call("POST", f"/api/approvals/{second['id']}/approve", org.supervisor, 200, json={})
    assert {"one@example.com", "two@example.com"} <= org.emails()


# --- PUT /api/settings and system_setting --------------------------------------------------------


def flow_settings_change_directly_without_the_requirement(org: Org) -> None:
    answer = org.call("PUT", "/api/settings", org.admin, 200, json={"name": "Direct Bank"})["data"]
    assert answer["name"] == "Direct Bank" and answer["pending_approval"] is None
    assert org.settings()["name"] == "Direct Bank"


def flow_settings_change_only_when_a_checker_approves(org: Org) -> None:
    org.require("system_setting")
    before = org.settings()
    answer = org.call("PUT", "/api/settings", org.admin, 202, json={
        "name": "Checked Bank", "password_policy": {"min_length": 12}, "user_onboarding_requires_approval": True})
    body = answer["data"]
    pending = body["pending_approval"]
    assert pending["type"] == "system_setting" and pending["status"] == "pending"
    assert pending["metadata"] == {"key": "organization", "value": {
        "name": "Checked Bank", "password_policy": {"min_length": 12}, "user_onboarding_requires_approval": True}}
    assert body["name"] == before["name"]  # the answer shows the settings as they still are
    after_request = org.settings()
    assert after_request["name"] == before["name"]
    assert after_request["password_policy"]["min_length"] == before["password_policy"]["min_length"]
    assert after_request["user_onboarding_requires_approval"] is False
    refused = org.call("POST", f"/api/approvals/{pending['id']}/approve", org.admin, 403, json={})
    assert error_code(refused) == "SELF_APPROVAL_FORBIDDEN"
    assert org.settings()["name"] == before["name"]
    # The checker sees what would change against what is there now.
    detail = org.call("GET", f"/api/approvals/{pending['id']}", org.supervisor, 200)["data"]
    assert detail["subject"]["current_value"] == {"name": before["name"], "password_policy": None,
                                                  "user_onboarding_requires_approval": None}
    approved = org.call("POST", f"/api/approvals/{pending['id']}/approve", org.second_admin, 200, json={})["data"]
    assert approved["effect"]["kind"] == "setting_changed"
    now = org.settings()
    assert now["name"] == "Checked Bank" and now["password_policy"]["min_length"] == 12
    assert now["user_onboarding_requires_approval"] is True
    assert org.audited("organization.settings_changed", pending["id"])


def flow_settings_requests_are_validated_declined_and_empty_ones_change_nothing(org: Org) -> None:
    org.require("system_setting")
    count = len(org.call("GET", "/api/approvals?type=system_setting&per_page=100", org.admin, 200)["data"])
    loose = org.call("PUT", "/api/settings", org.admin, 400, json={"password_policy": {"min_length": 6}})
    assert loose["error"]["details"][0]["field"] == "password_policy.min_length"
    empty = org.call("PUT", "/api/settings", org.admin, 200, json={})["data"]
    assert empty["pending_approval"] is None
    assert len(org.call("GET", "/api/approvals?type=system_setting&per_page=100", org.admin, 200)["data"]) == count
    name = org.settings()["name"]
    pending = org.call("PUT", "/api/settings", org.admin, 202, json={"name": "Never"})["data"]["pending_approval"]
    org.call("POST", f"/api/approvals/{pending['id']}/decline", org.supervisor, 200, json={"comment": "no"})
    assert org.settings()["name"] == name
    # Turning a control off is a setting change like any other: it waits for a checker too.
    off = org.call("PUT", "/api/settings", org.admin, 202, json={"user_onboarding_requires_approval": False})
    assert off["data"]["pending_approval"]["metadata"]["value"] == {"user_onboarding_requires_approval": False}


# --- in memory -----------------------------------------------------------------------------------


@pytest.fixture
def org() -> Iterator[Org]:
    container = bootstrap_in_memory()
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield make_org(client, container)


def test_user_creation_is_direct_without_the_requirement(org: Org) -> None:
    flow_user_creation_is_direct_without_the_requirement(org)


@pytest.mark.parametrize("via", ["flag", "approval_required_for"])
def test_user_creation_becomes_a_user_onboarding_request(org: Org, via: str) -> None:
    flow_user_creation_becomes_a_user_onboarding_request(org, via)


def test_max_users_is_enforced_when_the_request_is_approved(org: Org) -> None:
    flow_max_users_is_enforced_when_the_request_is_approved(org)


def test_settings_change_directly_without_the_requirement(org: Org) -> None:
    flow_settings_change_directly_without_the_requirement(org)


def test_settings_change_only_when_a_checker_approves(org: Org) -> None:
    flow_settings_change_only_when_a_checker_approves(org)


def test_settings_requests_are_validated_declined_and_empty_ones_change_nothing(org: Org) -> None:
    flow_settings_requests_are_validated_declined_and_empty_ones_change_nothing(org)
