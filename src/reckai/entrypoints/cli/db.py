"""`reckai db ...`: database set-up that needs more than the owner role.

- `reckai db setup-roles --admin-url URL [--database NAME]`: create or correct the roles
  reckai_owner, reckai_app and reckai_system (idempotent; needs a superuser), and optionally the
  database owned by reckai_owner. Passwords come from the environment variables
  RECKAI_OWNER_PASSWORD and RECKAI_APP_PASSWORD (never the command line, which `ps` shows).
- `reckai db check-role --url URL`: exit 1 if that role could bypass row-level security
  (superuser, BYPASSRLS, owns tables): what production checks at start-up.
Exit codes: 0 ok, 1 unsafe role, 2 configuration or database problem.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

EXIT_OK = 0
EXIT_UNSAFE = 1
EXIT_ERROR = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("db", help="database roles and checks")
    commands = parser.add_subparsers(dest="db_command", required=True)
    setup = commands.add_parser("setup-roles", help="create the owner, app and system roles (superuser URL)")
    setup.add_argument("--admin-url", required=True, help="superuser URL, e.g. postgresql://postgres@host/postgres")
    setup.add_argument("--database", help="also create this database, owned by reckai_owner")
    setup.set_defaults(handler=_run_setup_roles)
    check = commands.add_parser("check-role", help="refuse a runtime role that can bypass row-level security")
    check.add_argument("--url", help="the runtime URL (default: DATABASE_URL)")
    check.set_defaults(handler=_run_check_role)


def _run_setup_roles(args: argparse.Namespace) -> int:
    from reckai.adapters.postgres.roles import (
        APP_ROLE,
        OWNER_ROLE,
        SYSTEM_ROLE,
        ensure_database,
        ensure_roles,
    )

    try:
        ensure_roles(
            args.admin_url,
            app_password=os.environ.get("RECKAI_APP_PASSWORD") or None,
            owner_password=os.environ.get("RECKAI_OWNER_PASSWORD") or None,
        )
        if args.database:
            ensure_database(args.admin_url, args.database)
    except Exception as exc:  # noqa: BLE001 - one line on stderr, no traceback
        print(f"reckai db setup-roles: failed ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})",
              file=sys.stderr)
        return EXIT_ERROR
    print(f"roles ready: {OWNER_ROLE} (owner), {APP_ROLE} (runtime), {SYSTEM_ROLE} (SECURITY DEFINER functions)")
    if args.database:
        print(f"database ready: {args.database} (owned by {OWNER_ROLE})")
    return EXIT_OK


def _run_check_role(args: argparse.Namespace) -> int:
    from reckai.adapters.postgres.engine import create_engine
    from reckai.adapters.postgres.roles import UnsafeDatabaseRole, assert_safe_app_role

    url = args.url or os.environ.get("DATABASE_URL")
    if not url:
        print("reckai db check-role: pass --url or set DATABASE_URL", file=sys.stderr)
        return EXIT_ERROR
    engine = create_engine(url, pool_size=1)
    try:
        assert_safe_app_role(engine)
    except UnsafeDatabaseRole as exc:
        print(f"reckai db check-role: {exc}", file=sys.stderr)
        return EXIT_UNSAFE
    except Exception as exc:  # noqa: BLE001 - one line on stderr, no traceback
        print(f"reckai db check-role: failed ({type(exc).__name__})", file=sys.stderr)
        return EXIT_ERROR
    finally:
        engine.dispose()
    print("runtime role is safe: not superuser, no BYPASSRLS, owns no table")
    return EXIT_OK
