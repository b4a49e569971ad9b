"""Authorization over the real app: every route declares a permission or is public; every role
against every protected endpoint (403 PERMISSION_DENIED envelope exactly when the matrix says
no, audited); no token is 401; tenant isolation (another organization's ids are 404)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from reckai.application.ports.audit import AuditQuery
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.domain.identity.permissions import ALL_PERMISSIONS, Role, has_permission
from reckai.entrypoints.http.app import create_app
from reckai.entrypoints.http.permissions import declared_permission, is_public, undeclared_routes
from tests.support.identity import bearer, create_user_with_role, login, onboard

ROLES = [role.value for role in Role]


def protected_endpoints(app: Litestar) -> list[tuple[str, str, str]]:
    """(method, path, permission) of every non-public route of the app."""
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if set(handler.http_methods) == {"OPTIONS"} or is_public(handler):
                continue
            permission = declared_permission(handler)
            assert permission is not None, (route.path, handler)
            for method in sorted(handler.http_methods):
                found.append((method, route.path, permission))
    return sorted(found)


def concrete(path: str) -> str:
    """A path with every parameter filled: uuids for `:uuid`, 1 for `:int`, a plain word otherwise."""
    return re.sub(r"\{([^}:]+)(?::([^}]+))?\}",
                  lambda m: str(uuid.uuid4()) if m.group(2) in ("uuid", None) else "1" if m.group(2) == "int" else "x",
                  path)


def _world() -> Iterator[tuple[Container, TestClient, dict[str, str], Any]]:
    container = bootstrap_in_memory()
    app = create_app(container)
    with TestClient(app, raise_server_exceptions=False) as client:
        org_id, admin = onboard(client)
        tokens = {"admin": login(client, admin.org_code, admin.email, admin.password)}
        for role in ROLES:
            if role != "admin":
                tokens[role] = create_user_with_role(client, tokens["admin"], role)[1]
        yield container, client, tokens, org_id


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[Container, TestClient, dict[str, str], Any]]:
    yield from _world()


@pytest.fixture
def fresh_world() -> Iterator[tuple[Container, TestClient, dict[str, str], Any]]:
    yield from _world()


def test_no_route_without_a_declared_permission_and_every_permission_is_in_the_matrix() -> None:
    app = create_app(bootstrap_in_memory())
    assert undeclared_routes(app) == []
    for method, path, permission in protected_endpoints(app):
        assert permission in ALL_PERMISSIONS, (method, path, permission)


def test_the_identity_endpoints_are_protected_as_documented() -> None:
    endpoints = {(m, p): perm for m, p, perm in protected_endpoints(create_app(bootstrap_in_memory()))}
    assert endpoints[("GET", "/api/users")] == "users:read"
    assert endpoints[("POST", "/api/users")] == "users:write"
    assert endpoints[("DELETE", "/api/users/{user_id:uuid}")] == "users:delete"
    assert endpoints[("POST", "/api/users/{user_id:uuid}/invite")] == "users:write"
    assert endpoints[("POST", "/api/users/{user_id:uuid}/mfa/reset")] == "users:write"
    assert endpoints[("POST", "/api/users/{user_id:uuid}/erase")] == "users:delete"  # issue 17 item 5
    assert endpoints[("GET", "/api/settings")] == "settings:read"
    assert endpoints[("PUT", "/api/settings")] == "settings:write"
    assert endpoints[("POST", "/api/auth/mfa/enable")] == "account:self"
    assert endpoints[("POST", "/api/auth/password/change")] == "account:self"
    assert endpoints[("POST", "/api/auth/email-verification/resend")] == "account:self"


def test_the_download_and_export_endpoints_are_protected_as_issue_14_says() -> None:
    endpoints = {(m, p): perm for m, p, perm in protected_endpoints(create_app(bootstrap_in_memory()))}
    assert endpoints[("GET", "/api/reconciliations/{job_id:uuid}/outputs")] == "reconciliations:read"
    assert endpoints[("GET", "/api/reconciliations/{job_id:uuid}/outputs/{name:str}/download")] == \
        "reconciliations:read"
    assert endpoints[("GET", "/api/approvals/{approval_id:uuid}/ledger-postings/download")] == "ledger_postings:read"
    assert endpoints[("GET", "/api/exceptions/export")] == "exceptions:read"
    # whoever may read an approval, and auditors, may read its ledger posting
    readers = {role for role in ROLES if has_permission(role, "approvals:read") or has_permission(role, "audit:read")}
    assert readers == {role for role in ROLES if has_permission(role, "ledger_postings:read")} == set(ROLES)


def test_the_audit_log_endpoints_need_audit_read() -> None:
    endpoints = {(m, p): perm for m, p, perm in protected_endpoints(create_app(bootstrap_in_memory()))}
    for path in ("/api/audit-logs", "/api/audit-logs/verify", "/api/audit-logs/export"):
        assert endpoints[("GET", path)] == "audit:read", path
    assert {role for role in ROLES if has_permission(role, "audit:read")} == {"admin", "auditor"}


def test_every_role_against_every_protected_endpoint(world: Any) -> None:
    container, client, tokens, org_id = world
    app = client.app
    checked = 0
    # Logout blacklists the caller's token: walk it last.
    endpoints = sorted(protected_endpoints(app), key=lambda e: e[1] == "/api/auth/logout")
    for method, path, permission in endpoints:
        url = concrete(path)
        for role in ROLES:
            response = client.request(method, url, headers=bearer(tokens[role]), json={} if method in
                                      ("POST", "PUT", "PATCH") else None)
            # an export answers its file (CSV) rather than JSON
            body = response.json() if "json" in response.headers.get("content-type", "") else None
            if has_permission(role, permission):
                assert response.status_code not in (401, 403), (role, method, path, response.text)
            else:
                assert response.status_code == 403, (role, method, path, response.status_code, response.text)
                assert body == {"success": False, "error": {"code": "PERMISSION_DENIED",
                                                            "message": "You do not have permission to do this",
                                                            "details": []}}
            checked += 1
        unauthenticated = client.request(method, url)
        assert unauthenticated.status_code == 401, (method, path)
        assert unauthenticated.json()["error"]["code"] == "UNAUTHENTICATED"
    assert checked >= 4 * 15
    denied = [r for r in container.audit_log.list_records(org_id, AuditQuery(action="authz.denied", limit=500)).records]
    assert denied and all(r.event.response_status == 403 and r.event.user_id for r in denied)
    assert {r.event.metadata["permission"] for r in denied} >= {"users:read", "settings:write"}


def test_a_malformed_or_foreign_token_is_401(world: Any) -> None:
    _, client, tokens, _ = world
    for header in ("Bearer nonsense", "Basic abc", f"Bearer {tokens['admin']}x", tokens["admin"]):
        response = client.get("/api/users", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_tenant_isolation_ids_of_another_organization_are_not_found(fresh_world: Any) -> None:
    _container, client, tokens, org_a = fresh_world
    _, admin_b = onboard(client)
    token_b = login(client, admin_b.org_code, admin_b.email, admin_b.password)
    users_a = client.get("/api/users", headers=bearer(tokens["admin"])).json()["data"]
    victim = next(u["id"] for u in users_a if u["role"] == "analyst")
    listed_b = [u["id"] for u in client.get("/api/users", headers=bearer(token_b)).json()["data"]]
    assert victim not in listed_b and len(listed_b) == 1
    for method, url, body in (
        ("GET", f"/api/users/{victim}", None),
        ("PUT", f"/api/users/{victim}", {"role": "admin"}),
        ("DELETE", f"/api/users/{victim}", None),
        ("POST", f"/api/users/{victim}/invite", None),
        ("POST", f"/api/users/{victim}/mfa/reset", {"password": admin_b.password}),
        ("POST", f"/api/users/{victim}/erase", {}),
        ("GET", f"/api/sessions?user_id={victim}", None),
    ):
        response = client.request(method, url, headers=bearer(token_b), json=body)
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["error"]["code"] == "NOT_FOUND"
    sessions_a = client.get("/api/sessions", headers=bearer(tokens["admin"])).json()["data"]
    assert sessions_a
    ended = client.delete(f"/api/sessions/{sessions_a[0]['id']}", headers=bearer(token_b))
    assert ended.status_code == 404
    # nothing changed in organization A
    still = client.get(f"/api/users/{victim}", headers=bearer(tokens["admin"])).json()["data"]
    assert still["role"] == "analyst" and still["is_active"] is True
    assert client.get("/api/sessions", headers=bearer(tokens["admin"])).json()["data"] == sessions_a
    settings_b = client.get("/api/settings", headers=bearer(token_b)).json()["data"]
    assert settings_b["organization_id"] != str(org_a)


def test_the_report_endpoints_are_protected_as_issue_14_says() -> None:
    endpoints = {(m, p): perm for m, p, perm in protected_endpoints(create_app(bootstrap_in_memory()))}
    assert endpoints[("POST", "/api/reports")] == "reports:generate"
    assert endpoints[("GET", "/api/reports")] == "reports:read"
    assert endpoints[("GET", "/api/reports/{report_id:uuid}")] == "reports:read"
    assert endpoints[("GET", "/api/reports/{report_id:uuid}/download")] == "reports:read"
    assert endpoints[("DELETE", "/api/reports/{report_id:uuid}")] == "reports:generate"


def test_the_audit_report_needs_audit_read_to_request_and_to_download(fresh_world: Any) -> None:
    """Analysts hold reports:* but not audit:read: they may neither ask for nor download the audit
    report; every role is walked over both."""
    import time as clock

    container, client, tokens, _org_id = fresh_world
    answers = {role: client.post("/api/reports", json={"type": "audit", "format": "csv"}, headers=bearer(tokens[role]))
               for role in ROLES}
    for role, answer in answers.items():
        allowed = has_permission(role, "reports:generate") and has_permission(role, "audit:read")
        assert answer.status_code == (202 if allowed else 403), (role, answer.text)
    assert answers["analyst"].json()["error"]["code"] == "PERMISSION_DENIED"
    report_id = answers["admin"].json()["data"]["report"]["id"]
    container.worker_runner.start()
    try:
        container.worker_runner.wake_relay()
        for _ in range(200):
            status = client.get(f"/api/reports/{report_id}", headers=bearer(tokens["admin"])).json()["data"]["status"]
            if status == "completed":
                break
            clock.sleep(0.05)
        assert status == "completed"
    finally:
        container.worker_runner.stop()
    for role in ROLES:
        answer = client.get(f"/api/reports/{report_id}/download", headers=bearer(tokens[role]))
        allowed = has_permission(role, "reports:read") and has_permission(role, "audit:read")
        assert answer.status_code == (200 if allowed else 403), (role, answer.text)


def test_the_privacy_export_endpoints_are_protected_as_issue_17_says(fresh_world: Any) -> None:
    """Every signed-in person may ask for their own export (account:self); another person's needs an
    admin, and the organization's is an admin's request (a `data_export` approval)."""
    _container, client, tokens, _ = fresh_world
    endpoints = {(m, p): perm for m, p, perm in protected_endpoints(client.app)}
    assert endpoints[("POST", "/api/privacy/exports")] == "account:self"
    assert endpoints[("GET", "/api/privacy/exports/{export_id:uuid}")] == "account:self"
    assert endpoints[("GET", "/api/privacy/exports/{export_id:uuid}/download")] == "account:self"
    ids = {role: client.get("/api/auth/me", headers=bearer(tokens[role])).json()["data"]["user_id"] for role in ROLES}
    for role in ROLES:
        own = client.post("/api/privacy/exports", json={"scope": "user"}, headers=bearer(tokens[role]))
        assert own.status_code == 202, (role, own.text)
        other = next(r for r in ROLES if r != role)
        theirs = client.post("/api/privacy/exports", json={"scope": "user", "user_id": ids[other]},
                             headers=bearer(tokens[role]))
        assert theirs.status_code == (202 if role == "admin" else 403), (role, theirs.text)
        organization = client.post("/api/privacy/exports", json={"scope": "organization"},
                                   headers=bearer(tokens[role]))
        assert organization.status_code == (202 if role == "admin" else 403), (role, organization.text)
        if role == "admin":
            assert organization.json()["data"]["pending_approval"]["type"] == "data_export"
