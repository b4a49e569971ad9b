"""Property tests: the polars matcher returns exactly what the reference matcher returns, and
neither depends on row order."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reckai.adapters.polars.matcher import PolarsMatcher
from reckai.adapters.polars.matcher_frames import frame_from_transactions
from reckai.domain.ingestion.canonical import CanonicalTransaction, Direction, TransactionStatus
from reckai.domain.reconciliation.profile import ReconciliationPeriod
from reckai.domain.reconciliation.reference_matcher import ReferenceMatcher
from tests.unit.matching_builders import profile, txn, view

REFERENCES = ["123456789012", "223456789012", "56789012", "456789012", "999999999999", "000000000001", None, ""]
AMOUNTS = [10_000, 10_025, 10_100, 12_500, 12_550, 50_000, 99_999]
DESCRIPTIONS = ["POS PURCHASE @ SPAR RRN:123456789012", "ATM WDL RRN:56789012", "WEB REF 456789012",
                "SPAR ABUJA", "SPAR ABUJ", "KONGA ONLINE", None]
BASE = dt.datetime(2025, 12, 29)

rows_strategy = st.lists(
    st.fixed_dictionaries({
        "amount": st.sampled_from(AMOUNTS),
        "day": st.integers(0, 4),  # 2025-12-29 .. 2026-01-02: crosses the period end
        "hour": st.sampled_from([0, 9, 18, 23]),
        "reference": st.sampled_from(REFERENCES),
        "direction": st.sampled_from(["debit", "debit", "debit", "credit"]),
        "status": st.sampled_from(["success", "success", "success", "failed", "reversed", "unknown"]),
        "description": st.sampled_from(DESCRIPTIONS),
        "counterparty": st.sampled_from(DESCRIPTIONS),
        "channel": st.sampled_from(["POS", "WEB", "ATM", None]),
        "currency": st.sampled_from(["NGN", "NGN", "NGN", "USD"]),
        "tid": st.sampled_from(["T1", "T2", "T3", None]),
        "copy_of": st.integers(0, 12),  # sometimes repeat an earlier row exactly (duplicates)
    }),
    max_size=12,
)


def build(rows: list[dict[str, Any]]) -> list[CanonicalTransaction]:
    built: list[CanonicalTransaction] = []
    for index, spec in enumerate(rows, start=1):
        if spec["copy_of"] < len(built) and spec["copy_of"] % 3 == 0:
            source = built[spec["copy_of"]]
            built.append(replace(source, row_number=index))
            continue
        if spec["copy_of"] < len(built) and spec["copy_of"] % 3 == 1:  # sometimes the reversal of an earlier row
            source = built[spec["copy_of"]]
            built.append(replace(source, row_number=index, status=TransactionStatus.REVERSED,
                                 transaction_date=BASE + dt.timedelta(days=spec["day"], hours=spec["hour"]),
                                 direction=Direction(spec["direction"])))
            continue
        built.append(txn(index, spec["amount"], BASE + dt.timedelta(days=spec["day"], hours=spec["hour"]),
                         spec["reference"], direction=spec["direction"], status=spec["status"],
                         description=spec["description"], counterparty=spec["counterparty"],
                         channel=spec["channel"], currency=spec["currency"], raw={"tid": spec["tid"]}))
    return built


@st.composite
def file_pair(draw: Any) -> tuple[list[CanonicalTransaction], list[CanonicalTransaction]]:
    """A left file, and a right file made partly of perturbed counterparts of left rows."""
    left = build(draw(rows_strategy))
    right = build(draw(rows_strategy))
    for source in left:
        if not draw(st.booleans()):
            continue
        reference = source.reference or draw(st.sampled_from(REFERENCES))
        truncated = draw(st.booleans()) and reference
        counterpart = replace(
            source,
            row_number=len(right) + 1,
            amount_minor=source.amount_minor + draw(st.sampled_from([0, 0, 0, 25, -50, 100, 1000])),
            transaction_date=source.transaction_date - dt.timedelta(  # type: ignore[operator,arg-type]
                days=draw(st.sampled_from([0, 0, 1, 2, 5])), hours=draw(st.sampled_from([0, 3]))),
            reference=reference,
            status=TransactionStatus(draw(st.sampled_from(["success", "success", "success", "failed"]))),
            channel=draw(st.sampled_from(["POS", "WEB", None])),
            counterparty=draw(st.sampled_from(DESCRIPTIONS)),
        )
        if truncated:
            # the bank narration carries only the last digits of the RRN
            source_index = left.index(source)
            left[source_index] = replace(source, reference=None,
                                         description=f"POS PURCHASE RRN:{reference[-draw(st.sampled_from([8, 10])):]}")
        right.append(counterpart)
        if draw(st.integers(0, 4)) == 0:  # a group of right rows for one left row
            right.append(replace(counterpart, row_number=len(right) + 1, amount_minor=draw(st.sampled_from(AMOUNTS))))
    draw(st.randoms(use_true_random=False)).shuffle(right)
    return left, right


tolerances = st.fixed_dictionaries({
    "tolerance_amount": st.sampled_from([None, "0.25", "1.00"]),
    "tolerance_percentage": st.sampled_from([None, "0.5", "1"]),
    "date_tolerance_days": st.integers(0, 3),
})
common_conditions = st.fixed_dictionaries({
    "date_direction": st.sampled_from(["any", "left_on_or_after_right", "right_on_or_after_left"]),
    "auto_match_threshold": st.sampled_from([0.5, 0.9, 0.97, 1.0]),
    "tolerance_of": st.sampled_from(["left", "right"]),
    "right": st.sampled_from([[], [{"field": "status", "op": "eq", "value": "success"}],
                              [{"field": "channel", "op": "in", "value": ["POS", "WEB"]}]]),
    "left": st.sampled_from([[], [{"field": "description", "op": "regex", "value": "RRN|REF"}],
                             [{"field": "status", "op": "ne", "value": "failed"}]]),
})


@st.composite
def rule_strategy(draw: Any, name: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["exact", "regex", "range", "range_keyed", "fuzzy", "grouped"]))
    rule: dict[str, Any] = {"name": name, "priority": draw(st.integers(0, 3)), "version": draw(st.integers(1, 3))}
    rule.update(draw(tolerances))
    conditions = dict(draw(common_conditions))
    if kind == "exact":
        rule.update(rule_type="exact", field_mappings=[{"left": "reference", "right": "reference"}])
    elif kind == "regex":
        rule.update(rule_type="regex", field_mappings=[{"left": "description", "right": "reference",
                                                        "left_pattern": r"(?:RRN|REF)[: ]*(\d+)"}])
        conditions["min_suffix_length"] = draw(st.sampled_from([6, 8, 10]))
    elif kind == "range":
        rule.update(rule_type="range", field_mappings=[])
    elif kind == "range_keyed":
        rule.update(rule_type="range", field_mappings=[{"left": "raw.tid", "right": "raw.tid"}])
    elif kind == "fuzzy":
        rule.update(rule_type="fuzzy", field_mappings=[{"left": "description", "right": "counterparty"}])
        conditions["similarity_threshold"] = draw(st.sampled_from([0.5, 0.8, 0.95]))
    else:
        side = draw(st.sampled_from(["left", "right"]))
        rule.update(rule_type="exact", field_mappings=[{"left": "raw.tid", "right": "raw.tid"}])
        conditions["group"] = {"side": side, "by": ["raw.tid", "transaction_date"],
                               "fee_schedule": draw(st.sampled_from([None, {"percent": "1", "cap": "0.50"},
                                                                     {"flat": "0.10"}]))}
    rule["conditions"] = conditions
    return rule


@st.composite
def profile_strategy(draw: Any) -> Any:
    count = draw(st.integers(1, 3))
    rules = [draw(rule_strategy(f"r{index}")) for index in range(count)]
    return profile(
        rules,
        leading_side=draw(st.sampled_from([None, "left", "right"])),
        settlement_side=draw(st.sampled_from([None, None, "left", "right"])),
        cutoff=draw(st.sampled_from([None, {"days": 1, "time": "18:00"}, {"days": 2}])),
        left_direction=draw(st.sampled_from([None, "debit"])),
        right_direction=draw(st.sampled_from([None, "debit"])),
    )


periods = st.sampled_from([None, ReconciliationPeriod(dt.date(2025, 12, 1), dt.date(2025, 12, 31)),
                           ReconciliationPeriod(dt.date(2025, 12, 1), dt.date(2025, 12, 30))])


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_pair(), profile_strategy(), periods)
def test_polars_matcher_equals_reference_matcher(files: Any, prof: Any, period: Any) -> None:
    left, right = files
    reference_result = ReferenceMatcher().reconcile(left, right, prof, period)
    expected = view(reference_result)
    for record in reference_result.matches:
        event(f"match by {prof.passes[[r.name for r in prof.passes].index(record.rule)].rule_type.value}"
              + (" (group)" if record.group_id else "")
              + (" (suffix)" if record.evidence_dict()["left_key"] != record.evidence_dict()["right_key"] else ""))
    event(f"suggestions: {min(len(reference_result.suggestions), 3)}")
    for exception in reference_result.exceptions:
        event(f"exception {exception.type.value}")
    got = view(PolarsMatcher().reconcile(frame_from_transactions(left), frame_from_transactions(right),
                                         prof, period))
    assert_same(got, expected)


def assert_same(got: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        missing = [item for item in value if item not in got[key]]
        extra = [item for item in got[key] if item not in value]
        assert got[key] == value, f"{key}: polars lacks {missing}, polars adds {extra}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_pair(), profile_strategy(), periods, st.randoms(use_true_random=False))
def test_results_do_not_depend_on_row_order(files: Any, prof: Any, period: Any, rng: random.Random) -> None:
    left, right = files
    shuffled_left, shuffled_right = left[:], right[:]
    rng.shuffle(shuffled_left)
    rng.shuffle(shuffled_right)
    reference = ReferenceMatcher()
    expected = view(reference.reconcile(left, right, prof, period))
    assert view(reference.reconcile(shuffled_left, shuffled_right, prof, period)) == expected
    fast = PolarsMatcher()
    assert_same(view(fast.reconcile(frame_from_transactions(shuffled_left),
                                    frame_from_transactions(shuffled_right), prof, period)), expected)


@settings(max_examples=100, deadline=None)
@given(file_pair(), profile_strategy(), periods)
def test_every_row_ends_in_exactly_one_place(files: Any, prof: Any, period: Any) -> None:
    left, right = files
    result = ReferenceMatcher().reconcile(left, right, prof, period)
    for side, rows in (("left", left), ("right", right)):
        own = f"{side}_row"
        matched = {getattr(m, own) for m in result.matches}
        suggested = {getattr(m, own) for m in result.suggestions}
        # a duplicate exception names the copy on its own side and the original's partner on the other
        own_exceptions = [getattr(e.facts, own) for e in result.exceptions
                          if e.type.value != "duplicate" or getattr(e.facts, f"{side}_amount_minor") is not None]
        own_exceptions = [row for row in own_exceptions if row is not None]
        assert len(own_exceptions) == len(set(own_exceptions)), "a row has two exceptions"
        assert not matched & set(own_exceptions), "a matched row is also an exception"
        reversal_rows = {r for s, r, _ in result.reversals if s == side}
        reversed_approvals = {o for s, _, o in result.reversals if s == side}
        # a netted reversal row takes part in nothing; the approval it reverses counts as not moved
        assert not reversal_rows & (matched | suggested | set(own_exceptions)), "a reversal row was used"
        for row in rows:
            moved = row.status.value not in ("failed", "reversed") and row.row_number not in reversed_approvals
            if moved and row.row_number not in matched and row.row_number not in suggested:
                assert row.row_number in own_exceptions
