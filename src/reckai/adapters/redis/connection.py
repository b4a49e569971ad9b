"""Redis connections: one place that turns REDIS_URL into clients, and the PING health probe.

Clients are built by bootstrap (never at import). Timeouts are short and explicit: a Redis that
does not answer must fail a health check or a send within seconds, not hang a request thread.
"""

from __future__ import annotations

import redis

from reckai.application.ports.health import HealthReport

CONNECT_TIMEOUT_SECONDS = 2.0
# Socket reads: Dramatiq's consumers do short fetches (no blocking commands), so a few seconds
# is plenty and turns a stalled server into an error instead of a hung worker.
SOCKET_TIMEOUT_SECONDS = 10.0


class RedisUrlInvalid(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"REDIS_URL is not usable: {reason}")


def redis_client(url: str, *, max_connections: int | None = None) -> redis.Redis:
    """A pooled client for `url` (redis://, rediss:// or unix://). Raises RedisUrlInvalid."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise RedisUrlInvalid("it must start with redis://, rediss:// or unix://")
    try:
        pool = redis.ConnectionPool.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            health_check_interval=30,
            max_connections=max_connections,
        )
    except ValueError as exc:
        raise RedisUrlInvalid(str(exc)) from exc
    return redis.Redis(connection_pool=pool)


def ping(client: redis.Redis) -> HealthReport:
    """PING the server; never raises."""
    try:
        client.ping()
    except redis.RedisError as exc:
        return HealthReport(ok=False, detail=f"redis unreachable: {type(exc).__name__}")
    return HealthReport(ok=True, detail="redis answered PING")


def describe(url: str) -> str:
    """`url` without its password, for logs and error messages."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
