"""`reckai reconcile`: match two files with a profile and write the results to a folder.

Writes DIR/matches.csv, DIR/suggestions.csv, DIR/exceptions.csv and DIR/summary.json. Files are
written under temporary names and renamed at the end, so a failed run leaves nothing half-written.

Exit status: 0 done; 2 an error (bad profile, bad file, ...: nothing written); 3 done, but rows of
a file were rejected (unreadable amount, date, ...): the results are written and incomplete — a
rejected row's counterpart shows as a missing entry — and stderr names the rejected rows per side
with the first reasons. `--allow-row-errors` accepts that (exit 0, the summary still on stderr).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from reckai.application.ports.matching import MatchingError, SourceFileError
from reckai.application.reconcile import ReconcileOutcome, load_profile, reconcile_files
from reckai.bootstrap_matching import build_file_matching
from reckai.domain.reconciliation.profile import ProfileError, ReconciliationPeriod


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reconcile", help="match two files with a profile; write matches, suggestions, exceptions, summary",
        description="Match LEFT (e.g. a bank statement) against RIGHT (e.g. a switch file) with the rules "
                    "of PROFILE (docs/profile.md) and write the results to OUT.")
    parser.add_argument("--left", required=True, help="left file (e.g. the bank statement)")
    parser.add_argument("--right", required=True, help="right file (e.g. the switch or settlement file)")
    parser.add_argument("--profile", required=True, help="profile JSON: both mappings, sides, rules")
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--period-start", type=_date, help="first day of the period, YYYY-MM-DD")
    parser.add_argument("--period-end", type=_date, help="last day of the period, YYYY-MM-DD")
    parser.add_argument("--engine", choices=("polars", "reference"), default="polars",
                        help="matching engine (reference: the pure-Python definition, slower)")
    parser.add_argument("--allow-row-errors", action="store_true",
                        help="exit 0 even when rows of a file were rejected (by default: exit 3, the "
                             "rejected rows named on stderr)")
    parser.set_defaults(handler=run)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


class _Progress:
    """A one-line progress indication on a terminal; silent when stderr is not a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()

    def __call__(self, stage: str, step: int, total: int) -> None:
        if self.enabled:
            width = 20
            filled = width * (step - 1) // total
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {step}/{total} {stage:<30}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write(f"\r[{'#' * 20}] done{' ' * 40}\n")


def run(args: argparse.Namespace) -> int:
    try:
        if (args.period_start is None) != (args.period_end is None):
            raise ProfileError("period", "give both --period-start and --period-end, or neither")
        period = ReconciliationPeriod(args.period_start, args.period_end) if args.period_start else None
        profile = load_profile(args.profile)
        matching = build_file_matching(args.engine)
        source, engine = matching.source, matching.engine
        progress = _Progress()
        outcome = reconcile_files(args.left, args.right, profile, period, source, engine, progress)
        progress.done()
        write_outputs(outcome, Path(args.out))
    except ProfileError as exc:
        return _fail(f"bad profile: {exc}")
    except SourceFileError as exc:
        return _fail(f"bad file: {exc}")
    except (MatchingError, OSError) as exc:
        return _fail(str(exc))
    summary = outcome.summary()
    print(f"{summary['matched_pairs']} matched pairs, {summary['suggested_pairs']} suggestions, "
          f"{summary['exceptions']} exceptions (match rate {summary['match_rate']}%) -> {args.out}")
    for warning in outcome.warnings:  # an implausible result: said, not an error (summary.json has them too)
        sys.stderr.write(f"reckai reconcile: warning [{warning.code}]: {warning.message}\n")
    if outcome.left_row_errors or outcome.right_row_errors:
        sys.stderr.write(rejected_rows_report(outcome, {"left": args.left, "right": args.right},
                                              allowed=args.allow_row_errors))
        return 0 if args.allow_row_errors else ROWS_REJECTED
    return 0


ROWS_REJECTED = 3  # exit status: the results are written, but rows of a file were rejected
FIRST_REASONS = 5  # rejected rows named per side on stderr (all of them are in summary.json's count)


def rejected_rows_report(outcome: ReconcileOutcome, paths: dict[str, str], *, allowed: bool) -> str:
    """What a person must know before trusting the results: how many rows of each side were
    rejected, the first few with their position and reason, and what that does to the results."""
    sides = {"left": outcome.left_row_errors, "right": outcome.right_row_errors}
    total = sum(len(errors) for errors in sides.values())
    lines = [(f"reckai reconcile: {'warning' if allowed else 'error'}: {total} row{'s' if total != 1 else ''} "
             f"rejected (left {len(sides['left'])}, right {len(sides['right'])}); they are not in the results, "
             "so their counterparts show as missing entries")]
    for side, errors in sides.items():
        if not errors:
            continue
        lines.append(f"  {side} ({paths[side]}): {len(errors)} rejected")
        for error in errors[:FIRST_REASONS]:
            where = f"row {error.row_number}" + (f" (line {error.line_number})" if error.line_number else "")
            column = f" column {error.column}" if error.column else ""
            value = f" value {error.value!r}" if error.value is not None else ""
            lines.append(f"    {where}{column}{value}: {error.reason}")
        if len(errors) > FIRST_REASONS:
            lines.append(f"    ... and {len(errors) - FIRST_REASONS} more")
    if not allowed:
        lines.append("  fix the rows (or the mapping) and run again, or accept them with --allow-row-errors")
    return "\n".join(lines) + "\n"


def _fail(message: str) -> int:
    sys.stderr.write(f"reckai reconcile: error: {' '.join(message.split())}\n")
    return 2




def write_outputs(outcome: ReconcileOutcome, out: Path) -> None:
    """The three tables (written by the engine's own writer, column-wise), then summary.json with
    the time that took."""
    out.mkdir(parents=True, exist_ok=True)
    written = [(out / f".{table}.csv.partial", out / f"{table}.csv") for table in ("matches", "suggestions", "exceptions")]
    started = time.perf_counter()
    try:
        # matches.csv (a row per pair: most of the bytes) is written beside the two small files (the
        # breaks' wording, done for exceptions.csv, included): the writer runs in polars, which
        # releases the GIL, so on two cores they overlap.
        def write_small() -> None:
            for index, table in ((1, "suggestions"), (2, "exceptions")):
                outcome.result.write_csv(table, written[index][0])

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="reckai-write") as pool:
            large = pool.submit(outcome.result.write_csv, "matches", written[0][0])
            small = pool.submit(write_small)
            large.result()
            small.result()
        outcome.stage_seconds["write_outputs"] = time.perf_counter() - started
        # an engine that words its breaks for the first file that needs them timed it meanwhile
        if "explanations" in outcome.result.stage_seconds:
            outcome.stage_seconds["explanations"] = outcome.result.stage_seconds["explanations"]
        temporary = out / ".summary.json.partial"
        written.append((temporary, out / "summary.json"))
        temporary.write_text(json.dumps(outcome.summary(), indent=2) + "\n", encoding="utf-8")
    except BaseException:
        for temporary, _ in written:
            temporary.unlink(missing_ok=True)
        raise
    for temporary, final in written:
        os.replace(temporary, final)
