"""Issue 16 item 3: a query parameter a route does not take is a 400 naming it, never ignored
(`/api/exceptions?reference=561760235452` once listed every exception). One app-level guard
(entrypoints/http/request.py:refuse_unknown_query_parameters) reads what each route and its
dependencies declare, so it holds on every route, a route added later included."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter
from litestar.testing import TestClient

from reckai.bootstrap import bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from reckai.entrypoints.http.envelope import Success, ok
from reckai.entrypoints.http.request import UNKNOWN_QUERY_MESSAGE
from tests.support.identity import bearer, login, onboard


def provide_region(region: Annotated[str | None, QueryParameter(description="a region")] = None) -> str:
    return region or "all"


@get("/api/test-later-route", opt={"permission": "exceptions:read"}, sync_to_thread=False,
     dependencies={"region_filter": Provide(provide_region, sync_to_thread=False)})
def later_route(region_filter: NamedDependency[str], limit: FromQuery[int] = 10,
                since: Annotated[str | None, QueryParameter(name="from")] = None) -> Success[dict[str, Any]]:
    """A route another engineer adds later: a handler parameter, an aliased one, one from a dependency."""
    return ok({"region": region_filter, "limit": limit, "from": since})


LATER_DECLARED = ("region", "limit", "from")


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[TestClient, dict[str, str]]]:
    container = bootstrap_in_memory()
    with TestClient(create_app(container, extra_route_handlers=[later_route]),
                    raise_server_exceptions=False) as client:
        _, admin = onboard(client)
        yield client, bearer(login(client, admin.org_code, admin.email, admin.password))


def _refused(answer: Any, *names: str) -> None:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert sorted(d["field"] for d in error["details"]) == sorted(names)
    assert all(UNKNOWN_QUERY_MESSAGE in d["message"] for d in error["details"])


@pytest.mark.parametrize("path", [
    "/api/exceptions", "/api/exceptions/export", "/api/users", "/api/reconciliations",
    f"/api/reconciliations/{uuid.uuid4()}/results", "/api/approvals", "/api/rules", "/api/sessions", "/api/settings",
    "/api/auth/me", "/api/test-later-route", "/health"])
def test_an_unknown_parameter_is_refused_on_every_route(api: tuple[TestClient, dict[str, str]], path: str) -> None:
    client, headers = api
    _refused(client.get(path, params={"refrence": "561760235452"}, headers=headers), "refrence")


def test_the_answer_names_each_unknown_parameter_and_what_the_route_takes(
        api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    answer = client.get("/api/exceptions?per_page=5&colour=red&sizes=1&sizes=2", headers=headers)
    _refused(answer, "colour", "sizes")
    assert "reference_prefix" in answer.json()["error"]["details"][0]["message"]  # the route's own list


def test_declared_parameters_pass_from_the_handler_an_alias_and_a_dependency(
        api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    answer = client.get("/api/test-later-route?region=west&limit=3&from=2026-01-01", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"region": "west", "limit": 3, "from": "2026-01-01"}
    _refused(client.get("/api/test-later-route?since=2026-01-01", headers=headers), "since")  # the name, not the alias
    job = uuid.uuid4()
    answer = client.get(f"/api/exceptions?reference=561760235452&job_id={job}&page=1&per_page=5",
                        headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == []


def test_authentication_comes_first(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    assert client.get("/api/exceptions?bogus=1").status_code == 401


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(known=st.lists(st.sampled_from(LATER_DECLARED), unique=True),
       unknown=st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_[]0123456789.", min_size=1, max_size=12)
                        .filter(lambda n: n not in LATER_DECLARED), unique=True, max_size=4))
def test_property_only_undeclared_names_are_refused_and_all_of_them(
        api: tuple[TestClient, dict[str, str]], known: list[str], unknown: list[str]) -> None:
    client, headers = api
    values = {"region": "north", "limit": "5", "from": "x"}
    query = [(name, values[name]) for name in known] + [(name, "1") for name in unknown]
    answer = client.get("/api/test-later-route", params=query, headers=headers)
    if unknown:
        _refused(answer, *unknown)
    else:
        assert answer.status_code == 200, answer.text
