"""`reckai audit verify [--organization ID]`, `reckai audit checkpoint` and `reckai audit purge-expired`.

verify recomputes every chain (or one organization's) with the HMAC key from the settings, compares
each chain's end with the latest signed head checkpoint kept outside the database, and prints one
line per chain: `OK ...`, or `BROKEN ...` naming the first broken row (id, sequence, reason) or the
missing sequence range. Exit codes: 0 every chain verifies, 1 a chain is broken, 2 configuration
or database problem (one line on standard error, no traceback).

checkpoint writes a signed head checkpoint now (the worker's periodic job does it every minute).

purge-expired removes, chain by chain, the rows past the seven-year retention (docs/audit.md),
after verifying them, leaving a signed checkpoint.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import uuid
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from reckai.application.audit import anchor_chain_heads, purge_expired, verify_chains
from reckai.application.ports.audit import AuditAnchorStore, AuditError, AuditLog
from reckai.domain.audit.chain import AuditSigner
from reckai.domain.audit.events import SYSTEM_CHAIN_KEY

EXIT_OK = 0
EXIT_BROKEN = 1
EXIT_ERROR = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("audit", help="verify or maintain the tamper-evident audit log")
    commands = parser.add_subparsers(dest="audit_command", required=True)
    verify = commands.add_parser("verify", help="recompute the audit hash chains; exit 1 if one is broken")
    verify.add_argument("--organization", type=uuid.UUID, metavar="ID",
                        help="verify only this organization's chain (default: every chain, system included)")
    verify.set_defaults(handler=_run_verify)
    checkpoint = commands.add_parser("checkpoint", help="sign every chain's head and write it outside the database now")
    checkpoint.set_defaults(handler=_run_checkpoint)
    purge = commands.add_parser("purge-expired", help="remove audit rows older than seven years (verified first)")
    purge.set_defaults(handler=_run_purge)


def verify_command(audit_log: Any, signer: AuditSigner, organization_id: uuid.UUID | None, out: TextIO,
                   anchors: AuditAnchorStore | None = None) -> int:
    now = dt.datetime.now(dt.UTC)
    results = verify_chains(audit_log, signer, organization_id, now=now, anchors=anchors)
    broken = 0
    for result in results:
        label = "system" if result.chain_key == SYSTEM_CHAIN_KEY else f"organization {result.chain_key}"
        if result.first_break is None:
            print(f"OK {label}: {result.records_checked} records", file=out)
        else:
            broken += 1
            brk = result.first_break
            row = f"row {brk.record_id}" if brk.record_id else "no row"
            print(f"BROKEN {label}: {row} at sequence {brk.sequence_number}: {brk.reason.value} ({brk.detail})",
                  file=out)
    if not results:
        print("OK: no audit chains yet", file=out)
    elif broken:
        print(f"BROKEN: {broken} of {len(results)} chains", file=out)
    else:
        print(f"OK: {len(results)} chains, {sum(r.records_checked for r in results)} records", file=out)
    return EXIT_BROKEN if broken else EXIT_OK


def purge_command(audit_log: Any, signer: AuditSigner, out: TextIO) -> int:
    now = dt.datetime.now(dt.UTC)
    status = EXIT_OK
    for chain_key in audit_log.chain_keys():
        try:
            outcome = purge_expired(audit_log, signer, chain_key, now)
        except AuditError as exc:
            print(f"REFUSED {chain_key}: {exc}", file=out)
            status = EXIT_BROKEN
            continue
        if outcome.rows_removed:
            print(f"PURGED {chain_key}: {outcome.rows_removed} rows through sequence {outcome.through_sequence}",
                  file=out)
    return status


class AuditTools(Protocol):
    """What the audit commands need of the composition root (the Container has these)."""

    @property
    def audit_log(self) -> AuditLog: ...

    @property
    def audit_signer(self) -> AuditSigner: ...

    @property
    def audit_anchors(self) -> AuditAnchorStore: ...

    def close(self) -> None: ...


def _container() -> AuditTools:
    from reckai.bootstrap import bootstrap
    from reckai.settings import Settings

    return bootstrap(Settings.from_env())


# Replaced in tests to run the commands on a container built from test services.
container_factory: Callable[[], AuditTools] = _container


def _with_container(action: Callable[[AuditTools], int]) -> int:
    try:
        container = container_factory()
    except Exception as exc:  # noqa: BLE001 - any start-up problem: one line, no traceback
        print(f"reckai audit: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        return action(container)
    except AuditError as exc:
        print(f"reckai audit: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        container.close()


def _run_verify(args: argparse.Namespace) -> int:
    return _with_container(
        lambda c: verify_command(c.audit_log, c.audit_signer, args.organization, sys.stdout, c.audit_anchors)
    )


def checkpoint_command(audit_log: AuditLog, signer: AuditSigner, anchors: AuditAnchorStore, out: TextIO) -> int:
    checkpoint, location = anchor_chain_heads(audit_log, signer, anchors, dt.datetime.now(dt.UTC))
    print(f"OK: {len(checkpoint.heads)} chain heads anchored at {location}", file=out)
    return EXIT_OK


def _run_checkpoint(args: argparse.Namespace) -> int:
    return _with_container(lambda c: checkpoint_command(c.audit_log, c.audit_signer, c.audit_anchors, sys.stdout))


def _run_purge(args: argparse.Namespace) -> int:
    return _with_container(lambda c: purge_command(c.audit_log, c.audit_signer, sys.stdout))
