"""A reconciliation's results as polars frames, from the engine to every output.

`reckai reconcile` and a reconciliation job share this path: the matcher's frames
(`PolarsMatcher.reconcile_frames`), the breaks worded column-wise (`explanations.describe_breaks`),
summaries as aggregations, and outputs (the CLI's CSV files, a job's results.csv/.parquet and the
COPY text of its matches and exceptions) written by polars. No row becomes a Python object here.

The reference engine's result (small inputs, tests) is turned into the same frames
(`tables_from_result`), so both engines write the same bytes.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from reckai.adapters.polars.cells import neutralised
from reckai.adapters.polars.explanations import WORDING_COLUMNS, describe_breaks, fill_template, format_amount
from reckai.adapters.polars.matcher import (
    FACT_SCHEMA,
    RECORD_SCHEMA,
    REVERSAL_SCHEMA,
    FrameResult,
    PolarsMatcher,
)
from reckai.adapters.polars.matcher_frames import transactions_from_frame
from reckai.adapters.polars.search_keys import EMPTY_ROWS, SEARCH_PREFIX, with_search_keys
from reckai.application.ports.matching import ReconciliationTables, TabularMatchingEngine
from reckai.domain.reconciliation.explanations import REVERSAL_EXPLANATION
from reckai.domain.reconciliation.profile import ReconciliationPeriod, ReconciliationProfile
from reckai.domain.reconciliation.results import BreakType, MatchRecord, ReconciliationResult

# The CLI's files (docs/cli.md) and a job's results table (docs/reconciliation-jobs.md). `*_source`
# is where a person finds the row ("line 28", "Statement row 28"); a pair also carries both sides'
# references and amounts (issue 16 item 6).
SOURCE_COLUMNS = ["left_source", "right_source"]
PAIR_COLUMNS = ["left_reference", "right_reference", "left_amount_minor", "right_amount_minor"]
CLI_MATCH_COLUMNS = ["left_row", "right_row", "group_id", "rule", "status", "confidence", *SOURCE_COLUMNS,
                     *PAIR_COLUMNS, "currency"]
CLI_EXCEPTION_COLUMNS = ["type", "severity", "left_row", "right_row", "amount_minor", "currency", "explanation",
                         *SOURCE_COLUMNS]
RESULT_COLUMNS = ["kind", "left_row", "right_row", "group_id", "rule", "rule_version", "status", "confidence",
                  "type", "severity", "amount_minor", "currency", "explanation", *SOURCE_COLUMNS, *PAIR_COLUMNS]
# Per side, what the outputs show of a row besides its number (side_facts).
SIDE_FACT_SCHEMA: dict[str, Any] = {"row_number": pl.Int64, "source_line": pl.Int64, "source_sheet": pl.String,
                                    "reference": pl.String, "amount_minor": pl.Int64, "currency": pl.String}
EXCEPTION_SCHEMA: dict[str, Any] = {**FACT_SCHEMA, **WORDING_COLUMNS}
REVERSAL_TABLE_SCHEMA: dict[str, Any] = {**REVERSAL_SCHEMA, "explanation": pl.String}
COPY_CHUNK_ROWS = 250_000
CSV_SLICE_ROWS = 131_072  # rows of a CLI file built and written at a time (ResultTables.write_csv)


def confidence_text(bp: pl.Expr) -> pl.Expr:
    """Exact decimal text from basis points (never through a float): 9500 -> "0.9500"."""
    bp = bp.cast(pl.Int64)
    return (bp // 10_000).cast(pl.String) + pl.lit(".") + (bp % 10_000).cast(pl.String).str.zfill(4)


def confidence_texts(frame: pl.DataFrame, column: str = "confidence_bp") -> pl.Expr:
    """`confidence_text` of `frame[column]`, worded once per distinct value (a result holds a
    handful: one per rule and score) and looked up row by row: a tenth of the cost at 1M rows."""
    distinct = frame.get_column(column).drop_nulls().unique().cast(pl.Int64)
    if distinct.len() > 1_000:
        return confidence_text(pl.col(column))
    texts = pl.select(confidence_text(pl.lit(distinct))).to_series()
    return pl.col(column).cast(pl.Int64).replace_strict(distinct, texts, default=None, return_dtype=pl.String)


@dataclass
class ResultTables:
    """Matches and suggestions (RECORD_SCHEMA, in the engine's order: each output selects its
    columns, then orders the rows by left row, right row), exceptions (EXCEPTION_SCHEMA, by left
    row, right row, type; absent rows last) and netted reversals.

    `breaks`: the exceptions, or their facts (FACT_SCHEMA) with `wording` to word them. The
    wording then runs when an output first needs the exceptions (`reckai reconcile` writes
    matches.csv meanwhile), and the summaries count the breaks without it."""

    matches: pl.DataFrame
    suggestions: pl.DataFrame
    breaks: pl.DataFrame
    reversals: pl.DataFrame
    left_row_count: int
    right_row_count: int
    stage_seconds: dict[str, float] = field(default_factory=dict)
    direction_rows: dict[str, int] = field(default_factory=dict)  # per side with a direction filter: rows it keeps
    # per side: SIDE_FACT_SCHEMA by row_number (where the row is, its reference and amount)
    sides: dict[str, pl.DataFrame] = field(default_factory=dict)

    # the input rows' key columns (search_keys.KEY_SOURCES), for the search keys of a job's exceptions
    left_rows: pl.DataFrame = field(default_factory=EMPTY_ROWS.clear)
    right_rows: pl.DataFrame = field(default_factory=EMPTY_ROWS.clear)
    # the summaries' aggregations, by name: (the frame they were computed from, the value); the
    # summary is asked for three times per `reckai reconcile` (warnings, summary.json, stdout)
    _aggregates: dict[str, tuple[pl.DataFrame, Any]] = field(default_factory=dict, repr=False, compare=False)
    wording: Callable[[pl.DataFrame], pl.DataFrame] | None = field(default=None, repr=False, compare=False)
    _worded: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def exceptions(self) -> pl.DataFrame:
        """EXCEPTION_SCHEMA: the breaks, worded on first use (timed as the "explanations" stage)."""
        with self._worded:
            if self.wording is not None:
                started = time.perf_counter()
                self.breaks, self.wording = self.wording(self.breaks), None
                self.stage_seconds["explanations"] = time.perf_counter() - started
            return self.breaks

    def _aggregate(self, name: str, frame: pl.DataFrame, compute: Callable[[], Any]) -> Any:
        known = self._aggregates.get(name)
        if known is None or known[0] is not frame:
            known = self._aggregates[name] = (frame, compute())
        return known[1]

    def with_inputs(self, left: pl.DataFrame, right: pl.DataFrame, profile: ReconciliationProfile) -> ResultTables:
        """Take what the outputs need of the two input tables; every engine calls it."""
        self.direction_rows = direction_rows(left, right, profile)
        self.sides = {"left": side_facts(left), "right": side_facts(right)}
        return self

    def _side(self, side: str) -> pl.DataFrame:
        if side not in self.sides:
            self.sides[side] = pl.DataFrame(schema=SIDE_FACT_SCHEMA)
        return self.sides[side]

    def _with_side_facts(self, frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
        """`frame` (with left_row, right_row) and each side's facts, joined column-wise, in
        `frame`'s order; only the facts named in `columns` are kept. When a side's rows are
        numbered 1..n, its facts are gathered by position (as fast as the join at 1M pairs, and no
        hash table of the whole input for a small output); otherwise joined on the row number."""
        joined = frame
        worded: list[pl.Expr] = []  # the position texts and the currency, worded in one pass
        for side in ("left", "right"):
            facts = self._side(side).rename({name: f"{side}_{name}" for name in SIDE_FACT_SCHEMA if name != "row_number"})
            rows = frame.get_column(f"{side}_row")
            if self._dense(side, facts) and _within(rows, facts.height):
                # Row n is at position n - 1: gathered by position, no hash table of a million
                # input rows built for a few thousand suggestions or exceptions (the join's result).
                # (a fact named like a column `frame` has already is left out, as the join's
                # suffixed copy of it is by the select below)
                taken = [name for name in facts.columns if name != "row_number" and name not in joined.columns]
                joined = joined.with_columns(facts.select(pl.col(taken).gather(rows - 1)))
            else:
                joined = joined.join(facts, left_on=f"{side}_row", right_on="row_number", how="left",
                                     maintain_order="left")
            line, sheet = pl.col(f"{side}_source_line"), pl.col(f"{side}_source_sheet")
            worded.append((line_text(line) if self._sheetless(side) else position_text(line, sheet))
                          .alias(f"{side}_source"))
        if "currency" in columns and "currency" not in frame.columns:
            worded.append(pl.coalesce("left_currency", "right_currency").alias("currency"))
        joined = joined.with_columns(worded)
        return joined.select([name for name in joined.columns if name in frame.columns or name in columns])

    def _sheetless(self, side: str) -> bool:
        """No row of the side is in a workbook sheet (a text file): its positions are "line N"."""
        sheets = self._side(side).get_column("source_sheet")
        return bool(self._aggregate(f"sheetless_{side}", self._side(side), lambda: sheets.null_count() == sheets.len()))

    def _dense(self, side: str, facts: pl.DataFrame) -> bool:
        """The side's rows are numbered 1, 2, ... n in order (no row rejected): checked once per side."""
        numbers = facts.get_column("row_number")
        return bool(self._aggregate(f"dense_{side}", self._side(side), lambda: numbers.null_count() == 0 and (
            numbers.len() == 0 or (numbers[0] == 1 and numbers[-1] == numbers.len()
                                   and bool((numbers.diff().drop_nulls() == 1).all())))))

    # --- summaries: aggregations over the frames -------------------------------------------------

    def matched_rows(self) -> dict[str, int]:
        matches = self.matches
        return dict(self._aggregate("matched_rows", matches, lambda: {
            side: _distinct_rows(matches.get_column(f"{side}_row")) for side in ("left", "right")}))

    def exception_rows(self) -> int:
        """Distinct rows (both sides) that exceptions are about."""
        return sum(int(self.breaks[column].drop_nulls().n_unique())
                   for column in ("left_row", "right_row")) if self.breaks.height else 0

    def exceptions_by_type(self) -> dict[str, int]:
        def count() -> dict[str, int]:
            counts = self.breaks.group_by("type").len()
            found = dict(zip(counts["type"].to_list(), counts["len"].to_list(), strict=True))
            return {t.value: int(found.get(t.value, 0)) for t in BreakType}

        return dict(self._aggregate("exceptions_by_type", self.breaks, count))

    def reversals_netted(self) -> dict[str, int]:
        counts = self.reversals.group_by("side").len()
        found = dict(zip(counts["side"].to_list(), counts["len"].to_list(), strict=True))
        return {side: int(found.get(side, 0)) for side in ("left", "right")}

    def summary(self) -> dict[str, Any]:
        matched = self.matched_rows()
        matched_rows = matched["left"] + matched["right"]
        total_rows = self.left_row_count + self.right_row_count
        return {
            "rows": {"left": self.left_row_count, "right": self.right_row_count},
            "matched_pairs": self.matches.height,
            "matched_rows": matched,
            "suggested_pairs": self.suggestions.height,
            "exceptions": self.breaks.height,
            "exceptions_by_type": self.exceptions_by_type(),
            "reversals_netted": self.reversals_netted(),
            # share of all rows (both files) that ended in a clean match, in percent (spec DECIMAL(5,2))
            "match_rate": round(100 * matched_rows / total_rows, 2) if total_rows else 0.0,
            "seconds": {stage: round(seconds, 4) for stage, seconds in self.stage_seconds.items()},
        }

    # --- the CLI's files ---------------------------------------------------------------------------

    def cli_table(self, table: str) -> pl.DataFrame:
        rows, columns = self._cli_rows(table)
        return self._with_side_facts(rows, columns).select(columns)

    def _cli_rows(self, table: str) -> tuple[pl.DataFrame, list[str]]:
        """The file's rows in their order, before the sides' facts are joined, and its columns."""
        if table in ("matches", "suggestions"):
            frame = self.matches if table == "matches" else self.suggestions
            # Ordered before the confidence is worded: the sort then moves integers, not text.
            pairs = _match_order(frame.select("left_row", "right_row", "group_id", "rule", "status", "confidence_bp"))
            return pairs.select("left_row", "right_row", "group_id", "rule", "status",
                                confidence_texts(pairs).alias("confidence")), CLI_MATCH_COLUMNS
        if table == "exceptions":
            return self.exceptions, CLI_EXCEPTION_COLUMNS
        raise ValueError(f"no table {table!r}")

    def write_csv(self, table: str, path: Path) -> None:
        """One of the CLI's files (`cli_table`); rule names and explanations are free text a
        spreadsheet would run as formulas: neutralised (domain/exports/cells.py).

        Written a slice of rows at a time: each slice's columns are built, written and let go, and
        the next slice reuses that memory; the whole table at once (a million pairs) touched
        ~170 MB of fresh pages, which the system must zero first. The rule is per cell, so the
        slices write the bytes the whole table would."""
        rows, columns = self._cli_rows(table)
        worded = self.worded_columns()
        with path.open("wb") as handle:
            for offset in range(0, max(rows.height, 1), CSV_SLICE_ROWS):
                part = self._with_side_facts(rows.slice(offset, CSV_SLICE_ROWS), columns).select(columns)
                neutralised(part, worded).write_csv(handle, include_header=offset == 0, null_value="")

    def worded_columns(self) -> list[str]:
        """The outputs' text columns made of fixed words and digits only (cells.neutralised); and
        the currency, which the normalizer admits only as three letters A-Z (a row with any other
        is rejected, normalize.normalize_table)."""
        worded = ["kind", "type", "status", "confidence", "severity", "currency"]
        return worded + [f"{side}_source" for side in ("left", "right") if self._sheetless(side)]

    # --- a job's outputs ---------------------------------------------------------------------------

    def results_table(self) -> pl.DataFrame:
        """Every match, suggestion, exception and netted reversal in one table, by kind then rows."""
        def pairs(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
            ordered = _match_order(frame.select("left_row", "right_row", "group_id", "rule", "rule_version", "status",
                                                "confidence_bp"))
            return ordered.select(pl.lit(kind).alias("kind"), "left_row", "right_row", "group_id", "rule",
                                  "rule_version", "status", confidence_texts(ordered).alias("confidence"))

        exceptions = self.exceptions.select(pl.lit("exception").alias("kind"),
                                            *[c for c in CLI_EXCEPTION_COLUMNS if c not in SOURCE_COLUMNS])
        reversals = self.reversals.select(
            pl.lit("reversal").alias("kind"),
            pl.when(pl.col("side") == "left").then(pl.col("row_number")).alias("left_row"),
            pl.when(pl.col("side") == "right").then(pl.col("row_number")).alias("right_row"), "explanation")
        # A pair's currency is its sides' (as matches.csv says it); an exception keeps its own.
        matched = [self._with_side_facts(pairs(frame, kind), RESULT_COLUMNS + ["currency"])
                   for frame, kind in ((self.matches, "match"), (self.suggestions, "suggestion"))]
        others = [self._with_side_facts(part, RESULT_COLUMNS) for part in (exceptions, reversals)]
        table = pl.concat([*matched, *others], how="diagonal_relaxed")
        # each part is in its own order already: a stable sort on kind keeps it
        return table.select(RESULT_COLUMNS).sort("kind", maintain_order=True)

    def match_copy_table(self) -> pl.DataFrame:
        """MATCH_COLUMNS, in the paging index's order (the B-tree is filled left to right)."""
        # Imported here: the jobs' ports module pulls in every repository port (~0.07 s of CPU at
        # import), which `reckai reconcile` does not need.
        from reckai.application.ports.reconciliations import MATCH_COLUMNS

        both = pl.concat([self.matches, self.suggestions])
        return both.select(
            pl.col("status"), pl.col("group_id").alias("group_key"), pl.col("left_row"), pl.col("right_row"),
            pl.col("rule"), pl.col("rule_version"), confidence_texts(both).alias("confidence"),
            pl.col("amount_diff").alias("amount_diff_minor"), pl.col("day_delta"), pl.col("similarity_bp"),
            pl.col("left_key"), pl.col("right_key"), pl.col("members"), pl.col("fee_minor"),
        ).sort(["status", "left_row", "right_row"]).select(list(MATCH_COLUMNS))

    def exception_copy_table(self, left_file_id: uuid.UUID, right_file_id: uuid.UUID) -> pl.DataFrame:
        """EXCEPTION_COLUMNS, with transaction_date (the left row's date, else the right's), evidence
        and the rows' search keys."""
        from reckai.application.ports.reconciliations import EXCEPTION_COLUMNS, SEARCH_KEY_COLUMNS

        has_left, has_right = pl.col("left_row").is_not_null(), pl.col("right_row").is_not_null()
        exceptions = with_search_keys(self.exceptions, self.left_rows, self.right_rows)
        table = exceptions.select(
            pl.col("type"), pl.col("severity"), format_amount(pl.col("amount_minor"), pl.col("currency")).alias("amount"),
            pl.col("currency"),
            pl.coalesce(pl.col("left_date"), pl.col("right_date")).dt.date().alias("transaction_date"),
            pl.col("description"), pl.col("explanation").alias("ai_explanation"),
            confidence_text(pl.col("ai_confidence_bp")).alias("ai_confidence"), pl.col("suggested_action"),
            pl.col("left_row"), pl.col("right_row"),
            pl.when(has_left).then(pl.lit(str(left_file_id))).alias("left_file_id"),
            pl.when(has_right).then(pl.lit(str(right_file_id))).alias("right_file_id"),
            pl.col("amount_minor"), _evidence_json().alias("evidence"),
            *(pl.col(f"{SEARCH_PREFIX}{name}").alias(name) for name in SEARCH_KEY_COLUMNS))
        return table.select(list(EXCEPTION_COLUMNS))

    def copy_chunks(self, table: pl.DataFrame, check: Callable[[], None]) -> Iterator[bytes]:
        for offset in range(0, table.height, COPY_CHUNK_ROWS):
            check()
            buffer = io.BytesIO()
            table.slice(offset, COPY_CHUNK_ROWS).write_csv(buffer, include_header=False, null_value="")
            yield buffer.getvalue()


def _json_member(name: str, value: pl.Expr) -> pl.Expr:
    """'"name":<value as JSON>' (null when the value is): polars encodes and escapes the value."""
    return pl.struct(value.alias(name)).struct.json_encode().str.strip_prefix("{").str.strip_suffix("}")


def _iso_moment(moment: pl.Expr) -> pl.Expr:
    """datetime.isoformat(): seconds, and microseconds only when there are any."""
    micro = moment.dt.microsecond()
    return moment.dt.strftime("%Y-%m-%dT%H:%M:%S") + pl.when(micro != 0).then(
        pl.lit(".") + micro.cast(pl.String).str.zfill(6)).otherwise(pl.lit(""))


def _evidence_json() -> pl.Expr:
    """The exception's evidence object: the facts beyond its columns, absent keys left out."""
    left_amount, right_amount = pl.col("left_amount_minor"), pl.col("right_amount_minor")
    day_delta = (pl.col("left_date").dt.date() - pl.col("right_date").dt.date()).dt.total_days()
    members = [_json_member("amount_difference_minor", left_amount - right_amount),
               _json_member("day_delta", day_delta)]
    for name in ("reference", "rule", "original_row"):
        members.append(pl.when(pl.col(name).is_not_null()).then(_json_member(name, pl.col(name))))
    for side in ("left", "right"):
        amount, moment = pl.col(f"{side}_amount_minor"), pl.col(f"{side}_date")
        detail = pl.struct(amount.alias("amount_minor"), _iso_moment(moment).alias("date"),
                           pl.col(f"{side}_direction").alias("direction"), pl.col(f"{side}_status").alias("status"))
        members.append(pl.when(amount.is_not_null() | moment.is_not_null()).then(
            pl.lit(f'"{side}":') + detail.struct.json_encode()))
    present = [pl.when(~member.str.ends_with(":null")).then(member) for member in members[:2]] + members[2:]
    return pl.lit("{") + pl.concat_str(present, separator=",", ignore_nulls=True) + pl.lit("}")


def _reversal_table(reversals: pl.DataFrame | None, profile: ReconciliationProfile) -> pl.DataFrame:
    if reversals is None or reversals.height == 0:
        return pl.DataFrame(schema=REVERSAL_TABLE_SCHEMA)
    slots = {"label": pl.when(pl.col("side") == "left").then(pl.lit(profile.left.label))
             .otherwise(pl.lit(profile.right.label)),
             "reversal_row": pl.col("row_number").cast(pl.String), "original_row": pl.col("original_row").cast(pl.String),
             "reference_label": pl.lit(profile.reference_label)}
    return reversals.select(*REVERSAL_SCHEMA, fill_template(REVERSAL_EXPLANATION, slots).alias("explanation")
                            ).sort("side", "row_number")


def side_facts(frame: pl.DataFrame) -> pl.DataFrame:
    """SIDE_FACT_SCHEMA of an input table, one chunk per column; the position text is made only
    for the rows an output shows (`ResultTables._with_side_facts`).

    One chunk: the normalizer's streaming engine leaves its columns in chunks, and gathering a
    million random positions from a chunked column looks each one's chunk up: the other side's
    reference and currency took 0.15 s each at 930k pairs, 0.013 s from one chunk. Making these six
    columns one chunk costs ~0.01 s (a string column's views are copied, not its text)."""
    absent = {"source_line": pl.lit(None, pl.Int64), "source_sheet": pl.lit(None, pl.String)}
    return frame.select(*[pl.col(name) if name in frame.columns else absent[name].alias(name)
                          for name in SIDE_FACT_SCHEMA]).rechunk()


def position_text(line: pl.Expr, sheet: pl.Expr) -> pl.Expr:
    """Where a person finds a row: "line 28" in a text file, "<sheet> row 28" in a workbook; null
    when the table carries no position (a Parquet written before it did)."""
    return pl.when(sheet.is_not_null()).then(sheet + pl.lit(" row ") + line.cast(pl.String)).otherwise(line_text(line))


def line_text(line: pl.Expr) -> pl.Expr:
    """`position_text` of a row outside any sheet: "line 28" (null without a line)."""
    return pl.lit("line ") + line.cast(pl.String)


def _distinct_rows(rows: pl.Series) -> int:
    """`rows.n_unique()` (a null counts once, as there). Row numbers are small positive
    integers: one flag per possible row is set and the flags counted, a fifth of the CPU of
    n_unique's sort on a million unordered numbers."""
    present = rows.drop_nulls()
    nulls = 1 if present.len() < rows.len() else 0
    if present.len() == 0:
        return nulls
    low, high = present.min(), present.max()
    if not (isinstance(low, int) and isinstance(high, int)) or low < 0 or high > 4 * present.len() + 1_000_000:
        return int(rows.n_unique())
    flags = pl.zeros(high + 1, dtype=pl.UInt8, eager=True).scatter(present.cast(pl.Int64), 1)
    return int(flags.sum()) + nulls


def _within(rows: pl.Series, height: int) -> bool:
    """Every non-null row number is between 1 and `height`."""
    if rows.null_count() == rows.len():
        return True
    low, high = rows.min(), rows.max()
    return isinstance(low, int) and isinstance(high, int) and low >= 1 and high <= height


def direction_rows(left: pl.DataFrame, right: pl.DataFrame, profile: ReconciliationProfile) -> dict[str, int]:
    """Per side whose profile keeps one direction, how many of its rows have it."""
    return {side: int(frame.select((pl.col("direction") == spec.direction).sum()).item() or 0)
            for side, frame, spec in (("left", left, profile.left), ("right", right, profile.right))
            if spec.direction is not None}


def _match_order(frame: pl.DataFrame) -> pl.DataFrame:
    # A pair appears once among matches and once among suggestions: (left_row, right_row) orders them.
    # Sorted after the output's columns are selected: gathering all fifteen cost more than the sort.
    # Row numbers are >= 1; when neither is null and left * (max right + 1) + right fits in an Int64,
    # that one integer orders the pairs as the two columns do (a stable sort on it: the same order,
    # about a third cheaper at 1M pairs).
    if frame.height > 1:
        left, right = frame.get_column("left_row"), frame.get_column("right_row")
        if not left.null_count() and not right.null_count():
            low = min(left.min(), right.min())  # type: ignore[type-var]
            high_left, high_right = left.max(), right.max()
            if isinstance(low, int) and isinstance(high_left, int) and isinstance(high_right, int) and low >= 0 \
                    and high_left * (high_right + 1) + high_right < 2**63:
                return frame.sort(pl.col("left_row").cast(pl.Int64) * (high_right + 1) + pl.col("right_row"),
                                  maintain_order=True)
    return frame.sort(["left_row", "right_row"], maintain_order=True)


def tables_from_frames(frames: FrameResult, profile: ReconciliationProfile,
                       period: ReconciliationPeriod | None) -> ResultTables:
    """The engine's frames as tables; the breaks are worded when first needed (ResultTables.breaks)."""
    def word(facts: pl.DataFrame) -> pl.DataFrame:
        return describe_breaks(facts, profile, period).select(list(EXCEPTION_SCHEMA))

    return ResultTables(
        matches=frames.matches, suggestions=frames.suggestions, breaks=frames.facts, wording=word,
        reversals=_reversal_table(frames.reversals, profile), left_row_count=frames.left_row_count,
        right_row_count=frames.right_row_count, stage_seconds=dict(frames.stage_seconds))


def _record_frame(records: list[MatchRecord]) -> pl.DataFrame:
    rows = []
    for record in records:
        evidence = record.evidence_dict()
        rows.append({"left_row": record.left_row, "right_row": record.right_row, "rule": record.rule,
                     "rule_version": record.rule_version, "status": record.status.value,
                     "confidence_bp": record.confidence_bp, "group_id": record.group_id,
                     "amount_diff": evidence.get("amount_diff"), "day_delta": evidence.get("day_delta"),
                     "similarity_bp": evidence.get("similarity_bp"), "left_key": evidence.get("left_key"),
                     "right_key": evidence.get("right_key"), "members": evidence.get("members"),
                     "fee_minor": evidence.get("fee_minor"), "pass_index": None})
    return pl.DataFrame(rows, schema=RECORD_SCHEMA)


def tables_from_result(result: ReconciliationResult, profile: ReconciliationProfile) -> ResultTables:
    """The reference engine's objects as the same frames (small results: a Python row each is fine)."""
    rows = []
    for record in result.exceptions:
        facts = record.facts
        row = {name: getattr(facts, name) for name in FACT_SCHEMA if name != "type"}
        row.update(type=facts.type.value, description=record.description, explanation=record.explanation,
                   suggested_action=record.suggested_action, severity=record.severity,
                   ai_confidence_bp=record.ai_confidence_bp, amount_minor=facts.amount_minor)
        rows.append(row)
    exceptions = pl.DataFrame(rows, schema=EXCEPTION_SCHEMA).sort(["left_row", "right_row", "type"],
                                                                    nulls_last=True, maintain_order=True)
    reversals = pl.DataFrame([{"side": s, "row_number": r, "original_row": o} for s, r, o in result.reversals],
                             schema=REVERSAL_SCHEMA)
    return ResultTables(
        matches=_record_frame(result.matches), suggestions=_record_frame(result.suggestions), breaks=exceptions,
        reversals=_reversal_table(reversals, profile), left_row_count=result.left_row_count,
        right_row_count=result.right_row_count, stage_seconds=dict(result.stage_seconds))


class PolarsTablesEngine:
    """The polars matcher, results kept as frames (what `reckai reconcile` runs)."""

    def __init__(self, matcher: PolarsMatcher | None = None) -> None:
        self._matcher = matcher or PolarsMatcher()

    def reconcile_tables(self, left: pl.DataFrame, right: pl.DataFrame, profile: ReconciliationProfile,
                         period: ReconciliationPeriod | None = None) -> ResultTables:
        tables = tables_from_frames(self._matcher.reconcile_frames(left, right, profile, period), profile, period)
        return tables.with_inputs(left, right, profile)


class ReferenceTablesEngine:
    """The pure-Python reference matcher over the same frames (slow: for small files and checks)."""

    def reconcile_tables(self, left: pl.DataFrame, right: pl.DataFrame, profile: ReconciliationProfile,
                         period: ReconciliationPeriod | None = None) -> ResultTables:
        # the slow engine, imported when used
        from reckai.domain.reconciliation.reference_matcher import ReferenceMatcher

        result = ReferenceMatcher().reconcile(transactions_from_frame(left), transactions_from_frame(right),
                                              profile, period)
        return tables_from_result(result, profile).with_inputs(left, right, profile)


_check_tables: type[ReconciliationTables] = ResultTables
_check_polars: TabularMatchingEngine[pl.DataFrame] = PolarsTablesEngine()
_check_reference: TabularMatchingEngine[pl.DataFrame] = ReferenceTablesEngine()
