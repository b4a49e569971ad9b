"""Alembic environment: online migrations only, run as the owner role.

The URL comes, in this order, from `config.attributes["url"]` (set by `reckai migrate` and the
tests), `alembic -x url=...`, or the environment variable MIGRATION_DATABASE_URL. It is never
written in alembic.ini.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

from reckai.adapters.postgres.roles import sqlalchemy_url

config = context.config


def _database_url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    url = url or os.environ.get("MIGRATION_DATABASE_URL")
    if not url:
        raise SystemExit(
            "no database URL: set MIGRATION_DATABASE_URL (the owner role) or pass -x url=..."
        )
    return sqlalchemy_url(url)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    # One transaction for the whole upgrade: PostgreSQL DDL is transactional, so a failed
    # migration leaves nothing half-written.
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
