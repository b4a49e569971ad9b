"""The fast matcher: the reference matcher's semantics on polars frames.

Every step mirrors `reckai.domain.reconciliation.reference_matcher` (read that first); the property
tests in tests/unit/test_matching_properties.py assert both return the same matches, suggestions and
exceptions. Work is columnar: hash joins for keys, sorted-amount windows (search_sorted) for rules
without keys, and the mutual unique-best assignment as repeated group-wise minima.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from rapidfuzz.distance import Indel

from reckai.application.ports.matching import MatchingEngine, MatchingError
from reckai.domain.ingestion.canonical import CANONICAL_FIELD_NAMES
from reckai.domain.reconciliation.explanations import describe_break
from reckai.domain.reconciliation.profile import ReconciliationPeriod, ReconciliationProfile
from reckai.domain.reconciliation.results import (
    BreakFacts,
    BreakType,
    MatchRecord,
    MatchStatus,
    ReconciliationResult,
)
from reckai.domain.reconciliation.rules import (
    CONFIDENCE_SCALE,
    SUFFIX_KEY_FACTOR_BP,
    Condition,
    ConditionOp,
    DateDirection,
    MatchingRule,
    RuleType,
)

NOT_MOVED = ["failed", "reversed"]
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
COST = ["amount_gap", "day_gap", "key_cost", "text_cost"]
EVIDENCE = ["amount_diff", "day_delta", "similarity_bp", "left_key", "right_key"]

_PAIR_SCHEMA = {"l": pl.Int64, "r": pl.Int64, "amount_gap": pl.Int64, "day_gap": pl.Int64,
                "key_cost": pl.Int64, "text_cost": pl.Int64, "confidence_bp": pl.Int64,
                "amount_diff": pl.Int64, "day_delta": pl.Int64, "similarity_bp": pl.Int64,
                "left_key": pl.String, "right_key": pl.String}
_RECORD_SCHEMA = {"left_row": pl.Int64, "right_row": pl.Int64, "rule": pl.String, "rule_version": pl.Int64,
                  "status": pl.String, "confidence_bp": pl.Int64, "group_id": pl.String,
                  "amount_diff": pl.Int64, "day_delta": pl.Int64, "similarity_bp": pl.Int64,
                  "left_key": pl.String, "right_key": pl.String, "members": pl.Int64, "fee_minor": pl.Int64,
                  "pass_index": pl.Int64}
FACT_SCHEMA: dict[str, Any] = {"type": pl.String, "left_row": pl.Int64, "right_row": pl.Int64, "currency": pl.String,
               "left_amount_minor": pl.Int64, "right_amount_minor": pl.Int64,
               "left_date": pl.Datetime("us"), "right_date": pl.Datetime("us"),
               "left_direction": pl.String, "right_direction": pl.String,
               "left_status": pl.String, "right_status": pl.String,
               "reference": pl.String, "rule": pl.String, "original_row": pl.Int64}


@dataclass
class FrameResult:
    """The matcher's output as frames (what the CLI writes and the benchmark times)."""

    matches: pl.DataFrame
    suggestions: pl.DataFrame
    facts: pl.DataFrame  # one row per break, FACT_SCHEMA
    left_row_count: int
    right_row_count: int
    stage_seconds: dict[str, float] = field(default_factory=dict)


# --- field expressions (mirror reference_matcher.field_text) -----------------------------------

def _raw_fields(profile: ReconciliationProfile) -> set[str]:
    names: set[str] = set()
    for rule in profile.rules:
        for mapping in rule.field_mappings:
            names.update((mapping.left, mapping.right))
        for condition in (*rule.left_conditions, *rule.right_conditions):
            names.add(condition.field)
        if rule.group is not None:
            names.update(rule.group.by)
    return {name[4:] for name in names if name.startswith("raw.")}


def _raw_column(name: str) -> str:
    return f"__raw__{name}"


def field_expr(name: str) -> pl.Expr:
    if name.startswith("raw."):
        expr = pl.col(_raw_column(name[4:]))
    elif name == "amount_minor":
        expr = pl.col("amount_minor").cast(pl.String)
    elif name == "transaction_date":
        expr = pl.col("transaction_date").dt.date().cast(pl.String)
    elif name == "value_date":
        expr = pl.col("value_date").cast(pl.String)
    else:
        expr = pl.col(name).cast(pl.String)
    return pl.when(expr == "").then(None).otherwise(expr)


def condition_expr(condition: Condition) -> pl.Expr:
    value = field_expr(condition.field)
    op = condition.op
    if op is ConditionOp.PRESENT:
        return value.is_not_null()
    if op is ConditionOp.ABSENT:
        return value.is_null()
    if op is ConditionOp.EQ:
        return (value == condition.value).fill_null(False)
    if op is ConditionOp.NE:
        return (value != condition.value).fill_null(True)
    if op is ConditionOp.IN:
        return value.is_in(list(condition.value)).fill_null(False)
    if op is ConditionOp.NOT_IN:
        return (~value.is_in(list(condition.value))).fill_null(True)
    return value.str.contains(condition.value).fill_null(False)


def _prepare(frame: pl.DataFrame, raw_fields: set[str]) -> pl.DataFrame:
    missing = [name for name in CANONICAL_FIELD_NAMES if name not in frame.columns]
    if missing:
        raise MatchingError(f"normalized frame lacks canonical column(s) {missing}")
    columns = [pl.col(name) for name in CANONICAL_FIELD_NAMES if name != "raw"]
    columns.append(pl.col("transaction_date").dt.date().cast(pl.Int64).alias("day"))
    if raw_fields:
        struct = pl.col("raw").str.json_decode(pl.Struct({name: pl.String for name in sorted(raw_fields)}))
        columns.extend(struct.struct.field(name).alias(_raw_column(name)) for name in sorted(raw_fields))
    return frame.select(columns)


# --- candidates (mirror reference_matcher.candidates) ------------------------------------------

def _key_pairs(rule: MatchingRule, lefts: pl.DataFrame, rights: pl.DataFrame) -> pl.DataFrame:
    """Columns l, r, key_cost, left_key, right_key for pairs whose identity agrees."""
    empty = pl.DataFrame(schema={"l": pl.Int64, "r": pl.Int64, "key_cost": pl.Int64,
                                 "left_key": pl.String, "right_key": pl.String})
    if rule.rule_type is RuleType.REGEX:
        mapping = rule.field_mappings[0]
        left_keys = _regex_keys(lefts, mapping.left, mapping.left_pattern)
        right_keys = _regex_keys(rights, mapping.right, mapping.right_pattern)
        parts = [left_keys.join(right_keys, left_on="key", right_on="key", how="inner")
                 .select(pl.col("node").alias("l"), pl.col("node_right").alias("r"),
                         pl.lit(0, pl.Int64).alias("key_cost"), pl.col("key").alias("left_key"),
                         pl.col("key").alias("right_key"))]
        min_len = rule.min_suffix_length
        left_keys = left_keys.with_columns(pl.col("key").str.len_chars().cast(pl.Int64).alias("n"))
        right_keys = right_keys.with_columns(pl.col("key").str.len_chars().cast(pl.Int64).alias("n"))
        for length in sorted(set(left_keys.filter(pl.col("n") >= min_len)["n"].to_list())):
            shorter = left_keys.filter(pl.col("n") == length).select(pl.col("node").alias("l"),
                                                                      pl.col("key").alias("left_key"))
            longer = right_keys.filter(pl.col("n") > length).select(
                pl.col("node").alias("r"), pl.col("key").alias("right_key"),
                pl.col("key").str.slice(-length).alias("left_key"))
            parts.append(shorter.join(longer, on="left_key", how="inner").select(
                "l", "r", pl.lit(1, pl.Int64).alias("key_cost"), "left_key", "right_key"))
        for length in sorted(set(right_keys.filter(pl.col("n") >= min_len)["n"].to_list())):
            shorter = right_keys.filter(pl.col("n") == length).select(pl.col("node").alias("r"),
                                                                       pl.col("key").alias("right_key"))
            longer = left_keys.filter(pl.col("n") > length).select(
                pl.col("node").alias("l"), pl.col("key").alias("left_key"),
                pl.col("key").str.slice(-length).alias("right_key"))
            parts.append(longer.join(shorter, on="right_key", how="inner").select(
                "l", "r", pl.lit(1, pl.Int64).alias("key_cost"), "left_key", "right_key"))
        return pl.concat([empty, *parts], how="vertical_relaxed")
    left_key = pl.concat_str([_text_expr(lefts, m.left) for m in rule.field_mappings], separator="|")
    right_key = pl.concat_str([_text_expr(rights, m.right) for m in rule.field_mappings], separator="|")
    left_keys = lefts.select(pl.col("node"), left_key.alias("key")).drop_nulls("key")
    right_keys = rights.select(pl.col("node"), right_key.alias("key")).drop_nulls("key")
    joined = left_keys.join(right_keys, on="key", how="inner").select(
        pl.col("node").alias("l"), pl.col("node_right").alias("r"), pl.lit(0, pl.Int64).alias("key_cost"),
        pl.col("key").alias("left_key"), pl.col("key").alias("right_key"))
    return pl.concat([empty, joined], how="vertical_relaxed")


def _regex_keys(items: pl.DataFrame, name: str, pattern: str | None) -> pl.DataFrame:
    value = field_expr(name)
    if pattern is not None:
        import re

        group = 1 if re.compile(pattern).groups else 0
        value = value.str.extract(pattern, group)
        value = pl.when(value == "").then(None).otherwise(value)
    return items.select(pl.col("node"), value.alias("key")).drop_nulls("key")


def _window_pairs(rule: MatchingRule, lefts: pl.DataFrame, rights: pl.DataFrame) -> pl.DataFrame:
    pe4 = rule.tolerance_percent_e4
    tol = rule.tolerance_amount_minor
    amount = pl.col("amount")
    if pe4 == 0:
        width = pl.lit(tol, pl.Int64)
    elif rule.tolerance_of == "left":
        width = pl.max_horizontal(pl.lit(tol, pl.Int64), amount * pe4 // 1_000_000)
    elif pe4 >= 1_000_000:
        width = pl.lit(1 << 62, pl.Int64)
    else:
        width = pl.max_horizontal(pl.lit(tol, pl.Int64), amount * pe4 // (1_000_000 - pe4) + 1)
    parts = [pl.DataFrame(schema={"l": pl.Int64, "r": pl.Int64})]
    for currency in rights["currency"].unique().to_list():
        sorted_right = rights.filter(pl.col("currency") == currency).select("node", "amount").sort("amount", "node")
        left_part = lefts.filter(pl.col("currency") == currency).select(
            "node", (amount - width).alias("low"), (amount + width).alias("high"))
        if left_part.height == 0:
            continue
        amounts = sorted_right["amount"]
        left_part = left_part.with_columns(
            amounts.search_sorted(left_part["low"], side="left").cast(pl.Int64).alias("lo_idx"),
            amounts.search_sorted(left_part["high"], side="right").cast(pl.Int64).alias("hi_idx"),
        ).filter(pl.col("hi_idx") > pl.col("lo_idx"))
        exploded = left_part.select(pl.col("node").alias("l"),
                                    pl.int_ranges("lo_idx", "hi_idx").alias("idx")).explode("idx")
        right_nodes = sorted_right["node"]
        parts.append(exploded.select("l", right_nodes.gather(exploded["idx"]).alias("r")))
    return pl.concat(parts)


def candidates(rule: MatchingRule, lefts: pl.DataFrame, rights: pl.DataFrame) -> pl.DataFrame:
    """Pairs with cost, confidence and evidence (columns of _PAIR_SCHEMA)."""
    keyed = rule.rule_type in (RuleType.EXACT, RuleType.REGEX) or (
        rule.rule_type is RuleType.RANGE and bool(rule.field_mappings))
    if keyed:
        pairs = _key_pairs(rule, lefts, rights)
    else:
        pairs = _window_pairs(rule, lefts, rights).with_columns(
            pl.lit(0, pl.Int64).alias("key_cost"), pl.lit(None, pl.String).alias("left_key"),
            pl.lit(None, pl.String).alias("right_key"))
    left_cols = lefts.select(pl.col("node").alias("l"), pl.col("amount").alias("la"), pl.col("day").alias("ld"),
                             pl.col("currency").alias("lc"))
    right_cols = rights.select(pl.col("node").alias("r"), pl.col("amount").alias("ra"),
                               pl.col("day").alias("rd"), pl.col("currency").alias("rc"))
    pairs = pairs.join(left_cols, on="l").join(right_cols, on="r").filter(pl.col("lc") == pl.col("rc"))
    diff = (pl.col("la") - pl.col("ra")).abs()
    base = pl.col("la") if rule.tolerance_of == "left" else pl.col("ra")
    pe4 = rule.tolerance_percent_e4
    within = diff <= rule.tolerance_amount_minor
    if pe4 > 0:
        within = within | (diff * 1_000_000 <= base * pe4)
    delta = pl.col("ld") - pl.col("rd")
    tol_days = rule.date_tolerance_days
    if rule.date_direction is DateDirection.LEFT_ON_OR_AFTER_RIGHT:
        date_ok = (delta >= 0) & (delta <= tol_days)
    elif rule.date_direction is DateDirection.RIGHT_ON_OR_AFTER_LEFT:
        date_ok = (delta <= 0) & (-delta <= tol_days)
    else:
        date_ok = delta.abs() <= tol_days
    pairs = pairs.filter(within & date_ok).with_columns(
        diff.alias("amount_gap"), delta.abs().alias("day_gap"), (pl.col("la") - pl.col("ra")).alias("amount_diff"),
        delta.alias("day_delta"),
        pl.max_horizontal(pl.lit(rule.tolerance_amount_minor, pl.Int64), base * pe4 // 1_000_000).alias("allowed"))
    if rule.rule_type is RuleType.FUZZY:
        similarity: pl.Series | None = None
        for mapping in rule.field_mappings:
            texts = (pairs.select(pl.col("l"), pl.col("r"))
                     .join(lefts.select(pl.col("node").alias("l"), field_expr(mapping.left).alias("lt")),
                           on="l", how="left", maintain_order="left")
                     .join(rights.select(pl.col("node").alias("r"), field_expr(mapping.right).alias("rt")),
                           on="r", how="left", maintain_order="left"))
            values = [_similarity_bp(a, b) for a, b in zip(texts["lt"].to_list(), texts["rt"].to_list(), strict=True)]
            series = pl.Series("similarity_bp", values, dtype=pl.Int64)
            similarity = series if similarity is None else pl.Series(
                "similarity_bp", [min(a, b) for a, b in zip(similarity.to_list(), values, strict=True)], pl.Int64)
        assert similarity is not None
        pairs = pairs.with_columns(similarity).filter(pl.col("similarity_bp") >= rule.similarity_threshold_bp)
        sim_expr = pl.col("similarity_bp")
        text_cost = CONFIDENCE_SCALE - sim_expr
    else:
        pairs = pairs.with_columns(pl.lit(None, pl.Int64).alias("similarity_bp"))
        sim_expr = pl.lit(CONFIDENCE_SCALE, pl.Int64)
        text_cost = pl.lit(0, pl.Int64)
    amount_factor = pl.when(pl.col("allowed") > 0).then(
        CONFIDENCE_SCALE - (5_000 * pl.col("amount_gap")) // pl.col("allowed")).otherwise(CONFIDENCE_SCALE)
    date_factor = (CONFIDENCE_SCALE - (500 * pl.col("day_gap")) // tol_days) if tol_days > 0 else pl.lit(
        CONFIDENCE_SCALE, pl.Int64)
    key_factor = pl.when(pl.col("key_cost") == 1).then(SUFFIX_KEY_FACTOR_BP).otherwise(CONFIDENCE_SCALE)
    confidence = amount_factor * date_factor // CONFIDENCE_SCALE
    confidence = confidence * sim_expr // CONFIDENCE_SCALE
    confidence = confidence * key_factor // CONFIDENCE_SCALE
    return pairs.with_columns(text_cost.alias("text_cost"), confidence.cast(pl.Int64).alias("confidence_bp")).select(
        [pl.col(name).cast(dtype) for name, dtype in _PAIR_SCHEMA.items()])


def _similarity_bp(left: str | None, right: str | None) -> int:
    a = (left or "").upper()
    b = (right or "").upper()
    total = len(a) + len(b)
    if total == 0:
        return CONFIDENCE_SCALE
    return CONFIDENCE_SCALE * (total - Indel.distance(a, b)) // total


def assign(pairs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Mutual unique-best assignment repeated until stable (mirror of reference_matcher.assign).

    `pairs` has l, r and the COST columns; returns (accepted pairs, tie pairs), all columns kept.
    """
    if pairs.height == 0:
        return pairs, pairs
    # Pairs whose two rows have no other candidate are mutual unique bests at once.
    degrees = pairs.with_columns(pl.len().over("l").alias("__ld"), pl.len().over("r").alias("__rd"))
    isolated = (pl.col("__ld") == 1) & (pl.col("__rd") == 1)
    accepted = [degrees.filter(isolated).drop("__ld", "__rd").with_columns(pl.lit(0, pl.Int64).alias("__rank"))]
    remaining = degrees.filter(~isolated).drop("__ld", "__rd")
    remaining = remaining.with_columns(pl.struct(COST).rank("dense").cast(pl.Int64).alias("__rank"))
    while True:
        if remaining.height == 0:
            ties = remaining
            break
        scored = remaining.with_columns(pl.col("__rank").min().over("l").alias("__lmin"),
                                        pl.col("__rank").min().over("r").alias("__rmin"))
        scored = scored.with_columns(
            (pl.col("__rank") == pl.col("__lmin")).sum().over("l").alias("__lcount"),
            (pl.col("__rank") == pl.col("__rmin")).sum().over("r").alias("__rcount"))
        mutual = ((pl.col("__rank") == pl.col("__lmin")) & (pl.col("__rank") == pl.col("__rmin"))
                  & (pl.col("__lcount") == 1) & (pl.col("__rcount") == 1))
        new = scored.filter(mutual)
        if new.height == 0:
            ties = scored.filter((pl.col("__rank") == pl.col("__lmin")) | (pl.col("__rank") == pl.col("__rmin")))
            ties = ties.drop("__lmin", "__rmin", "__lcount", "__rcount")
            break
        new = new.drop("__lmin", "__rmin", "__lcount", "__rcount")
        accepted.append(new)
        remaining = remaining.join(new.select("l"), on="l", how="anti").join(new.select("r"), on="r", how="anti")
    return pl.concat(accepted).drop("__rank"), ties.drop("__rank")


# --- the matcher ------------------------------------------------------------------------------

def _duplicates(frame: pl.DataFrame) -> pl.DataFrame:
    """Columns row_number (the copy), original_row (the row that stays)."""
    keys = ["reference", "amount_minor", "direction", "currency", "day"]
    candidates_ = frame.filter(pl.col("reference").is_not_null() & (pl.col("reference") != "")
                               & pl.col("day").is_not_null())
    # Only rows whose reference repeats can be copies: a cheap one-column pre-filter.
    candidates_ = candidates_.filter(pl.col("reference").is_duplicated())
    sets = candidates_.group_by(keys).agg(pl.col("row_number").min().alias("original_row"),
                                          pl.len().alias("__n")).filter(pl.col("__n") > 1)
    if sets.height == 0:
        return pl.DataFrame(schema={"row_number": pl.Int64, "original_row": pl.Int64})
    return (candidates_.join(sets, on=keys, how="inner")
            .filter(pl.col("row_number") != pl.col("original_row"))
            .select("row_number", "original_row"))


def _items(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.with_columns(pl.col("row_number").alias("node"), pl.col("amount_minor").alias("amount"),
                             pl.concat_list(pl.col("row_number")).alias("members"),
                             pl.lit(0, pl.Int64).alias("fee"))


def _group_items(rule: MatchingRule, rows: pl.DataFrame) -> pl.DataFrame:
    assert rule.group is not None
    by = rule.group.by
    keyed = rows.with_columns([field_expr(name).alias(f"__g{index}") for index, name in enumerate(by)])
    key_cols = [f"__g{index}" for index in range(len(by))]
    keyed = keyed.drop_nulls(key_cols)
    schedule = rule.group.fee_schedule
    if schedule is not None:
        variable = pl.col("amount_minor") * schedule.percent_e4 // 1_000_000
        if schedule.cap_minor is not None:
            variable = pl.min_horizontal(variable, pl.lit(schedule.cap_minor, pl.Int64))
        keyed = keyed.with_columns((variable + schedule.flat_minor).alias("__fee"))
    else:
        keyed = keyed.with_columns(pl.lit(0, pl.Int64).alias("__fee"))
    groups = keyed.group_by(["currency", *key_cols]).agg(
        pl.col("row_number").min().alias("node"),
        (pl.col("amount_minor").sum() - pl.col("__fee").sum()).alias("amount"),
        pl.col("day").max().alias("day"),
        pl.col("row_number").sort().alias("members"),
        pl.col("__fee").sum().alias("fee"))
    # Expose the group's key values as the text of the fields the rule compares (see _text_expr).
    return groups.with_columns([pl.col(f"__g{index}").alias(f"__text__{name}") for index, name in enumerate(by)])


def _text_expr(frame: pl.DataFrame, name: str) -> pl.Expr:
    """A field's text: a group frame carries it ready-made, a row frame derives it."""
    ready = f"__text__{name}"
    return pl.col(ready) if ready in frame.columns else field_expr(name)


class PolarsMatcher:
    """MatchingEngine over normalized polars frames (CANONICAL_COLUMNS)."""

    def reconcile(self, left: pl.DataFrame, right: pl.DataFrame, profile: ReconciliationProfile,
                  period: ReconciliationPeriod | None = None) -> ReconciliationResult:
        frames = self.reconcile_frames(left, right, profile, period)
        return materialize(frames, profile, period)

    def reconcile_frames(self, left: pl.DataFrame, right: pl.DataFrame, profile: ReconciliationProfile,
                         period: ReconciliationPeriod | None = None) -> FrameResult:
        try:
            return self._reconcile_frames(left, right, profile, period)
        except (pl.exceptions.ComputeError, pl.exceptions.SchemaError, pl.exceptions.ColumnNotFoundError,
                pl.exceptions.InvalidOperationError) as exc:
            raise MatchingError(f"cannot match these frames: {exc}") from exc

    def _reconcile_frames(self, left: pl.DataFrame, right: pl.DataFrame, profile: ReconciliationProfile,
                          period: ReconciliationPeriod | None) -> FrameResult:
        clock = time.perf_counter()
        stage_seconds: dict[str, float] = {}

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            stage_seconds[stage] = now - clock
            clock = now

        raw_fields = _raw_fields(profile)
        sides = {"left": _prepare(left, raw_fields), "right": _prepare(right, raw_fields)}
        duplicates = {side: _duplicates(frame) for side, frame in sides.items()}
        active = {side: frame.join(duplicates[side].select("row_number"), on="row_number", how="anti")
                  for side, frame in sides.items()}
        lap("duplicates")

        auto_parts, low_parts, tie_parts = [], [], []
        consumed: dict[str, list[pl.Series]] = {"left": [], "right": []}
        pool = {side: frame.filter(pl.col("day").is_not_null()) for side, frame in active.items()}
        for pass_index, rule in enumerate(profile.passes):
            eligible = {}
            for side, spec, conditions in (("left", profile.left, rule.left_conditions),
                                           ("right", profile.right, rule.right_conditions)):
                predicate = pl.lit(True)
                if spec.direction is not None:
                    predicate = predicate & (pl.col("direction") == spec.direction)
                for condition in conditions:
                    predicate = predicate & condition_expr(condition)
                eligible[side] = pool[side].filter(predicate)
            if rule.group is not None:
                grouped = rule.group.side
                other = "right" if grouped == "left" else "left"
                items = {grouped: _group_items(rule, eligible[grouped]), other: _items(eligible[other])}
            else:
                items = {side: _items(eligible[side]) for side in ("left", "right")}
            found = candidates(rule, items["left"], items["right"])
            accepted, ties = assign(found)
            accepted = accepted.with_columns(
                pl.when(pl.col("confidence_bp") >= rule.auto_match_threshold_bp)
                .then(pl.lit(MatchStatus.AUTO.value)).otherwise(pl.lit(MatchStatus.SUGGESTED.value)).alias("status"))
            ties = ties.with_columns(pl.lit(MatchStatus.SUGGESTED.value).alias("status"))
            accepted_records = _records(rule, pass_index, accepted, items)
            auto_parts.append(accepted_records.filter(pl.col("status") == MatchStatus.AUTO.value))
            low_parts.append(accepted_records.filter(pl.col("status") == MatchStatus.SUGGESTED.value))
            tie_parts.append(_records(rule, pass_index, ties, items))
            for side, column in (("left", "left_row"), ("right", "right_row")):
                used = accepted_records[column].unique()
                consumed[side].append(used)
                pool[side] = pool[side].join(used.to_frame("row_number"), on="row_number", how="anti")
        lap("matching")

        empty = pl.DataFrame(schema=_RECORD_SCHEMA)
        matches = pl.concat([empty, *auto_parts])
        low = pl.concat([empty, *low_parts])
        ties_all = pl.concat([empty, *tie_parts])
        used_left = pl.concat([pl.Series("row_number", [], pl.Int64), *consumed["left"]]).to_frame("row_number")
        used_right = pl.concat([pl.Series("row_number", [], pl.Int64), *consumed["right"]]).to_frame("row_number")
        ties_all = (ties_all.join(used_left.rename({"row_number": "left_row"}), on="left_row", how="anti")
                    .join(used_right.rename({"row_number": "right_row"}), on="right_row", how="anti"))
        suggestions = (pl.concat([low, ties_all]).with_row_index("__order")
                       .unique(subset=["left_row", "right_row"], keep="first", maintain_order=True)
                       .drop("__order"))

        facts = _classify(profile, period, sides, duplicates, pool, matches)
        lap("classification")
        return FrameResult(matches=matches, suggestions=suggestions, facts=facts,
                           left_row_count=left.height, right_row_count=right.height, stage_seconds=stage_seconds)


def _records(rule: MatchingRule, pass_index: int, pairs: pl.DataFrame, items: dict[str, pl.DataFrame]
             ) -> pl.DataFrame:
    """One record per member pair (a plain pair is a group of one on each side)."""
    if pairs.height == 0:
        return pl.DataFrame(schema=_RECORD_SCHEMA)
    if rule.group is None:  # plain pairs: the nodes are the rows
        return pairs.select(
            pl.col("l").alias("left_row"), pl.col("r").alias("right_row"), pl.lit(rule.name).alias("rule"),
            pl.lit(rule.version, pl.Int64).alias("rule_version"), pl.col("status"), pl.col("confidence_bp"),
            pl.lit(None, pl.String).alias("group_id"), *[pl.col(name) for name in EVIDENCE],
            pl.lit(None, pl.Int64).alias("members"), pl.lit(None, pl.Int64).alias("fee_minor"),
            pl.lit(pass_index, pl.Int64).alias("pass_index"))
    with_members = (pairs
                    .join(items["left"].select(pl.col("node").alias("l"), pl.col("members").alias("lm"),
                                               pl.col("fee").alias("lfee")), on="l", how="left")
                    .join(items["right"].select(pl.col("node").alias("r"), pl.col("members").alias("rm"),
                                                pl.col("fee").alias("rfee")), on="r", how="left"))
    if rule.group is not None:
        grouped_is_left = rule.group.side == "left"
        single = "r" if grouped_is_left else "l"
        letter = "R" if grouped_is_left else "L"
        members_col, fee_col = ("lm", "lfee") if grouped_is_left else ("rm", "rfee")
        with_members = with_members.with_columns(
            pl.format(f"{rule.name}:{letter}{{}}", pl.col(single)).alias("group_id"),
            pl.col(members_col).list.len().cast(pl.Int64).alias("members"),
            pl.col(fee_col).cast(pl.Int64).alias("fee_minor"))
    else:
        with_members = with_members.with_columns(pl.lit(None, pl.String).alias("group_id"),
                                                 pl.lit(None, pl.Int64).alias("members"),
                                                 pl.lit(None, pl.Int64).alias("fee_minor"))
    exploded = with_members.explode("lm").explode("rm")
    return exploded.select(
        pl.col("lm").cast(pl.Int64).alias("left_row"), pl.col("rm").cast(pl.Int64).alias("right_row"),
        pl.lit(rule.name).alias("rule"), pl.lit(rule.version, pl.Int64).alias("rule_version"),
        pl.col("status"), pl.col("confidence_bp"), pl.col("group_id"),
        *[pl.col(name) for name in EVIDENCE], pl.col("members"), pl.col("fee_minor"),
        pl.lit(pass_index, pl.Int64).alias("pass_index"))


def _side_fact_columns(prefix: str) -> list[pl.Expr]:
    return [pl.col("amount_minor").alias(f"{prefix}_amount_minor"),
            pl.col("transaction_date").alias(f"{prefix}_date"),
            pl.col("direction").alias(f"{prefix}_direction"), pl.col("status").alias(f"{prefix}_status")]


def _classify(profile: ReconciliationProfile, period: ReconciliationPeriod | None,
              sides: dict[str, pl.DataFrame], duplicates: dict[str, pl.DataFrame],
              leftovers: dict[str, pl.DataFrame], matches: pl.DataFrame) -> pl.DataFrame:
    facts = [pl.DataFrame(schema=FACT_SCHEMA)]
    # Duplicates: the other side's row is the original's clean-match partner, when it has one.
    partners = {"left": matches.group_by("left_row").agg(pl.col("right_row").min().alias("partner"))
                .rename({"left_row": "original_row"}),
                "right": matches.group_by("right_row").agg(pl.col("left_row").min().alias("partner"))
                .rename({"right_row": "original_row"})}
    for side in ("left", "right"):
        copies = duplicates[side].join(sides[side], on="row_number", how="left").join(
            partners[side], on="original_row", how="left")
        other = "right" if side == "left" else "left"
        facts.append(copies.select(
            pl.lit(BreakType.DUPLICATE.value).alias("type"),
            pl.col("row_number").alias(f"{side}_row"), pl.col("partner").alias(f"{other}_row"),
            pl.col("currency"), *_side_fact_columns(side), pl.col("reference"),
            pl.lit(None, pl.String).alias("rule"), pl.col("original_row")))

    leftover = dict(leftovers)
    linked_parts = []
    for rule in profile.passes:
        if not rule.keyed or rule.group is not None:
            continue
        items = {side: _items(leftover[side]) for side in ("left", "right")}
        pairs = _key_pairs(rule, items["left"], items["right"])
        l_info = leftover["left"].select(pl.col("row_number").alias("l"), pl.col("amount_minor").alias("la"),
                                         pl.col("day").alias("ld"), pl.col("currency").alias("lc"))
        r_info = leftover["right"].select(pl.col("row_number").alias("r"), pl.col("amount_minor").alias("ra"),
                                          pl.col("day").alias("rd"), pl.col("currency").alias("rc"))
        pairs = (pairs.join(l_info, on="l").join(r_info, on="r").filter(pl.col("lc") == pl.col("rc"))
                 .with_columns((pl.col("la") - pl.col("ra")).abs().alias("amount_gap"),
                               (pl.col("ld") - pl.col("rd")).abs().alias("day_gap"),
                               pl.lit(0, pl.Int64).alias("text_cost")))
        accepted, _ = assign(pairs.select("l", "r", *COST))
        if accepted.height == 0:
            continue
        linked_parts.append(_classify_linked(rule, accepted.select("l", "r"), sides))
        leftover["left"] = leftover["left"].join(accepted.select(pl.col("l").alias("row_number")),
                                                 on="row_number", how="anti")
        leftover["right"] = leftover["right"].join(accepted.select(pl.col("r").alias("row_number")),
                                                   on="row_number", how="anti")
    for part in linked_parts:
        facts.append(part.filter(pl.col("type").is_not_null()).select(list(FACT_SCHEMA)))
        back = part.filter(pl.col("type").is_null() & ~pl.col("__both_failed"))
        leftover["left"] = pl.concat([leftover["left"], sides["left"].join(
            back.select(pl.col("left_row").alias("row_number")), on="row_number", how="semi")])
        leftover["right"] = pl.concat([leftover["right"], sides["right"].join(
            back.select(pl.col("right_row").alias("row_number")), on="row_number", how="semi")])

    window = profile.cutoff.window(period.end) if period is not None else None
    for side in ("left", "right"):
        rows = leftover[side]
        status = pl.col("status")
        kind: Any = pl.when(status.is_in(NOT_MOVED)).then(pl.lit(None, pl.String))
        if window is not None and side == profile.leading_side:
            kind = kind.when((status == "success") & (pl.col("transaction_date") >= window[0])
                             & (pl.col("transaction_date") < window[1])).then(
                pl.lit(BreakType.TIMING_DIFFERENCE.value))
        if profile.settlement_side is not None and side != profile.settlement_side:
            kind = kind.when(status == "success").then(pl.lit(BreakType.NON_SETTLEMENT.value))
        kind = kind.otherwise(pl.lit(BreakType.MISSING_ENTRY.value))
        other = "right" if side == "left" else "left"
        facts.append(rows.select(
            kind.alias("type"), pl.col("row_number").alias(f"{side}_row"),
            pl.lit(None, pl.Int64).alias(f"{other}_row"), pl.col("currency"), *_side_fact_columns(side),
            pl.col("reference"), pl.lit(None, pl.String).alias("rule"),
            pl.lit(None, pl.Int64).alias("original_row")).filter(pl.col("type").is_not_null()))
    return pl.concat(facts, how="diagonal_relaxed").select(
        [pl.col(name).cast(dtype) for name, dtype in FACT_SCHEMA.items()])


def _classify_linked(rule: MatchingRule, pairs: pl.DataFrame, sides: dict[str, pl.DataFrame]) -> pl.DataFrame:
    left = sides["left"].select(pl.col("row_number").alias("l"), pl.col("currency"), *_side_fact_columns("left"),
                                pl.col("day").alias("ld"), pl.col("reference").alias("lref"))
    right = sides["right"].select(pl.col("row_number").alias("r"), *_side_fact_columns("right"),
                                  pl.col("day").alias("rd"), pl.col("reference").alias("rref"))
    joined = pairs.join(left, on="l", how="left").join(right, on="r", how="left")
    left_moved = ~pl.col("left_status").is_in(NOT_MOVED)
    right_moved = ~pl.col("right_status").is_in(NOT_MOVED)
    diff = (pl.col("left_amount_minor") - pl.col("right_amount_minor")).abs()
    base = pl.col("left_amount_minor") if rule.tolerance_of == "left" else pl.col("right_amount_minor")
    within = diff <= rule.tolerance_amount_minor
    if rule.tolerance_percent_e4 > 0:
        within = within | (diff * 1_000_000 <= base * rule.tolerance_percent_e4)
    delta = pl.col("ld") - pl.col("rd")
    tol = rule.date_tolerance_days
    if rule.date_direction is DateDirection.LEFT_ON_OR_AFTER_RIGHT:
        date_ok = (delta >= 0) & (delta <= tol)
    elif rule.date_direction is DateDirection.RIGHT_ON_OR_AFTER_LEFT:
        date_ok = (delta <= 0) & (-delta <= tol)
    else:
        date_ok = delta.abs() <= tol
    kind = (pl.when(left_moved != right_moved).then(pl.lit(BreakType.NON_SETTLEMENT.value))
            .when(~left_moved).then(pl.lit(None, pl.String))
            .when(~within).then(pl.lit(BreakType.AMOUNT_MISMATCH.value))
            .when(~date_ok).then(pl.lit(BreakType.DATE_MISMATCH.value))
            .otherwise(pl.lit(None, pl.String)))
    return joined.select(
        kind.alias("type"), pl.col("l").alias("left_row"), pl.col("r").alias("right_row"), pl.col("currency"),
        pl.col("left_amount_minor"), pl.col("right_amount_minor"), pl.col("left_date"), pl.col("right_date"),
        pl.col("left_direction"), pl.col("right_direction"), pl.col("left_status"), pl.col("right_status"),
        pl.coalesce(field_expr("rref"), field_expr("lref")).alias("reference"), pl.lit(rule.name).alias("rule"),
        pl.lit(None, pl.Int64).alias("original_row"),
        (~left_moved & ~right_moved).alias("__both_failed"))


# --- from frames to domain records -------------------------------------------------------------

def _evidence(row: dict[str, Any], grouped: bool) -> tuple[tuple[str, Any], ...]:
    evidence = tuple((name, row[name]) for name in EVIDENCE)
    if grouped:
        evidence += (("members", row["members"]), ("fee_minor", row["fee_minor"]))
    return evidence


def _match_records(frame: pl.DataFrame) -> list[MatchRecord]:
    records = [MatchRecord(row["left_row"], row["right_row"], row["rule"], row["rule_version"],
                           MatchStatus(row["status"]), row["confidence_bp"], row["group_id"],
                           _evidence(row, row["group_id"] is not None))
               for row in frame.iter_rows(named=True)]
    return sorted(records, key=lambda r: (r.left_row, r.right_row, r.rule))


def materialize(frames: FrameResult, profile: ReconciliationProfile,
                period: ReconciliationPeriod | None) -> ReconciliationResult:
    exceptions = []
    for row in frames.facts.iter_rows(named=True):
        facts = BreakFacts(type=BreakType(row["type"]), **{k: row[k] for k in FACT_SCHEMA if k != "type"})
        exceptions.append(describe_break(facts, profile, period))
    big = 1 << 62
    exceptions.sort(key=lambda e: (e.facts.left_row if e.facts.left_row is not None else big,
                                   e.facts.right_row if e.facts.right_row is not None else big, e.type.value))
    return ReconciliationResult(
        matches=_match_records(frames.matches),
        suggestions=_match_records(frames.suggestions),
        exceptions=exceptions,
        left_row_count=frames.left_row_count,
        right_row_count=frames.right_row_count,
        stage_seconds=dict(frames.stage_seconds),
    )


_check: MatchingEngine[pl.DataFrame] = PolarsMatcher()
