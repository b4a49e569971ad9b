"""`reckai privacy verify-export FILE.zip`: read a data export back (docs/privacy.md, "Export").

Checks every file of the archive against `manifest.json` (present, SHA-256, size, JSON Lines row
counts), that the archive holds nothing the manifest does not list, and for an organization's
export that the audit chain links (sequences without a gap, each row's previous_hash the hash of
the row before, from the manifest's start to its last hash). Needs no database, no settings and no
key: the HMAC of each audit row needs the service's key, which the archive does not carry.
Exit 0 with `OK ...`, or 1 with `MISMATCH <file>: <what>` naming the first mismatch.
"""

from __future__ import annotations

import sys
from typing import Any

from reckai.application.privacy.archive import verify_archive


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("privacy", help="data export tools (issue 17)")
    commands = parser.add_subparsers(dest="privacy_command", required=True)
    verify = commands.add_parser("verify-export", help="check an export zip against its manifest and its audit chain")
    verify.add_argument("file", help="the export's zip, as downloaded")
    verify.set_defaults(handler=_verify_export)


def _verify_export(args: Any) -> int:
    result = verify_archive(args.file)
    if result.ok:
        print(result.message)
        return 0
    print(f"MISMATCH {result.message}", file=sys.stderr)
    return 1
