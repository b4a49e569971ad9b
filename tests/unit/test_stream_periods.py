"""Period close of a stream over the in-memory adapters (the same scenarios run on PostgreSQL in
tests/integration/test_stream_periods_postgres.py, where the database's freeze is also tested)."""

from __future__ import annotations

import pytest

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.bootstrap import bootstrap_in_memory
from tests.support import period_scenarios as scenarios
from tests.support.streams import StreamWorld, stream_world


@pytest.fixture
def moved() -> scenarios.MovableClock:
    return scenarios.clock()


@pytest.fixture
def world(moved: scenarios.MovableClock) -> StreamWorld:
    return stream_world(bootstrap_in_memory(scanner=InMemoryScanner(), clock=moved))


def test_closing_through_an_approval_snapshots_the_period(world: StreamWorld, moved: scenarios.MovableClock) -> None:
    scenarios.the_snapshot_holds_the_period_figures(world, moved)


def test_every_path_refuses_an_exception_of_a_closed_period(world: StreamWorld,
                                                             moved: scenarios.MovableClock) -> None:
    scenarios.every_path_refuses_a_closed_periods_exception(world, moved)


def test_an_adjustment_reopens_and_a_later_match_is_held(world: StreamWorld, moved: scenarios.MovableClock) -> None:
    scenarios.adjustment_reopens_and_later_match_is_held(world, moved)


def test_periods_close_in_order_and_reopen_from_the_latest(world: StreamWorld,
                                                           moved: scenarios.MovableClock) -> None:
    scenarios.periods_close_in_order_and_reopen_from_the_latest(world, moved)


def test_an_earlier_open_period_blocks_a_close(world: StreamWorld, moved: scenarios.MovableClock) -> None:
    scenarios.an_earlier_open_period_blocks_a_close(world, moved)
