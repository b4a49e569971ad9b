"""`reckai keys rotate [--batch-size N]`: wrap every organization's data key again under the active
master key (docs/privacy.md, "Rotating the master key").

Run it after every API and worker process runs with the new `DATA_ENCRYPTION_KEY` (and the old
one in `DATA_ENCRYPTION_RETIRED_KEYS`); the service keeps serving meanwhile. One line per
organization re-wrapped, then `DONE: N data keys re-wrapped under master key K`. Exit codes: 0
done, 2 configuration problem or a data key whose master key the settings lack (one line on
standard error).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from reckai.application.context import RequestInfo
from reckai.application.ports.personal_data import DataKeyUnavailable
from reckai.application.privacy.keys import rotate_data_keys
from reckai.bootstrap import Container, key_rotation_database


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="encryption keys of personal data (operators)")
    commands = parser.add_subparsers(dest="keys_command", required=True)
    rotate = commands.add_parser("rotate", help="re-wrap every organization's data key under the active master key")
    rotate.add_argument("--batch-size", type=int, default=100, help="organizations listed per batch (default 100)")
    rotate.set_defaults(handler=_rotate)


def rotate_command(container: Container, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    database = key_rotation_database(container)
    if database is None:
        print("reckai keys rotate: needs the PostgreSQL database (nothing is encrypted in memory)", file=err)
        return 2
    if args.batch_size < 1:
        print("reckai keys rotate: --batch-size must be at least 1", file=err)
        return 2
    try:
        rotation = rotate_data_keys(database, container.audit_log, request=RequestInfo(user_agent="reckai-cli", method="CLI",
                                                                      path="reckai keys rotate"),
                                    batch_size=args.batch_size)
    except DataKeyUnavailable as exc:
        print(f"reckai keys rotate: {exc}", file=err)
        return 2
    for organization_id in rotation.rewrapped:
        print(f"REWRAPPED organization {organization_id}", file=out)
    active = container.settings.security.data_encryption_key_id
    print(f"DONE: {len(rotation.rewrapped)} data keys re-wrapped under master key {active}", file=out)
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from reckai.bootstrap import bootstrap
    from reckai.logging_setup import configure_logging
    from reckai.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        container = bootstrap(settings)
    except SettingsError as exc:
        print(f"reckai keys rotate: {exc}", file=sys.stderr)
        return 2
    try:
        return rotate_command(container, args, sys.stdout, sys.stderr)
    finally:
        container.close()
