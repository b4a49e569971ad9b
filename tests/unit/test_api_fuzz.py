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
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.bootstrap import bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from tests.support import api_fuzz as fz
from tests.support.identity import bearer

EXAMPLES = int(os.environ.get("RECKAI_FUZZ_EXAMPLES", "20"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])


@cache
def _document_and_operations() -> tuple[dict[str, Any], list[fz.Operation]]:
    app = create_app(bootstrap_in_memory())
    document = fz.fetch_document(app)
    return document, fz.operations(app, document)


OPERATIONS = _document_and_operations()[1]


@pytest.fixture(scope="module")
def fuzz() -> Iterator[tuple[fz.FuzzTenant, fz.Generator]]:
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    container.worker_runner.start()
    try:
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            yield fz.set_up_tenant(client, container, _document_and_operations()[0])
    finally:
        container.worker_runner.stop()


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


@settings(FUZZ, max_examples=EXAMPLES * 10)
@given(data=st.data())
def test_requests_to_operations_in_random_order_never_5xx(fuzz: tuple[fz.FuzzTenant, fz.Generator],
                                                          data: st.DataObject) -> None:
    """One request per example to any operation: the state one leaves (a tightened policy, a
    locked account, a resolved exception, a decided approval) meets every other route."""
    tenant, generator = fuzz
    operation = data.draw(st.sampled_from(OPERATIONS), label="operation")
    fz.run_operation_examples(tenant, data.draw(fz.requests_for(operation, generator, tenant), label="request"))


def test_every_list_route_answers_a_success_envelope_to_the_admin(fuzz: tuple[fz.FuzzTenant, fz.Generator]) -> None:
    """The fuzzer is not only meeting 401s and 404s: the set-up gives each role a working token."""
    tenant, _ = fuzz
    for operation in OPERATIONS:
        if operation.method != "GET" or "{" in operation.path or not operation.path.startswith("/api/"):
            continue
        tenant.fresh_limits()
        response = tenant.client.get(operation.path, headers=bearer(tenant.token("admin")))
        assert response.status_code == 200, (operation.id, response.text[:300])
        if "json" in response.headers.get("content-type", ""):  # an export answers its file
            assert response.json()["success"] is True


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.id for op in OPERATIONS])
def test_nul_bytes_and_overflowing_numbers_never_5xx(
        fuzz: tuple[fz.FuzzTenant, fz.Generator], operation: fz.Operation) -> None:
    """Each string of a full body, each query parameter and each path id in turn, carrying a NUL
    byte (PostgreSQL refuses them in text) or a number past every integer type: 4xx, enveloped."""
    tenant, generator = fuzz
    for request in fz.edge_requests(operation, generator, tenant):
        response = fz.run_operation_examples(tenant, request)
        if any(fz.NUL in value for _, value in request.query) or (request.content and b"\\u0000" in request.content):
            assert response.status_code in (400, 401, 403, 404, 405, 413, 415, 422), request.describe()
