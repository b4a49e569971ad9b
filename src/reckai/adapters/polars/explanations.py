"""The wording of breaks, column-wise: the domain's templates (domain/reconciliation/explanations.py)
evaluated over a frame of break facts, with no Python object per break.

Each slot of the templates becomes one polars expression; amounts are formatted from integer minor
units (the currency's exponent, thousands separators) without a float. `describe_break` remains
the definition: tests/unit/test_explanations_columnar.py holds this module to it, break by break.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from reckai.domain.ingestion.canonical import MINOR_UNIT_EXPONENTS
from reckai.domain.reconciliation.explanations import (
    CURRENCY_SYMBOLS,
    EARLIER,
    LATER,
    LESS,
    MORE,
    NO_PERCENT,
    NOT_MOVED,
    TYPE_CONFIDENCE_BP,
    UNKNOWN,
    WORDINGS,
    template_slots,
)
from reckai.domain.reconciliation.profile import ReconciliationPeriod, ReconciliationProfile
from reckai.domain.reconciliation.results import BreakType
from reckai.domain.reconciliation.severity import SEVERITY_LEVELS

# What describe_break adds to the facts (FACT_SCHEMA), and the break's amount (BreakFacts.amount_minor).
WORDING_COLUMNS = {"description": pl.String, "explanation": pl.String, "suggested_action": pl.String,
                   "severity": pl.String, "ai_confidence_bp": pl.Int64, "amount_minor": pl.Int64}


def _thousands(units: pl.Expr) -> pl.Expr:
    """"1234567" -> "1,234,567" for units >= 0: the leading one to three digits, then each group
    of three after a comma (an Int64 has at most six groups after the first). Slices of the digit
    text: about half the CPU of grouping the reversed digits with a regex."""
    digits = units.cast(pl.String)
    count = digits.str.len_bytes().cast(pl.Int64)
    lead = (count - 1) % 3 + 1
    groups = (count - 1) // 3
    parts = [digits.str.slice(0, lead)]
    for index in range(6):
        parts.append(pl.when(groups > index).then(pl.lit(",") + digits.str.slice(lead + 3 * index, 3)))
    return pl.concat_str(parts, ignore_nulls=True)


def _money_parts(amount_minor: pl.Expr, currency: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """(sign, units, fraction with its point, currency code) of integer minor units."""
    code = currency.str.to_uppercase()
    divisor = code.replace_strict({c: 10 ** e for c, e in MINOR_UNIT_EXPONENTS.items()}, default=100,
                                  return_dtype=pl.Int64)
    size = amount_minor.abs()
    # minor digits with their leading zeros: 5 of a 100 divisor -> "105" -> "05"
    minor = (size % divisor + divisor).cast(pl.String).str.slice(1)
    fraction = pl.when(divisor > 1).then(pl.lit(".") + minor).otherwise(pl.lit(""))
    sign = pl.when(amount_minor < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return sign, size // divisor, fraction, code


def format_money(amount_minor: pl.Expr, currency: pl.Expr) -> pl.Expr:
    """explanations.format_money over columns: sign, symbol, grouped units, minor digits."""
    sign, units, fraction, code = _money_parts(amount_minor, currency)
    symbol = code.replace_strict(CURRENCY_SYMBOLS, default=code + pl.lit(" "), return_dtype=pl.String)
    return pl.concat_str([sign, symbol, _thousands(units), fraction])


def format_amount(amount_minor: pl.Expr, currency: pl.Expr) -> pl.Expr:
    """The exact decimal text of an amount in major units ("-1234.50" for -123450 NGN): no float."""
    sign, units, fraction, _ = _money_parts(amount_minor, currency)
    return pl.concat_str([sign, units.cast(pl.String), fraction])


def format_percent(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """explanations.format_percent over columns (128-bit: |numerator| x 10,000 cannot overflow)."""
    den = denominator.cast(pl.Int128)
    hundredths = (numerator.cast(pl.Int128).abs() * pl.lit(10_000, pl.Int128) + den // 2) // den
    text = pl.concat_str([(hundredths // 100).cast(pl.String), pl.lit("."),
                          (hundredths % 100).cast(pl.String).str.zfill(2), pl.lit("%")])
    return pl.when(denominator == 0).then(pl.lit(NO_PERCENT)).otherwise(text)


def _day(moment: pl.Expr) -> pl.Expr:
    return moment.dt.date().cast(pl.String).fill_null(UNKNOWN)


def _text(value: pl.Expr) -> pl.Expr:
    return value.cast(pl.String).fill_null(UNKNOWN)


def _slot_expressions(profile: ReconciliationProfile) -> dict[str, pl.Expr]:
    """explanations.break_slots, one expression per slot."""
    left, right = pl.lit(profile.left.label), pl.lit(profile.right.label)
    left_lower, right_lower = pl.lit(profile.left.label.lower()), pl.lit(profile.right.label.lower())
    currency = pl.col("currency")
    has_left, has_right = pl.col("left_row").is_not_null(), pl.col("right_row").is_not_null()
    left_amount, right_amount = pl.col("left_amount_minor").fill_null(0), pl.col("right_amount_minor").fill_null(0)
    difference = left_amount - right_amount
    day_delta = (pl.col("left_date").dt.date() - pl.col("right_date").dt.date()).dt.total_days().fill_null(0)
    right_failed = pl.col("right_status").is_in(list(NOT_MOVED)).fill_null(False)
    reference = pl.col("reference")

    def money(amount: pl.Expr) -> pl.Expr:
        return format_money(amount, currency)

    def by_present(on_left: pl.Expr, otherwise: pl.Expr) -> pl.Expr:
        return pl.when(has_left).then(on_left).otherwise(otherwise)

    return {
        "ref": pl.when(reference.is_not_null() & (reference != ""))
        .then(pl.lit(f" for {profile.reference_label} ") + reference).otherwise(pl.lit("")),
        "left": left, "right_lower": right_lower,
        "left_direction": _text(pl.col("left_direction")),
        "left_amount": money(left_amount), "right_amount": money(right_amount),
        "left_day": _day(pl.col("left_date")), "right_day": _day(pl.col("right_date")),
        "difference": money(difference.abs()),
        "more_or_less": pl.when(difference > 0).then(pl.lit(MORE)).otherwise(pl.lit(LESS)),
        "difference_percent": format_percent(difference, right_amount),
        "day_gap": day_delta.abs().cast(pl.String),
        "later_or_earlier": pl.when(day_delta > 0).then(pl.lit(LATER)).otherwise(pl.lit(EARLIER)),
        "amount": money(pl.coalesce(pl.col("left_amount_minor"), pl.col("right_amount_minor"), pl.lit(0))),
        "moved": pl.when(right_failed).then(left).otherwise(right),
        "failed_lower": pl.when(right_failed).then(right_lower).otherwise(left_lower),
        "failed_status": _text(pl.when(right_failed).then(pl.col("right_status")).otherwise(pl.col("left_status"))),
        "present": by_present(left, right), "present_lower": by_present(left_lower, right_lower),
        "absent_lower": by_present(right_lower, left_lower),
        "present_row": _text(by_present(pl.col("left_row"), pl.col("right_row"))),
        "present_amount": money(by_present(pl.col("left_amount_minor"), pl.col("right_amount_minor")).fill_null(0)),
        "present_day": _day(by_present(pl.col("left_date"), pl.col("right_date"))),
        "present_direction": _text(by_present(pl.col("left_direction"), pl.col("right_direction"))),
        "original_row": _text(pl.col("original_row")),
        "first_day": _day(pl.coalesce(pl.col("left_date"), pl.col("right_date"))),
        "right_first": pl.when(has_right).then(right).otherwise(left),
        "right_first_other_lower": pl.when(has_right).then(left_lower).otherwise(right_lower),
        "right_first_day": _day(pl.coalesce(pl.col("right_date"), pl.col("left_date"))),
    }


def _wording_key() -> pl.Expr:
    both = pl.col("left_row").is_not_null() & pl.col("right_row").is_not_null()
    return (pl.when(pl.col("type") != BreakType.NON_SETTLEMENT.value).then(pl.col("type"))
            .when(both).then(pl.lit("non_settlement_pair")).otherwise(pl.lit("non_settlement_single")))


def fill_template(template: str, slots: dict[str, pl.Expr]) -> pl.Expr:
    """A domain template as one string expression (literal parts and slot expressions)."""
    parts: list[pl.Expr] = []
    for literal, name in template_slots(template):
        if literal:
            parts.append(pl.lit(literal))
        if name is not None:
            parts.append(slots[name])
    return pl.concat_str(parts) if parts else pl.lit("")


def _severity(profile: ReconciliationProfile, period: ReconciliationPeriod | None) -> pl.Expr:
    """SeverityPolicy.severity over columns, as a rank into SEVERITY_LEVELS turned into its name."""
    policy = profile.severity
    rank_of = {level: index for index, level in enumerate(SEVERITY_LEVELS)}
    break_type = pl.col("type")
    difference = (pl.col("left_amount_minor") - pl.col("right_amount_minor")).fill_null(0)
    amount = pl.coalesce(pl.col("left_amount_minor"), pl.col("right_amount_minor"), pl.lit(0))
    size = pl.when(break_type == BreakType.AMOUNT_MISMATCH.value).then(difference.abs()).otherwise(amount.abs())
    rank: Any = pl.lit(rank_of[policy.default])
    bands = policy.amount_bands_minor()
    if bands:
        chain: Any = pl
        for minimum, level in bands:
            chain = chain.when(size >= minimum).then(pl.lit(rank_of[level]))
        rank = chain.otherwise(rank)
    for name, floor in policy.type_floor.items():
        rank = pl.when(break_type == name).then(pl.max_horizontal(rank, pl.lit(rank_of[floor]))).otherwise(rank)
    if policy.age_escalation_days is not None and period is not None:
        moment = pl.coalesce(pl.col("left_date"), pl.col("right_date")).dt.date()
        age = (pl.lit(period.end) - moment).dt.total_days()
        escalated = pl.min_horizontal(rank + 1, pl.lit(len(SEVERITY_LEVELS) - 1))
        rank = pl.when(age >= policy.age_escalation_days).then(escalated).otherwise(rank)
    for name, cap in policy.type_cap.items():
        rank = pl.when(break_type == name).then(pl.min_horizontal(rank, pl.lit(rank_of[cap]))).otherwise(rank)
    severity: pl.Expr = rank.cast(pl.Int64).replace_strict(dict(enumerate(SEVERITY_LEVELS)), return_dtype=pl.String)
    return severity


def describe_breaks(facts: pl.DataFrame, profile: ReconciliationProfile,
                    period: ReconciliationPeriod | None) -> pl.DataFrame:
    """The facts (FACT_SCHEMA) with WORDING_COLUMNS added, ordered as exceptions are everywhere:
    by left row, right row (absent last), then type."""
    slots = _slot_expressions(profile)
    # Evaluated lazily (in memory: the frames are small): the slots of a template share
    # sub-expressions (the currency's divisor, an amount's digits), which the lazy engine computes
    # once; eagerly each use recomputed them. With the sliced thousands, 81k breaks: 0.124 -> 0.097 s
    # (0.156 -> 0.137 s of CPU).
    keyed = facts.lazy().with_columns(
        _wording_key().alias("__wording"),
        _severity(profile, period).alias("severity"),
        pl.col("type").replace_strict({t.value: bp for t, bp in TYPE_CONFIDENCE_BP.items()},
                                      return_dtype=pl.Int64).alias("ai_confidence_bp"),
        pl.coalesce(pl.col("left_amount_minor"), pl.col("right_amount_minor"), pl.lit(0)).alias("amount_minor")
    ).collect(engine="in-memory")
    # Each variant's rows get their own templates: no text is built for a row twice.
    parts = [keyed.clear().with_columns([pl.lit(None, pl.String).alias(name)
                                         for name in ("description", "explanation", "suggested_action")])]
    for (key,), rows in keyed.partition_by("__wording", as_dict=True, maintain_order=True).items():
        wording = WORDINGS[str(key)]
        parts.append(rows.lazy().with_columns(
            [fill_template(template, slots).alias(name) for name, template in wording.fields()]).collect(engine="in-memory"))
    described = pl.concat(parts, how="vertical").drop("__wording")
    return described.sort(["left_row", "right_row", "type"], nulls_last=True, maintain_order=True)
