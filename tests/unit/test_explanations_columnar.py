"""The column-wise wording (adapters/polars/explanations.py) against `describe_break`, break by break.

The templates live in the domain; the adapter evaluates them over a frame. For generated breaks of
every type (and both non-settlement variants) under generated severity policies, labels, currencies
and periods, every persisted or written field must come out identical: description, explanation,
suggested action, severity, confidence and the break's amount.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import uuid
from decimal import Decimal
from typing import Any

import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reckai.adapters.polars.explanations import describe_breaks, format_money
from reckai.adapters.polars.matcher import FACT_SCHEMA, RECORD_SCHEMA, FrameResult
from reckai.adapters.polars.result_tables import tables_from_frames
from reckai.application.ports.reconciliations import EXCEPTION_COLUMNS
from reckai.domain.ingestion.canonical import minor_unit_exponent
from reckai.domain.reconciliation import explanations
from reckai.domain.reconciliation.explanations import describe_break
from reckai.domain.reconciliation.profile import ReconciliationPeriod
from reckai.domain.reconciliation.results import BreakFacts, BreakType
from reckai.domain.reconciliation.severity import SEVERITY_LEVELS, SeverityPolicy
from tests.unit.matching_builders import profile as build_profile

RULE = {"name": "ref", "version": 1, "rule_type": "exact", "field_mappings": [{"left": "reference",
                                                                             "right": "reference"}]}
AMOUNTS = st.integers(min_value=-10**15, max_value=10**15)
DATES = st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2040, 12, 31))
LEVELS = st.sampled_from(SEVERITY_LEVELS)
TYPES = [t.value for t in BreakType]


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


facts_strategy = st.builds(
    BreakFacts,
    type=st.sampled_from(BreakType),
    left_row=_optional(st.integers(1, 10**7)), right_row=_optional(st.integers(1, 10**7)),
    currency=st.sampled_from(["NGN", "USD", "JPY", "KWD", "XOF", "zar", "ABC", "GHS", "KES"]),
    left_amount_minor=_optional(AMOUNTS), right_amount_minor=_optional(st.one_of(st.just(0), AMOUNTS)),
    left_date=_optional(DATES), right_date=_optional(DATES),
    left_direction=_optional(st.sampled_from(["debit", "credit"])),
    right_direction=_optional(st.sampled_from(["debit", "credit"])),
    left_status=_optional(st.sampled_from(["success", "failed", "reversed", "pending"])),
    right_status=_optional(st.sampled_from(["success", "failed", "reversed", "pending"])),
    reference=_optional(st.one_of(st.just(""), st.text(max_size=12))),
    rule=_optional(st.sampled_from(["rrn-exact", "fuzzy"])),
    original_row=_optional(st.integers(1, 10**7)),
)

policies = st.builds(
    SeverityPolicy,
    amount_bands=st.lists(st.tuples(st.decimals(min_value=Decimal(-5), max_value=Decimal(10000000), places=3),
                                    LEVELS), max_size=4).map(lambda bands: tuple(sorted(bands, reverse=True))),
    default=LEVELS,
    type_floor=st.dictionaries(st.sampled_from(TYPES), LEVELS, max_size=3),
    type_cap=st.dictionaries(st.sampled_from(TYPES), LEVELS, max_size=3),
    age_escalation_days=_optional(st.integers(1, 400)),
    currency_exponent=st.sampled_from([0, 2, 3]),
)


def _frame(facts: list[BreakFacts]) -> pl.DataFrame:
    columns = {name: [getattr(f, name) for f in facts] for name in FACT_SCHEMA}
    columns["type"] = [f.type.value for f in facts]
    return pl.DataFrame(columns, schema=FACT_SCHEMA)


def _key(values: dict[str, Any]) -> tuple[Any, ...]:
    big = 1 << 62
    return (values["left_row"] if values["left_row"] is not None else big,
            values["right_row"] if values["right_row"] is not None else big, values["type"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(facts=st.lists(facts_strategy, min_size=1, max_size=25), policy=policies,
       labels=st.tuples(st.sampled_from(["Bank", "Switch", "ACME Ledger", "Wallet"]),
                        st.sampled_from(["Switch", "Bank", "Settlement FILE"])),
       reference_label=st.sampled_from(["RRN", "Ref"]), period_end=_optional(st.dates(dt.date(1990, 1, 1),
                                                                                       dt.date(2041, 1, 1))))
def test_column_wise_wording_is_describe_break(facts: list[BreakFacts], policy: SeverityPolicy,
                                               labels: tuple[str, str], reference_label: str,
                                               period_end: dt.date | None) -> None:
    profile = build_profile([RULE], reference_label=reference_label)
    profile = dataclasses.replace(profile, severity=policy, left=dataclasses.replace(profile.left, label=labels[0]),
                                  right=dataclasses.replace(profile.right, label=labels[1]))
    period = ReconciliationPeriod(dt.date(1990, 1, 1), period_end) if period_end else None

    got = describe_breaks(_frame(facts), profile, period).to_dicts()

    expected = []
    for fact in facts:
        record = describe_break(fact, profile, period)
        expected.append({"type": fact.type.value, "left_row": fact.left_row, "right_row": fact.right_row,
                         "description": record.description, "explanation": record.explanation,
                         "suggested_action": record.suggested_action, "severity": record.severity,
                         "ai_confidence_bp": record.ai_confidence_bp, "amount_minor": fact.amount_minor})
    assert [_key(row) for row in got] == sorted(_key(row) for row in expected)
    compared = list(expected[0])
    assert sorted(({k: row[k] for k in compared} for row in got), key=repr) == sorted(expected, key=repr)


@given(amount=st.one_of(AMOUNTS, st.integers(min_value=-(2**63 - 1), max_value=2**63 - 1)),
       currency=st.sampled_from(["NGN", "JPY", "KWD", "usd", "XYZ"]))
@example(amount=2**63 - 1, currency="JPY")  # 19 digits: the lead digit and six groups of three
@example(amount=-(2**63 - 1), currency="NGN")
@example(amount=999, currency="JPY")
@example(amount=1000, currency="JPY")
def test_money_is_formatted_from_minor_units(amount: int, currency: str) -> None:
    got = pl.DataFrame({"a": [amount], "c": [currency]}).select(format_money(pl.col("a"), pl.col("c"))).item()
    assert got == explanations.format_money(amount, currency)


def test_money_examples() -> None:
    frame = pl.DataFrame({"a": [123456789, -5, 1000, 7], "c": ["NGN", "NGN", "JPY", "KWD"]})
    assert frame.select(format_money(pl.col("a"), pl.col("c"))).to_series().to_list() == [
        "₦1,234,567.89", "-₦0.05", "JPY 1,000", "KWD 0.007"]


def test_every_type_and_variant_has_a_wording() -> None:
    assert set(explanations.WORDINGS) == ({t.value for t in BreakType} - {"non_settlement"}
                                          | {"non_settlement_pair", "non_settlement_single"})
    for wording in explanations.WORDINGS.values():
        for _, template in wording.fields():
            for _, slot in explanations.template_slots(template):
                assert slot is None or slot in explanations.SLOTS


@settings(max_examples=100, deadline=None)
@given(policy=policies, data=st.data())
def test_severity_at_band_and_age_boundaries(policy: SeverityPolicy, data: st.DataObject) -> None:
    """Random amounts and dates rarely sit exactly on a band minimum or the escalation age: these do."""
    profile = dataclasses.replace(build_profile([RULE]), severity=policy)
    period = ReconciliationPeriod(dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    edges = [minimum + offset for minimum, _ in policy.amount_bands_minor() for offset in (-1, 0, 1)] or [0]
    ages = [policy.age_escalation_days + offset for offset in (-1, 0, 1)] if policy.age_escalation_days else [0]
    facts = []
    for row, (amount, age) in enumerate(data.draw(st.lists(st.tuples(st.sampled_from(edges), st.sampled_from(ages)),
                                                           min_size=1, max_size=10)), start=1):
        moment = dt.datetime.combine(period.end - dt.timedelta(days=age), dt.time(13, 5))
        break_type = data.draw(st.sampled_from(BreakType))
        right_amount = 0 if break_type is BreakType.AMOUNT_MISMATCH else None
        facts.append(BreakFacts(type=break_type, left_row=row, right_row=None, currency="NGN",
                                left_amount_minor=amount, right_amount_minor=right_amount, left_date=moment))
    got = describe_breaks(_frame(facts), profile, period)["severity"].to_list()
    assert got == [describe_break(fact, profile, period).severity for fact in facts]


def _expected_copy_row(fact: BreakFacts) -> dict[str, Any]:
    """What the exceptions table receives for one break: its amount as exact decimal text, the
    date it is filed under, and the evidence object (absent keys left out)."""
    def side(amount: int | None, moment: dt.datetime | None, direction: str | None,
             status: str | None) -> dict[str, Any] | None:
        if amount is None and moment is None:
            return None
        return {"amount_minor": amount, "date": moment.isoformat() if moment else None, "direction": direction,
                "status": status}

    evidence = {"amount_difference_minor": fact.amount_difference_minor, "day_delta": fact.day_delta,
                "reference": fact.reference, "rule": fact.rule, "original_row": fact.original_row,
                "left": side(fact.left_amount_minor, fact.left_date, fact.left_direction, fact.left_status),
                "right": side(fact.right_amount_minor, fact.right_date, fact.right_direction, fact.right_status)}
    moment = fact.left_date if fact.left_date is not None else fact.right_date
    exponent = minor_unit_exponent(fact.currency)
    return {"amount": Decimal(fact.amount_minor).scaleb(-exponent),
            "transaction_date": moment.date() if moment else None,
            "evidence": {k: v for k, v in evidence.items() if v is not None}}


@settings(max_examples=100, deadline=None)
@given(facts=st.lists(facts_strategy, min_size=1, max_size=20))
def test_the_exception_copy_rows_carry_the_amount_date_and_evidence_of_each_break(facts: list[BreakFacts]) -> None:
    profile = build_profile([RULE])
    tables = tables_from_frames(FrameResult(matches=pl.DataFrame(schema=RECORD_SCHEMA),
                                            suggestions=pl.DataFrame(schema=RECORD_SCHEMA), facts=_frame(facts),
                                            left_row_count=0, right_row_count=0), profile, None)
    left_file, right_file = uuid.uuid4(), uuid.uuid4()
    table = tables.exception_copy_table(left_file, right_file)
    assert table.columns == list(EXCEPTION_COLUMNS)
    text = b"".join(tables.copy_chunks(table, lambda: None)).decode()
    got = [{"amount": Decimal(row[2]), "transaction_date": dt.date.fromisoformat(row[4]) if row[4] else None,
            "evidence": json.loads(row[14])} for row in csv.reader(io.StringIO(text))]
    by_key = sorted(facts, key=lambda f: _key({"left_row": f.left_row, "right_row": f.right_row,
                                               "type": f.type.value}))
    assert sorted(map(repr, got)) == sorted(repr(_expected_copy_row(f)) for f in by_key)
    rows = list(csv.reader(io.StringIO(text)))
    assert all((row[11] == str(left_file)) == bool(row[9]) and (row[12] == str(right_file)) == bool(row[10])
               for row in rows)
