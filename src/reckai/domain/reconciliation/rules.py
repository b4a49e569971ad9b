"""Matching rules (the spec's `matching_rules` row) and the exact arithmetic both matchers share.

A rule keeps the spec's columns; options the spec has no column for live in `conditions` (see
docs/profile.md). Every number a matcher compares is an integer (minor units, days, basis points),
so the pure-Python reference matcher and the polars matcher cannot disagree through rounding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any


class RuleType(str, Enum):
    EXACT = "exact"
    FUZZY = "fuzzy"
    RANGE = "range"
    REGEX = "regex"


class DateDirection(str, Enum):
    ANY = "any"  # |left - right| <= date_tolerance_days
    LEFT_ON_OR_AFTER_RIGHT = "left_on_or_after_right"  # the left side posts 0..N days after the right
    RIGHT_ON_OR_AFTER_LEFT = "right_on_or_after_left"


class ConditionOp(str, Enum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    NOT_IN = "not_in"
    REGEX = "regex"  # re.search semantics; keep to the syntax Python and Rust regex share
    PRESENT = "present"
    ABSENT = "absent"


class RuleError(ValueError):
    """A rule (or profile) that cannot be used; `path` says where in the JSON."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


# Canonical string fields a rule may name; "raw.<column>" names a source column.
TEXT_FIELDS = ("reference", "secondary_reference", "description", "channel", "account", "status",
               "counterparty", "currency", "direction")
DERIVED_FIELDS = ("amount_minor", "transaction_date", "value_date")  # compared as text: "1250", "2025-12-01"
CONFIDENCE_SCALE = 10_000  # confidences and similarities are integers in basis points
DEFAULT_AUTO_MATCH_THRESHOLD_BP = 9_000
DEFAULT_SIMILARITY_THRESHOLD_BP = 8_000
DEFAULT_MIN_SUFFIX_LENGTH = 8
SUFFIX_KEY_FACTOR_BP = 9_700  # a key matched only as a suffix is slightly less certain than a full key


@dataclass(frozen=True)
class Condition:
    field: str
    op: ConditionOp
    value: Any = None  # str for eq/ne/regex, tuple[str, ...] for in/not_in


@dataclass(frozen=True)
class FieldMapping:
    left: str
    right: str
    left_pattern: str | None = None  # regex rules: the key is the first group (or whole match)
    right_pattern: str | None = None


@dataclass(frozen=True)
class FeeSchedule:
    """A charge deducted per member of a group (e.g. a merchant service charge).

    fee(member) = min(amount * percent / 100, cap) + flat, in minor units, rounded down.
    """

    percent_e4: int = 0  # percent with four decimals: 0.5% -> 5000
    cap_minor: int | None = None
    flat_minor: int = 0

    def fee(self, amount_minor: int) -> int:
        variable = amount_minor * self.percent_e4 // 1_000_000
        if self.cap_minor is not None:
            variable = min(variable, self.cap_minor)
        return variable + self.flat_minor


@dataclass(frozen=True)
class GroupSpec:
    side: str  # "left" or "right": the side whose rows are summed
    by: tuple[str, ...]
    fee_schedule: FeeSchedule | None = None


@dataclass(frozen=True)
class MatchingRule:
    name: str
    rule_type: RuleType
    field_mappings: tuple[FieldMapping, ...]
    priority: int = 0
    version: int = 1
    is_active: bool = True
    tolerance_amount_minor: int = 0
    tolerance_percent_e4: int = 0  # percent with four decimals (spec DECIMAL(5,4)): 0.5 -> 5000
    date_tolerance_days: int = 0
    left_conditions: tuple[Condition, ...] = ()
    right_conditions: tuple[Condition, ...] = ()
    auto_match_threshold_bp: int = DEFAULT_AUTO_MATCH_THRESHOLD_BP
    similarity_threshold_bp: int = DEFAULT_SIMILARITY_THRESHOLD_BP
    date_direction: DateDirection = DateDirection.ANY
    tolerance_of: str = "left"  # which side's amount a percentage tolerance is taken of
    min_suffix_length: int = DEFAULT_MIN_SUFFIX_LENGTH
    group: GroupSpec | None = None
    conditions_json: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    # --- the exact arithmetic (mirrored expression for expression by the polars matcher) ---

    def amount_within(self, diff: int, base: int) -> bool:
        if diff <= self.tolerance_amount_minor:
            return True
        return self.tolerance_percent_e4 > 0 and diff * 1_000_000 <= base * self.tolerance_percent_e4

    def allowed_difference(self, base: int) -> int:
        return max(self.tolerance_amount_minor, base * self.tolerance_percent_e4 // 1_000_000)

    def date_within(self, day_delta: int) -> bool:
        """day_delta = left date - right date, in days."""
        if self.date_direction is DateDirection.LEFT_ON_OR_AFTER_RIGHT:
            return 0 <= day_delta <= self.date_tolerance_days
        if self.date_direction is DateDirection.RIGHT_ON_OR_AFTER_LEFT:
            return 0 <= -day_delta <= self.date_tolerance_days
        return abs(day_delta) <= self.date_tolerance_days

    def confidence_bp(self, amount_diff: int, allowed: int, day_gap: int, similarity_bp: int,
                      suffix_key: bool) -> int:
        """Confidence in basis points: each factor is floor-divided in this fixed order."""
        amount_factor = CONFIDENCE_SCALE - (5_000 * amount_diff) // allowed if allowed > 0 else CONFIDENCE_SCALE
        date_factor = (CONFIDENCE_SCALE - (500 * day_gap) // self.date_tolerance_days
                       if self.date_tolerance_days > 0 else CONFIDENCE_SCALE)
        key_factor = SUFFIX_KEY_FACTOR_BP if suffix_key else CONFIDENCE_SCALE
        value = amount_factor * date_factor // CONFIDENCE_SCALE
        value = value * similarity_bp // CONFIDENCE_SCALE
        return value * key_factor // CONFIDENCE_SCALE

    @property
    def keyed(self) -> bool:
        """Whether the rule compares identities (keys), so leftover rows can be linked by it."""
        return self.rule_type in (RuleType.EXACT, RuleType.REGEX) or (
            self.rule_type is RuleType.RANGE and bool(self.field_mappings))


def similarity_bp(left: str | None, right: str | None) -> int:
    """Normalized Indel similarity in basis points: 10000 * 2*LCS / (len(a)+len(b)), rounded down.

    The same number as `rapidfuzz.fuzz.ratio` before its float rounding; the fast matcher computes
    it from `rapidfuzz.distance.Indel.distance`, an integer, so both matchers agree exactly.
    """
    a = (left or "").upper()
    b = (right or "").upper()
    total = len(a) + len(b)
    if total == 0:
        return CONFIDENCE_SCALE
    return CONFIDENCE_SCALE * (total - indel_distance(a, b)) // total


def indel_distance(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for char_a in a:
        current = [0]
        for j, char_b in enumerate(b):
            current.append(previous[j] + 1 if char_a == char_b else max(previous[j + 1], current[j]))
        previous = current
    return len(a) + len(b) - 2 * previous[-1]


def extract_key(value: str | None, pattern: str | None) -> str | None:
    if value is None or value == "":
        return None
    if pattern is None:
        return value
    found = re.search(pattern, value)
    if found is None:
        return None
    key = found.group(1) if found.re.groups else found.group(0)
    return key or None


def suffix_relation(left_key: str, right_key: str, min_suffix_length: int) -> int | None:
    """0 when the keys are equal, 1 when the shorter (>= min length) ends the longer, else None."""
    if left_key == right_key:
        return 0
    if len(left_key) < len(right_key):
        short, long = left_key, right_key
    else:
        short, long = right_key, left_key
    if len(short) >= min_suffix_length and len(long) > len(short) and long.endswith(short):
        return 1
    return None


# --- parsing from the profile JSON -------------------------------------------------------------

_RULE_KEYS = {"name", "rule_type", "priority", "version", "is_active", "tolerance_percentage",
              "tolerance_amount", "date_tolerance_days", "field_mappings", "conditions"}
_CONDITION_KEYS = {"left", "right", "auto_match_threshold", "similarity_threshold", "date_direction",
                   "tolerance_of", "min_suffix_length", "group"}


def parse_rule(raw: Any, path: str, currency_exponent: int) -> MatchingRule:
    if not isinstance(raw, dict):
        raise RuleError(path, "a rule must be a JSON object")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RuleError(path, f"unknown key(s) {sorted(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RuleError(f"{path}.name", "a non-empty name is required")
    try:
        rule_type = RuleType(raw.get("rule_type"))
    except ValueError:
        raise RuleError(f"{path}.rule_type", "must be one of exact, fuzzy, range, regex") from None
    conditions = raw.get("conditions") or {}
    if not isinstance(conditions, dict):
        raise RuleError(f"{path}.conditions", "must be an object")
    unknown = set(conditions) - _CONDITION_KEYS
    if unknown:
        raise RuleError(f"{path}.conditions", f"unknown key(s) {sorted(unknown)}")
    mappings = _parse_field_mappings(raw.get("field_mappings"), f"{path}.field_mappings", rule_type)
    group = _parse_group(conditions.get("group"), f"{path}.conditions.group", currency_exponent)
    if group is not None:
        if rule_type not in (RuleType.EXACT, RuleType.RANGE):
            raise RuleError(f"{path}.conditions.group", "grouping applies to exact and range rules")
        for mapping in mappings:
            grouped_field = mapping.left if group.side == "left" else mapping.right
            if grouped_field not in group.by:
                raise RuleError(f"{path}.conditions.group.by",
                                f"{grouped_field!r} is compared, so it must be one of the group keys")
    tolerance_of = conditions.get("tolerance_of", "left")
    if tolerance_of not in ("left", "right"):
        raise RuleError(f"{path}.conditions.tolerance_of", "must be left or right")
    try:
        date_direction = DateDirection(conditions.get("date_direction", "any"))
    except ValueError:
        raise RuleError(f"{path}.conditions.date_direction",
                        f"must be one of {[d.value for d in DateDirection]}") from None
    return MatchingRule(
        name=name.strip(),
        rule_type=rule_type,
        field_mappings=mappings,
        priority=_int(raw.get("priority", 0), f"{path}.priority"),
        version=_int(raw.get("version", 1), f"{path}.version", minimum=1),
        is_active=bool(raw.get("is_active", True)),
        tolerance_amount_minor=_money_minor(raw.get("tolerance_amount"), f"{path}.tolerance_amount",
                                            currency_exponent),
        tolerance_percent_e4=_scaled(raw.get("tolerance_percentage"), f"{path}.tolerance_percentage", 4,
                                     maximum=Decimal(100)),
        date_tolerance_days=_int(raw.get("date_tolerance_days") or 0, f"{path}.date_tolerance_days",
                                 maximum=MAX_DATE_TOLERANCE_DAYS),
        left_conditions=_parse_conditions(conditions.get("left"), f"{path}.conditions.left"),
        right_conditions=_parse_conditions(conditions.get("right"), f"{path}.conditions.right"),
        auto_match_threshold_bp=_fraction_bp(conditions.get("auto_match_threshold"),
                                             f"{path}.conditions.auto_match_threshold",
                                             DEFAULT_AUTO_MATCH_THRESHOLD_BP),
        similarity_threshold_bp=_fraction_bp(conditions.get("similarity_threshold"),
                                             f"{path}.conditions.similarity_threshold",
                                             DEFAULT_SIMILARITY_THRESHOLD_BP),
        date_direction=date_direction,
        tolerance_of=tolerance_of,
        min_suffix_length=_int(conditions.get("min_suffix_length", DEFAULT_MIN_SUFFIX_LENGTH),
                               f"{path}.conditions.min_suffix_length", minimum=1),
        group=group,
        conditions_json=dict(conditions),
    )


def _parse_field_mappings(raw: Any, path: str, rule_type: RuleType) -> tuple[FieldMapping, ...]:
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise RuleError(path, "must be a list of {left, right} objects")
    mappings = []
    for index, item in enumerate(raw):
        item_path = f"{path}[{index}]"
        if not isinstance(item, dict):
            raise RuleError(item_path, "must be an object")
        unknown = set(item) - {"left", "right", "left_pattern", "right_pattern"}
        if unknown:
            raise RuleError(item_path, f"unknown key(s) {sorted(unknown)}")
        left = validate_field_name(item.get("left"), f"{item_path}.left")
        right = validate_field_name(item.get("right"), f"{item_path}.right")
        patterns = {}
        for key in ("left_pattern", "right_pattern"):
            pattern = item.get(key)
            if pattern is not None:
                if rule_type is not RuleType.REGEX:
                    raise RuleError(f"{item_path}.{key}", "patterns belong to regex rules")
                try:
                    re.compile(pattern)
                except (re.error, TypeError) as exc:
                    raise RuleError(f"{item_path}.{key}", f"invalid regular expression: {exc}") from None
            patterns[key] = pattern
        mappings.append(FieldMapping(left, right, patterns["left_pattern"], patterns["right_pattern"]))
    if rule_type in (RuleType.EXACT, RuleType.REGEX, RuleType.FUZZY) and not mappings:
        raise RuleError(path, f"a {rule_type.value} rule needs at least one field mapping")
    if rule_type is RuleType.REGEX:
        if len(mappings) != 1:
            raise RuleError(path, "a regex rule compares exactly one pair of fields")
        if mappings[0].left_pattern is None and mappings[0].right_pattern is None:
            raise RuleError(path, "a regex rule needs left_pattern and/or right_pattern")
    return tuple(mappings)


def validate_field_name(name: Any, path: str) -> str:
    if not isinstance(name, str):
        raise RuleError(path, "a field name is required")
    if name in TEXT_FIELDS or name in DERIVED_FIELDS:
        return name
    if name.startswith("raw.") and len(name) > 4:
        return name
    raise RuleError(path, f"unknown field {name!r}: use a canonical field or raw.<source column>")


def _parse_conditions(raw: Any, path: str) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RuleError(path, "must be a list of {field, op, value} objects")
    parsed = []
    for index, item in enumerate(raw):
        item_path = f"{path}[{index}]"
        if not isinstance(item, dict) or set(item) - {"field", "op", "value"}:
            raise RuleError(item_path, "must be an object with field, op and value")
        validate_field_name(item.get("field"), f"{item_path}.field")
        try:
            op = ConditionOp(item.get("op", "eq"))
        except ValueError:
            raise RuleError(f"{item_path}.op", f"must be one of {[o.value for o in ConditionOp]}") from None
        value = item.get("value")
        if op in (ConditionOp.IN, ConditionOp.NOT_IN):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise RuleError(f"{item_path}.value", "must be a list of strings")
            value = tuple(value)
        elif op in (ConditionOp.EQ, ConditionOp.NE, ConditionOp.REGEX):
            if not isinstance(value, str):
                raise RuleError(f"{item_path}.value", "must be a string")
            if op is ConditionOp.REGEX:
                try:
                    re.compile(value)
                except re.error as exc:
                    raise RuleError(f"{item_path}.value", f"invalid regular expression: {exc}") from None
        parsed.append(Condition(item["field"], op, value))
    return tuple(parsed)


def _parse_group(raw: Any, path: str, currency_exponent: int) -> GroupSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"side", "by", "fee_schedule"}:
        raise RuleError(path, "must be an object with side, by and optional fee_schedule")
    side = raw.get("side")
    if side not in ("left", "right"):
        raise RuleError(f"{path}.side", "must be left or right")
    by = raw.get("by")
    if not isinstance(by, list) or not by:
        raise RuleError(f"{path}.by", "must be a non-empty list of fields")
    for index, name in enumerate(by):
        validate_field_name(name, f"{path}.by[{index}]")
    fee = raw.get("fee_schedule")
    schedule = None
    if fee is not None:
        if not isinstance(fee, dict) or set(fee) - {"percent", "cap", "flat"}:
            raise RuleError(f"{path}.fee_schedule", "must be an object with percent, cap, flat")
        schedule = FeeSchedule(
            percent_e4=_scaled(fee.get("percent"), f"{path}.fee_schedule.percent", 4, maximum=Decimal(100)),
            cap_minor=(None if fee.get("cap") is None
                       else _money_minor(fee.get("cap"), f"{path}.fee_schedule.cap", currency_exponent)),
            flat_minor=_money_minor(fee.get("flat"), f"{path}.fee_schedule.flat", currency_exponent),
        )
    return GroupSpec(side=side, by=tuple(by), fee_schedule=schedule)


def _decimal(value: Any, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        raise RuleError(path, "must be a number or a decimal string")
    try:
        # A JSON float goes through its shortest text form ("0.1"), never its binary value.
        number = Decimal(str(value))
    except InvalidOperation:
        raise RuleError(path, f"not a number: {value!r}") from None
    if not number.is_finite() or number < 0:
        raise RuleError(path, "must be a non-negative number")
    return number


def _scaled(value: Any, path: str, places: int, maximum: Decimal | None = None) -> int:
    if value is None:
        return 0
    number = _decimal(value, path)
    if maximum is not None and number > maximum:
        raise RuleError(path, f"must be at most {maximum}")
    scaled = number.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise RuleError(path, f"at most {places} decimal places")
    return int(scaled)


def _money_minor(value: Any, path: str, exponent: int) -> int:
    return _scaled(value, path, exponent)


def _fraction_bp(value: Any, path: str, default: int) -> int:
    if value is None:
        return default
    number = _decimal(value, path)
    if number > 1:
        raise RuleError(path, "must be between 0 and 1")
    return int((number * CONFIDENCE_SCALE).to_integral_value(rounding="ROUND_CEILING"))


# Rule integers are stored in 32-bit columns (matching_rules.priority, date_tolerance_days ...);
# a larger value was a database error (500) instead of a refusal.
MAX_RULE_INT = 2**31 - 1
MAX_DATE_TOLERANCE_DAYS = 3660  # ten years; a day count must also stay within a date's range


def _int(value: Any, path: str, minimum: int = 0, maximum: int = MAX_RULE_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise RuleError(path, f"must be an integer from {minimum} to {maximum}")
    return value
