"""Fuzzing every route of the API (hypothesis), driven by the app's own OpenAPI document, on the
in-memory container through the in-process TestClient.

One tenant with a user of each role, real files, a completed reconciliation job with its
exceptions, a pending rule change and approvals; then, for every operation of /schema/openapi.json
(plus any route the document leaves out), random requests from tests/support/api_fuzz.py: damaged
bodies, odd path ids and query parameters, random headers, each role's token, no token, broken
tokens. The contract: never a 5xx, every error is the envelope, every 2xx is a success envelope.

RECKAI_FUZZ_EXAMPLES=N runs N examples per operation (default 20, about a minute in all).
tests/integration/test_api_fuzz_postgres.py runs the same fuzzer against PostgreSQL.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from tests.support import api_fuzz as fz
from tests.support import reconciliation_jobs as rj
from tests.support.identity import (
    DEFAULT_PASSWORD,
    SECOND_PASSWORD,
    bearer,
    create_user_with_role,
    login,
    onboard,
)

EXAMPLES = int(os.environ.get("RECKAI_FUZZ_EXAMPLES", "20"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])


@cache
def _document_and_operations() -> tuple[dict[str, Any], list[fz.Operation]]:
    app = create_app(bootstrap_in_memory())
    with TestClient(app) as client:
        document = client.get("/schema/openapi.json").json()
    return document, fz.operations(app, document)


OPERATIONS = _document_and_operations()[1]


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    return response.json()["data"]


@pytest.fixture(scope="module")
def fuzz() -> Iterator[tuple[fz.FuzzTenant, fz.Generator]]:
    container = bootstrap_in_memory()
    container.components["scanner"] = InMemoryScanner()
    container.worker_runner.start()
    try:
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            yield _tenant(client, container)
    finally:
        container.worker_runner.stop()


def _tenant(client: TestClient[Any], container: Container) -> tuple[fz.FuzzTenant, fz.Generator]:
    """The organization the fuzzer works in, with something behind each kind of id."""
    org_id, admin = onboard(client)
    token = login(client, admin.org_code, admin.email, admin.password)
    emails, passwords, user_ids = {"admin": admin.email}, {"admin": admin.password}, {"admin": admin.user_id}
    for role in fz.ROLES[1:]:
        email = f"{role}.{uuid.uuid4().hex[:8]}@example.com"
        user_ids[role], _ = create_user_with_role(client, token, role, email=email)
        emails[role], passwords[role] = email, SECOND_PASSWORD
    tenant = fz.FuzzTenant(client, container, admin.org_code, emails, passwords, user_ids)
    for role in fz.ROLES:
        tenant.sign_in(role)
    h = bearer(tenant.token("admin"))
    tenant.fresh_limits()
    document = _document_and_operations()[0]
    profile = rj.profile()
    files = []
    for data, name, kind, side in ((rj.bank_bytes(), "bank.csv", "bank", "left"),
                                   (rj.switch_bytes(), "switch.csv", "switch", "right")):
        uploaded = _ok(client.post("/api/files/upload", data={"file_type": kind},
                                   files={"file": (name, data, "text/csv")}, headers=h), 201)
        _ok(client.post(f"/api/files/{uploaded['id']}/map", json={"transformation_rules": profile[side]["mapping"]},
                        headers=h))
        files.append(uploaded["id"])
    rj.seed_rules(container.database, org_id, admin.user_id)
    job = _ok(client.post("/api/reconciliations", json=rj.start_body(*files), headers=h), 201)
    container.worker_runner.wake_relay()
    deadline = time.monotonic() + 120
    while _ok(client.get(f"/api/reconciliations/{job['id']}", headers=h))["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    exceptions = _ok(client.get("/api/exceptions?per_page=10", headers=h))
    proposal = _ok(client.post("/api/rules", json={"name": "fuzz-rule", "definition": _rule_definition()},
                               headers=h), 202)
    report = _ok(client.post("/api/approvals", json=_approval_examples()[0], headers=h), 201)
    victims = [_ok(client.post("/api/users", json={"email": f"victim.{uuid.uuid4().hex[:6]}@example.com",
                                                   "name": "Vic Tim", "role": "analyst", "password": DEFAULT_PASSWORD},
                               headers=h), 201)["id"] for _ in range(2)]
    sessions = [s["id"] for s in _ok(client.get("/api/sessions", headers=h))]
    ids = {"file_id": files, "job_id": [job["id"]], "exception_id": [e["id"] for e in exceptions],
           "rule_id": [proposal["rule"]["id"]], "approval_id": [proposal["approval"]["id"], report["id"]],
           "user_id": victims}
    read_only = {"user_id": [str(u) for u in user_ids.values()], "session_id": sessions}
    pools = fz.seed_pools(document, ids, read_only, _examples(profile, files))
    return tenant, fz.Generator(document, pools)


def _rule_definition() -> dict[str, Any]:
    rule = rj.profile()["rules"][0]
    return {k: v for k, v in rule.items() if k not in ("name", "version")}


def _approval_examples() -> list[dict[str, Any]]:
    return [
        {"type": "report_generation", "title": "Aging", "description": "month end",
         "metadata": {"report_type": "aging", "format": "csv"}},
        {"type": "ledger_posting", "title": "Suspense", "description": "clear",
         "metadata": {"currency": "NGN", "entries": [{"account": "1001", "direction": "debit", "amount_minor": 5000},
                                                      {"account": "2001", "direction": "credit", "amount_minor": 5000}]}},
        {"type": "system_setting", "title": "Threshold", "description": "money at stake",
         "metadata": {"key": "workflow", "value": {"resolution_approval_threshold": {"NGN": "1000000.00"}}}},
        {"type": "user_onboarding", "title": "New", "description": "audit",
         "metadata": {"email": "new.user@example.com", "name": "Nora New", "role": "auditor"}},
    ]


def _examples(profile: dict[str, Any], files: list[str]) -> dict[str, list[Any]]:
    """Plausible values for free-form fields (objects the schema cannot describe), so damaged
    variants reach the parsers behind them (rules, mappings, approval metadata, job options)."""
    start = rj.start_body(*[uuid.UUID(f) for f in files])
    return {
        "definition": [_rule_definition(), {**_rule_definition(), "rule_type": "fuzzy"}],
        "transformation_rules": [profile["left"]["mapping"], profile["right"]["mapping"]],
        "options": [start["options"]],
        "metadata": [a["metadata"] for a in _approval_examples()],
        "rule_ids": [[]],
        "password_policy": [{"min_length": 12, "history_size": 6}],
    }


def test_the_document_lists_every_route_and_the_fuzzer_covers_them() -> None:
    ids = {op.id for op in OPERATIONS}
    for expected in ("GET /api/users", "POST /api/reconciliations", "PATCH /api/exceptions/{exception_id}",
                     "POST /api/files/upload", "PUT /api/settings", "POST /api/auth/login"):
        assert expected in ids
    assert len(OPERATIONS) >= 50


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.id for op in OPERATIONS])
def test_operation_never_answers_5xx_and_always_an_envelope(
        fuzz: tuple[fz.FuzzTenant, fz.Generator], operation: fz.Operation) -> None:
    tenant, generator = fuzz

    @FUZZ
    @given(request=fz.requests_for(operation, generator, tenant))
    def run(request: fz.FuzzRequest) -> None:
        fz.run_operation_examples(tenant, request)

    run()


def test_every_list_route_answers_a_success_envelope_to_the_admin(fuzz: tuple[fz.FuzzTenant, fz.Generator]) -> None:
    """The fuzzer is not only meeting 401s and 404s: the set-up gives each role a working token."""
    tenant, _ = fuzz
    for operation in OPERATIONS:
        if operation.method != "GET" or "{" in operation.path or not operation.path.startswith("/api/"):
            continue
        tenant.fresh_limits()
        response = tenant.client.get(operation.path, headers=bearer(tenant.token("admin")))
        assert response.status_code == 200, (operation.id, response.text[:300])
        assert response.json()["success"] is True
