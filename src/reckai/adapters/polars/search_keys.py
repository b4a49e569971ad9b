"""The search keys of domain/exceptions/search.py, column-wise (a job's exceptions, at COPY time).

polars' regular expressions have no look-around, so a full card number (13 to 19 digits with no
digit on either side) is found with the neighbouring character captured, one length at a time,
and each replacement is run twice: one pass cannot match two runs that share the single character
between them (the first match consumes it). tests/unit/test_exception_search_keys.py holds these
expressions to the domain functions' answers.
"""

from __future__ import annotations

import polars as pl

from reckai.domain.exceptions.search import MAX_SEARCH_KEY, PAN_DIGITS, SEPARATORS, WRITTEN_MASK

KEY_SOURCES = ("reference", "secondary_reference", "account", "channel")


def search_key_expr(value: pl.Expr) -> pl.Expr:
    key = value.str.strip_chars().str.to_uppercase().str.slice(0, MAX_SEARCH_KEY)
    return pl.when(key.str.len_chars() > 0).then(key)


def _mask_pan_runs(value: pl.Expr) -> pl.Expr:
    for length in range(PAN_DIGITS[1], PAN_DIGITS[0] - 1, -1):
        hidden = length - 10
        pattern = rf"(^|[^0-9])([0-9]{{6}})[0-9]{{{hidden}}}([0-9]{{4}})([^0-9]|$)"
        replacement = "${1}${2}" + "*" * hidden + "${3}${4}"
        for _ in range(2):
            value = value.str.replace_all(pattern, replacement)
    return value


def compact_account_expr(value: pl.Expr) -> pl.Expr:
    return value.str.strip_chars().str.to_uppercase().str.replace_all(SEPARATORS, "")


def masked_account_candidates(value: pl.Expr, key: str) -> pl.Expr:
    """A cheap necessary condition for `masked_account_expr(value) == key`: masking keeps the
    length and every character before the first `*` and after the last one (a key shorter than
    the cut). Filtering on it first spares the regular expressions nearly every row."""
    compact = compact_account_expr(value)
    if len(key) >= MAX_SEARCH_KEY:
        return pl.lit(True)
    first, last = key.find("*"), key.rfind("*")
    if first < 0:
        return compact == key
    return ((compact.str.len_chars() == len(key)) & compact.str.starts_with(key[:first])
            & compact.str.ends_with(key[last + 1:]))


def masked_account_expr(value: pl.Expr) -> pl.Expr:
    compact = compact_account_expr(value)
    compact = pl.when(compact.str.contains(WRITTEN_MASK)).then(
        compact.str.replace_all("[X#]", "*")).otherwise(compact)
    key = _mask_pan_runs(_mask_pan_runs(compact).str.slice(0, MAX_SEARCH_KEY))
    return pl.when(key.str.len_chars() > 0).then(key)


EMPTY_ROWS = pl.DataFrame(schema={"row_number": pl.Int64, **dict.fromkeys(KEY_SOURCES, pl.String)})


def key_sources(rows: pl.DataFrame) -> pl.DataFrame:
    """The columns of a normalized frame the search keys are made from (no copy of the data)."""
    return rows.select("row_number", *KEY_SOURCES)


def _side_keys(rows: pl.DataFrame, wanted: pl.Series, side: str) -> pl.LazyFrame:
    """The keys of the rows whose number is in `wanted` (only those: the rest are never stored)."""
    return rows.lazy().filter(pl.col("row_number").is_in(wanted.drop_nulls().implode())).select(
        pl.col("row_number").alias(f"{side}_row"),
        search_key_expr(pl.col("reference")).alias(f"{side}_reference"),
        search_key_expr(pl.col("secondary_reference")).alias(f"{side}_secondary_reference"),
        masked_account_expr(pl.col("account")).alias(f"{side}_masked_account"),
        search_key_expr(pl.col("channel")).alias(f"{side}_channel"))


SEARCH_PREFIX = "search_"  # the exceptions frame has a `reference` of its own (the evidence's)


def with_search_keys(exceptions: pl.DataFrame, left: pl.DataFrame, right: pl.DataFrame) -> pl.DataFrame:
    """`exceptions` (with left_row and right_row) plus SEARCH_KEY_COLUMNS, each named with
    SEARCH_PREFIX: the left row's key,
    else the right row's; `*_other` holds the right row's reference key when both rows have one
    and they differ. `left`/`right` hold `key_sources` columns."""
    joined = exceptions.lazy().with_columns(pl.col("left_row").cast(pl.Int64).alias("__left"),
                                            pl.col("right_row").cast(pl.Int64).alias("__right"))
    for side, rows in (("left", left), ("right", right)):
        keys = _side_keys(rows, exceptions[f"{side}_row"].cast(pl.Int64), side).rename({f"{side}_row": f"__{side}"})
        joined = joined.join(keys, on=f"__{side}", how="left", maintain_order="left")
    columns: list[pl.Expr] = []
    for name in ("reference", "secondary_reference"):
        left_key, right_key = pl.col(f"left_{name}"), pl.col(f"right_{name}")
        columns.append(pl.coalesce(left_key, right_key).alias(f"{SEARCH_PREFIX}{name}"))
        columns.append(pl.when(left_key.is_not_null() & right_key.is_not_null() & (left_key != right_key))
                       .then(right_key).alias(f"{SEARCH_PREFIX}{name}_other"))
    for name in ("masked_account", "channel"):
        columns.append(pl.coalesce(pl.col(f"left_{name}"), pl.col(f"right_{name}")).alias(f"{SEARCH_PREFIX}{name}"))
    return joined.select(*exceptions.columns, *columns).collect()
