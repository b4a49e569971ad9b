"""Issue 17: `POST /api/privacy/exports` is rate limited per user (`rate_limits.export`, 3 an hour)
and per organization (`rate_limits.export_organization`, 10 an hour, all its users together):
429 RATE_LIMITED in the error envelope with Retry-After; a refused request (403) does not use up
the allowance, nor does one the other tier refused; another organization is not affected. Runs
with the in-memory limiter and with the Redis one (a real redis-server), as the upload tier's test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from litestar.testing import TestClient

from reckai.adapters.memory.rate_limit import MemoryRateLimiter
from reckai.adapters.redis.rate_limit import RedisRateLimiter, connect
from reckai.application.ports.rate_limit import RateLimiter
from reckai.bootstrap import bootstrap_in_memory
from reckai.domain.settings_registry import operator_values
from reckai.entrypoints.http.app import create_app
from reckai.settings import Settings
from tests.support.identity import bearer, create_user_with_role, login, onboard

pytestmark = pytest.mark.integration


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


def test_exports_are_limited_per_user_and_per_organization(limiter: RateLimiter) -> None:
    settings = Settings(operator=operator_values({"RATE_LIMIT_EXPORT_ORGANIZATION_PER_HOUR": "5"}))
    container = bootstrap_in_memory(settings, rate_limiter=limiter)
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        org_id, admin = onboard(client)
        admin_token = login(client, admin.org_code, admin.email, admin.password)
        analysts = [create_user_with_role(client, admin_token, "analyst")[1] for _ in range(2)]
        admin_id = str(admin.user_id)

        def export(token: str, **body: str) -> tuple[int, dict, dict]:  # type: ignore[type-arg]
            response = client.post("/api/privacy/exports", json={"scope": "user", **body}, headers=bearer(token))
            return response.status_code, response.json(), dict(response.headers)

        first = analysts[0]
        for _ in range(4):  # refused (another person's, not an admin): never counted
            assert export(first, user_id=admin_id)[0] == 403
        assert [export(first)[0] for _ in range(3)] == [202, 202, 202]
        status, body, headers = export(first)
        assert status == 429 and body["error"]["code"] == "RATE_LIMITED"
        assert 0 < int(headers["retry-after"]) <= 3600
        # The organization's allowance (5 here) is shared: 3 used, 2 left for everyone else.
        second = analysts[1]
        assert [export(second)[0] for _ in range(2)] == [202, 202]
        status, body, headers = export(second)
        assert status == 429 and body["error"]["code"] == "RATE_LIMITED" and int(headers["retry-after"]) > 0
        assert export(admin_token)[0] == 429  # the admin too: the organization's hour is used up
        # The organization tier's refusal gave the user tier's hit back: `second` used 2 of 3.
        limiter.reset(container.identity.tiers["export_organization"], str(org_id))
        assert export(second)[0] == 202
        assert export(second)[0] == 429  # now its own 3

        # Another organization is not affected.
        _, other = onboard(client)
        other_token = login(client, other.org_code, other.email, other.password)
        assert export(other_token)[0] == 202
