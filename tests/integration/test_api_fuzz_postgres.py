"""The API fuzzer of tests/unit/test_api_fuzz.py against the real PostgreSQL-backed app (embedded
PostgreSQL, row-level security, the in-process job worker), with fewer examples: some answers only
go wrong with a real database (text that PostgreSQL refuses, such as a NUL character; integers past
bigint; ids that are no UUID reaching a query).

RECKAI_FUZZ_EXAMPLES_PG=N runs N random examples per operation (default 6); the NUL/overflow sweep
always runs in full.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.bootstrap import Container, bootstrap, bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.support import api_fuzz as fz

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("RECKAI_FUZZ_EXAMPLES_PG", "6"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])


@cache
def _document_and_operations() -> tuple[dict[str, Any], list[fz.Operation]]:
    app = create_app(bootstrap_in_memory())  # the document does not depend on the adapters
    document = fz.fetch_document(app)
    return document, fz.operations(app, document)


OPERATIONS = _document_and_operations()[1]


@pytest.fixture(scope="module")
def container(pg_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root: Path = tmp_path_factory.mktemp("api-fuzz")
    settings = Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=pg_database.app_url, pool_size=4),
                        storage=StorageSettings(backend="filesystem", filesystem_root=root / "storage"),
                        mailer=MailerSettings(backend="file", outbox_dir=root / "mail"))
    built = bootstrap(settings, scanner=InMemoryScanner())
    built.worker_runner.start()
    try:
        yield built
    finally:
        built.worker_runner.stop()
        built.close()


@pytest.fixture(scope="module")
def fuzz(container: Container) -> Iterator[tuple[fz.FuzzTenant, fz.Generator]]:
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield fz.set_up_tenant(client, container, _document_and_operations()[0])


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.id for op in OPERATIONS])
def test_operation_never_answers_5xx_on_postgres(fuzz: tuple[fz.FuzzTenant, fz.Generator],
                                                 operation: fz.Operation) -> None:
    tenant, generator = fuzz

    @FUZZ
    @given(request=fz.requests_for(operation, generator, tenant))
    def run(request: fz.FuzzRequest) -> None:
        fz.run_operation_examples(tenant, request)

    run()


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.id for op in OPERATIONS])
def test_nul_bytes_and_overflowing_numbers_never_5xx_on_postgres(fuzz: tuple[fz.FuzzTenant, fz.Generator],
                                                                 operation: fz.Operation) -> None:
    """Each string of a full body, each query parameter, each path id in turn with a NUL byte
    (PostgreSQL refuses it in text and jsonb) or a number past bigint: a 4xx envelope, never 500."""
    tenant, generator = fuzz
    for request in fz.edge_requests(operation, generator, tenant):
        response = fz.run_operation_examples(tenant, request)
        if any(fz.NUL in value for _, value in request.query) or (request.content and b"\\u0000" in request.content):
            assert response.status_code in (400, 401, 403, 404, 405, 413, 415, 422), request.describe()


def test_bigint_overflow_in_json_integers_is_refused_not_500(fuzz: tuple[fz.FuzzTenant, fz.Generator]) -> None:
    tenant, generator = fuzz
    h = fz.bearer(tenant.token("admin"))
    job_id = generator.pools.ids["job_id"][0]
    for amount in (2**63, 2**64, -(2**63) - 1, 10**30):
        tenant.fresh_limits()
        response = tenant.client.post("/api/exceptions/matching/link", headers=h, json={
            "job_id": job_id, "rows": [{"side": "left", "row_number": amount, "amount_minor": amount},
                                       {"side": "right", "row_number": 1, "amount_minor": amount}]})
        request = fz.FuzzRequest("POST", "/api/exceptions/matching/link", [], h, None, None, None, "admin")
        fz.check_response(request, response)


@pytest.mark.parametrize("path", ["/api/users", "/api/rules", "/api/reconciliations", "/api/approvals", "/api/exceptions"])
def test_a_page_past_bigint_is_a_validation_error_on_postgres(fuzz: tuple[fz.FuzzTenant, fz.Generator],
                                                              path: str) -> None:
    """Found by the fuzzer: ?page=9223372036854775808 made an OFFSET past bigint (500 from PostgreSQL)."""
    tenant, _ = fuzz
    for page in ("9223372036854775808", "92233720368547758", "10000001"):
        tenant.fresh_limits()
        response = tenant.client.get(path, params={"page": page, "per_page": "100"},
                                     headers=fz.bearer(tenant.token("admin")))
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    tenant.fresh_limits()
    last = tenant.client.get(path, params={"page": "10000000", "per_page": "100"}, headers=fz.bearer(tenant.token("admin")))
    if path == "/api/exceptions":  # deep pages of exceptions are read by ?cursor=
        assert last.status_code == 400 and last.json()["error"]["details"][0]["field"] == "page", last.text
    else:  # the last page allowed: empty, not an error
        assert last.status_code == 200 and last.json()["data"] == [], last.text


@pytest.mark.parametrize("value", ["1E+999999", "1E-999999", "1E+131072", "99999999999999999"])
def test_an_amount_filter_past_numeric_is_a_validation_error_on_postgres(fuzz: tuple[fz.FuzzTenant, fz.Generator],
                                                                        value: str) -> None:
    """Issue 12 item 8: Decimal takes 1E+999999, PostgreSQL's NUMERIC does not (it answered 500)."""
    tenant, _ = fuzz
    for name in ("amount_min", "amount_max"):
        tenant.fresh_limits()
        response = tenant.client.get("/api/exceptions", params={name: value},
                                     headers=fz.bearer(tenant.token("admin")))
        assert response.status_code == 400, response.text
        assert [d["field"] for d in response.json()["error"]["details"]] == [name]
    tenant.fresh_limits()
    assert tenant.client.get("/api/exceptions", params={"amount_min": "9999999999999999.99"},
                             headers=fz.bearer(tenant.token("admin"))).status_code == 200
