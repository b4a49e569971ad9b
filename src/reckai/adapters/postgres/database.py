"""Open the database for the composition root: embedded or production, and its health check."""

from __future__ import annotations

import logging

from sqlalchemy import text

from reckai.adapters.postgres import migrations
from reckai.adapters.postgres.engine import create_engine
from reckai.adapters.postgres.roles import assert_safe_app_role
from reckai.adapters.postgres.unit_of_work import PostgresDatabase
from reckai.adapters.security.personal_data import PersonalDataKeys, master_keys
from reckai.application.ports.health import HealthReport
from reckai.settings import Mode, Settings

_log = logging.getLogger("reckai.db")

HEALTH_STATEMENT_TIMEOUT_MS = 2000


def open_database(settings: Settings) -> PostgresDatabase:
    """Production: DATABASE_URL (the app role, checked to be unable to bypass row-level
    security); migrations are a separate step (`reckai migrate`, as the owner role).

    Embedded: with DATABASE_URL set, that server (migrated first when MIGRATION_DATABASE_URL is
    set too); otherwise the embedded server under `embedded_data_dir`, migrated to head on start.
    """
    db = settings.database
    on_close = None
    if settings.mode is Mode.PRODUCTION:
        if not db.url:
            raise ValueError("production mode requires DATABASE_URL (the app role)")
        app_url = db.url
    elif db.url:
        if db.migration_url:
            migrations.upgrade(db.migration_url, master_keys=master_keys(settings.security))
        app_url = db.url
    else:
        from reckai.adapters.postgres.embedded import start_embedded

        embedded = start_embedded(db.embedded_data_dir)
        migrations.upgrade(embedded.urls.owner_url, master_keys=master_keys(settings.security))
        app_url = embedded.urls.app_url
        on_close = embedded.stop
    engine = create_engine(
        app_url,
        pool_size=db.pool_size,
        max_overflow=db.max_overflow,
        slow_query_seconds=db.slow_query_seconds,
    )
    try:
        if settings.mode is Mode.PRODUCTION:
            assert_safe_app_role(engine)
    except BaseException:
        engine.dispose()
        raise
    return PostgresDatabase(engine, on_close=on_close,
                            personal_data=PersonalDataKeys(master_keys(settings.security)))


def database_health(database: PostgresDatabase) -> HealthReport:
    """`/health/db`: a real round trip (SELECT 1) with a short statement timeout."""
    try:
        with database.engine.connect() as conn:
            conn.execute(text(f"SET LOCAL statement_timeout = {HEALTH_STATEMENT_TIMEOUT_MS}"))
            conn.execute(text("SELECT 1")).scalar_one()
            conn.rollback()
    except Exception as exc:  # noqa: BLE001 - health must report, never raise
        _log.warning('{"event": "db_health_failed", "error": "%s"}', type(exc).__name__)
        return HealthReport(ok=False, detail=f"database unreachable ({type(exc).__name__})")
    return HealthReport(ok=True, detail="database answered SELECT 1")
