"""`reckai privacy verify-export FILE.zip`: read a data export back (docs/privacy.md, "Export").
`reckai privacy erase --org CODE --user ID --yes [--reason TEXT]`: erase a user as an operator
(docs/privacy.md, "Erasure"; no approval, audited as a system event with `by: operator`); exit 2
when refused (unknown organization or user, erased already, a legal hold naming its end, the last
active admin) or without `--yes`.

Checks every file of the archive against `manifest.json` (present, SHA-256, size, JSON Lines row
counts), that the archive holds nothing the manifest does not list, and for an organization's
export that the audit chain links (sequences without a gap, each row's previous_hash the hash of
the row before, from the manifest's start to its last hash). Needs no database, no settings and no
key: the HMAC of each audit row needs the service's key, which the archive does not carry.
Exit 0 with `OK ...`, or 1 with `MISMATCH <file>: <what>` naming the first mismatch.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import TYPE_CHECKING, Any, TextIO

from reckai.application.context import RequestInfo
from reckai.application.errors import ApplicationError
from reckai.application.privacy.archive import verify_archive

if TYPE_CHECKING:
    from reckai.bootstrap import Container


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("privacy", help="data export checks and erasure (operators; docs/privacy.md)")
    commands = parser.add_subparsers(dest="privacy_command", required=True)
    verify = commands.add_parser("verify-export", help="check an export zip against its manifest and its audit chain")
    verify.add_argument("file", help="the export's zip, as downloaded")
    verify.set_defaults(handler=_verify_export)
    erase = commands.add_parser("erase", help="erase a user's personal data (operators; right to erasure)")
    erase.add_argument("--org", required=True, help="the organization's sign-in code")
    erase.add_argument("--user", required=True, type=uuid.UUID, help="the user's id")
    erase.add_argument("--reason", help="why, one line (e.g. the data subject's request reference); audited")
    erase.add_argument("--yes", action="store_true", help="confirm: erasure cannot be undone")
    erase.set_defaults(handler=_run_erase)


def erase_command(container: Container, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The operator's erasure: no approval (the operator acts for the organization's controller,
    outside the application), audited as a system event `privacy.user.erased` with `by: operator`."""
    from reckai.application.privacy.erasure import operator_erase_user

    if not args.yes:
        print("reckai privacy erase: erasure cannot be undone; run again with --yes to confirm", file=err)
        return 2
    reason = (args.reason or "").strip() or None
    if reason is not None and ("\n" in reason or "\r" in reason or len(reason) > 200):
        print("reckai privacy erase: --reason must be one line of at most 200 characters", file=err)
        return 2
    try:
        erasure = operator_erase_user(
            container.identity, organization_code=args.org, user_id=args.user, reason=reason,
            request=RequestInfo(user_agent="reckai-cli", method="CLI", path="reckai privacy erase"))
    except ApplicationError as exc:
        print(f"reckai privacy erase: {exc.message}", file=err)
        return 2
    print(f"ERASED user {erasure.user.id}: row pseudonymised, {erasure.sessions_revoked} session(s) revoked, "
          f"{erasure.links_invalidated} link(s) invalidated, audit key "
          f"{'destroyed' if erasure.key_destroyed else 'absent (no personal data sealed yet)'}", file=out)
    return 0


def _run_erase(args: argparse.Namespace) -> int:
    from reckai.bootstrap import bootstrap
    from reckai.logging_setup import configure_logging
    from reckai.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        container = bootstrap(settings)
    except SettingsError as exc:
        print(f"reckai privacy erase: {exc}", file=sys.stderr)
        return 2
    try:
        return erase_command(container, args, sys.stdout, sys.stderr)
    finally:
        container.close()


def _verify_export(args: Any) -> int:
    result = verify_archive(args.file)
    if result.ok:
        print(result.message)
        return 0
    print(f"MISMATCH {result.message}", file=sys.stderr)
    return 1
