"""The matching engine as a reconciliation job runs it (JobMatchingEngine port).

It is the path `reckai reconcile` takes (adapters/polars/result_tables.py): `reconcile_frames`,
the breaks worded column-wise, summaries as aggregations; a job then writes results.csv and
results.parquet from the same frames and feeds the COPY of its matches and exceptions from them.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Collection, Iterator

import polars as pl

from reckai.adapters.polars.cells import neutralised
from reckai.adapters.polars.matcher import PolarsMatcher
from reckai.adapters.polars.normalize import read_parquet_bytes
from reckai.adapters.polars.result_tables import RESULT_COLUMNS, ResultTables, tables_from_frames
from reckai.adapters.polars.search_keys import key_sources
from reckai.application.ports.matching import SourceFileError
from reckai.application.ports.reconciliations import JobMatchingEngine, MatchRun
from reckai.domain.ingestion.errors import IngestionError
from reckai.domain.reconciliation.profile import ReconciliationPeriod, ReconciliationProfile

__all__ = ["RESULT_COLUMNS", "PolarsJobMatchingEngine", "PolarsMatchRun"]


class PolarsMatchRun:
    def __init__(self, tables: ResultTables) -> None:
        self.tables = tables
        self.left_rows = tables.left_row_count
        self.right_rows = tables.right_row_count
        self.matched_pairs = tables.matches.height
        self.suggested_pairs = tables.suggestions.height
        self.matched_rows = sum(tables.matched_rows().values())
        self.exception_rows = tables.exception_rows()
        self.exceptions_by_type = {kind: count for kind, count in tables.exceptions_by_type().items() if count}
        self.reversals_netted = tables.reversals_netted()
        self.stage_seconds = dict(tables.stage_seconds)
        self.direction_rows = dict(tables.direction_rows)
        self._results: pl.DataFrame | None = None

    def _results_table(self) -> pl.DataFrame:
        """The one results table both files are written from (built once: ~0.7 s of CPU at 1M pairs,
        which the database needs during the persist that these writes run beside)."""
        if self._results is None:
            self._results = self.tables.results_table()
        return self._results

    def match_chunks(self, check: Callable[[], None]) -> Iterator[bytes]:
        return self.tables.copy_chunks(self.tables.match_copy_table(), check)

    def exception_chunks(self, left_file_id: uuid.UUID, right_file_id: uuid.UUID,
                         check: Callable[[], None]) -> Iterator[bytes]:
        return self.tables.copy_chunks(self.tables.exception_copy_table(left_file_id, right_file_id), check)

    def results_csv(self) -> bytes:
        buffer = io.BytesIO()
        neutralised(self._results_table(), self.tables.worded_columns()).write_csv(buffer, null_value="")  # a spreadsheet opens it: no formulas
        return buffer.getvalue()

    def results_parquet(self) -> bytes:
        buffer = io.BytesIO()
        self._results_table().write_parquet(buffer, compression="zstd")
        self._results = None  # both files are written: the table is let go
        return buffer.getvalue()


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
            excluded_pairs: Collection[tuple[int, int]] = ()) -> PolarsMatchRun:
        frames = self._matcher.reconcile_frames(left, right, profile, period, should_stop=check,
                                                excluded_pairs=excluded_pairs)
        if check is not None:
            check()  # before the breaks are worded (the last step of the engine)
        tables = tables_from_frames(frames, profile, period).with_inputs(left, right, profile)
        # Worded here, in the match stage, as before: the persist and the results writer then only
        # read the exceptions, from two threads (the lazy wording is for `reckai reconcile`).
        tables.exceptions  # noqa: B018
        tables.left_rows, tables.right_rows = key_sources(left), key_sources(right)
        return PolarsMatchRun(tables)


_check: JobMatchingEngine = PolarsJobMatchingEngine()
_check_run: type[MatchRun] = PolarsMatchRun
