"""Property tests of a stream's carried-forward input (issue 15): the rows open after a run, read
back from the run's carry Parquet and followed by the next day's new rows (numbered by the stream,
with gaps where rows were matched), are matched the same by the polars matcher and the reference
matcher; and a run over the open items only finds exactly the breaks it found before."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings

from reckai.adapters.polars.job_results import PolarsJobMatchingEngine
from reckai.adapters.polars.matcher import PolarsMatcher
from reckai.adapters.polars.matcher_frames import frame_from_transactions, transactions_from_frame
from reckai.adapters.polars.stream_runs import PolarsStreamEngine
from reckai.domain.ingestion.canonical import CanonicalTransaction
from reckai.domain.reconciliation.reference_matcher import ReferenceMatcher
from tests.unit.matching_builders import view
from tests.unit.test_matching_properties import assert_same, file_pair, profile_strategy

LEFT_FILES = [uuid.UUID(int=1), uuid.UUID(int=3)]
RIGHT_FILES = [uuid.UUID(int=2), uuid.UUID(int=4)]


def _later(rows: list[CanonicalTransaction], days: int) -> list[CanonicalTransaction]:
    return [dataclasses.replace(r, transaction_date=r.transaction_date + dt.timedelta(days=days))
            if r.transaction_date else r for r in rows]


def _nothing_known(keys: Any) -> set[tuple[str, int]]:
    return set()


def _nothing_settled(seqs: Any) -> set[int]:
    return set()


def _first_run(engine: PolarsStreamEngine, day1: Any, prof: Any) -> tuple[bytes, dict[str, int], Any]:
    left = engine.side_input("left", [(LEFT_FILES[0], frame_from_transactions(day1[0]))], None, 1,
                             _nothing_known, _nothing_settled)
    right = engine.side_input("right", [(RIGHT_FILES[0], frame_from_transactions(day1[1]))], None, 1,
                              _nothing_known, _nothing_settled)
    run = PolarsJobMatchingEngine().run(engine.engine_table(left), engine.engine_table(right), prof, None)
    outcome = engine.outcome(run, left, right, ())
    last = {"left": left.first_new_seq + left.new_rows, "right": right.first_new_seq + right.new_rows}
    return outcome.carry_parquet(), last, run


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_pair(), file_pair(), profile_strategy())
def test_reference_and_polars_agree_on_carried_forward_inputs(day1: Any, day2: Any, prof: Any) -> None:
    engine = PolarsStreamEngine()
    carry, next_seq, _ = _first_run(engine, day1, prof)
    left = engine.side_input("left", [(LEFT_FILES[1], frame_from_transactions(_later(day2[0], 2)))], carry,
                             next_seq["left"], _nothing_known, _nothing_settled)
    right = engine.side_input("right", [(RIGHT_FILES[1], frame_from_transactions(_later(day2[1], 2)))], carry,
                              next_seq["right"], _nothing_known, _nothing_settled)
    left_table, right_table = engine.engine_table(left), engine.engine_table(right)
    expected = view(ReferenceMatcher().reconcile(transactions_from_frame(left_table),
                                                 transactions_from_frame(right_table), prof, None))
    got = view(PolarsMatcher().reconcile(left_table, right_table, prof, None))
    assert_same(got, expected)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_pair(), profile_strategy())
def test_a_run_over_the_open_items_only_finds_no_new_break(day1: Any, prof: Any) -> None:
    engine = PolarsStreamEngine()
    carry, next_seq, first = _first_run(engine, day1, prof)
    known = {(side, seq) for left_row, right_row in first.tables.exceptions.select("left_row", "right_row").iter_rows()
             for side, seq in (("left", left_row), ("right", right_row)) if seq is not None}
    left = engine.side_input("left", [], carry, next_seq["left"], _nothing_known, _nothing_settled)
    right = engine.side_input("right", [], carry, next_seq["right"], _nothing_known, _nothing_settled)
    run = PolarsJobMatchingEngine().run(engine.engine_table(left), engine.engine_table(right), prof, None)
    outcome = engine.outcome(run, left, right, known)
    # Only a break about none of the rows the first run's breaks named is new (a row that was only
    # in a suggestion had none); every break about a row that had one is that break found again.
    breaks = run.tables.exceptions.select("left_row", "right_row").rows()
    about_known = [b for b in breaks if ("left", b[0]) in known or ("right", b[1]) in known]
    assert outcome.found_again == len(about_known)
    assert outcome.new_exceptions == len(breaks) - len(about_known)
    assert all(r is None or (side, r) not in known for b in breaks if b not in about_known
               for side, r in (("left", b[0]), ("right", b[1])))
