"""The three database roles and the checks that keep the runtime role harmless.

- `reckai_owner`: LOGIN, owns every table, policy and function; migrations run as it.
- `reckai_app`: LOGIN, NOSUPERUSER, NOBYPASSRLS, owns nothing; the API and workers run as it and
  only see the tenant set in the current transaction.
- `reckai_system`: NOLOGIN, BYPASSRLS; owns the few SECURITY DEFINER functions that must run
  before the tenant is known or across tenants (docs/tenancy.md lists them).

Roles are cluster-wide, so `ensure_roles` is idempotent and safe to call from concurrent processes
(tests start one database per session on the same server).
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

OWNER_ROLE = "reckai_owner"
APP_ROLE = "reckai_app"
SYSTEM_ROLE = "reckai_system"

# Cluster-wide advisory lock key (any database): serialises role creation between processes.
_ROLES_LOCK_KEY = 0x7265636B  # "reck"


class UnsafeDatabaseRole(RuntimeError):
    """The runtime role could bypass row-level security; production refuses to start with it."""

    def __init__(self, role: str, reasons: list[str]) -> None:
        super().__init__(f"database role {role!r} is unsafe for the application: " + ", ".join(reasons))
        self.role = role
        self.reasons = reasons


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (`postgresql+psycopg://...`) as a plain libpq URL for psycopg.connect."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def sqlalchemy_url(url: str) -> str:
    """A libpq URL as a SQLAlchemy psycopg 3 URL (idempotent)."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]!r}")


def ensure_roles(admin_url: str, app_password: str | None = None, owner_password: str | None = None) -> None:
    """Create or correct the three roles. Needs a superuser (BYPASSRLS can only be granted by one).

    Running it again re-applies the attributes (a role edited by hand is put back) and changes a
    password only when one is given.
    """
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_ROLES_LOCK_KEY,))
        try:
            _create_role(conn, OWNER_ROLE, "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION")
            _create_role(conn, APP_ROLE, "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION")
            _create_role(conn, SYSTEM_ROLE, "NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS NOREPLICATION")
            for role, password in ((OWNER_ROLE, owner_password), (APP_ROLE, app_password)):
                if password is not None:
                    conn.execute(
                        sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
                    )
                # TIMESTAMP columns hold UTC; now() must therefore be evaluated in UTC.
                conn.execute(sql.SQL("ALTER ROLE {} SET timezone TO 'UTC'").format(sql.Identifier(role)))
            # The owner hands the SECURITY DEFINER functions to reckai_system during migrations, which
            # needs membership. Role attributes (BYPASSRLS) are never inherited through membership.
            conn.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(SYSTEM_ROLE), sql.Identifier(OWNER_ROLE))
            )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_ROLES_LOCK_KEY,))


def _create_role(conn: psycopg.Connection, role: str, attributes: str) -> None:
    for attempt in range(5):
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        try:
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL(f"{verb} ROLE {{}} {attributes}").format(sql.Identifier(role)))
            return
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            # Another server process (without our advisory lock, e.g. another database) won the race.
            time.sleep(0.05 * (attempt + 1))
    raise RuntimeError(f"could not create role {role}")


def ensure_database(admin_url: str, database: str, owner: str = OWNER_ROLE) -> None:
    """Create `database` owned by the owner role (so it owns schema public), if missing."""
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            try:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                        sql.Identifier(database), sql.Identifier(owner)
                    )
                )
            except psycopg.errors.DuplicateDatabase:
                pass
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), sql.Identifier(owner)))
        conn.execute(sql.SQL("ALTER DATABASE {} SET timezone TO 'UTC'").format(sql.Identifier(database)))
    # In PostgreSQL 15+ schema public belongs to pg_database_owner (the owner role above); make it
    # explicit for clusters upgraded from older versions, and keep PUBLIC from creating objects.
    with psycopg.connect(_with_database(libpq_url(admin_url), database), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(owner)))
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")


def drop_database(admin_url: str, database: str) -> None:
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def _with_database(url: str, database: str) -> str:
    return make_url(sqlalchemy_url(url)).set(database=database).render_as_string(hide_password=False).replace(
        "postgresql+psycopg://", "postgresql://", 1
    )


def role_url(admin_url: str, role: str, database: str, password: str | None = None) -> str:
    """The admin URL's host/port/socket with another role and database (SQLAlchemy form)."""
    return make_url(sqlalchemy_url(admin_url)).set(username=role, password=password, database=database).render_as_string(
        hide_password=False
    )


def assert_safe_app_role(engine: Engine) -> None:
    """Raise UnsafeDatabaseRole when the engine's role is superuser, has BYPASSRLS or owns a table.

    Production calls this at startup: a role that bypasses row-level security would silently
    turn every tenant query into a cross-tenant one.
    """
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT current_user, rolsuper, rolbypassrls,"
                " (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                "   WHERE c.relowner = r.oid AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
                "   AND c.relkind IN ('r', 'p', 'v', 'm', 'f')) AS owned"
                " FROM pg_roles r WHERE r.rolname = current_user"
            )
        ).one()
    reasons = []
    if row.rolsuper:
        reasons.append("is a superuser")
    if row.rolbypassrls:
        reasons.append("has BYPASSRLS")
    if row.owned:
        reasons.append(f"owns {row.owned} relation(s) (table owners skip non-forced policies)")
    if reasons:
        raise UnsafeDatabaseRole(row.current_user, reasons)
