"""`reckai retention run [--dry-run] [--org CODE] [--batch-size N]`: delete what is past its
retention period now (finished jobs with their results, uploaded files, decided approvals, ended
sessions) (the worker's daily `apply_retention` job does the same), or, with
`--dry-run`, list what would be deleted and what is kept and why, deleting nothing.

One line per job, file and approval (`DELETE` or `WOULD DELETE`, `KEEP <reason>`), then one summary line per
organization. Exit codes: 0 done, 2 configuration problem or unknown organization (one line on
standard error).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from reckai.application.retention import OrganizationRetention, RetentionServices, apply_retention
from reckai.bootstrap import Container


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("retention", help="apply the organizations' retention policies (operators)")
    commands = parser.add_subparsers(dest="retention_command", required=True)
    run = commands.add_parser("run", help="delete finished jobs, uploaded files, decided approvals and "
                                "ended sessions past their retention period")
    run.add_argument("--dry-run", action="store_true", help="report what would be deleted; delete nothing")
    run.add_argument("--org", metavar="CODE", help="only this organization (its sign-in code)")
    run.add_argument("--batch-size", type=int, default=100, help="jobs or files per transaction (default 100)")
    run.set_defaults(handler=_run)


def print_outcomes(outcomes: Sequence[OrganizationRetention], out: TextIO) -> None:
    for outcome in outcomes:
        if outcome.legal_hold is not None and outcome.legal_hold.until is not None:
            print(f"HELD organization {outcome.organization_id}: legal hold until "
                  f"{outcome.legal_hold.until.isoformat()} ({outcome.legal_hold.reason}); nothing deleted", file=out)
            continue
        verb = "WOULD DELETE" if outcome.dry_run else "DELETE"
        for job in outcome.deleted_jobs:
            print(f"{verb} job {job.job_id} created {job.created_at.date().isoformat()} ({job.status})", file=out)
        for job in outcome.kept_jobs:
            reason = job.kept_because.value if job.kept_because else "?"
            print(f"KEEP job {job.job_id} created {job.created_at.date().isoformat()}: {reason}", file=out)
        for deleted in outcome.deleted_files:
            print(f"{verb} file {deleted.file_id} uploaded {deleted.uploaded_at.date().isoformat()} "
                  f"({deleted.size_bytes} bytes, {1 + len(deleted.normalized_paths)} objects)", file=out)
        for kept in outcome.kept_files:
            reason = kept.kept_because.value if kept.kept_because else "?"
            print(f"KEEP file {kept.file_id} uploaded {kept.uploaded_at.date().isoformat()}: {reason}", file=out)
        for approval in outcome.deleted_approvals:
            print(f"{verb} approval {approval.approval_id} decided {approval.decided_at.date().isoformat()} "
                  f"({approval.type}, {approval.status})", file=out)
        for approval in outcome.kept_approvals:
            reason = approval.kept_because.value if approval.kept_because else "?"
            print(f"KEEP approval {approval.approval_id} decided {approval.decided_at.date().isoformat()}: {reason}",
                  file=out)
        done = "to delete" if outcome.dry_run else "deleted"
        print(f"{'DRY RUN' if outcome.dry_run else 'DONE'} organization {outcome.organization_id}: jobs kept "
              f"{outcome.results_days} days, {len(outcome.deleted_jobs)} jobs {done}, {len(outcome.kept_jobs)} kept; "
              f"uploads kept {outcome.uploads_days} days, "
              f"{len(outcome.deleted_files)} files {done} ({outcome.deleted_bytes} bytes), {len(outcome.kept_files)} kept; "
              f"{len(outcome.deleted_approvals)} approvals {done}, {len(outcome.kept_approvals)} kept; "
              f"{outcome.deleted_sessions} ended sessions {done} (kept at most {outcome.sessions_days} days)"
              + (f", {len(outcome.objects_not_deleted)} objects left to the orphan sweeper"
                 if outcome.objects_not_deleted else ""), file=out)


def run_command(services: RetentionServices, container: Container, args: argparse.Namespace, out: TextIO,
                err: TextIO) -> int:
    organization_id = None
    if args.org:
        with container.database.unit_of_work(None) as uow:
            organization_id = uow.organizations.find_id_by_code(args.org.strip().lower())
        if organization_id is None:
            print(f"reckai retention run: no organization with code {args.org!r}", file=err)
            return 2
    if args.batch_size < 1:
        print("reckai retention run: --batch-size must be at least 1", file=err)
        return 2
    outcomes = apply_retention(services, dry_run=args.dry_run, organization_id=organization_id,
                               batch_size=args.batch_size)
    print_outcomes(outcomes, out)
    return 0


def _run(args: argparse.Namespace) -> int:
    from reckai.bootstrap import bootstrap
    from reckai.logging_setup import configure_logging
    from reckai.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        container = bootstrap(settings)
    except SettingsError as exc:
        print(f"reckai retention run: {exc}", file=sys.stderr)
        return 2
    try:
        return run_command(container.retention, container, args, sys.stdout, sys.stderr)
    finally:
        container.close()
