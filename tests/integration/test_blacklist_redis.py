"""The Redis token blacklist: the same contract as the memory one, and fail-closed when down."""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from collections.abc import Iterator

import pytest
import redis

from reckai.adapters.redis.rate_limit import connect
from reckai.adapters.redis.token_blacklist import RedisTokenBlacklist
from reckai.application.ports.security import TokenBlacklist, TokenBlacklistUnavailable
from tests.unit.test_security_rate_limit import TokenBlacklistContract

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_test_url: str) -> Iterator[redis.Redis]:
    made = connect(redis_test_url)
    yield made
    made.close()


class TestRedisTokenBlacklist(TokenBlacklistContract):
    @pytest.fixture
    def blacklist(self, client: redis.Redis) -> TokenBlacklist:
        return RedisTokenBlacklist(client)


def test_entry_lives_exactly_until_the_token_expires(client: redis.Redis) -> None:
    jti = uuid.uuid4().hex
    RedisTokenBlacklist(client).revoke(jti, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15))
    ttl = client.pttl(f"reckai:revoked-jti:{jti}")
    assert 14 * 60_000 < ttl <= 15 * 60_000


def test_unreachable_redis_raises_so_callers_fail_closed() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = connect(f"redis://127.0.0.1:{port}/0")
    blacklist = RedisTokenBlacklist(dead)
    with pytest.raises(TokenBlacklistUnavailable):
        blacklist.is_revoked("jti")
    with pytest.raises(TokenBlacklistUnavailable):
        blacklist.revoke("jti", dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    dead.close()
