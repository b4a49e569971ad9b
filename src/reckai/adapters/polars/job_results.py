"""The matching engine as a reconciliation job runs it (JobMatchingEngine port).

It is the engine `reckai reconcile` uses: `PolarsMatcher.reconcile` is `reconcile_frames` followed
by `materialize`; a job calls the same `reconcile_frames`, and `materialize` for the breaks (their
wording), but keeps the matches as frames, because turning a million matches into Python objects
only to turn them back into COPY text would cost seconds for nothing.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable, Collection, Iterator
from decimal import Decimal
from typing import Any

import polars as pl

from reckai.adapters.polars.cells import neutralised
from reckai.adapters.polars.matcher import FrameResult, PolarsMatcher, materialize
from reckai.adapters.polars.normalize import read_parquet_bytes
from reckai.application.ports.matching import SourceFileError
from reckai.application.ports.reconciliations import JobMatchingEngine, MatchRun
from reckai.domain.ingestion.canonical import minor_unit_exponent
from reckai.domain.ingestion.errors import IngestionError
from reckai.domain.reconciliation.explanations import describe_reversal
from reckai.domain.reconciliation.profile import ReconciliationPeriod, ReconciliationProfile
from reckai.domain.reconciliation.results import ExceptionRecord

CHUNK_ROWS = 250_000
RESULT_COLUMNS = ["kind", "left_row", "right_row", "group_id", "rule", "rule_version", "status", "confidence",
                  "type", "severity", "amount_minor", "currency", "explanation"]


def _confidence_text(column: str) -> pl.Expr:
    # Exact decimal text from basis points (never through a float): 9500 -> "0.9500".
    bp = pl.col(column).cast(pl.Int64)
    return (bp // 10_000).cast(pl.String) + pl.lit(".") + (bp % 10_000).cast(pl.String).str.zfill(4)


class PolarsMatchRun:
    def __init__(self, frames: FrameResult, exceptions: list[ExceptionRecord],
                 reversal_explanations: list[tuple[str, int, str]] | None = None) -> None:
        self._frames = frames
        self._exceptions = exceptions
        self._reversal_explanations = reversal_explanations or []  # (side, reversal row, explanation)
        self.left_rows = frames.left_row_count
        self.right_rows = frames.right_row_count
        matches = frames.matches
        self.matched_pairs = matches.height
        self.suggested_pairs = frames.suggestions.height
        self.matched_rows = int(matches["left_row"].n_unique() + matches["right_row"].n_unique()) if matches.height else 0
        facts = frames.facts
        self.exception_rows = (int(facts["left_row"].drop_nulls().n_unique() + facts["right_row"].drop_nulls().n_unique())
                               if facts.height else 0)
        by_type: dict[str, int] = {}
        for record in exceptions:
            by_type[record.type.value] = by_type.get(record.type.value, 0) + 1
        self.exceptions_by_type = by_type
        reversals = frames.reversals
        self.reversals_netted = {side: int(reversals.filter(pl.col("side") == side).height) if reversals is not None else 0
                                 for side in ("left", "right")}
        self.stage_seconds = dict(frames.stage_seconds)

    def _match_table(self) -> pl.DataFrame:
        return pl.concat([self._frames.matches, self._frames.suggestions]).select(
            pl.col("status"), pl.col("group_id").alias("group_key"), pl.col("left_row"), pl.col("right_row"),
            pl.col("rule"), pl.col("rule_version"), _confidence_text("confidence_bp").alias("confidence"),
            pl.col("amount_diff").alias("amount_diff_minor"), pl.col("day_delta"), pl.col("similarity_bp"),
            pl.col("left_key"), pl.col("right_key"), pl.col("members"), pl.col("fee_minor"),
        ).sort(["status", "left_row", "right_row"])  # index order: the B-tree is filled left to right

    def match_chunks(self, check: Callable[[], None]) -> Iterator[bytes]:
        table = self._match_table()
        for offset in range(0, table.height, CHUNK_ROWS):
            check()
            buffer = io.BytesIO()
            table.slice(offset, CHUNK_ROWS).write_csv(buffer, include_header=False, null_value="")
            yield buffer.getvalue()

    def exception_chunks(self, left_file_id: uuid.UUID, right_file_id: uuid.UUID,
                         check: Callable[[], None]) -> Iterator[bytes]:
        for offset in range(0, len(self._exceptions), CHUNK_ROWS // 5):
            check()
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            for record in self._exceptions[offset:offset + CHUNK_ROWS // 5]:
                writer.writerow(_exception_row(record, left_file_id, right_file_id))
            yield buffer.getvalue().encode("utf-8")

    def _results_table(self) -> pl.DataFrame:
        def matches(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
            return frame.select(pl.lit(kind).alias("kind"), "left_row", "right_row", "group_id", "rule",
                                "rule_version", "status", _confidence_text("confidence_bp").alias("confidence"))

        exceptions = pl.DataFrame(
            {"kind": ["exception"] * len(self._exceptions),
             "left_row": [e.facts.left_row for e in self._exceptions],
             "right_row": [e.facts.right_row for e in self._exceptions],
             "type": [e.type.value for e in self._exceptions],
             "severity": [e.severity for e in self._exceptions],
             "amount_minor": [e.facts.amount_minor for e in self._exceptions],
             "currency": [e.facts.currency for e in self._exceptions],
             "explanation": [e.explanation for e in self._exceptions]},
            schema={"kind": pl.String, "left_row": pl.Int64, "right_row": pl.Int64, "type": pl.String,
                    "severity": pl.String, "amount_minor": pl.Int64, "currency": pl.String, "explanation": pl.String})
        explained = self._reversal_explanations
        reversals = pl.DataFrame(
            {"kind": ["reversal"] * len(explained),
             "left_row": [row if side == "left" else None for side, row, _ in explained],
             "right_row": [row if side == "right" else None for side, row, _ in explained],
             "explanation": [text for _, _, text in explained]},
            schema={"kind": pl.String, "left_row": pl.Int64, "right_row": pl.Int64, "explanation": pl.String})
        table = pl.concat([matches(self._frames.matches, "match"), matches(self._frames.suggestions, "suggestion"),
                           exceptions, reversals], how="diagonal_relaxed")
        return table.select(RESULT_COLUMNS).sort(["kind", "left_row", "right_row"], nulls_last=True)

    def results_csv(self) -> bytes:
        buffer = io.BytesIO()
        neutralised(self._results_table()).write_csv(buffer)  # a spreadsheet opens it: no formulas
        return buffer.getvalue()

    def results_parquet(self) -> bytes:
        buffer = io.BytesIO()
        self._results_table().write_parquet(buffer, compression="zstd")
        return buffer.getvalue()


def _exception_row(record: ExceptionRecord, left_file_id: uuid.UUID, right_file_id: uuid.UUID) -> list[Any]:
    facts = record.facts
    exponent = minor_unit_exponent(facts.currency)
    amount = Decimal(facts.amount_minor).scaleb(-exponent)
    moment = facts.left_date or facts.right_date
    evidence = {
        "amount_difference_minor": facts.amount_difference_minor, "day_delta": facts.day_delta,
        "reference": facts.reference, "rule": facts.rule, "original_row": facts.original_row,
        "left": _side(facts.left_amount_minor, facts.left_date, facts.left_direction, facts.left_status),
        "right": _side(facts.right_amount_minor, facts.right_date, facts.right_direction, facts.right_status),
    }
    return [
        record.type.value, record.severity, f"{amount:.{max(exponent, 0)}f}" if exponent <= 2 else str(amount),
        facts.currency, moment.date().isoformat() if moment else "", record.description, record.explanation,
        f"{record.ai_confidence_bp // 10_000}.{record.ai_confidence_bp % 10_000:04d}", record.suggested_action,
        facts.left_row if facts.left_row is not None else "",
        facts.right_row if facts.right_row is not None else "",
        left_file_id if facts.left_row is not None else "", right_file_id if facts.right_row is not None else "",
        facts.amount_minor, json.dumps({k: v for k, v in evidence.items() if v is not None}, separators=(",", ":")),
    ]


def _side(amount: int | None, moment: Any, direction: str | None, status: str | None) -> dict[str, Any] | None:
    if amount is None and moment is None:
        return None
    return {"amount_minor": amount, "date": moment.isoformat() if moment else None, "direction": direction,
            "status": status}


class PolarsJobMatchingEngine:
    def __init__(self, matcher: PolarsMatcher | None = None) -> None:
        self._matcher = matcher or PolarsMatcher()

    def load(self, normalized_parquet: bytes) -> pl.DataFrame:
        try:
            return read_parquet_bytes(normalized_parquet)
        except IngestionError as exc:
            raise SourceFileError("normalized file", exc.message) from exc

    def run(self, left: pl.DataFrame, right: pl.DataFrame, profile: ReconciliationProfile,
            period: ReconciliationPeriod | None, check: Callable[[], None] | None = None,
            excluded_pairs: Collection[tuple[int, int]] = ()) -> MatchRun:
        frames = self._matcher.reconcile_frames(left, right, profile, period, should_stop=check,
                                                excluded_pairs=excluded_pairs)
        if check is not None:
            check()  # before materializing the breaks' wording (the last long step)
        empty = frames.matches.clear()
        breaks = materialize(FrameResult(matches=empty, suggestions=empty, facts=frames.facts,
                                         left_row_count=frames.left_row_count,
                                         right_row_count=frames.right_row_count), profile, period)
        netted = frames.reversals.iter_rows() if frames.reversals is not None else ()
        explained = [(side, reversal, describe_reversal(profile, side, reversal, original))
                     for side, reversal, original in netted]
        return PolarsMatchRun(frames, breaks.exceptions, explained)


_check: JobMatchingEngine = PolarsJobMatchingEngine()
