"""Declined pairs (`excluded_pairs`): neither engine matches nor suggests a pair a person declined,
in any pass, and both engines still agree exactly (docs/workflow.md, Manual matching)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reckai.adapters.polars.matcher import PolarsMatcher
from reckai.adapters.polars.matcher_frames import frame_from_transactions
from reckai.domain.reconciliation.reference_matcher import ReferenceMatcher
from tests.unit.matching_builders import profile, txn, view
from tests.unit.test_matching_properties import assert_same, file_pair, periods, profile_strategy

EXACT = {"name": "rrn", "version": 1, "priority": 1, "rule_type": "exact", "date_tolerance_days": 1,
         "field_mappings": [{"left": "reference", "right": "reference"}]}
LOOSE = {"name": "amount-date", "version": 1, "priority": 2, "rule_type": "range", "field_mappings": [],
         "tolerance_amount": "1.00", "date_tolerance_days": 2}


def _pairs(result: Any) -> set[tuple[int, int]]:
    return {(m.left_row, m.right_row) for m in [*result.matches, *result.suggestions]}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_pair(), profile_strategy(), periods, st.data())
def test_declined_pairs_are_never_matched_or_suggested_and_both_engines_agree(
        files: Any, prof: Any, period: Any, data: Any) -> None:
    left, right = files
    reference = ReferenceMatcher()
    before = _pairs(reference.reconcile(left, right, prof, period))
    # Decline some of what the engine produced (the realistic case) and a few arbitrary pairs.
    declined = set(data.draw(st.lists(st.sampled_from(sorted(before)), min_size=1, max_size=4))) if before else set()
    declined |= set(data.draw(st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)), max_size=3)))
    event(f"declined pairs that were found before: {min(len(declined & before), 2)}")
    expected_result = reference.reconcile(left, right, prof, period, excluded_pairs=declined)
    assert not _pairs(expected_result) & declined
    got = PolarsMatcher().reconcile(frame_from_transactions(left), frame_from_transactions(right), prof, period,
                                    excluded_pairs=declined)
    assert not _pairs(got) & declined
    assert_same(view(got), view(expected_result))


def test_a_declined_exact_match_leaves_its_rows_free_for_the_next_pass_and_classification() -> None:
    left = [txn(1, 10_000, "2025-12-10T10:00:00", "111111111111"),
            txn(2, 10_050, "2025-12-11T10:00:00", "999999999999")]
    right = [txn(1, 10_000, "2025-12-10T11:00:00", "111111111111")]
    prof = profile([EXACT, LOOSE])
    for engine_result in (
            ReferenceMatcher().reconcile(left, right, prof),
            PolarsMatcher().reconcile(frame_from_transactions(left), frame_from_transactions(right), prof)):
        assert [(m.left_row, m.right_row, m.rule) for m in engine_result.matches] == [(1, 1, "rrn")]
    for engine_result in (
            ReferenceMatcher().reconcile(left, right, prof, excluded_pairs={(1, 1)}),
            PolarsMatcher().reconcile(frame_from_transactions(left), frame_from_transactions(right), prof,
                                      excluded_pairs={(1, 1)})):
        # The exact pass may not pair them; the amount-date pass pairs right row 1 with left row 2.
        assert [(m.left_row, m.right_row, m.rule) for m in [*engine_result.matches, *engine_result.suggestions]
                ] == [(2, 1, "amount-date")]
        assert {e.facts.left_row for e in engine_result.exceptions} == {1}


def test_declining_one_member_pair_excludes_the_whole_group_candidate() -> None:
    grouped = {"name": "batch", "version": 1, "priority": 1, "rule_type": "exact", "date_tolerance_days": 1,
               "field_mappings": [{"left": "raw.tid", "right": "raw.tid"}],
               "conditions": {"group": {"side": "left", "by": ["raw.tid"]}}}
    left = [txn(1, 4_000, "2025-12-10T10:00:00", raw={"tid": "T1"}),
            txn(2, 6_000, "2025-12-10T12:00:00", raw={"tid": "T1"})]
    right = [txn(1, 10_000, "2025-12-10T13:00:00", raw={"tid": "T1"})]
    prof = profile([grouped])
    plain = ReferenceMatcher().reconcile(left, right, prof)
    assert _pairs(plain) == {(1, 1), (2, 1)}
    for engine_result in (
            ReferenceMatcher().reconcile(left, right, prof, excluded_pairs={(2, 1)}),
            PolarsMatcher().reconcile(frame_from_transactions(left), frame_from_transactions(right), prof,
                                      excluded_pairs=[(2, 1)])):
        assert _pairs(engine_result) == set()
        assert {e.facts.left_row for e in engine_result.exceptions if e.facts.left_row} == {1, 2}
