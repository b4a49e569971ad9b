"""Issue 16 item 1, over HTTP: the `upload` tier counts accepted uploads only (a refused upload
gives its hit back), and its limit comes from the settings: the operator's value
(RATE_LIMIT_UPLOAD_PER_HOUR) and an organization's override within the operator's bounds (a
`system_setting` approval, key `rate_limits`). Each runs with the in-memory limiter and with the
Redis one (a real redis-server)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from reckai.adapters.memory.rate_limit import MemoryRateLimiter
from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.adapters.redis.rate_limit import RedisRateLimiter, connect
from reckai.application.ports.rate_limit import RateLimiter
from reckai.bootstrap import bootstrap_in_memory
from reckai.domain.settings_registry import operator_values
from reckai.entrypoints.http.app import create_app
from reckai.settings import Settings
from tests.support.files_corpus import GOOD_CSV
from tests.support.identity import bearer, create_user_with_role, login, onboard

pytestmark = pytest.mark.integration

EMPTY = b""  # refused at upload: 422 EMPTY_FILE


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> Iterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    client: redis.Redis = connect(request.getfixturevalue("redis_test_url"))
    try:
        yield RedisRateLimiter(client)
    finally:
        client.close()


class Api:
    def __init__(self, limiter: RateLimiter, environ: dict[str, str] | None = None) -> None:
        settings = Settings(operator=operator_values(environ or {}))
        self.container = bootstrap_in_memory(settings, scanner=InMemoryScanner(), rate_limiter=limiter)
        self.client = TestClient(create_app(self.container), raise_server_exceptions=False)
        self.client.__enter__()
        self.org_id, admin = onboard(self.client)
        self.admin = login(self.client, admin.org_code, admin.email, admin.password)
        _, self.supervisor = create_user_with_role(self.client, self.admin, "supervisor")
        self.sequence = 0

    def close(self) -> None:
        self.client.__exit__(None, None, None)

    def upload(self, data: bytes) -> int:
        self.sequence += 1
        body = data + f"{self.sequence},x\n".encode() if data else data  # distinct files, no duplicates
        response = self.client.post("/api/files/upload", data={"file_type": "bank"},
                                    files={"file": ("bank.csv", body, "text/csv")}, headers=bearer(self.admin))
        return response.status_code

    def request_setting(self, value: Any) -> Any:
        return self.client.post("/api/approvals", json={
            "type": "system_setting", "title": "Upload limit", "description": "month-end volume",
            "metadata": {"key": "rate_limits", "value": value}}, headers=bearer(self.admin))

    def approve(self, approval_id: str) -> None:
        response = self.client.post(f"/api/approvals/{approval_id}/approve", json={},
                                    headers=bearer(self.supervisor))
        assert response.status_code == 200, response.text

    def effective(self, name: str) -> dict[str, Any]:
        response = self.client.get("/api/settings", headers=bearer(self.admin))
        assert response.status_code == 200, response.text
        return next(e for e in response.json()["data"]["effective"] if e["name"] == name)  # type: ignore[no-any-return]


@pytest.fixture
def make_api(limiter: RateLimiter) -> Iterator[Any]:
    made: list[Api] = []

    def make(environ: dict[str, str] | None = None) -> Api:
        made.append(Api(limiter, environ))
        return made[-1]

    yield make
    for api in made:
        api.close()


def test_refused_uploads_do_not_count_against_the_upload_tier(make_api: Any) -> None:
    api = make_api()
    assert [api.upload(EMPTY) for _ in range(12)] == [422] * 12  # refused: nothing counted
    assert [api.upload(GOOD_CSV) for _ in range(10)] == [201] * 10
    assert api.upload(GOOD_CSV) == 429  # the 11th accepted one in the hour
    assert api.upload(EMPTY) == 429  # over the limit, even a bad file is refused by the limit first


def test_the_upload_limit_is_the_operators_then_the_organizations_within_the_operators_bounds(
        make_api: Any) -> None:
    api = make_api({"RATE_LIMIT_UPLOAD_PER_HOUR": "3", "RATE_LIMIT_UPLOAD_PER_HOUR_ORG_MAX": "5"})
    assert api.effective("rate_limits.upload") | {"value": None} == {
        "name": "rate_limits.upload", "value": None, "source": "operator", "type": "integer", "default": 10,
        "description": api.effective("rate_limits.upload")["description"], "org_overridable": True,
        "org_minimum": 1, "org_maximum": 5, "unit": "requests per hour", "env": "RATE_LIMIT_UPLOAD_PER_HOUR",
        "ignored_org_value": None}
    assert api.effective("rate_limits.upload")["value"] == 3
    assert [api.upload(GOOD_CSV) for _ in range(4)] == [201, 201, 201, 429]

    beyond = api.request_setting({"upload": 6})  # above the operator's bound: refused when asked
    assert beyond.status_code == 400, beyond.text
    assert beyond.json()["error"]["details"] == [{"field": "metadata.value.upload", "message": "must be from 1 to 5"}]
    unknown = api.request_setting({"uploads": 4})
    assert unknown.status_code == 400 and unknown.json()["error"]["details"][0]["field"] == "metadata.value.uploads"
    operator_only = api.request_setting({"auth_ip": 1000})
    assert operator_only.status_code == 400, operator_only.text
    assert operator_only.json()["error"]["details"][0]["message"] == "is set by the operator only"

    asked = api.request_setting({"upload": 5})
    assert asked.status_code == 201, asked.text
    assert api.upload(GOOD_CSV) == 429  # not yet: the change waits for a checker
    api.approve(asked.json()["data"]["id"])
    assert (api.effective("rate_limits.upload")["value"], api.effective("rate_limits.upload")["source"]) == (5, "org")
    assert [api.upload(GOOD_CSV) for _ in range(3)] == [201, 201, 429]  # 5 accepted in the hour


def test_an_organizations_api_limit_applies_to_its_users_only(make_api: Any) -> None:
    api, other = make_api(), make_api()
    asked = api.request_setting({"api": 5})
    assert asked.status_code == 201, asked.text
    api.approve(asked.json()["data"]["id"])
    statuses = [api.client.get("/api/settings", headers=bearer(api.admin)).status_code for _ in range(6)]
    assert statuses[-1] == 429 and statuses.count(429) >= 1
    assert {other.client.get("/api/settings", headers=bearer(other.admin)).status_code for _ in range(8)} == {200}
