"""Amount text to minor units: the domain reference parser, and the polars path agreeing with it."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reckai.adapters.polars.normalize import ExpressionPlan, amount_expressions
from reckai.domain.ingestion.amounts import AmountFormat, parse_amount
from reckai.domain.ingestion.errors import InvalidAmount
from reckai.domain.ingestion.mapping import AmountSpec


def polars_parse(texts: list[str | None], fmt: AmountFormat) -> list[tuple[int | None, bool, str | None]]:
    spec = AmountSpec(column="a", decimal_separator=fmt.decimal_separator,
                      thousands_separator=fmt.thousands_separator, strip=fmt.strip, scale=fmt.scale)
    plan = ExpressionPlan(pl.DataFrame({"a": pl.Series(texts, dtype=pl.String)}))
    amount = amount_expressions(plan, pl.col("a"), spec, pl.lit(fmt.exponent, dtype=pl.Int64))
    out = plan.lf.select(amount.minor.alias("m"), amount.negative.alias("n"), amount.error.alias("e"),
                         amount.empty.alias("empty")).collect()
    return [(m, n, "empty amount" if empty else e) for m, n, e, empty in out.iter_rows()]


def reference(text: str | None, fmt: AmountFormat) -> tuple[int | None, bool, str | None]:
    try:
        parsed = parse_amount(text, fmt)
    except InvalidAmount as exc:
        return None, False, exc.reason
    return parsed.minor_units, parsed.negative, None


@pytest.mark.parametrize(("text", "minor", "negative"), [
    ("0.29", 29, False), ("1,250.00", 125000, False), ("(1,250.00)", 125000, True),
    ("-1,250.00", 125000, True), ("1,250.00-", 125000, True), ("₦ 16,704.50", 1670450, False),
    ("NGN-4,092.99", 409299, True), ("+7", 700, False), (".5", 50, False), ("5.", 500, False),
    ("000012.3", 1230, False), ("1 234.56", 123456, False), ("-0.00", 0, True),
])
def test_reference_parser_known_values(text: str, minor: int, negative: bool) -> None:
    parsed = parse_amount(text, AmountFormat(strip=("₦", "NGN")))
    assert (parsed.minor_units, parsed.negative) == (minor, negative)


def test_european_separators_and_other_exponents() -> None:
    assert parse_amount("1.250,00", AmountFormat(decimal_separator=",", thousands_separator=".")) \
        .minor_units == 125000
    assert parse_amount("1.234", AmountFormat(exponent=3)).minor_units == 1234
    assert parse_amount("1500", AmountFormat(exponent=0)).minor_units == 1500
    assert parse_amount("1042100", AmountFormat(scale="minor")).minor_units == 1042100


@pytest.mark.parametrize(("text", "reason"), [
    ("12.345", "more than 2 decimal places for this currency (amounts are never rounded)"), ("1,23.00", "misplaced thousands separator ','"),
    ("(-5)", "conflicting sign marks"), ("+5-", "conflicting sign marks"), ("1.2.3", "not a number"),
    ("abc", "not a number"), (".", "not a number"), ("", "empty amount"), ("1e5", "not a number"),
    ("99999999999999999999", "amount too large"), ("１２", "not a number"),  # full-width digits
])
def test_reference_parser_refuses_with_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidAmount) as caught:
        parse_amount(text, AmountFormat())
    assert caught.value.reason == reason


def test_minor_scale_refuses_a_real_fraction() -> None:
    assert parse_amount("100.00", AmountFormat(scale="minor")).minor_units == 100
    with pytest.raises(InvalidAmount):
        parse_amount("100.5", AmountFormat(scale="minor"))


FORMATS = st.builds(
    AmountFormat,
    exponent=st.sampled_from([0, 2, 3]),
    decimal_separator=st.sampled_from([".", ","]),
    strip=st.sampled_from([(), ("₦", "NGN")]),
    scale=st.sampled_from(["major", "minor"]),
).map(lambda f: AmountFormat(f.exponent, f.decimal_separator, "." if f.decimal_separator == "," else ",",
                             f.strip, f.scale))

AMOUNT_CHARS = st.sampled_from(list("0123456789") * 4 + list(".,-+() ₦N") + ["NGN", "\u00a0", "e", "x"])
AMOUNT_TEXTS = st.one_of(st.lists(AMOUNT_CHARS, max_size=16).map("".join), st.text(max_size=8), st.none())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(fmt=FORMATS, texts=st.lists(AMOUNT_TEXTS, min_size=1, max_size=40))
def test_polars_path_agrees_with_reference_on_any_text(fmt: AmountFormat, texts: list[str | None]) -> None:
    assert polars_parse(texts, fmt) == [reference(t, fmt) for t in texts]


@st.composite
def valid_amount_texts(draw: st.DrawFn) -> tuple[str, Decimal, int]:
    exponent = draw(st.sampled_from([0, 2, 3]))
    integer = draw(st.integers(min_value=0, max_value=10**15))
    fraction_digits = draw(st.integers(min_value=0, max_value=exponent))
    fraction = draw(st.integers(min_value=0, max_value=10**fraction_digits - 1)) if fraction_digits else 0
    negative = draw(st.booleans())
    grouped = draw(st.booleans())
    int_text = f"{integer:,}" if grouped else str(integer)
    frac_text = f".{fraction:0{fraction_digits}d}" if fraction_digits else ""
    body = int_text + frac_text
    style = draw(st.sampled_from(["-", "()", "trail"])) if negative else ""
    text = {"": body, "-": "-" + body, "()": f"({body})", "trail": body + "-"}[style]
    plain = ("-" if negative else "") + str(integer) + frac_text
    return text, Decimal(plain), exponent


@settings(max_examples=300, deadline=None)
@given(case=valid_amount_texts())
def test_minor_units_equal_decimal_times_ten_to_the_exponent(case: tuple[str, Decimal, int]) -> None:
    text, value, exponent = case
    fmt = AmountFormat(exponent=exponent)
    parsed = parse_amount(text, fmt)
    signed = -parsed.minor_units if parsed.negative else parsed.minor_units
    assert Decimal(signed) == value * 10**exponent
    assert polars_parse([text], fmt) == [(parsed.minor_units, parsed.negative, None)]
