"""The Redis rate limiter: the same contract as the memory one, against a real redis-server,
across processes, and its failure policy when Redis is down."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from reckai.adapters.redis.rate_limit import RedisRateLimiter, connect
from reckai.application.ports.rate_limit import TIERS, RateLimiter, RateLimitStoreUnavailable
from tests.unit.test_security_rate_limit import RateLimiterContract

pytestmark = pytest.mark.integration


@pytest.fixture
def clients(redis_test_url: str) -> Iterator[Callable[[], redis.Redis]]:
    made: list[redis.Redis] = []

    def make() -> redis.Redis:
        client = connect(redis_test_url)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


class TestRedisRateLimiter(RateLimiterContract):
    @pytest.fixture
    def limiter(self, clients: Callable[[], redis.Redis]) -> RateLimiter:
        return RedisRateLimiter(clients())

    @pytest.fixture
    def limiter_factory(self, clients: Callable[[], redis.Redis]) -> Callable[[], RateLimiter]:
        return lambda: RedisRateLimiter(clients())  # each its own connection pool


def test_keys_hold_no_personal_data_and_expire(clients: Callable[[], redis.Redis]) -> None:
    client = clients()
    subject = f"ORG1:ada-{uuid.uuid4().hex}@bank.example"
    RedisRateLimiter(client).hit(TIERS["auth_account"], subject)
    keys = [k.decode() for k in client.scan_iter(match="reckai:rl:auth_account:*")]
    assert keys and all("@" not in key and "ada-" not in key for key in keys)
    ttls = [client.pttl(key) for key in keys]
    assert all(0 < ttl <= 60_000 for ttl in ttls)


def test_several_processes_share_one_exact_count(redis_test_url: str) -> None:
    subject = f"user-{uuid.uuid4().hex}"
    script = textwrap.dedent(
        f"""
        import json
        from reckai.adapters.redis.rate_limit import RedisRateLimiter, connect
        from reckai.application.ports.rate_limit import TIERS
        limiter = RedisRateLimiter(connect({redis_test_url!r}, timeout_seconds=5))
        print(json.dumps([limiter.hit(TIERS["api"], {subject!r}).allowed for _ in range(40)]))
        """
    )
    workers = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE) for _ in range(4)]
    allowed: list[bool] = []
    for worker in workers:
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0
        allowed.extend(json.loads(out))
    assert len(allowed) == 160 and allowed.count(True) == 100


# --- Redis down: the documented failure policy ---------------------------------------------------


@pytest.fixture
def dead_redis() -> Iterator[redis.Redis]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = connect(f"redis://127.0.0.1:{port}/0")  # nothing listens there
    yield client
    client.close()


@pytest.mark.parametrize("tier_name", ["auth_ip", "auth_account", "upload", "report"])
def test_security_and_expensive_tiers_fail_closed(dead_redis: redis.Redis, tier_name: str) -> None:
    limiter = RedisRateLimiter(dead_redis)
    decision = limiter.hit(TIERS[tier_name], "203.0.113.7")
    assert not decision.allowed and decision.degraded and decision.retry_after_seconds > 0
    assert limiter.store_failures[tier_name] == 1


def test_api_tier_fails_open_and_is_counted(dead_redis: redis.Redis) -> None:
    limiter = RedisRateLimiter(dead_redis)
    started = time.perf_counter()
    decisions = [limiter.hit(TIERS["api"], "user-1") for _ in range(3)]
    elapsed = time.perf_counter() - started
    assert all(d.allowed and d.degraded for d in decisions)
    assert limiter.store_failures["api"] == 3
    assert elapsed < 3.0  # short socket timeouts: an outage does not stall requests


def test_reset_with_redis_down_raises_a_port_error(dead_redis: redis.Redis) -> None:
    with pytest.raises(RateLimitStoreUnavailable) as caught:
        RedisRateLimiter(dead_redis).reset(TIERS["auth_ip"], "x")
    assert isinstance(caught.value.__cause__, redis.RedisError)
