"""Streams over the in-memory adapters (the same scenarios run on PostgreSQL in
tests/integration/test_streams_postgres.py)."""

from __future__ import annotations

import pytest

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.bootstrap import bootstrap_in_memory
from tests.support import stream_scenarios as scenarios
from tests.support.streams import StreamWorld, stream_world


@pytest.fixture
def world() -> StreamWorld:
    return stream_world(bootstrap_in_memory(scanner=InMemoryScanner()))


def test_three_days_carry_forward_and_closing(world: StreamWorld) -> None:
    scenarios.three_days(world)


def test_re_running_over_the_same_inputs_gives_no_new_exception(world: StreamWorld) -> None:
    scenarios.rerun_gives_no_new_exception(world)


def test_files_are_refused_with_a_reason(world: StreamWorld) -> None:
    scenarios.files_are_refused_with_a_reason(world)


def test_a_file_repeating_earlier_rows_does_not_bring_them_twice(world: StreamWorld) -> None:
    scenarios.a_file_repeating_earlier_rows_does_not_bring_them_twice(world)


def test_a_remapped_file_joins_the_run_with_its_current_version(world: StreamWorld) -> None:
    scenarios.a_remapped_file_joins_the_run_with_its_current_version(world)


def test_a_forced_job_inherits_the_earlier_jobs_exceptions(world: StreamWorld) -> None:
    scenarios.a_forced_job_inherits_the_earlier_jobs_exceptions(world)
