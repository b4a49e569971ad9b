"""Reference amount parser: decimal text to integer minor units, never through a float.

The polars normalizer (adapters/polars/normalize.py) does the same steps with vectorised string
operations; property tests check that both agree on every input. Steps, in order:

1. every configured `strip` token (currency symbols, codes) is removed wherever it appears;
2. whitespace (space, tab, CR, LF, no-break and thin spaces) is removed;
3. sign: `(...)` around the number, a leading `-`/`+` or a trailing `-`; two negative marks are refused;
4. thousands separator: only between groups of exactly three digits in the integer part;
5. what is left must be digits with at most one decimal separator, and at least one digit;
6. scale `major`: at most `exponent` fraction digits (more is an error, never a rounding);
   scale `minor`: the text is already in minor units, so any fraction must be zeros;
7. the magnitude must fit a signed 64-bit integer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reckai.domain.ingestion.errors import InvalidAmount

WHITESPACE_CHARS = " \t\r\n\u00a0\u2007\u2009\u202f"
WHITESPACE_CLASS = "[" + WHITESPACE_CHARS + "]"  # literal characters: valid in Python and Rust regex
INT64_MAX = 2**63 - 1
SIGN_PATTERN = r"^([+-]?)(.*?)(-?)$"


@dataclass(frozen=True)
class AmountFormat:
    exponent: int = 2  # ISO 4217 minor-unit exponent of the row's currency
    decimal_separator: str = "."
    thousands_separator: str | None = ","
    strip: tuple[str, ...] = ()
    scale: str = "major"  # major | minor


@dataclass(frozen=True)
class ParsedAmount:
    minor_units: int  # magnitude, never negative
    negative: bool


def decimal_places_reason(exponent: int) -> str:
    return f"more than {exponent} decimal places for this currency (amounts are never rounded)"


def regex_escape(char: str) -> str:
    """Escape for both Python `re` and Rust `regex` (polars), which disagree on escaping plain chars."""
    return "".join("\\" + c if c in "\\.+*?()|[]{}^$#&-~" else c for c in char)


def split_integer_fraction_pattern(decimal_separator: str) -> str:
    sep = regex_escape(decimal_separator)
    return rf"^([^{sep}]*)(?:{sep}(.*))?$"


def thousands_group_pattern(thousands_separator: str) -> str:
    return rf"^[0-9]{{1,3}}(?:{regex_escape(thousands_separator)}[0-9]{{3}})+$"


def parse_amount(text: str | None, fmt: AmountFormat = AmountFormat()) -> ParsedAmount:
    """Parse one amount text into a magnitude in minor units and a sign; raise InvalidAmount."""
    if text is None:
        raise InvalidAmount("", "empty amount")
    cleaned = text
    for token in fmt.strip:
        if token:
            cleaned = cleaned.replace(token, "")
    cleaned = re.sub(WHITESPACE_CLASS, "", cleaned)
    if cleaned == "":
        raise InvalidAmount(text, "empty amount")

    in_parentheses = cleaned.startswith("(") and cleaned.endswith(")") and len(cleaned) >= 2
    if in_parentheses:
        cleaned = cleaned[1:-1]
    sign = re.match(SIGN_PATTERN, cleaned, flags=re.DOTALL)
    assert sign is not None  # the pattern matches every string
    lead, body, trail = sign.group(1), sign.group(2), sign.group(3)
    negative_marks = int(in_parentheses) + int(lead == "-") + int(trail == "-")
    if negative_marks > 1 or (lead == "+" and negative_marks > 0):
        raise InvalidAmount(text, "conflicting sign marks")

    parts = re.match(split_integer_fraction_pattern(fmt.decimal_separator), body, flags=re.DOTALL)
    if parts is None:  # pragma: no cover - the pattern matches every string
        raise InvalidAmount(text, "not a number")
    integer_part, fraction = parts.group(1), parts.group(2)
    sep = fmt.thousands_separator
    if sep and sep in integer_part:
        if not re.match(thousands_group_pattern(sep), integer_part):
            raise InvalidAmount(text, f"misplaced thousands separator {sep!r}")
        integer_part = integer_part.replace(sep, "")
    if not re.fullmatch("[0-9]*", integer_part) or (fraction is not None
                                                     and not re.fullmatch("[0-9]*", fraction)):
        raise InvalidAmount(text, "not a number")
    fraction = fraction or ""
    if integer_part == "" and fraction == "":
        raise InvalidAmount(text, "not a number")

    if fmt.scale == "minor":
        if fraction.strip("0"):
            raise InvalidAmount(text, "amount in minor units has a non-zero fraction")
        digits = integer_part
    else:
        if len(fraction) > fmt.exponent:
            raise InvalidAmount(text, decimal_places_reason(fmt.exponent))
        digits = integer_part + fraction.ljust(fmt.exponent, "0")
    digits = digits.lstrip("0") or "0"
    if len(digits) > 19 or int(digits) > INT64_MAX:
        raise InvalidAmount(text, "amount too large")
    magnitude = int(digits)
    if magnitude > INT64_MAX:
        raise InvalidAmount(text, "amount too large")
    return ParsedAmount(minor_units=magnitude, negative=negative_marks > 0)
