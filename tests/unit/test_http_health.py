"""Health endpoints over fake checks: up, down, raising, hanging, missing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from reckai.application.ports.health import HealthReport
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.entrypoints.http.app import create_app

TIMEOUT = 0.3


class CountingCheck:
    """A check whose answer the test controls; counts how often it really ran."""

    def __init__(self, report: HealthReport | None = None, error: Exception | None = None) -> None:
        self.report = report or HealthReport(ok=True, detail="answers")
        self.error = error
        self.calls = 0
        self.release = threading.Event()
        self.hang = False

    def __call__(self) -> HealthReport:
        self.calls += 1
        if self.hang:
            self.release.wait(10)
        if self.error is not None:
            raise self.error
        return self.report


@pytest.fixture
def container() -> Container:
    container = bootstrap_in_memory()
    container.health_checks.clear()
    return container


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container, health_timeout_seconds=TIMEOUT)) as test_client:
        yield test_client


def assert_down(response, name: str) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
    (detail,) = body["error"]["details"]
    assert detail["field"] == name
    return detail["message"]


@pytest.mark.parametrize("name", ["db", "storage", "queue"])
def test_a_passing_check_answers_200(container: Container, client: TestClient, name: str) -> None:
    container.health_checks[name] = CountingCheck(HealthReport(ok=True, detail=f"{name} answers"))
    response = client.get(f"/health/{name}")
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "data": {"status": "ok", "detail": f"{name} answers"},
        "meta": None,
        "errors": [],
    }


@pytest.mark.parametrize("name", ["db", "storage", "queue"])
def test_a_failing_check_answers_503_with_the_envelope(
    container: Container, client: TestClient, name: str
) -> None:
    container.health_checks[name] = CountingCheck(HealthReport(ok=False, detail="connection refused"))
    assert assert_down(client.get(f"/health/{name}"), name) == "connection refused"


def test_a_missing_check_is_not_configured(client: TestClient) -> None:
    assert assert_down(client.get("/health/queue"), "queue") == "not configured"


def test_a_check_that_raises_is_down_without_leaking_its_text(
    container: Container, client: TestClient
) -> None:
    container.health_checks["db"] = CountingCheck(
        error=RuntimeError("password authentication failed for user x")
    )
    response = client.get("/health/db")
    assert assert_down(response, "db") == "check failed (RuntimeError)"
    assert "password" not in response.text


def test_a_check_that_returns_no_report_is_down(container: Container, client: TestClient) -> None:
    container.health_checks["db"] = lambda: True
    assert assert_down(client.get("/health/db"), "db") == "check returned no health report"


def test_a_hanging_check_times_out_and_is_not_started_twice(container: Container, client: TestClient) -> None:
    check = CountingCheck()
    check.hang = True
    container.health_checks["db"] = check
    try:
        started = time.perf_counter()
        assert "no answer within" in assert_down(client.get("/health/db"), "db")
        assert "no answer within" in assert_down(client.get("/health/db"), "db")
        elapsed = time.perf_counter() - started
        assert elapsed < 2 * TIMEOUT + 1.0
        assert check.calls == 1  # the second request joined the check still running
    finally:
        check.release.set()
    # Once the dependency answers again, the next request runs a fresh check.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        response = client.get("/health/db")
        if response.status_code == 200:
            break
    assert response.status_code == 200
    assert check.calls == 2


def test_the_summary_is_alive_and_lists_every_check(container: Container, client: TestClient) -> None:
    container.health_checks["db"] = CountingCheck(HealthReport(ok=True, detail="db answers"))
    container.health_checks["storage"] = CountingCheck(HealthReport(ok=False, detail="bucket missing"))
    response = client.get("/health")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["status"] == "degraded"
    assert data["checks"] == {
        "db": {"status": "ok", "detail": "db answers"},
        "storage": {"status": "down", "detail": "bucket missing"},
        "queue": {"status": "down", "detail": "not configured"},
    }
    container.health_checks["storage"] = CountingCheck()
    container.health_checks["queue"] = CountingCheck()
    assert client.get("/health").json()["data"]["status"] == "ok"
