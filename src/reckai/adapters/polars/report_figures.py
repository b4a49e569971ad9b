"""The figures of each report type (application/ports/reports.py `ReportFigures`), computed
column-wise in polars from the stored rows the use case read (docs/reports.md defines each one).

Money: every amount enters as integer minor units of its currency (the stored `amount_minor`, or
the stored `amount` scaled exactly by the currency's exponent) and is summed as Int64 per currency;
it leaves as a `Decimal` in major units. No figure adds amounts of two currencies. Rates are
integer ratios rounded half-up to 2 places as `Decimal`.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

from reckai.application.ports.exports import Column, ColumnKind
from reckai.application.ports.reports import ChannelSource, FigureInputs, Figures, ReportFigures
from reckai.application.ports.storage import FileStorage, StorageObjectMissing
from reckai.application.ports.workflow import REPORT_EXCEPTION_COLUMNS
from reckai.application.reports.document import ReportChart, ReportTable
from reckai.domain.exceptions.aging import BUCKET_LABELS, NO_DATE
from reckai.domain.ingestion.canonical import minor_unit_exponent
from reckai.domain.reconciliation.jobs import ReconciliationJob

# [lower, upper) in days; the last is open-ended
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-1d", 0, 1), ("1-3d", 1, 3), ("3-7d", 3, 7), ("7-30d", 7, 30), ("30d+", 30, None))
SEVERITY_ORDER = ("critical", "high", "medium", "low")
TOP_BREAKS = 20
OLDEST = 50
ACTIVE = ("open", "in_progress", "escalated")

T, A, I, D, DAY, TS = (ColumnKind.TEXT, ColumnKind.AMOUNT, ColumnKind.INTEGER, ColumnKind.DECIMAL,
                       ColumnKind.DATE, ColumnKind.DATETIME)


def _columns(*spec: tuple[str, ColumnKind]) -> list[Column]:
    return [Column(name, kind) for name, kind in spec]


def major(minor: int | None, currency: str | None) -> Decimal | None:
    if minor is None:
        return None
    return Decimal(int(minor)).scaleb(-minor_unit_exponent(currency or "NGN"))


def rate(numerator: int, denominator: int) -> Decimal | None:
    if denominator == 0:
        return None
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)


_CSV_SCHEMA: dict[str, Any] = {name: pl.String for name in REPORT_EXCEPTION_COLUMNS} | {
    "amount_minor": pl.Int64, "earliest_day": pl.Int32, "created_us": pl.Int64, "due_us": pl.Int64,
    "resolved_us": pl.Int64, "escalated_us": pl.Int64}
_UTC = pl.Datetime("us", "UTC")


def exception_frame(documents: Sequence[bytes], zone: str) -> pl.DataFrame:
    """The exceptions the report reads (ExceptionRepository.report_csv documents: one per query,
    concatenated in order; an exception found by two queries is kept once), column-wise."""
    frames = [pl.read_csv(document, schema=_CSV_SCHEMA)
              for document in documents if document]
    raw = pl.concat(frames) if frames else pl.DataFrame(schema=_CSV_SCHEMA)
    raw = raw.unique(subset="id", keep="first", maintain_order=True)
    amount_minor = raw["amount_minor"]
    if amount_minor.null_count() > raw["amount"].null_count():  # rows stored with only the decimal amount
        amount_minor = pl.Series("amount_minor", [
            minor if minor is not None or amount is None
            else int(Decimal(amount).scaleb(minor_unit_exponent(currency)))
            for minor, amount, currency in zip(amount_minor, raw["amount"], raw["currency"], strict=True)],
            dtype=pl.Int64)
    return raw.select(
        "id", "job_id", "type", "severity", "status", "currency", amount_minor.alias("amount_minor"),
        # the earliest date of the exception's rows (domain/exceptions/aging.py), as the dashboard ages
        pl.col("earliest_day").cast(pl.Date).alias("transaction_date"),
        *(pl.col(f"{name}_us").cast(_UTC).alias(f"{name}_at") for name in ("created", "due", "resolved", "escalated")),
        "assigned_to", pl.col("description").fill_null(""), pl.col("explanation").fill_null(""),
    ).with_columns(pl.col("job_id").fill_null("None"),
                   pl.col("created_at").dt.convert_time_zone(zone).dt.date().alias("created_day"))


def _breaks_by_type(frame: pl.DataFrame) -> ReportTable:
    grouped = (frame.group_by("type", "severity", "currency")
               .agg(pl.len().alias("count"), pl.col("amount_minor").sum().alias("amount_minor"))
               .sort("type", pl.col("severity").replace_strict(
                   {s: i for i, s in enumerate(SEVERITY_ORDER)}, default=9), "currency"))
    rows = [[r["type"], r["severity"], r["currency"], r["count"], major(r["amount_minor"], r["currency"])]
            for r in grouped.iter_rows(named=True)]
    return ReportTable("breaks_by_type", "Breaks by type and severity (count and amount per currency)",
                       _columns(("type", T), ("severity", T), ("currency", T), ("count", I), ("amount", A)), rows)


_PERIOD_COUNTS = ("matched_pairs", "closed_by_later_match", "new_exceptions", "exceptions_found_again")
_PERIOD_SIDES = ("new_rows", "carried_rows", "open_rows_after")


def _stream_period_tables(inputs: FigureInputs) -> list[ReportTable]:
    """The streams' periods overlapping the report's (docs/streams.md "Periods"): their runs'
    figures and, for a closed period (or the next to close), its carried and open items; amounts
    per currency in minor units shown in major units (matched per side; open and closed breaks)."""
    if not inputs.stream_periods:
        return []
    rows, amounts = [], []
    for entry in inputs.stream_periods:
        figures = entry["figures"]
        items = figures.get("open_items") or {}
        sides = [int((figures.get(name) or {}).get(side) or 0) for name in _PERIOD_SIDES for side in ("left", "right")]
        rows.append([entry["stream"], entry["period"], entry["status"], len(figures.get("runs") or []), *sides,
                     *(int(figures.get(name) or 0) for name in _PERIOD_COUNTS),
                     figures.get("carried_in"), items.get("count"), figures.get("carried_out")])
        currencies = sorted(set(figures.get("matched_amounts") or {}) | set(figures.get("amounts") or {}))
        for currency in currencies:
            matched = (figures.get("matched_amounts") or {}).get(currency) or {}
            breaks = (figures.get("amounts") or {}).get(currency) or {}
            amounts.append([entry["stream"], entry["period"], currency,
                            major(int(matched.get("left") or 0), currency),
                            major(int(matched.get("right") or 0), currency),
                            major(breaks.get("open_minor"), currency), major(breaks.get("closed_minor"), currency)])
    side_columns = [(f"{name}_{side}", I) for name in _PERIOD_SIDES for side in ("left", "right")]
    period_table = ReportTable("stream_periods", "Streams: figures per period (a closed period's snapshot)", _columns(
        ("stream", T), ("period", T), ("status", T), ("runs", I), *side_columns,
        *((name, I) for name in _PERIOD_COUNTS), ("carried_in", I), ("open_items", I), ("carried_out", I)), rows)
    amount_table = ReportTable("stream_period_amounts", "Streams: amounts per period and currency", _columns(
        ("stream", T), ("period", T), ("currency", T), ("matched_left", A), ("matched_right", A),
        ("open_breaks", A), ("closed_breaks", A)), amounts)
    return [period_table, amount_table]


def _stream_period_aging(inputs: FigureInputs) -> list[ReportTable]:
    """Per stream period overlapping the report's, its open items by age bucket (a closed period:
    at its close; the next period to close: as a close now would record them)."""
    rows = []
    for entry in inputs.stream_periods:
        figures = entry["figures"]
        by_age = (figures.get("open_items") or {}).get("by_age")
        if by_age is None:
            continue
        rows.append([entry["stream"], entry["period"], entry["status"], figures.get("carried_in"),
                     *(by_age.get(bucket, 0) for bucket in BUCKET_LABELS), by_age.get(NO_DATE, 0)])
    if not rows:
        return []
    return [ReportTable("stream_period_aging", "Streams: open items per period by age (days)", _columns(
        ("stream", T), ("period", T), ("status", T), ("carried_in", I), *((label, I) for label in BUCKET_LABELS),
        (NO_DATE, I)), rows)]


class PolarsReportFigures:
    def __init__(self, storage: FileStorage | None = None) -> None:
        self._storage = storage  # channel_trend reads the jobs' stored Parquet files

    def compute(self, inputs: FigureInputs) -> Figures:
        if inputs.kind == "daily":
            return self._daily(inputs)
        if inputs.kind == "aging":
            return self._aging(inputs)
        if inputs.kind == "sla":
            return self._sla(inputs)
        if inputs.kind == "audit":
            return self._audit(inputs)
        if inputs.kind == "channel_trend":
            return self._channel_trend(inputs)
        raise ValueError(f"the {inputs.kind} report is not available yet")

    # --- daily ---

    def _daily(self, inputs: FigureInputs) -> Figures:
        zone = inputs.settings.timezone
        job_ids = set(filter(None, inputs.parameters.get("job_ids", "").split(",")))
        jobs = pl.DataFrame(_job_rows(inputs.jobs), schema=_JOB_SCHEMA, orient="row").with_columns(
            pl.col("completed_at").dt.convert_time_zone(zone).dt.date().alias("day"))
        period = jobs.filter(pl.col("id").is_in(list(job_ids)))
        per_day = (jobs.group_by("day").agg(
            pl.col("left_rows").sum(), pl.col("right_rows").sum(), pl.col("matched_pairs").sum(),
            pl.col("matched_rows").sum(), pl.col("total_rows").sum(), pl.col("exception_rows").sum(),
            pl.len().alias("jobs")).sort("day"))
        job_table = ReportTable("jobs", "Jobs covered", _columns(
            ("job_id", T), ("name", T), ("completed_at", TS), ("left_rows", I), ("right_rows", I),
            ("matched_pairs", I), ("matched_rows", I), ("total_rows", I), ("match_rate_percent", D),
            ("exception_rows", I)),
            [[r["id"], r["name"], r["completed_at"], r["left_rows"], r["right_rows"], r["matched_pairs"],
              r["matched_rows"], r["total_rows"], rate(r["matched_rows"], r["total_rows"]), r["exception_rows"]]
             for r in period.sort("completed_at").iter_rows(named=True)])
        totals = {name: int(period[name].sum() or 0) for name in
                  ("left_rows", "right_rows", "matched_pairs", "matched_rows", "total_rows", "exception_rows")}
        previous_day = inputs.period_start - dt.timedelta(days=1)
        before = per_day.filter(pl.col("day") < inputs.period_start)
        prev = before.filter(pl.col("day") == previous_day)
        window = before.filter(pl.col("day") >= inputs.period_start - dt.timedelta(days=30))

        def day_value(frame: pl.DataFrame, metric: str) -> Decimal | None:
            if frame.is_empty():
                return None
            if metric == "match_rate_percent":
                return rate(int(frame["matched_rows"].sum()), int(frame["total_rows"].sum()))
            return Decimal(int(frame[metric].sum()))

        def mean_value(metric: str) -> Decimal | None:
            if window.is_empty():
                return None
            if metric == "match_rate_percent":
                rates = [rate(r["matched_rows"], r["total_rows"]) for r in window.iter_rows(named=True)]
                known = [r for r in rates if r is not None]
                return (sum(known, Decimal(0)) / len(known)).quantize(Decimal("0.01"), ROUND_HALF_UP) if known else None
            return (Decimal(int(window[metric].sum())) / window.height).quantize(Decimal("0.01"), ROUND_HALF_UP)

        overview_rows = []
        for metric in ("left_rows", "right_rows", "matched_pairs", "match_rate_percent", "exception_rows"):
            value = (rate(totals["matched_rows"], totals["total_rows"]) if metric == "match_rate_percent"
                     else Decimal(totals[metric]))
            previous, mean = day_value(prev, metric), mean_value(metric)
            overview_rows.append([metric, value, previous, _diff(value, previous), mean, _diff(value, mean)])
        overview = ReportTable("overview", "Overview, against the previous day and the mean of the previous 30 days",
                               _columns(("metric", T), ("value", D), ("previous_day", D), ("change_vs_previous_day", D),
                                        ("mean_previous_30_days", D), ("change_vs_mean", D)), overview_rows)
        frame = exception_frame(inputs.exception_csv, zone)
        amounts = (frame.group_by("currency").agg(
            pl.len().alias("exceptions"), pl.col("amount_minor").sum().alias("unmatched_minor"),
            pl.col("amount_minor").filter(pl.col("status").is_in(ACTIVE)).sum().alias("open_minor"))
            .sort("currency"))
        amount_table = ReportTable("unmatched_amounts", "Amounts in exceptions per currency", _columns(
            ("currency", T), ("exceptions", I), ("amount_in_exceptions", A), ("amount_still_open", A)),
            [[r["currency"], r["exceptions"], major(r["unmatched_minor"], r["currency"]),
              major(r["open_minor"], r["currency"])] for r in amounts.iter_rows(named=True)])
        sides = self._amounts_per_side(inputs)
        largest = (frame.filter(pl.col("status").is_in(ACTIVE) & pl.col("amount_minor").is_not_null())
                   .with_columns(pl.col("amount_minor").abs().alias("size"))
                   .sort(["size", "id"], descending=[True, False]).head(TOP_BREAKS))
        top = ReportTable("largest_open_breaks", f"The {TOP_BREAKS} largest open breaks (by absolute amount, "
                                                 "any currency)", _columns(
            ("exception_id", T), ("type", T), ("severity", T), ("status", T), ("currency", T), ("amount", A),
            ("transaction_date", DAY), ("description", T), ("explanation", T)),
            [[r["id"], r["type"], r["severity"], r["status"], r["currency"], major(r["amount_minor"], r["currency"]),
              r["transaction_date"], r["description"], r["explanation"]] for r in largest.iter_rows(named=True)])
        trend = ReportTable("match_rate_by_day", "Match rate per day (the period and the 30 days before)",
                            _columns(("day", DAY), ("jobs", I), ("total_rows", I), ("matched_rows", I),
                                     ("match_rate_percent", D), ("exception_rows", I)),
                            [[r["day"], r["jobs"], r["total_rows"], r["matched_rows"],
                              rate(r["matched_rows"], r["total_rows"]), r["exception_rows"]]
                             for r in per_day.filter(pl.col("day") <= inputs.period_end).iter_rows(named=True)])
        breaks = _breaks_by_type(frame)
        counts = (frame.group_by("type").agg(pl.len().alias("count")).sort("type"))
        by_type = ReportTable("breaks_count_by_type", "Breaks per type", _columns(("type", T), ("count", I)),
                              [[r["type"], r["count"]] for r in counts.iter_rows(named=True)])
        return Figures(
            tables=[overview, job_table, sides, amount_table, breaks, by_type, top, trend,
                    *_stream_period_tables(inputs)],
            charts=[ReportChart("Match rate per day", "match_rate_by_day", "day", ["match_rate_percent"], "line"),
                    ReportChart("Breaks per type", "breaks_count_by_type", "type", ["count"], "column")])

    def _amounts_per_side(self, inputs: FigureInputs) -> ReportTable:
        """Per side and currency, the rows of the period's jobs that ended in a match and those that
        ended only in breaks, with their amounts: read from each job's results.parquet (every pair
        and exception carries both sides' amounts, issue 16). A row counts once however many pairs,
        breaks or runs it appears in (a stream's rows keep their numbers across runs: an item
        carried from one day's run and matched in the next counts once, as matched); a row matched
        in any of them counts as matched. A job stored before results carried the amounts is
        named in the note."""
        wanted = ["kind", "left_row", "right_row", "currency", "left_amount_minor", "right_amount_minor"]
        parts, older = [], []
        for scope, key in inputs.result_paths:
            try:
                results = self._parquet(key, None)
            except StorageObjectMissing:
                older.append(key)
                continue
            if not set(wanted) <= set(results.columns):
                older.append(key)
                continue
            for side in ("left", "right"):
                rows = (results.filter(pl.col(f"{side}_row").is_not_null() & pl.col("kind").is_in(["match", "exception"]))
                        .select(pl.lit(str(scope)).alias("scope"), pl.lit(side).alias("side"),
                                pl.col(f"{side}_row").alias("row"), pl.col("kind"),
                                pl.col("currency").fill_null("").str.to_uppercase().alias("currency"),
                                pl.col(f"{side}_amount_minor").alias("amount_minor")))
                parts.append(rows)
        schema = {"scope": pl.String, "side": pl.String, "row": pl.Int64, "kind": pl.String, "currency": pl.String,
                  "amount_minor": pl.Int64}
        frame = pl.concat(parts) if parts else pl.DataFrame(schema=schema)
        per_row = (frame.group_by("scope", "side", "row")
                   .agg((pl.col("kind") == "match").any().alias("matched"), pl.col("currency").first(),
                        pl.col("amount_minor").first()))
        totals = (per_row.group_by("side", "currency").agg(
            pl.col("matched").sum().alias("matched_rows"),
            pl.col("amount_minor").filter(pl.col("matched")).sum().alias("matched_minor"),
            (~pl.col("matched")).sum().alias("unmatched_rows"),
            pl.col("amount_minor").filter(~pl.col("matched")).sum().alias("unmatched_minor"))
            .sort("side", "currency"))
        note = f"not counted (results stored before they carried amounts): {', '.join(older)}" if older else None
        return ReportTable("amounts_per_side", "Amounts matched and in breaks, per side and currency", _columns(
            ("side", T), ("currency", T), ("matched_rows", I), ("matched_amount", A), ("unmatched_rows", I),
            ("unmatched_amount", A)),
            [[r["side"], r["currency"], r["matched_rows"], major(r["matched_minor"], r["currency"]),
              r["unmatched_rows"], major(r["unmatched_minor"], r["currency"])] for r in totals.iter_rows(named=True)],
            note=note)

    # --- aging ---

    def _aging(self, inputs: FigureInputs) -> Figures:
        zone = inputs.settings.timezone
        today = inputs.settings.local_date(inputs.now)
        frame = exception_frame(inputs.exception_csv, zone).filter(pl.col("status").is_in(ACTIVE))
        frame = frame.with_columns(
            pl.coalesce(pl.col("transaction_date"), pl.col("created_day")).alias("age_from"))
        frame = frame.with_columns((pl.lit(today) - pl.col("age_from")).dt.total_days().alias("age_days"),
                                   (pl.col("due_at") <= pl.lit(inputs.now)).alias("past_sla"))
        bucket = pl.lit(AGE_BUCKETS[-1][0])
        for name, _lower, upper in reversed(AGE_BUCKETS[:-1]):
            assert upper is not None
            bucket = pl.when(pl.col("age_days") < upper).then(pl.lit(name)).otherwise(bucket)
        frame = frame.with_columns(bucket.alias("bucket"))
        order = {name: i for i, (name, _, _) in enumerate(AGE_BUCKETS)}
        detail = (frame.group_by("bucket", "severity", "type", "currency")
                  .agg(pl.len().alias("count"), pl.col("amount_minor").sum().alias("amount_minor"))
                  .sort(pl.col("bucket").replace_strict(order), pl.col("severity").replace_strict(
                      {s: i for i, s in enumerate(SEVERITY_ORDER)}, default=9), "type", "currency"))
        buckets = ReportTable("aging_buckets", "Open exceptions by age, severity and type (count and amount per "
                                               "currency)", _columns(
            ("age_bucket", T), ("severity", T), ("type", T), ("currency", T), ("count", I), ("amount", A)),
            [[r["bucket"], r["severity"], r["type"], r["currency"], r["count"], major(r["amount_minor"], r["currency"])]
             for r in detail.iter_rows(named=True)])
        stack_rows = []
        for name, _, _ in AGE_BUCKETS:
            part = frame.filter(pl.col("bucket") == name)
            stack_rows.append([name, *(int(part.filter(pl.col("severity") == s).height) for s in SEVERITY_ORDER),
                               part.height])
        stack = ReportTable("aging_by_severity", "Open exceptions per age bucket and severity",
                            _columns(("age_bucket", T), *((s, I) for s in SEVERITY_ORDER), ("total", I)), stack_rows)
        total, past = frame.height, int(frame["past_sla"].sum() or 0)
        summary = ReportTable("sla_share", "Share of open exceptions past their SLA", _columns(
            ("open_exceptions", I), ("past_sla", I), ("share_past_sla_percent", D)), [[total, past, rate(past, total)]])
        oldest = frame.sort(["age_from", "created_at", "id"]).head(OLDEST)
        oldest_table = ReportTable("oldest_items", f"The {OLDEST} oldest open exceptions", _columns(
            ("exception_id", T), ("type", T), ("severity", T), ("status", T), ("age_days", I), ("age_from", DAY),
            ("currency", T), ("amount", A), ("due_at", TS), ("past_sla", T), ("description", T)),
            [[r["id"], r["type"], r["severity"], r["status"], r["age_days"], r["age_from"], r["currency"],
              major(r["amount_minor"], r["currency"]), r["due_at"], "yes" if r["past_sla"] else "no",
              r["description"]] for r in oldest.iter_rows(named=True)],
            note=f"{min(OLDEST, total)} of {total} open exceptions")
        return Figures(tables=[summary, stack, buckets, oldest_table, *_stream_period_aging(inputs)],
                       charts=[ReportChart("Open exceptions by age and severity", "aging_by_severity", "age_bucket",
                                           list(SEVERITY_ORDER), "stacked_column")])

    def _audit(self, inputs: FigureInputs) -> Figures:
        return _audit_tables(inputs)

    # --- channel_trend ---

    def _parquet(self, key: str, columns: list[str] | None) -> pl.DataFrame:
        if self._storage is None:
            raise ValueError("the channel_trend report needs the file storage")
        with self._storage.open(key) as stream:
            data = stream.read()
        return pl.read_parquet(io.BytesIO(data), columns=columns)

    def _channel_rows(self, source: ChannelSource) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(the switch side's rows: row_number, channel, day, matched) and (its breaks: row_number,
        currency, amount_minor), of one job."""
        row = "right_row" if source.side == "right" else "left_row"
        rows = self._parquet(source.normalized_path, ["row_number", "channel", "transaction_date"])
        results = self._parquet(source.results_path, ["kind", row, "amount_minor", "currency"])
        matched = results.filter((pl.col("kind") == "match") & pl.col(row).is_not_null())[row].unique()
        channel = pl.col("channel").cast(pl.String).str.strip_chars().str.to_uppercase()
        frame = rows.select(
            pl.col("row_number").cast(pl.Int64),
            pl.when(channel.is_null() | (channel == "")).then(pl.lit("UNKNOWN")).otherwise(channel).alias("channel"),
            pl.col("transaction_date").cast(pl.Date).alias("day"),
            pl.col("row_number").is_in(matched.implode()).alias("matched"))
        breaks = (results.filter((pl.col("kind") == "exception") & pl.col(row).is_not_null())
                  .select(pl.col(row).cast(pl.Int64).alias("row_number"), pl.col("currency").cast(pl.String),
                          pl.col("amount_minor").cast(pl.Int64)))
        return frame, breaks

    def _channel_trend(self, inputs: FigureInputs) -> Figures:
        weekly = inputs.parameters.get("granularity") == "week"
        row_frames, break_frames = [], []
        for source in inputs.channel_sources:
            rows, breaks = self._channel_rows(source)
            row_frames.append(rows)
            break_frames.append(breaks.join(rows.select("row_number", "channel", "day"), on="row_number", how="left")
                                .with_columns(pl.col("channel").fill_null("UNKNOWN")))
        rows = pl.concat(row_frames) if row_frames else pl.DataFrame(
            schema={"row_number": pl.Int64, "channel": pl.String, "day": pl.Date, "matched": pl.Boolean})
        breaks = pl.concat(break_frames) if break_frames else pl.DataFrame(
            schema={"row_number": pl.Int64, "currency": pl.String, "amount_minor": pl.Int64, "channel": pl.String,
                    "day": pl.Date})

        def bucket(frame: pl.DataFrame) -> pl.DataFrame:
            day = pl.col("day")
            return frame.with_columns((day - pl.duration(days=day.dt.weekday() - 1) if weekly else day).alias("period"))

        rows, breaks = bucket(rows), bucket(breaks)
        counts = (rows.group_by("channel", "period").agg(pl.len().alias("volume"), pl.col("matched").sum())
                  .join(breaks.group_by("channel", "period").agg(pl.len().alias("breaks")), on=["channel", "period"],
                        how="left", nulls_equal=True)
                  .with_columns(pl.col("breaks").fill_null(0)).sort("channel", "period", nulls_last=True))
        trend = ReportTable("channel_trend", f"Per channel and {'week' if weekly else 'day'} (switch-side rows)",
                            _columns(("channel", T), ("period_start", DAY), ("volume", I), ("matched", I),
                                     ("match_rate_percent", D), ("breaks", I)),
                            [[r["channel"], r["period"], r["volume"], r["matched"], rate(r["matched"], r["volume"]),
                              r["breaks"]] for r in counts.iter_rows(named=True)])
        amounts = (breaks.group_by("channel", "period", "currency")
                   .agg(pl.len().alias("breaks"), pl.col("amount_minor").sum()).sort("channel", "period", "currency",
                                                                                     nulls_last=True))
        amount_table = ReportTable("channel_break_amounts", "Breaks per channel, period and currency", _columns(
            ("channel", T), ("period_start", DAY), ("currency", T), ("breaks", I), ("amount", A)),
            [[r["channel"], r["period"], r["currency"], r["breaks"], major(r["amount_minor"], r["currency"])]
             for r in amounts.iter_rows(named=True)])
        totals = (counts.group_by("channel").agg(pl.col("volume").sum(), pl.col("matched").sum(),
                                                 pl.col("breaks").sum()).sort("channel"))
        total_table = ReportTable("channel_totals", "Per channel over the period", _columns(
            ("channel", T), ("volume", I), ("matched", I), ("match_rate_percent", D), ("breaks", I)),
            [[r["channel"], r["volume"], r["matched"], rate(r["matched"], r["volume"]), r["breaks"]]
             for r in totals.iter_rows(named=True)])
        channels = totals["channel"].to_list()
        periods = sorted({p for p in counts["period"].to_list() if p is not None})
        by_key = {(r["channel"], r["period"]): rate(r["matched"], r["volume"]) for r in counts.iter_rows(named=True)}
        pivot = ReportTable("match_rate_by_channel", "Match rate per channel (percent)",
                            [Column("period_start", DAY), *(Column(c, D) for c in channels)],
                            [[p, *(by_key.get((c, p)) for c in channels)] for p in periods])
        return Figures(tables=[total_table, pivot, trend, amount_table],
                       charts=[ReportChart("Match rate per channel", "match_rate_by_channel", "period_start",
                                           channels, "line")] if channels else [])

    # --- sla ---

    def _sla(self, inputs: FigureInputs) -> Figures:
        frame = exception_frame(inputs.exception_csv, inputs.settings.timezone)
        # who an assignee is, beside the id (an id no longer in the organization stays an id)
        frame = frame.with_columns(pl.col("assigned_to").replace(inputs.user_names).alias("assignee"))
        now = inputs.now
        frame = frame.with_columns(
            (pl.col("resolved_at").is_not_null() & (pl.col("resolved_at") <= pl.col("due_at"))).alias("within"),
            ((pl.col("resolved_at").is_null() & pl.col("status").is_in(ACTIVE) & (pl.col("due_at") <= pl.lit(now)))
             | (pl.col("resolved_at") > pl.col("due_at"))).fill_null(False).alias("overdue"),
            ((pl.col("resolved_at") - pl.col("created_at")).dt.total_seconds()).alias("seconds_to_resolve"))

        def table(key: str, name: str, title: str) -> ReportTable:
            grouped = (frame.group_by(key, *(["assignee"] if key == "assigned_to" else [])).agg(
                pl.len().alias("exceptions"), pl.col("resolved_at").is_not_null().sum().alias("resolved"),
                pl.col("within").sum().alias("resolved_within_sla"), pl.col("overdue").sum().alias("overdue"),
                pl.col("escalated_at").is_not_null().sum().alias("escalations"),
                pl.col("seconds_to_resolve").mean().alias("mean_s"),
                pl.col("seconds_to_resolve").median().alias("median_s")).sort(key))
            named = key == "assigned_to"
            return ReportTable(name, title, _columns(
                (key, T), *([("assignee", T)] if named else []), ("exceptions", I), ("resolved", I),
                ("resolved_within_sla", I), ("overdue", I), ("escalations", I), ("mean_hours_to_resolve", D),
                ("median_hours_to_resolve", D)),
                [[r[key], *([r["assignee"]] if named else []), r["exceptions"], r["resolved"],
                  r["resolved_within_sla"], r["overdue"], r["escalations"], _hours(r["mean_s"]),
                  _hours(r["median_s"])] for r in grouped.iter_rows(named=True)])

        past_due = frame.filter(pl.col("status").is_in(ACTIVE) & (pl.col("due_at") <= pl.lit(now))).sort("due_at", "id")
        open_table = ReportTable("open_past_due", "Open exceptions past their due time", _columns(
            ("exception_id", T), ("type", T), ("severity", T), ("status", T), ("assigned_to", T), ("assignee", T),
            ("due_at", TS), ("currency", T), ("amount", A)),
            [[r["id"], r["type"], r["severity"], r["status"], r["assigned_to"], r["assignee"], r["due_at"],
              r["currency"], major(r["amount_minor"], r["currency"])] for r in past_due.iter_rows(named=True)])
        by_severity = table("severity", "sla_by_severity", "Per severity")
        return Figures(tables=[by_severity, table("assigned_to", "sla_by_assignee", "Per assignee"), open_table],
                       charts=[ReportChart("Overdue per severity", "sla_by_severity", "severity",
                                           ["resolved_within_sla", "overdue"], "column")])


def _audit_tables(inputs: FigureInputs) -> Figures:
    records = inputs.audit_records
    frame = pl.DataFrame({
        "created_at": [r.created_at.replace(tzinfo=dt.UTC) for r in records],
        "sequence_number": [r.sequence_number for r in records],
        "action": [r.event.action for r in records],
        "user_id": [str(r.event.user_id) if r.event.user_id else None for r in records],
        "resource_type": [r.event.resource_type for r in records],
        "resource_id": [str(r.event.resource_id) if r.event.resource_id else None for r in records],
        "ip_address": [r.event.ip_address for r in records],
        "user_agent": [r.event.user_agent for r in records],
        "request_method": [r.event.request_method for r in records],
        "request_path": [r.event.request_path for r in records],
        "response_status": [r.event.response_status for r in records],
        "metadata": [json.dumps(r.event.metadata, sort_keys=True, default=str)
                     if r.event.metadata is not None else None for r in records],
    }, schema={"created_at": pl.Datetime("us", "UTC"), "sequence_number": pl.Int64, "action": pl.String,
               "user_id": pl.String, "resource_type": pl.String, "resource_id": pl.String, "ip_address": pl.String,
               "user_agent": pl.String, "request_method": pl.String, "request_path": pl.String,
               "response_status": pl.Int64, "metadata": pl.String}).sort("sequence_number")
    events = ReportTable("events", "Audit events of the period (oldest first)", _columns(
        ("created_at", TS), ("sequence_number", I), ("action", T), ("user_id", T), ("resource_type", T),
        ("resource_id", T), ("ip_address", T), ("user_agent", T), ("request_method", T), ("request_path", T),
        ("response_status", I), ("metadata", T)), [list(row) for row in frame.iter_rows()])
    counts = frame.group_by("action").agg(pl.len().alias("count")).sort(["count", "action"], descending=[True, False])
    actions = ReportTable("events_by_action", "Events per action", _columns(("action", T), ("count", I)),
                          [list(row) for row in counts.iter_rows()])
    tables = [t for t in (inputs.verification,) if t is not None]
    return Figures(tables=[*tables, actions, events],
                   charts=[ReportChart("Events per action", "events_by_action", "action", ["count"], "column")])


def _hours(seconds: float | None) -> Decimal | None:
    # seconds come from integer microsecond differences; the mean is rounded to 2 places of an hour
    if seconds is None:
        return None
    return (Decimal(str(seconds)) / 3600).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _diff(value: Decimal | None, other: Decimal | None) -> Decimal | None:
    return None if value is None or other is None else value - other


_JOB_SCHEMA: dict[str, Any] = {
    "id": pl.String, "name": pl.String, "completed_at": pl.Datetime("us", "UTC"), "left_rows": pl.Int64,
    "right_rows": pl.Int64, "matched_pairs": pl.Int64, "matched_rows": pl.Int64, "total_rows": pl.Int64,
    "exception_rows": pl.Int64}


def _job_rows(jobs: Sequence[ReconciliationJob]) -> list[list[Any]]:
    rows = []
    for job in jobs:
        summary = job.summary or {}
        sides = summary.get("rows") or {}
        rows.append([str(job.id), job.name, job.completed_at, int(sides.get("left") or 0),
                     int(sides.get("right") or 0), int(summary.get("matched_pairs") or 0), job.matched_rows,
                     job.total_rows, job.exception_rows])
    return rows


if TYPE_CHECKING:
    _check: ReportFigures = PolarsReportFigures()
