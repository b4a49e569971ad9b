"""Matching semantics, one rule at a time, on both engines."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from reckai.adapters.polars.matcher import PolarsMatcher
from reckai.adapters.polars.matcher_frames import frame_from_transactions
from reckai.domain.reconciliation.profile import ProfileError, ReconciliationPeriod
from reckai.domain.reconciliation.reference_matcher import ReferenceMatcher
from reckai.domain.reconciliation.results import ReconciliationResult
from reckai.domain.reconciliation.rules import RuleError
from reckai.domain.reconciliation.severity import SeverityPolicy
from tests.unit.matching_builders import profile, txn, view

DECEMBER = ReconciliationPeriod(dt.date(2025, 12, 1), dt.date(2025, 12, 31))
RRN_EXACT = {"name": "rrn", "rule_type": "exact", "priority": 1, "date_tolerance_days": 2,
             "field_mappings": [{"left": "reference", "right": "reference"}],
             "conditions": {"date_direction": "left_on_or_after_right",
                            "right": [{"field": "status", "op": "eq", "value": "success"}]}}
RRN_SUFFIX = {"name": "rrn-narration", "rule_type": "regex", "priority": 2, "date_tolerance_days": 2,
              "field_mappings": [{"left": "description", "right": "reference",
                                  "left_pattern": r"RRN:(\d+)"}],
              "conditions": {"min_suffix_length": 8}}


def run_both(left: list[Any], right: list[Any], prof: Any, period: Any = None) -> ReconciliationResult:
    expected = ReferenceMatcher().reconcile(left, right, prof, period)
    got = PolarsMatcher().reconcile(frame_from_transactions(left), frame_from_transactions(right), prof, period)
    assert view(got) == view(expected)
    return expected


def pairs(result: ReconciliationResult) -> set[tuple[int, int]]:
    return {(m.left_row, m.right_row) for m in result.matches}


def breaks(result: ReconciliationResult) -> set[tuple[str, int | None, int | None]]:
    return {(e.type.value, e.facts.left_row, e.facts.right_row) for e in result.exceptions}


def test_exact_reference_match_records_rule_version_confidence_and_evidence() -> None:
    result = run_both([txn(1, 1_255_000, "2025-12-02", "123456789012")],
                      [txn(1, 1_255_000, "2025-12-01 10:00", "123456789012")], profile([RRN_EXACT]))
    [match] = result.matches
    assert (match.left_row, match.right_row, match.rule, match.rule_version) == (1, 1, "rrn", 1)
    assert match.status.value == "auto"
    assert match.confidence_bp == 9750  # one day of a two-day tolerance costs 2.5%
    assert match.evidence_dict() == {"amount_diff": 0, "day_delta": 1, "similarity_bp": None,
                                     "left_key": "123456789012", "right_key": "123456789012"}
    assert result.exceptions == []


def test_tolerance_defaults_to_zero_so_25_naira_is_a_break_not_a_match() -> None:
    result = run_both([txn(1, 1_002_500, "2025-12-02", "123456789012")],
                      [txn(1, 1_000_000, "2025-12-02", "123456789012")], profile([RRN_EXACT]), DECEMBER)
    assert result.matches == []
    [exception] = result.exceptions
    assert (exception.type.value, exception.facts.left_row, exception.facts.right_row) == ("amount_mismatch", 1, 1)
    assert exception.facts.amount_minor == 1_002_500


def test_amount_mismatch_explanation_reads_like_the_issue_example() -> None:
    result = run_both([txn(1, 1_255_000, "2025-12-02", "123456789012")],
                      [txn(1, 1_250_000, "2025-12-02", "123456789012")], profile([RRN_EXACT]))
    [exception] = result.exceptions
    assert exception.explanation == ("Bank debit ₦12,550.00 vs switch ₦12,500.00 for RRN 123456789012: "
                                     "₦50.00 more (0.40%)")
    assert exception.ai_confidence == 0.9
    assert exception.severity == "low"  # an amount mismatch is banded by its difference, ₦50
    assert "adjustment of ₦50.00" in exception.suggested_action


def test_tolerance_absolute_and_percentage() -> None:
    # at the edge of the tolerance the amount factor halves confidence: accept from 0.5
    rule = dict(RRN_EXACT, tolerance_amount="0.50", tolerance_percentage="0.1",
                conditions={"auto_match_threshold": 0.5})
    left = [txn(1, 100_000, "2025-12-02", "A1"), txn(2, 100_000, "2025-12-02", "A2"),
            txn(3, 1_000, "2025-12-02", "A3")]
    right = [txn(1, 100_100, "2025-12-02", "A1"), txn(2, 100_101, "2025-12-02", "A2"),
             txn(3, 1_050, "2025-12-02", "A3")]
    result = run_both(left, right, profile([rule]))
    # 100 kobo = 0.1% of 100,000: within; 101 is not; 50 kobo absolute: within
    assert pairs(result) == {(1, 1), (3, 3)}
    assert ("amount_mismatch", 2, 2) in breaks(result)


def test_tie_is_never_auto_matched_but_suggested() -> None:
    rule = {"name": "amount-date", "rule_type": "range", "date_tolerance_days": 0, "field_mappings": []}
    left = [txn(1, 5_000, "2025-12-02")]
    right = [txn(1, 5_000, "2025-12-02 09:00"), txn(2, 5_000, "2025-12-02 18:00")]
    result = run_both(left, right, profile([rule]))
    assert result.matches == []
    assert {(m.left_row, m.right_row, m.status.value) for m in result.suggestions} == {
        (1, 1, "suggested"), (1, 2, "suggested")}


def test_assignment_repeats_until_stable_and_prefers_the_closest() -> None:
    rule = {"name": "window", "rule_type": "range", "tolerance_amount": "1.00", "date_tolerance_days": 1,
            "field_mappings": [], "conditions": {"auto_match_threshold": 0.5}}
    # left 1 is closest to right 1; once they pair, left 2's only remaining candidate is right 2.
    left = [txn(1, 10_000, "2025-12-02"), txn(2, 10_050, "2025-12-02")]
    right = [txn(1, 10_000, "2025-12-02"), txn(2, 10_020, "2025-12-02")]
    result = run_both(left, right, profile([rule]))
    assert pairs(result) == {(1, 1), (2, 2)}


def test_duplicate_pre_pass_keeps_lowest_row_and_ignores_running_balance() -> None:
    left = [txn(1, 5_000, "2025-12-02", "R1", raw={"balance": "100"}),
            txn(2, 5_000, "2025-12-02", "R1", raw={"balance": "50"})]
    right = [txn(7, 5_000, "2025-12-01 12:00", "R1")]
    result = run_both(left, right, profile([RRN_EXACT]))
    assert pairs(result) == {(1, 7)}
    [duplicate] = result.exceptions
    assert (duplicate.type.value, duplicate.facts.left_row, duplicate.facts.right_row,
            duplicate.facts.original_row) == ("duplicate", 2, 7, 1)
    assert duplicate.explanation.startswith("Bank row 2 repeats row 1")


def test_regex_key_matches_as_suffix_of_the_other_reference() -> None:
    left = [txn(1, 5_000, "2025-12-02", None, description="POS PURCHASE @ SPAR RRN:56789012 TID:2057")]
    right = [txn(1, 5_000, "2025-12-01", "123456789012")]
    result = run_both(left, right, profile([RRN_EXACT, RRN_SUFFIX]))
    [match] = result.matches
    assert match.rule == "rrn-narration"
    assert match.evidence_dict()["left_key"] == "56789012"
    assert match.confidence_bp < 10_000  # a suffix is slightly less certain than a full key


def test_regex_suffix_shorter_than_minimum_does_not_match() -> None:
    left = [txn(1, 5_000, "2025-12-02", None, description="RRN:9012")]
    right = [txn(1, 5_000, "2025-12-02", "123456789012")]
    assert run_both(left, right, profile([RRN_SUFFIX])).matches == []


def test_failed_switch_row_linked_to_bank_debit_is_non_settlement() -> None:
    left = [txn(1, 5_000, "2025-12-02", "R1")]
    right = [txn(1, 5_000, "2025-12-02", "R1", status="failed")]
    result = run_both(left, right, profile([RRN_EXACT]), DECEMBER)
    assert breaks(result) == {("non_settlement", 1, 1)}
    assert "recorded the transaction as failed" in result.exceptions[0].explanation
    assert result.exceptions[0].severity == "high"  # default floor for non-settlement


def test_unlinked_failed_row_is_not_an_exception() -> None:
    result = run_both([], [txn(1, 5_000, "2025-12-02", "R1", status="failed")], profile([RRN_EXACT]), DECEMBER)
    assert result.exceptions == []


def test_approval_and_its_reversal_in_one_switch_file_net_to_nothing() -> None:
    # Switch rows 1 (approved) and 2 (its reversal, same RRN, amount and day): nothing moved, so no
    # duplicate and no missing entry; row 3 is an unrelated approval the bank did not post.
    switch = [txn(1, 500_000, "2025-12-10 09:00", "111111111111"),
              txn(2, 500_000, "2025-12-10 09:05", "111111111111", status="reversed"),
              txn(3, 700_000, "2025-12-10 09:00", "222222222222")]
    result = run_both([], switch, profile([RRN_EXACT]), DECEMBER)
    assert breaks(result) == {("missing_entry", None, 3)}
    assert result.reversals == [("right", 2, 1)]
    assert result.summary()["reversals_netted"] == {"left": 0, "right": 1}


def test_bank_debit_of_an_approval_reversed_in_the_switch_file_is_non_settlement() -> None:
    bank = [txn(1, 500_000, "2025-12-11", "111111111111")]
    switch = [txn(1, 500_000, "2025-12-10 09:00", "111111111111"),
              txn(2, 500_000, "2025-12-11 08:00", "111111111111", status="reversed", direction="credit")]
    result = run_both(bank, switch, profile([RRN_EXACT]), DECEMBER)
    assert pairs(result) == set() and breaks(result) == {("non_settlement", 1, 1)}


def test_reversals_pair_one_to_one_in_row_order_and_never_across_amounts() -> None:
    # Two approvals, one reversal of the same RRN and amount: the first approval is reversed, the
    # second still matches the bank debit. A reversal of another amount reverses nothing.
    bank = [txn(1, 500_000, "2025-12-11", "111111111111")]
    switch = [txn(1, 500_000, "2025-12-10 09:00", "111111111111"),
              txn(2, 500_000, "2025-12-10 09:10", "111111111111"),
              txn(3, 500_000, "2025-12-10 09:20", "111111111111", status="reversed"),
              txn(4, 900_000, "2025-12-10 09:30", "333333333333"),
              txn(5, 100_000, "2025-12-10 09:40", "333333333333", status="reversed")]
    result = run_both(bank, switch, profile([RRN_EXACT]), DECEMBER)
    assert result.reversals == [("right", 3, 1)]
    assert pairs(result) == {(1, 2)}
    assert breaks(result) == {("missing_entry", None, 4)}


def test_a_job_lists_each_netted_reversal_with_its_explanation() -> None:
    import io as _io

    import polars as pl

    from reckai.adapters.polars.job_results import PolarsJobMatchingEngine

    switch = [txn(1, 500_000, "2025-12-10 09:00", "111111111111"),
              txn(2, 500_000, "2025-12-10 09:05", "111111111111", status="reversed")]
    prof = profile([RRN_EXACT])
    run = PolarsJobMatchingEngine().run(frame_from_transactions([]), frame_from_transactions(switch), prof, DECEMBER)
    assert run.reversals_netted == {"left": 0, "right": 1} and run.exceptions_by_type == {}
    table = pl.read_parquet(_io.BytesIO(run.results_parquet()))
    [reversal] = table.filter(pl.col("kind") == "reversal").iter_rows(named=True)
    assert (reversal["left_row"], reversal["right_row"]) == (None, 2)
    assert reversal["explanation"].startswith("Switch row 2 reverses Switch row 1 (same RRN, amount")
    assert b"reversal" in run.results_csv()


def test_date_mismatch_beyond_tolerance() -> None:
    result = run_both([txn(1, 5_000, "2025-12-09", "R1")], [txn(1, 5_000, "2025-12-02", "R1")],
                      profile([RRN_EXACT]), DECEMBER)
    assert breaks(result) == {("date_mismatch", 1, 1)}


def test_timing_difference_needs_leading_side_period_and_cutoff_window() -> None:
    right = [txn(1, 5_000, "2025-12-31 21:00", "R1"), txn(2, 5_000, "2025-12-30 21:00", "R2")]
    prof = profile([RRN_EXACT], leading_side="right")
    assert breaks(run_both([], right, prof, DECEMBER)) == {("timing_difference", None, 1),
                                                           ("missing_entry", None, 2)}
    # no period: no timing differences inferred
    assert breaks(run_both([], right, prof)) == {("missing_entry", None, 1), ("missing_entry", None, 2)}
    # a cut-off time narrows the window
    late = profile([RRN_EXACT], leading_side="right", cutoff={"days": 1, "time": "22:00"})
    assert breaks(run_both([], right, late, DECEMBER)) == {("missing_entry", None, 1), ("missing_entry", None, 2)}


def test_settlement_profile_reports_unpaid_approved_transaction_as_non_settlement() -> None:
    prof = profile([RRN_EXACT], settlement_side="left")
    result = run_both([], [txn(1, 5_000, "2025-12-02", "R1")], prof, DECEMBER)
    assert breaks(result) == {("non_settlement", None, 1)}
    assert "never paid" in result.exceptions[0].explanation


def test_grouped_rule_matches_many_rows_net_of_fee_schedule() -> None:
    # three card payments at terminal T1 on one day, settled as one bank credit net of 1% MSC capped at N2
    rule = {"name": "terminal-settlement", "rule_type": "exact", "date_tolerance_days": 1,
            "field_mappings": [{"left": "raw.tid", "right": "raw.tid"}],
            "conditions": {"group": {"side": "right", "by": ["raw.tid", "transaction_date"],
                                     "fee_schedule": {"percent": "1", "cap": "2.00"}},
                           "date_direction": "left_on_or_after_right"}}
    right = [txn(1, 10_000, "2025-12-02 09:00", "A", raw={"tid": "T1"}),
             txn(2, 50_000, "2025-12-02 10:00", "B", raw={"tid": "T1"}),
             txn(3, 20_000, "2025-12-02 11:00", "C", raw={"tid": "T1"}),
             txn(4, 20_000, "2025-12-02 11:00", "D", raw={"tid": "T2"})]
    fees = 100 + 200 + 200  # 1% of 10,000; 1% of 50,000 capped at 200; 1% of 20,000
    left = [txn(9, 80_000 - fees, "2025-12-03", None, direction="credit", raw={"tid": "T1"})]
    result = run_both(left, right, profile([rule]), DECEMBER)
    assert pairs(result) == {(9, 1), (9, 2), (9, 3)}
    assert {m.group_id for m in result.matches} == {"terminal-settlement:L9"}
    assert result.matches[0].evidence_dict()["fee_minor"] == fees
    assert breaks(result) == {("missing_entry", None, 4)}


def test_fuzzy_rule_uses_text_similarity_with_amount_and_date_window() -> None:
    rule = {"name": "text", "rule_type": "fuzzy", "date_tolerance_days": 1,
            "field_mappings": [{"left": "description", "right": "counterparty"}],
            "conditions": {"similarity_threshold": 0.8, "auto_match_threshold": 0.8}}
    left = [txn(1, 5_000, "2025-12-02", description="SHOPRITE IKEJA"),
            txn(2, 7_000, "2025-12-02", description="KONGA ONLINE")]
    right = [txn(1, 5_000, "2025-12-02", counterparty="SHOPRITE IKEJA LAGOS"),
             txn(2, 7_000, "2025-12-02", counterparty="JUMIA NG")]
    result = run_both(left, right, profile([rule]))
    assert pairs(result) == {(1, 1)}
    assert result.matches[0].evidence_dict()["similarity_bp"] == 8235  # 2*14/34


def test_conditions_exclude_rows_from_a_pass_only() -> None:
    web_only = dict(RRN_EXACT, name="web", priority=1,
                    conditions={"right": [{"field": "channel", "op": "in", "value": ["WEB"]}]})
    anything = dict(RRN_EXACT, name="any", priority=2, conditions={})
    left = [txn(1, 5_000, "2025-12-02", "R1")]
    right = [txn(1, 5_000, "2025-12-02", "R1", channel="POS")]
    [match] = run_both(left, right, profile([web_only, anything])).matches
    assert match.rule == "any"


def test_low_confidence_pair_is_a_suggestion_not_a_match() -> None:
    rule = dict(RRN_EXACT, conditions={"auto_match_threshold": 0.99})
    result = run_both([txn(1, 5_000, "2025-12-03", "R1")], [txn(1, 5_000, "2025-12-01", "R1")], profile([rule]))
    assert result.matches == []
    [suggestion] = result.suggestions
    assert suggestion.confidence_bp == 9500 and suggestion.status.value == "suggested"
    assert result.exceptions == []  # awaiting a person, not a break


def test_reference_matcher_handles_ten_thousand_by_ten_thousand() -> None:
    rng = random.Random(5)
    left, right = [], []
    for row in range(1, 10_001):
        reference = f"{rng.randrange(10**11, 10**12)}"
        amount = rng.randrange(100, 10_000_00)
        day = dt.datetime(2025, 12, 1) + dt.timedelta(days=rng.randrange(28), seconds=rng.randrange(86_400))
        right.append(txn(row, amount, day, reference))
        posted = day + dt.timedelta(days=rng.choice([0, 0, 1, 2]))
        if row % 10 == 0:  # bank narration with only the last 8 digits
            left.append(txn(row, amount, posted.replace(hour=0, minute=0, second=0), None,
                            description=f"POS RRN:{reference[-8:]}"))
        elif row % 97 == 0:
            left.append(txn(row, amount + 2_500, posted, reference))
        else:
            left.append(txn(row, amount, posted, reference))
    rng.shuffle(right)
    result = ReferenceMatcher().reconcile(left, right, profile([RRN_EXACT, RRN_SUFFIX]), DECEMBER)
    mismatched = {row for row in range(1, 10_001) if row % 97 == 0 and row % 10}
    assert pairs(result) == {(row, row) for row in range(1, 10_001) if row not in mismatched}
    assert breaks(result) == {("amount_mismatch", row, row) for row in mismatched}


def test_profile_errors_name_the_offending_path() -> None:
    with pytest.raises(RuleError, match=r"rules\[0\]: unknown key\(s\) \['tolerence'\]"):
        profile([dict(RRN_EXACT, tolerence=1)])
    with pytest.raises(ProfileError, match=r"rules\[0\].rule_type"):
        profile([dict(RRN_EXACT, rule_type="magic")])
    with pytest.raises(ProfileError, match="regex rule needs"):
        profile([dict(RRN_SUFFIX, field_mappings=[{"left": "description", "right": "reference"}])])
    with pytest.raises(ProfileError, match="must be one of the group keys"):
        profile([dict(RRN_EXACT, conditions={"group": {"side": "right", "by": ["raw.tid"]}})])


def test_default_severity_bands_type_floors_caps_and_age() -> None:
    policy = SeverityPolicy()
    assert policy.severity("missing_entry", 500_000, None) == "low"  # N5,000
    assert policy.severity("missing_entry", 2_000_000, None) == "medium"
    assert policy.severity("missing_entry", 20_000_000, None) == "high"
    assert policy.severity("missing_entry", 200_000_000, None) == "critical"
    assert policy.severity("non_settlement", 100, None) == "high"
    assert policy.severity("duplicate", 100, None) == "medium"
    assert policy.severity("timing_difference", 200_000_000, None) == "low"
    assert policy.severity("missing_entry", 500_000, 60) == "medium"  # aged one level up


def test_equal_key_pairs_keep_only_equal_keys_when_hashes_collide(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exact pass joins on the keys' hashes and then compares the keys: with a hash under
    which every key collides, only the pairs whose keys are equal remain."""
    import polars as pl

    from reckai.adapters.polars import matcher

    lefts = pl.DataFrame({"__key": ["A1", "B2", "C3", "A1"]})
    rights = pl.DataFrame({"__key": ["C3", "A1", "Z9"]})
    honest = sorted(matcher._equal_key_pairs(lefts, rights).select("lp", "rp").rows())
    monkeypatch.setattr(pl.Expr, "hash", lambda self, *args, **kwargs: pl.lit(7, pl.UInt64))
    colliding = sorted(matcher._equal_key_pairs(lefts, rights).select("lp", "rp").rows())
    assert honest == colliding == [(0, 1), (2, 0), (3, 1)]
