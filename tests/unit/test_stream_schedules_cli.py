"""`reckai streams tick` on an in-memory container: one line per decision, then the totals."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.bootstrap import bootstrap_in_memory
from reckai.entrypoints.cli import streams as streams_cli
from reckai.entrypoints.cli.main import build_parser
from tests.support import stream_schedule_scenarios as scenarios
from tests.support.streams import stream_world


def test_tick_prints_what_it_decided() -> None:
    world = stream_world(bootstrap_in_memory(scanner=InMemoryScanner()))
    started = scenarios.scheduled_stream(world, "cli-run")
    scenarios.day_files(world, started, "1")
    missing = scenarios.scheduled_stream(world, "cli-alert")
    out = io.StringIO()
    assert streams_cli.tick_command(world.container, scenarios.SLOT + dt.timedelta(minutes=60), out) == 0
    lines = out.getvalue().splitlines()
    slot = scenarios.SLOT.isoformat()
    assert f"STARTED stream {started.id} slot {slot}: run 1" in lines
    assert f"ALERTED stream {missing.id} slot {slot}: expected_file_missing" in lines
    assert lines[-1] == "OK: 1 started, 1 alerted, 0 refused, 0 waiting, 0 decided elsewhere"
    out = io.StringIO()
    streams_cli.tick_command(world.container, scenarios.SLOT + dt.timedelta(minutes=61), out)
    assert out.getvalue().splitlines() == ["OK: 0 started, 0 alerted, 0 refused, 0 waiting, 0 decided elsewhere"]


def test_the_moment_needs_a_zone() -> None:
    parser = build_parser("streams")
    args = parser.parse_args(["streams", "tick", "--at", "2026-03-02T06:00:00+01:00"])
    assert args.at == dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)
    with pytest.raises(SystemExit):
        parser.parse_args(["streams", "tick", "--at", "2026-03-02T06:00:00"])
