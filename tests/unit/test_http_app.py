"""The HTTP skeleton, in-process over the in-memory container: envelopes, errors, headers, CORS,
request ids, request logs, OpenAPI and docs."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, JSONBody
from litestar.testing import TestClient

from reckai.application.errors import (
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from reckai.bootstrap import bootstrap_in_memory
from reckai.entrypoints.http import app as app_module
from reckai.entrypoints.http.app import DEFAULT_MAX_BODY_BYTES, create_app
from reckai.entrypoints.http.docs import DOCS_CONTENT_SECURITY_POLICY
from reckai.entrypoints.http.envelope import Pagination, Success, ok, paginated
from reckai.entrypoints.http.middleware import API_CONTENT_SECURITY_POLICY
from reckai.entrypoints.http.permissions import undeclared_routes
from reckai.entrypoints.http.routes import collect_routes
from reckai.logging_setup import configure_logging
from reckai.settings import HttpSettings, Settings, SettingsError


class Note(msgspec.Struct, forbid_unknown_fields=True):
    title: str
    amount_minor: int
    tags: list[str] = []


class SecretLeak(Exception):
    pass


@post("/test/notes", opt={"public": True})  # envelope tests; authentication is tested in test_permissions_routes.py
async def create_note(data: JSONBody[Note], token: FromQuery[str | None] = None) -> Success[Note]:
    return ok(data)  # `token`: a query parameter the request log must never show


@get("/test/notes", opt={"public": True})
async def list_notes(pagination: NamedDependency[Pagination]) -> Success[list[Note]]:
    notes = [Note(title=f"n{i}", amount_minor=i) for i in range(45)]
    return paginated(
        notes[pagination.offset : pagination.offset + pagination.limit], pagination, total=len(notes)
    )


_RAISED: dict[str, Exception] = {
    "validation": ValidationFailed([FieldError("password", "too short"), FieldError("email", "required")]),
    "unauthenticated": Unauthenticated(reason="expired token"),
    "forbidden": PermissionDenied("approvals:approve"),
    "missing": NotFound("reconciliation_job", "job-789"),
    "conflict": Conflict("approval is already approved"),
    "quota": QuotaExceeded("max_users", 10),
    "limited": RateLimited(42, "auth"),
    "crash": SecretLeak("password=hunter2 at postgresql://app:pw@db/reckai"),
}


@get("/test/raise/{kind:str}", opt={"public": True})
async def raise_kind(kind: FromPath[str]) -> Success[str]:
    raise _RAISED[kind]


@get("/test/actor", opt={"public": True})
async def set_actor(request: Request) -> Success[str]:
    request.state.organization_id = "org-123"
    request.state.user_id = "user-456"
    return ok("bound")


@post("/test/upload", opt={"public": True})
async def upload(
    data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
) -> Success[list[str]]:
    return ok(sorted(data))


TEST_ROUTES = [create_note, list_notes, raise_kind, set_actor, upload]


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = create_app(bootstrap_in_memory(), extra_route_handlers=TEST_ROUTES)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("INFO", stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def logged(stream: io.StringIO, action: str) -> list[dict]:
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [entry for entry in entries if entry["action"] == action]


def assert_error(response: Any, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert set(body) == {"success", "error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    for detail in body["error"]["details"]:
        assert set(detail) == {"field", "message"}
    return body["error"]


# --- success envelope ------------------------------------------------------------------------


def test_success_uses_the_envelope_with_null_meta(client: TestClient) -> None:
    response = client.post("/test/notes", json={"title": "a", "amount_minor": 150})
    assert response.status_code == 201
    assert response.json() == {
        "success": True,
        "data": {"title": "a", "amount_minor": 150, "tags": []},
        "meta": None,
        "errors": [],
    }


def test_a_list_carries_page_meta(client: TestClient) -> None:
    body = client.get("/test/notes", params={"page": 3, "per_page": 20}).json()
    assert body["meta"] == {"page": 3, "per_page": 20, "total": 45}
    assert [note["title"] for note in body["data"]] == [f"n{i}" for i in range(40, 45)]


@pytest.mark.parametrize("params", [{"per_page": 101}, {"page": 0}, {"per_page": "many"}])
def test_bad_pagination_is_a_validation_error(client: TestClient, params: dict) -> None:
    error = assert_error(client.get("/test/notes", params=params), 400, "VALIDATION_ERROR")
    assert [detail["field"] for detail in error["details"]] == list(params)


def test_input_is_stored_as_given_and_served_as_json(client: TestClient) -> None:
    title = "<script>alert('x')</script> & \"quotes\" ₦1,000"
    response = client.post("/test/notes", json={"title": title, "amount_minor": 1})
    assert response.headers["content-type"] == "application/json"
    assert response.json()["data"]["title"] == title
    assert "<script>" in response.text  # not HTML-escaped: JSON is not HTML


# --- every error uses the error envelope -----------------------------------------------------


def test_unknown_route_is_a_404_envelope(client: TestClient) -> None:
    assert_error(client.get("/api/nothing-here"), 404, "NOT_FOUND")


def test_wrong_method_is_a_405_envelope_with_allow(client: TestClient) -> None:
    response = client.delete("/health")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers["allow"]


def test_body_validation_names_each_field(client: TestClient) -> None:
    error = assert_error(
        client.post("/test/notes", json={"title": 5, "amount_minor": 1}), 400, "VALIDATION_ERROR"
    )
    assert error["details"][0]["field"] == "title"
    error = assert_error(client.post("/test/notes", json={"title": "a"}), 400, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "amount_minor"
    error = assert_error(
        client.post("/test/notes", json={"title": "a", "amount_minor": 1, "admin": True}),
        400,
        "VALIDATION_ERROR",
    )
    assert error["details"][0]["field"] == "admin"
    assert "unknown field" in error["details"][0]["message"]


def test_malformed_json_is_a_400_envelope(client: TestClient) -> None:
    response = client.post(
        "/test/notes", content=b'{"title": "a",', headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "MALFORMED_BODY")


def test_a_body_over_the_limit_is_413(client: TestClient) -> None:
    huge = json.dumps({"title": "x" * DEFAULT_MAX_BODY_BYTES, "amount_minor": 1})
    response = client.post("/test/notes", content=huge, headers={"content-type": "application/json"})
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_a_body_in_another_media_type_is_415(client: TestClient) -> None:
    response = client.post("/test/notes", content=b"title=a", headers={"content-type": "text/plain"})
    error = assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/json" in error["message"]


def test_json_suffix_media_types_and_declared_multipart_are_accepted(client: TestClient) -> None:
    response = client.post(
        "/test/notes",
        content=b'{"title":"a","amount_minor":1}',
        headers={"content-type": "application/merge-patch+json"},
    )
    assert response.status_code == 201
    response = client.post("/test/upload", files={"statement": ("s.csv", b"a,b\n1,2\n", "text/csv")})
    assert response.status_code == 201, response.text
    assert response.json()["data"] == ["statement"]
    assert_error(client.post("/test/upload", json={"a": 1}), 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("validation", 400, "VALIDATION_ERROR"),
        ("unauthenticated", 401, "UNAUTHENTICATED"),
        ("forbidden", 403, "PERMISSION_DENIED"),
        ("missing", 404, "NOT_FOUND"),
        ("conflict", 409, "CONFLICT"),
        ("quota", 403, "QUOTA_EXCEEDED"),
        ("limited", 429, "RATE_LIMITED"),
    ],
)
def test_application_errors_map_to_status_and_code(
    client: TestClient, kind: str, status: int, code: str
) -> None:
    assert_error(client.get(f"/test/raise/{kind}"), status, code)


def test_validation_failed_lists_its_fields(client: TestClient) -> None:
    error = assert_error(client.get("/test/raise/validation"), 400, "VALIDATION_ERROR")
    assert error["details"] == [
        {"field": "password", "message": "too short"},
        {"field": "email", "message": "required"},
    ]


def test_rate_limited_sends_retry_after(client: TestClient) -> None:
    response = client.get("/test/raise/limited")
    assert_error(response, 429, "RATE_LIMITED")
    assert response.headers["retry-after"] == "42"


def test_unhandled_exception_is_500_without_leaking_and_logged_with_request_id(
    client: TestClient, log_lines: io.StringIO
) -> None:
    response = client.get("/test/raise/crash", headers={"X-Request-ID": "trace-crash-1"})
    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert error["message"] == "An internal error occurred"
    assert (
        "hunter2" not in response.text
        and "SecretLeak" not in response.text
        and "Traceback" not in response.text
    )
    (entry,) = logged(log_lines, "http.unhandled_exception")
    assert entry["level"] == "ERROR"
    assert entry["metadata"]["request_id"] == "trace-crash-1" == response.headers["x-request-id"]
    assert entry["metadata"]["exception_type"] == "SecretLeak"
    assert "Traceback" in entry["metadata"]["traceback"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    path=st.lists(st.text(alphabet="abcxyz019-_.~%", min_size=1, max_size=8), min_size=1, max_size=4),
    body=st.one_of(st.none(), st.binary(max_size=64)),
)
def test_every_answer_is_an_envelope_with_a_request_id(
    client: TestClient, method: str, path: list[str], body: bytes | None
) -> None:
    url = "/" + "/".join(["test", *path] if path[0] != "." else path)
    response = client.request(method, url, content=body, headers={"content-type": "application/json"})
    assert response.headers["x-request-id"]
    assert response.headers["content-type"].startswith("application/json")
    envelope = response.json()
    if response.status_code < 400:
        assert envelope["success"] is True and envelope["errors"] == []
    else:
        assert envelope["success"] is False and envelope["error"]["code"]


# --- request id, security headers, CORS ----------------------------------------------------------


def test_a_request_id_is_generated_when_missing_or_malformed(client: TestClient) -> None:
    generated = client.get("/health").headers["x-request-id"]
    assert uuid.UUID(generated)
    assert (
        client.get("/health", headers={"X-Request-ID": "abc-123_x.y:z"}).headers["x-request-id"]
        == "abc-123_x.y:z"
    )
    for bad in ("has space", "x" * 129, "évil".encode(), "-leading-dash"):
        answered = client.get("/health", headers={"X-Request-ID": bad}).headers["x-request-id"]
        assert answered != bad and uuid.UUID(answered)


@pytest.mark.parametrize(
    "path", ["/health", "/api/nothing-here", "/test/raise/crash", "/schema/openapi.json"]
)
def test_security_headers_on_every_response(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    assert headers["content-security-policy"] == API_CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert headers["cache-control"] == "no-store"


def test_only_the_docs_page_relaxes_the_csp(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == DOCS_CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in DOCS_CONTENT_SECURITY_POLICY.split("script-src")[1].split(";")[0]
    assert "/schema/openapi.json" in client.get("/docs/start.js").text
    assert page.headers["x-frame-options"] == "DENY"


def _cors_client(origins: tuple[str, ...]) -> TestClient:
    settings = Settings(http=HttpSettings(allowed_origins=origins))
    return TestClient(create_app(bootstrap_in_memory(settings)))


def test_cors_follows_the_spec_for_allowed_origins() -> None:
    with _cors_client(("https://app.reckai.test",)) as client:
        preflight = client.options(
            "/health",
            headers={
                "Origin": "https://app.reckai.test",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, authorization",
            },
        )
        assert preflight.status_code in (200, 204)
        headers = preflight.headers
        assert headers["access-control-allow-origin"] == "https://app.reckai.test"
        assert headers["access-control-allow-credentials"] == "true"
        assert headers["access-control-max-age"] == "86400"
        assert set(headers["access-control-allow-methods"].replace(" ", "").split(",")) == {
            "GET",
            "POST",
            "PUT",
            "DELETE",
            "PATCH",
        }
        allowed = set(headers["access-control-allow-headers"].replace(" ", "").lower().split(","))
        # Litestar also lists the CORS-safelisted headers, which browsers allow anyway.
        assert (
            {"content-type", "authorization"}
            <= allowed
            <= {"content-type", "authorization", "accept", "accept-language", "content-language"}
        )
        assert headers["x-request-id"]

        simple = client.get("/health", headers={"Origin": "https://app.reckai.test"})
        exposed = {
            name.strip().lower() for name in simple.headers["access-control-expose-headers"].split(",")
        }
        assert {"x-request-id", "retry-after"} <= exposed

        foreign = client.get("/health", headers={"Origin": "https://evil.test"})
        assert "access-control-allow-origin" not in foreign.headers


def test_no_origins_no_cors_and_a_wildcard_is_refused() -> None:
    with _cors_client(()) as client:
        response = client.get("/health", headers={"Origin": "https://app.reckai.test"})
        assert "access-control-allow-origin" not in response.headers
    with pytest.raises(SettingsError):
        create_app(bootstrap_in_memory(Settings(http=HttpSettings(allowed_origins=("*",)))))


def test_forwarded_for_is_honoured_only_from_trusted_proxies(log_lines: io.StringIO) -> None:
    # TestClient's peer is "testclient"; the edge treats the peer as untrusted unless listed.
    settings = Settings(http=HttpSettings(trusted_proxies=("10.0.0.0/8",)))
    app = create_app(bootstrap_in_memory(settings))
    with TestClient(app) as client:
        client.get("/health", headers={"X-Forwarded-For": "203.0.113.7"})
    (entry,) = logged(log_lines, "http.request")
    assert entry["ip_address"] == "testclient"
    edge = app.edge  # type: ignore[attr-defined]
    scope = {"client": ("10.1.2.3", 5000)}
    assert edge.client_ip(scope, "198.51.100.1, 203.0.113.7, 10.9.9.9") == "203.0.113.7"
    assert edge.client_ip({"client": ("192.0.2.1", 5000)}, "203.0.113.7") == "192.0.2.1"


# --- request log -------------------------------------------------------------------------------


def test_every_request_is_logged_once_without_query_or_body(
    client: TestClient, log_lines: io.StringIO
) -> None:
    response = client.post(
        "/test/notes?token=abc123",
        json={"title": "password hunter2", "amount_minor": 1},
        headers={"User-Agent": "probe/1"},
    )
    (entry,) = logged(log_lines, "http.request")
    assert entry["level"] == "INFO"
    assert entry["user_agent"] == "probe/1"
    metadata = entry["metadata"]
    assert metadata["method"] == "POST"
    assert metadata["path"] == "/test/notes"
    assert metadata["status"] == 201
    assert metadata["request_id"] == response.headers["x-request-id"]
    assert isinstance(metadata["duration_ms"], float) and metadata["duration_ms"] >= 0
    assert "abc123" not in log_lines.getvalue() and "hunter2" not in log_lines.getvalue()


def test_unknown_routes_are_logged_too(client: TestClient, log_lines: io.StringIO) -> None:
    client.get("/nowhere")
    (entry,) = logged(log_lines, "http.request")
    assert entry["metadata"]["status"] == 404


def test_the_request_log_names_the_organization_and_user_auth_leaves_in_state(
    client: TestClient, log_lines: io.StringIO
) -> None:
    client.get("/test/actor")
    (entry,) = logged(log_lines, "http.request")
    assert (entry["organization_id"], entry["user_id"]) == ("org-123", "user-456")


# --- OpenAPI, docs, route declarations -----------------------------------------------------------


def test_openapi_schema_is_served_locally_with_the_error_envelope(client: TestClient) -> None:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert {"/health", "/health/db", "/health/storage", "/health/queue"} <= set(document["paths"])
    assert "ErrorEnvelope" in document["components"]["schemas"]
    create = document["paths"]["/test/notes"]["post"]["responses"]
    assert create["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorEnvelope"
    }
    assert "/docs" not in document["paths"]


def test_every_route_declares_a_permission_or_public() -> None:
    app = create_app(bootstrap_in_memory())
    assert undeclared_routes(app) == []


def test_undeclared_routes_finds_a_route_that_forgot() -> None:
    @get("/test/forgot")
    async def forgot() -> Success[str]:
        return ok("x")

    app = create_app(bootstrap_in_memory(), extra_route_handlers=[forgot])
    assert undeclared_routes(app) == ["GET /test/forgot"]


def test_every_documented_json_success_is_an_envelope(client: TestClient) -> None:
    document = client.get("/schema/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if schema is None or not status.startswith("2"):
                    continue
                assert schema.get("$ref", "").startswith("#/components/schemas/Success"), (
                    method,
                    path,
                    status,
                )


# --- feature route modules ---------------------------------------------------------------------

_ROUTE_MODULE = """
from litestar import get

from reckai.entrypoints.http.envelope import Success, ok


class StatementRejected(Exception):
    code = "statement_rejected"

    def __init__(self, message, **details):
        super().__init__(message)
        self.message = message
        self.details = details


@get("/api/sample", opt={"public": True})
async def sample() -> Success[str]:
    raise StatementRejected("the file is not a statement", header="missing column amount")


ROUTE_HANDLERS = [sample]
ERROR_STATUSES = {StatementRejected: 422}
"""


def test_route_modules_are_collected_with_their_error_statuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "sample_routes"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "statements.py").write_text(_ROUTE_MODULE)
    (package / "_private.py").write_text("raise RuntimeError('modules starting with _ are skipped')")
    (package / "helpers.py").write_text("VALUE = 1  # no ROUTE_HANDLERS: ignored")
    monkeypatch.syspath_prepend(str(tmp_path))

    collected = collect_routes("sample_routes")
    assert collected.modules == ["sample_routes.statements"]
    monkeypatch.setattr(app_module, "collect_routes", lambda: collected)

    with TestClient(create_app(bootstrap_in_memory())) as client:
        error = assert_error(client.get("/api/sample"), 422, "STATEMENT_REJECTED")
    assert error["message"] == "the file is not a statement"
    assert error["details"] == [{"field": "header", "message": "missing column amount"}]


def test_the_real_routes_package_imports_cleanly() -> None:
    collected = collect_routes()
    assert all(module.startswith("reckai.entrypoints.http.routes.") for module in collected.modules)
