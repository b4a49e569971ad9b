"""`reckai streams tick [--at TIME]`: decide the stream schedules' due slots once, now (or at TIME,
an ISO 8601 moment, for operators replaying a missed tick), as the worker's periodic
`tick_stream_schedules` job does every minute (docs/streams.md "Schedules"). Safe beside running
workers: a slot is decided once whoever ticks. Prints one line per decision; exit 0, or 2 on a
configuration or database problem (one line on standard error).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from typing import Any, TextIO

from reckai.application.streams.schedules import TickReport, tick_schedules
from reckai.bootstrap import Container

EXIT_OK = 0
EXIT_ERROR = 2


def _moment(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone, e.g. 2026-03-02T06:00:00+01:00")
    return moment.astimezone(dt.UTC)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("streams", help="stream schedules (operators)")
    commands = parser.add_subparsers(dest="streams_command", required=True)
    tick = commands.add_parser("tick", help="start due scheduled runs and send expected_file_missing alerts once")
    tick.add_argument("--at", type=_moment, metavar="TIME", help="tick as of this moment (ISO 8601 with a zone)")
    tick.set_defaults(handler=_run_tick)


def tick_command(container: Container, at: dt.datetime | None, out: TextIO) -> int:
    report: TickReport = tick_schedules(container.reconciliations, at)
    for stream_id, slot, run_number in report.started:
        print(f"STARTED stream {stream_id} slot {slot.isoformat()}: run {run_number}", file=out)
    for stream_id, slot in report.alerted:
        print(f"ALERTED stream {stream_id} slot {slot.isoformat()}: expected_file_missing", file=out)
    for stream_id, slot, code in report.refused:
        print(f"REFUSED stream {stream_id} slot {slot.isoformat()}: {code}", file=out)
    print(f"OK: {len(report.started)} started, {len(report.alerted)} alerted, {len(report.refused)} refused, "
          f"{report.waiting} waiting, {report.taken} decided elsewhere", file=out)
    return EXIT_OK


def _container() -> Container:
    from reckai.bootstrap import bootstrap
    from reckai.settings import Settings

    return bootstrap(Settings.from_env())


# Replaced in tests to run the command on a container built from test services.
container_factory: Callable[[], Container] = _container


def _run_tick(args: argparse.Namespace) -> int:
    try:
        container = container_factory()
    except Exception as exc:  # noqa: BLE001 - any start-up problem: one line, no traceback
        print(f"reckai streams: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        return tick_command(container, args.at, sys.stdout)
    finally:
        container.close()
