"""`reckai migrate`: apply the Alembic history as the owner role.

The URL is `--url`, else MIGRATION_DATABASE_URL. In embedded mode without either, the embedded
server under var/pgdata is started (roles and database created) and migrated.
The settings are loaded (`Settings.from_env`) for the master keys: a revision that encrypts stored
personal data (0034_pii_encryption) needs them, and refuses to run without them.
Exit codes: 0 done, 2 configuration or database problem (one line on standard error).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("migrate", help="apply database migrations (as the owner role)")
    parser.add_argument("--url", help="owner-role database URL (default: MIGRATION_DATABASE_URL)")
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.add_argument("--downgrade", action="store_true", help="downgrade to --revision instead (e.g. base)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from reckai.adapters.postgres import migrations
    from reckai.adapters.security.personal_data import master_keys
    from reckai.settings import Mode, Settings, SettingsError

    try:
        url = args.url or os.environ.get("MIGRATION_DATABASE_URL")
        embedded = None
        if not url and os.environ.get("RECKAI_MODE", Mode.EMBEDDED.value) != Mode.EMBEDDED.value:
            print("reckai migrate: set MIGRATION_DATABASE_URL (the owner role) or pass --url", file=sys.stderr)
            return EXIT_ERROR
        # The settings' master keys: revisions that encrypt personal data need them (0034).
        settings = Settings.from_env()
        keys = master_keys(settings.security)
        if not url:
            from reckai.adapters.postgres.embedded import start_embedded

            embedded = start_embedded(settings.database.embedded_data_dir)
            url = embedded.urls.owner_url
        try:
            if args.downgrade:
                migrations.downgrade(url, args.revision, master_keys=keys)
            else:
                migrations.upgrade(url, args.revision, master_keys=keys)
            revision = migrations.current_revision(url)
        finally:
            if embedded is not None:
                embedded.stop()
    except (SettingsError, ValueError) as exc:
        print(f"reckai migrate: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - driver/alembic errors: one line, no traceback, no URL
        print(f"reckai migrate: failed ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})", file=sys.stderr)
        return EXIT_ERROR
    print(f"database at revision {revision or 'base'}")
    return EXIT_OK
