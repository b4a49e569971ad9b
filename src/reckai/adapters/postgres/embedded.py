"""Embedded PostgreSQL 16 (the `pgserver` wheel) for `make run` and the tests.

Data lives under a git-ignored folder (default var/pgdata). The server listens on a Unix socket
only, with trust authentication: it is a development database, never a production one. A second
start finds the running server (or the initialised data directory) and returns in well under a
second.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reckai.adapters.postgres.roles import (
    APP_ROLE,
    OWNER_ROLE,
    ensure_database,
    ensure_roles,
    role_url,
    sqlalchemy_url,
)

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

DEFAULT_DATABASE = "reckai"

_log = logging.getLogger("reckai.db")


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be started (the message names the data directory)."""


@dataclass(frozen=True)
class DatabaseUrls:
    """SQLAlchemy URLs (`postgresql+psycopg://`) for one database, one per role."""

    admin_url: str  # superuser, `postgres` database
    owner_url: str  # reckai_owner: migrations
    app_url: str  # reckai_app: the application at runtime
    database: str


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    server: PostgresServer
    urls: DatabaseUrls

    def stop(self) -> None:
        """Release this process's handle; the server stops when the last process lets go."""
        self.server.cleanup()


def start_embedded(
    data_dir: Path | str = Path("var/pgdata"),
    database: str = DEFAULT_DATABASE,
    *,
    cleanup_mode: str | None = "stop",
) -> EmbeddedPostgres:
    """Start (or join) the server under `data_dir`, create the roles and `database`.

    cleanup_mode: "stop" stops the server when the last process using it exits, "delete" also
    removes the data directory (tests), None leaves it running.
    """
    server, admin_url = start_server(data_dir, cleanup_mode=cleanup_mode)
    ensure_roles(admin_url)
    ensure_database(admin_url, database)
    urls = DatabaseUrls(
        admin_url=admin_url,
        owner_url=role_url(admin_url, OWNER_ROLE, database),
        app_url=role_url(admin_url, APP_ROLE, database),
        database=database,
    )
    _log.info('{"event": "embedded_postgres_ready", "data_dir": "%s"}', server.pgdata)
    return EmbeddedPostgres(data_dir=Path(server.pgdata), server=server, urls=urls)


def start_server(data_dir: Path | str, *, cleanup_mode: str | None = "stop") -> tuple[PostgresServer, str]:
    """Start (or join) the bare server; returns the pgserver handle and the superuser URL."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers); it falls back to /tmp.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - pgserver is a declared dependency
        raise EmbeddedPostgresError("the pgserver package is not installed") from exc
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = get_server(data_dir, cleanup_mode=cleanup_mode)
    except Exception as exc:
        raise EmbeddedPostgresError(f"could not start embedded PostgreSQL in {data_dir}: {exc}") from exc
    return server, sqlalchemy_url(server.get_uri())
