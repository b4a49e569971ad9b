"""The formula-injection rule (domain/exports/cells.py) applied column-wise to a polars frame
before it is written as CSV: the same two patterns, no row turned into Python objects."""

from __future__ import annotations

from collections.abc import Collection

import polars as pl

from reckai.domain.exports.cells import FORMULA_TRIGGER, NUMERIC_LITERAL, PREFIX


def neutralised_text(column: pl.Expr) -> pl.Expr:
    risky = column.str.contains(FORMULA_TRIGGER) & ~column.str.contains(NUMERIC_LITERAL)
    return pl.when(risky).then(pl.lit(PREFIX) + column).otherwise(column)


def neutralised(frame: pl.DataFrame, worded: Collection[str] = ()) -> pl.DataFrame:
    """`frame` with every text column passed through the rule; other columns untouched. One cheap
    scan first finds the columns holding any cell that starts like a formula: only those are
    rewritten (most outputs have none, and rewriting a column copies it). `worded`: text columns
    the writer built itself from fixed words and digits ("0.9500", "line 28"), which cannot start
    like a formula: not scanned (~0.02 s each per million rows)."""
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String and name not in worded]
    if not texts or frame.height == 0:
        return frame
    flagged = frame.select(pl.col(name).str.contains(FORMULA_TRIGGER).any() for name in texts).row(0)
    risky = [name for name, flag in zip(texts, flagged, strict=True) if flag]
    if not risky:
        return frame
    return frame.with_columns(neutralised_text(pl.col(name)).alias(name) for name in risky)
