"""The mapping guardrails' rules (domain/ingestion/mapping_checks.py) and the result checks
(domain/reconciliation/result_checks.py), as properties over any figures."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from reckai.domain.ingestion.mapping_checks import (
    CONSTANT_COLUMN_MIN_ROWS,
    MappingStatistics,
    mapping_warnings,
)
from reckai.domain.reconciliation.profile import parse_profile
from reckai.domain.reconciliation.result_checks import result_warnings
from tests.support import reconciliation_jobs as rj

FIELDS = ("amount_minor", "transaction_date", "reference", "secondary_reference", "account", "currency")


@st.composite
def statistics(draw: st.DrawFn) -> MappingStatistics:
    rows = draw(st.integers(0, 50))
    debits = draw(st.integers(0, rows))
    days = draw(st.dictionaries(st.dates(dt.date(2025, 11, 1), dt.date(2026, 1, 31)), st.integers(1, 5), max_size=6))
    return MappingStatistics(
        row_count=rows, filled={f: draw(st.integers(0, rows)) for f in FIELDS},
        distinct={f: draw(st.integers(0, max(rows, 1))) for f in FIELDS},
        direction_counts={k: v for k, v in (("debit", debits), ("credit", rows - debits)) if v},
        currency_counts={"NGN": rows} if rows else {}, zero_amounts=draw(st.integers(0, rows)), transaction_days=days)


@given(statistics(), st.frozensets(st.sampled_from(FIELDS)))
def test_each_warning_holds_exactly_when_its_rule_does(stats: MappingStatistics, columns: frozenset[str]) -> None:
    period = (dt.date(2025, 12, 1), dt.date(2025, 12, 31))
    codes = [(w.code, w.field) for w in mapping_warnings(stats, column_fields=columns, period=period)]
    rows = stats.row_count
    assert (("ONE_DIRECTION", "direction") in codes) == (rows > 0 and len(stats.direction_counts) == 1)
    assert (("ALL_AMOUNTS_ZERO", "amount_minor") in codes) == (rows > 0 and stats.zero_amounts == rows)
    outside = sum(n for day, n in stats.transaction_days.items() if not period[0] <= day <= period[1])
    assert (("DATES_OUTSIDE_PERIOD", "transaction_date") in codes) == (rows > 0 and outside > 0)
    for name in ("transaction_date", "reference", "secondary_reference", "account"):
        constant = (rows >= CONSTANT_COLUMN_MIN_ROWS and name in columns and stats.filled[name] == rows
                    and stats.distinct[name] == 1)
        assert (("CONSTANT_COLUMN", name) in codes) == constant
    assert ("CONSTANT_COLUMN", "currency") not in codes  # a currency may be the same everywhere


@given(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5),
       st.dictionaries(st.sampled_from(["left", "right"]), st.integers(0, 5)))
def test_result_warnings(left: int, right: int, matched: int, kept: dict[str, int]) -> None:
    profile = parse_profile(rj.profile())  # both sides keep debits
    warnings = result_warnings(profile, left_rows=left, right_rows=right, matched_rows=matched, direction_rows=kept)
    codes = [(w.code, w.side) for w in warnings]
    rows = {"left": left, "right": right}
    for side in ("left", "right"):
        assert (("DIRECTION_FILTER_EMPTY", side) in codes) == (rows[side] > 0 and kept.get(side) == 0)
    assert (("NO_MATCHES", None) in codes) == (left > 0 and right > 0 and matched == 0)


@given(statistics())
def test_no_declared_period_no_date_warning(stats: MappingStatistics) -> None:
    assert all(w.code != "DATES_OUTSIDE_PERIOD" for w in mapping_warnings(stats, column_fields=frozenset(FIELDS)))
