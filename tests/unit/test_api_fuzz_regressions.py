"""Focused regressions for what the API fuzzer (tests/unit/test_api_fuzz.py) found.

1. A JSON body nested about a thousand levels deep answered 500 (msgspec's RecursionError) on
   every JSON route; now 400 MALFORMED_BODY past 64 levels, before any code walks the value.
2. An unknown `/schema/...` path answered Litestar's HTML 404 page; now the error envelope.
3. In-memory container: the reconciliation job and the exception workflow stored different row
   types in the one `exceptions` table (GET /api/exceptions answered 500 once a job had run), and
   likewise for matching rules (POST /api/rules answered 500 once rules had been seeded through the
   job's rule repository). Both memory repositories now share the workflow's row types, as the
   PostgreSQL tables are shared.
4. GET /api/exceptions?min_age_hours=9223372036854775808 answered 500 (timedelta overflow); ages
   are now bounded (at most 100 years), 400 beyond.
5. A NUL character in a JSON string, a query or a path parameter reached the repositories (stored
   by the memory adapter, a 500 from PostgreSQL, which refuses NUL in text); now 400
   VALIDATION_ERROR naming the field, on every route, before any handler runs.
6. PUT /api/settings accepted any `lockout_minutes`; past datetime's range the failed sign-in that
   locks an account answered 500. `lockout_minutes` (a year) and `history_size` (100) are bounded.
7. Integers past the columns that store them (PostgreSQL, found by the NUL/overflow sweep of
   tests/integration/test_api_fuzz_postgres.py): a rule's `priority` of 2**31 (INTEGER) and a
   manual link's `row_number` of 2**31 answered 500. Rule integers are now at most 2**31 - 1
   (`date_tolerance_days` and a job's `cutoff.days` at most 3660: day counts stay dates), link rows
   are bounded by their columns.
8. POST /api/organizations with an empty (or blank) admin name answered 500: the identity entity
   refused it (InvalidEntity) after the use case's checks. InvalidEntity is now 400
   VALIDATION_ERROR on every route, naming the field; nothing is created.
9. (issue 12 item 8) GET /api/exceptions?amount_min=1E%2B999999 answered 500 on PostgreSQL (Decimal
   takes it, NUMERIC does not); every decimal query parameter now goes through `decimal_query`:
   400 VALIDATION_ERROR naming it past 16 digits before or 6 after the point. A JSON body with bytes
   that are not UTF-8 (FF FE, inside a string) answered 500 on every JSON route (msgspec's
   UnicodeDecodeError is not its DecodeError); now 400 VALIDATION_ERROR naming `body`, checked
   once in `ReckaiRequest.json`, which every JSON body goes through.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.application.errors import ValidationFailed
from reckai.application.ports.rate_limit import TIERS
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from reckai.entrypoints.http.request import (
    MAX_JSON_DEPTH,
    NOT_UTF8_MESSAGE,
    NUL_MESSAGE,
    decimal_query,
    json_depth,
    nul_path,
)
from tests.support import reconciliation_jobs as rj
from tests.support.identity import bearer, create_user_with_role, login, onboard, relax_auth_limits


class Api:
    def __init__(self, client: TestClient[Any], container: Container) -> None:
        self.client, self.container = client, container
        self.org_id, self.admin = onboard(client)
        self.token = login(client, self.admin.org_code, self.admin.email, self.admin.password)
        # Someone who may approve: without one, every request is refused (409 NO_ELIGIBLE_CHECKER).
        create_user_with_role(client, self.token, "supervisor")

    def call(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.request(method, path, headers={**bearer(self.token), **(headers or {})}, **kwargs)


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    container.worker_runner.start()
    try:
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            yield Api(client, container)
    finally:
        container.worker_runner.stop()


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


# --- 1. nesting depth -----------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/rules/preview", "/api/approvals", "/api/rules", "/api/reconciliations",
                                  "/api/settings", "/api/auth/login"])
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 999, 1000, 5000])
def test_a_body_nested_too_deeply_is_400_malformed_body(api: Api, path: str, depth: int) -> None:
    method = "PUT" if path == "/api/settings" else "POST"
    body = '{"name": "x", "definition": ' + _nested(depth) + ', "metadata": {}}'
    response = api.call(method, path, content=body.encode(), headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "MALFORMED_BODY"
    assert error["details"] == [{"field": "body", "message": f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep"}]


def test_a_body_at_the_depth_limit_reaches_validation(api: Api) -> None:
    body = '{"job_id": "nope", "definition": ' + _nested(MAX_JSON_DEPTH - 2) + "}"  # 64 levels in all
    response = api.call("POST", "/api/rules/preview", content=body.encode(), headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def _recursive_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_recursive_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_recursive_depth(v) for v in value), default=0)
    return 0


_JSON = st.recursive(st.one_of(st.none(), st.integers(), st.text(max_size=3)),
                     lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=3), c, max_size=3)),
                     max_leaves=40)


@given(value=_JSON, limit=st.integers(1, 8))
def test_json_depth_agrees_with_the_recursive_definition(value: Any, limit: int) -> None:
    assert json_depth(value, limit) == min(_recursive_depth(value), limit + 1)


def test_json_depth_of_a_very_deep_value_needs_no_recursion() -> None:
    deep: Any = []
    for _ in range(50_000):
        deep = [deep]
    assert json_depth(deep) == MAX_JSON_DEPTH + 1
    assert json_depth(deep, limit=10**6) == 50_001


# --- 2. schema paths --------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/schema/nope", "/schema/openapi.yaml", "/schema/swagger", "/schema/a%20b"])
def test_an_unknown_schema_path_is_the_404_envelope(api: Api, path: str) -> None:
    response = api.client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"success": False, "error": {"code": "NOT_FOUND", "message": "Resource not found",
                                                           "details": []}}
    assert api.client.get("/schema/openapi.json").status_code == 200


# --- 3. in-memory tables shared by the job and the workflow ---------------------------------------

def test_a_completed_jobs_exceptions_are_served_by_the_exception_routes(api: Api) -> None:
    profile = rj.profile()
    files = []
    for data, name, kind, side in ((rj.bank_bytes(), "bank.csv", "bank", "left"),
                                   (rj.switch_bytes(), "switch.csv", "switch", "right")):
        uploaded = api.client.post("/api/files/upload", data={"file_type": kind},
                                   files={"file": (name, data, "text/csv")}, headers=bearer(api.token))
        assert uploaded.status_code == 201, uploaded.text
        file_id = uploaded.json()["data"]["id"]
        mapped = api.call("POST", f"/api/files/{file_id}/map", json={"transformation_rules": profile[side]["mapping"]})
        assert mapped.status_code == 200, mapped.text
        files.append(file_id)
    rj.seed_rules(api.container.database, api.org_id, api.admin.user_id)
    job = api.call("POST", "/api/reconciliations", json=rj.start_body(*files)).json()["data"]
    api.container.worker_runner.wake_relay()
    deadline = time.monotonic() + 120
    while (done := api.call("GET", f"/api/reconciliations/{job['id']}").json()["data"])["status"] != "completed":
        assert done["status"] not in ("failed", "cancelled") and time.monotonic() < deadline, done
        time.sleep(0.1)

    listed = api.call("GET", "/api/exceptions", params={"job_id": job["id"], "per_page": 100})
    assert listed.status_code == 200, listed.text
    assert listed.json()["meta"]["total"] == rj.cli_summary()["exceptions"]
    first = listed.json()["data"][0]
    assert first["status"] == "open" and first["job_id"] == job["id"]
    detail = api.call("GET", f"/api/exceptions/{first['id']}")
    assert detail.status_code == 200, detail.text
    for sort in ("created_at", "-due_at", "amount", "severity", "transaction_date"):
        assert api.call("GET", "/api/exceptions", params={"sort": sort}).status_code == 200

    # the rules seeded for the job are the organization's rules: listed, and a new one can be proposed
    rules = api.call("GET", "/api/rules", params={"per_page": 100})
    assert rules.status_code == 200, rules.text
    assert {r["name"] for r in rules.json()["data"]} == {r["name"] for r in profile["rules"]}
    seeded = rules.json()["data"][0]
    assert api.call("GET", f"/api/rules/{seeded['id']}").json()["data"]["versions"][0]["status"] == "active"
    definition = {k: v for k, v in profile["rules"][0].items() if k not in ("name", "version")}
    proposed = api.call("POST", "/api/rules", json={"name": f"extra-{uuid.uuid4().hex[:6]}", "definition": definition})
    assert proposed.status_code == 202, proposed.text
    # ... and a proposal is not active until approved: the job's rule repository does not see it
    with api.container.database.unit_of_work(api.org_id) as uow:
        active = [v.name for v in uow.matching_rules.active_versions()]
    assert proposed.json()["data"]["rule"]["name"] not in active
    assert sorted(active) == sorted(r["name"] for r in profile["rules"])


# --- 4. ages past datetime's range ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["min_age_hours", "max_age_hours"])
def test_an_age_filter_past_100_years_is_a_validation_error(api: Api, name: str) -> None:
    for value in ("876001", "9223372036854775808", "99999999999999999999"):
        response = api.call("GET", "/api/exceptions", params={name: value})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert api.call("GET", "/api/exceptions", params={name: "876000"}).status_code == 200


# --- 5. NUL characters ---------------------------------------------------------------------------------

def _error(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    return error


@pytest.mark.parametrize(("body", "field"), [
    ({"type": "ledger_posting", "title": "t", "description": "d",
      "metadata": {"currency": "NGN", "entries": [{"account": "10\x0001", "direction": "debit", "amount_minor": 5}]}},
     "metadata.entries.0.account"),
    ({"type": "report_generation", "title": "t\x00", "description": "d", "metadata": {}}, "title"),
    ({"type": "report_generation", "title": "t", "description": "d", "metadata": {"k\x00": 1}}, "metadata.k\\u0000"),
])
def test_a_nul_in_any_json_string_is_a_validation_error_naming_the_field(api: Api, body: dict[str, Any],
                                                                        field: str) -> None:
    before = api.call("GET", "/api/approvals").json()["meta"]["total"]
    error = _error(api.call("POST", "/api/approvals", json=body))
    assert error["details"] == [{"field": field, "message": NUL_MESSAGE}]
    assert api.call("GET", "/api/approvals").json()["meta"]["total"] == before  # nothing written


def test_a_nul_in_a_json_body_that_is_a_bare_string_or_on_a_public_route(api: Api) -> None:
    error = _error(api.client.post("/api/auth/login", json={"organization_code": "x", "email": "a\x00@b.c",
                                                             "password": "p"}))
    assert error["details"] == [{"field": "email", "message": NUL_MESSAGE}]
    error = _error(api.call("POST", "/api/rules/preview", json="\x00"))
    assert error["details"] == [{"field": "body", "message": NUL_MESSAGE}]


def test_a_nul_in_a_query_or_path_parameter_is_a_validation_error(api: Api) -> None:
    error = _error(api.call("GET", "/api/exceptions", params={"status": "open\x00"}))
    assert error["details"] == [{"field": "status", "message": NUL_MESSAGE}]
    error = _error(api.call("GET", "/api/users", params={"x\x00": "1"}))
    assert error["details"] == [{"field": "x\\u0000", "message": NUL_MESSAGE}]
    error = _error(api.client.get("/api/files/download/abc%00def"))
    assert error["details"] == [{"field": "token", "message": NUL_MESSAGE}]


def test_an_escaped_backslash_before_u0000_is_not_a_nul(api: Api) -> None:
    response = api.call("POST", "/api/approvals", json={"type": "report_generation", "title": "a\\u0000b",
                                                        "description": "d",
                                                        "metadata": {"report_type": "aging", "format": "csv"}})
    assert response.status_code == 201, response.text
    assert response.json()["data"]["title"] == "a\\u0000b"


@given(value=_JSON)
def test_nul_path_finds_a_nul_exactly_when_there_is_one(value: Any) -> None:
    text = json.dumps(value)
    assert (nul_path(value) is not None) == ("\\u0000" in text)


# --- 6. password policy bounds -------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "value"), [("lockout_minutes", 525_601), ("lockout_minutes", 10**12),
                                             ("history_size", 101)])
def test_a_password_policy_past_its_bounds_is_refused(api: Api, name: str, value: int) -> None:
    error = _error(api.call("PUT", "/api/settings", json={"password_policy": {name: value}}))
    assert [d["field"] for d in error["details"]] == [f"password_policy.{name}"]


def test_the_longest_lockout_allowed_locks_an_account_without_an_error(api: Api) -> None:
    _, admin = onboard(api.client)
    token = login(api.client, admin.org_code, admin.email, admin.password)
    changed = api.client.put("/api/settings", json={"password_policy": {"lockout_minutes": 525_600}},
                             headers=bearer(token))
    assert changed.status_code == 200, changed.text
    statuses = []
    for _ in range(6):
        relax_auth_limits(api.client, admin.org_code, admin.email)
        statuses.append(api.client.post("/api/auth/login", json={"organization_code": admin.org_code,
                                                                  "email": admin.email, "password": "Wrong!Pass-1"}
                                        ).status_code)
    assert statuses == [401] * 6
    relax_auth_limits(api.client, admin.org_code, admin.email)
    locked = api.client.post("/api/auth/login", json={"organization_code": admin.org_code, "email": admin.email,
                                                      "password": admin.password})
    assert locked.status_code == 401, locked.text  # the right password does not open a locked account


# --- 7. integers past their columns ------------------------------------------------------------------------

def _rule(**changes: Any) -> dict[str, Any]:
    rule = {k: v for k, v in rj.profile()["rules"][0].items() if k not in ("name", "version")}
    return {"name": f"big-{uuid.uuid4().hex[:6]}", "definition": {**rule, **changes}}


@pytest.mark.parametrize(("key", "value"), [("priority", 2**31), ("priority", 10**30),
                                            ("date_tolerance_days", 3661), ("date_tolerance_days", 2**31)])
def test_a_rule_integer_past_its_column_is_refused(api: Api, key: str, value: int) -> None:
    response = api.call("POST", "/api/rules", json=_rule(**{key: value}))
    assert response.status_code in (400, 422), response.text
    assert any(key in d["field"] for d in response.json()["error"]["details"]), response.text
    assert api.call("POST", "/api/rules", json=_rule(**{key: {"priority": 2**31 - 1}.get(key, 3660)})).status_code == 202


@pytest.mark.parametrize(("key", "value"), [("row_number", 2**31), ("row_number", 0), ("amount_minor", 2**63)])
def test_a_link_row_past_its_column_is_a_validation_error(api: Api, key: str, value: int) -> None:
    row = {"side": "left", "row_number": 1, "amount_minor": 100, key: value}
    error = _error(api.call("POST", "/api/exceptions/matching/link",
                            json={"job_id": str(uuid.uuid4()), "rows": [row, {"side": "right", "row_number": 2}]}))
    assert [d["field"] for d in error["details"]] == [f"rows[0].{key}"], error


def test_a_cutoff_of_more_than_ten_years_is_refused() -> None:
    from reckai.domain.reconciliation.profile import MAX_CUTOFF_DAYS, ProfileError, parse_profile

    profile = rj.profile()
    for days in (MAX_CUTOFF_DAYS + 1, 2**31, 10**12):
        with pytest.raises(ProfileError) as refused:
            parse_profile({**profile, "cutoff": {"days": days, "time": None}})
        assert refused.value.path == "cutoff.days"
    assert parse_profile({**profile, "cutoff": {"days": MAX_CUTOFF_DAYS, "time": None}}).cutoff.days == MAX_CUTOFF_DAYS


# --- 8. entity refusals are validation errors ---------------------------------------------------------

@pytest.mark.parametrize(("name", "admin_name"), [("Acme", ""), ("Acme", "   "), ("   ", "Ada Admin")])
def test_sign_up_with_a_blank_name_is_a_validation_error_and_creates_nothing(api: Api, name: str,
                                                                              admin_name: str) -> None:
    code = f"blank-{uuid.uuid4().hex[:8]}"
    body = {"name": name, "code": code, "admin_email": f"{code}@example.com", "admin_name": admin_name,
            "admin_password": "Quartz!Ledger-7291"}
    relax_auth_limits(api.client)
    error = _error(api.client.post("/api/organizations", json=body))
    assert error["details"] == [{"field": "name", "message": "must not be empty"}]
    relax_auth_limits(api.client)
    created = api.client.post("/api/organizations", json={**body, "name": "Acme", "admin_name": "Ada Admin"})
    assert created.status_code == 201, created.text  # the code was not taken by a half-made organization


# --- 9. decimals out of range, bodies that are not UTF-8 ---------------------------------------------


@pytest.fixture
def fresh_api(api: Api) -> Api:
    """The module's client with its `api` allowance (100/min) restored: these cases are many."""
    api.container.rate_limiter.reset(TIERS["api"], str(api.admin.user_id))
    return api

@pytest.mark.parametrize("name", ["amount_min", "amount_max"])
@pytest.mark.parametrize("value", ["1E+999999", "1E-999999", "1E+16", "99999999999999999", "0.0000001", "NaN",
                                   "-Infinity", "abc", ""])
def test_a_decimal_query_parameter_out_of_range_is_a_validation_error(fresh_api: Api, name: str, value: str) -> None:
    error = _error(fresh_api.call("GET", "/api/exceptions", params={name: value}))
    assert [d["field"] for d in error["details"]] == [name]


@pytest.mark.parametrize("value", ["0", "1500.50", "-2", "9999999999999999.99", "1E+3", "0.000001", "1.10000000"])
def test_a_decimal_query_parameter_in_range_is_accepted(fresh_api: Api, value: str) -> None:
    assert fresh_api.call("GET", "/api/exceptions", params={"amount_min": value}).status_code == 200


def test_decimal_query_bounds() -> None:
    assert decimal_query("1E+999999".replace("999999", "15"), "a") == 10**15
    assert decimal_query(None, "a") is None
    for text in ("1E+999999", "1E-999999", "1E+16"):
        with pytest.raises(ValidationFailed):
            decimal_query(text, "a")


_NOT_UTF8 = [b"\xff\xfe", b"\xff\xfe{\x00}\x00", b'{"name": "\xff\xfe"}', b'"\xff\xfe"',
             b'{"title": "a\xc3"}', b'{"email": "\xed\xa0\x80"}']


@pytest.mark.parametrize("body", _NOT_UTF8)
@pytest.mark.parametrize(("method", "path"), [("POST", "/api/rules"), ("POST", "/api/approvals"),
                                              ("POST", "/api/auth/login"), ("PUT", "/api/settings"),
                                              ("POST", "/api/organizations"), ("POST", "/api/rules/preview"),
                                              ("POST", "/api/exceptions/matching/link")])
def test_a_body_that_is_not_utf8_is_a_validation_error_naming_body(fresh_api: Api, method: str, path: str,
                                                                   body: bytes) -> None:
    error = _error(fresh_api.call(method, path, content=body, headers={"Content-Type": "application/json"}))
    assert error["details"] == [{"field": "body", "message": NOT_UTF8_MESSAGE}]
