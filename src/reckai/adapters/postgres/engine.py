"""Engine creation (psycopg 3, pooled) and the slow-query log."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.interfaces import DBAPICursor, ExceptionContext, ExecutionContext

from reckai.adapters.postgres.roles import sqlalchemy_url

_log = logging.getLogger("reckai.db")

_STATEMENT_LOG_LIMIT = 2000


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 5,
    slow_query_seconds: float = 1.0,
    application_name: str = "reckai",
    **kwargs: Any,
) -> Engine:
    """A pooled engine on `postgresql+psycopg://`; every session runs in UTC.

    Queries slower than `slow_query_seconds` are logged (spec §4.2) at WARNING on logger
    "reckai.db" with their duration and statement text, never their parameters (they may hold
    personal data or secrets).
    """
    engine = sqlalchemy.create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"options": "-c timezone=UTC", "application_name": application_name, "connect_timeout": 5},
        **kwargs,
    )
    install_slow_query_log(engine, slow_query_seconds)
    return engine


def install_slow_query_log(engine: Engine, threshold_seconds: float) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn: Connection, cursor: DBAPICursor, statement: str, parameters: object,
               context: ExecutionContext | None, executemany: bool) -> None:
        conn.info.setdefault("reckai_query_started", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _finish(conn: Connection, cursor: DBAPICursor, statement: str, parameters: object,
                context: ExecutionContext | None, executemany: bool) -> None:
        started = conn.info.get("reckai_query_started")
        if not started:
            return
        duration = time.perf_counter() - started.pop()
        if duration > threshold_seconds:
            _log_slow(statement, duration)

    @event.listens_for(engine, "handle_error")
    def _failed(context: ExceptionContext) -> None:
        started = context.connection.info.get("reckai_query_started") if context.connection is not None else None
        if started:
            started.pop()


def _log_slow(statement: str, duration: float) -> None:
    details = {
        "event": "slow_query",
        "duration_ms": round(duration * 1000, 1),
        "statement": " ".join(statement.split())[:_STATEMENT_LOG_LIMIT],
    }
    _log.warning(json.dumps(details), extra={"action": "db.slow_query", "metadata": details})
