"""The `FileParser` port (application/ports/files.py) over the ingestion readers and normalizer.

A thin adapter: content validation, auto-detection and normalization live in
`adapters.polars.readers` / `normalize` and `domain.ingestion`; this module only gives the file use
cases one object to call, with one zip-bomb limit for every read, and turns the normalized frame
into Parquet bytes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import polars as pl

from reckai.adapters.polars.normalize import normalize_file, propose_file_mapping, write_parquet_bytes
from reckai.adapters.polars.readers import inspect_content
from reckai.application.ports.files import FileParser, FilePreview, NormalizationOutcome
from reckai.domain.ingestion.canonical import CANONICAL_FIELD_NAMES
from reckai.domain.ingestion.detection import MappingProposal
from reckai.domain.ingestion.mapping import Mapping, parse_mapping
from reckai.domain.ingestion.mapping_checks import MappingStatistics
from reckai.domain.ingestion.sniffing import DEFAULT_MAX_INFLATED_BYTES, ContentInfo


class PolarsFileParser:
    def __init__(self, max_inflated_bytes: int | None = None) -> None:
        # The bytes an .xlsx may inflate to before it is refused as a zip bomb (None: the default).
        self.max_inflated_bytes = max_inflated_bytes or DEFAULT_MAX_INFLATED_BYTES

    def inspect(self, data: bytes, filename: str | None) -> ContentInfo:
        return inspect_content(data, filename, max_inflated_bytes=self.max_inflated_bytes)

    def propose(self, data: bytes, filename: str | None) -> MappingProposal:
        return propose_file_mapping(data, filename, max_inflated_bytes=self.max_inflated_bytes)

    def parse_mapping(self, rules: Any) -> Mapping:
        return parse_mapping(rules)

    def normalize(self, read: Callable[[], bytes], mapping: Mapping, filename: str | None) -> NormalizationOutcome:
        result = normalize_file(read, mapping, filename, max_inflated_bytes=self.max_inflated_bytes)
        return NormalizationOutcome(
            parquet=write_parquet_bytes(result.frame),
            row_count=result.row_count,
            source_rows=result.source_rows,
            errors=list(result.errors),
            report=result.error_report(),
            statements=list(result.statements),
        )

    def preview(self, data: bytes, rules: Any | None, filename: str | None,
                limit: int | None = None) -> FilePreview:
        inspected = self.inspect(data, filename)
        proposal = self.propose(data, filename)
        given = rules if rules is not None else proposal.mapping
        used = parse_mapping(given)
        # The preview shows no `raw`: it is not built (a third of a wide file's frame).
        result = normalize_file(data, used, filename, keep_raw=False, max_inflated_bytes=self.max_inflated_bytes)
        statistics = mapping_statistics(result.frame)
        frame = result.frame.drop("raw")
        if limit is not None:
            frame = frame.head(limit)
        rows = [{key: value.isoformat() if hasattr(value, "isoformat") else value for key, value in row.items()}
                for row in frame.to_dicts()]
        content = result.content
        if inspected.encoding_confidence is not None and inspected.encoding == content.encoding:
            # Read with the proposal's encoding, which the inspection detected: say so.
            content = dataclasses.replace(content, encoding_confidence=inspected.encoding_confidence)
        return FilePreview(content=content, proposal=proposal, mapping=given, rows=rows,
                           source_rows=result.source_rows, errors=list(result.errors),
                           warnings=list(result.warnings), statement_count=result.statement_count,
                           statistics=statistics)


_COUNTED_FIELDS = [name for name in CANONICAL_FIELD_NAMES
                   if name not in ("row_number", "has_time", "raw", "source_line", "source_sheet")]


def mapping_statistics(frame: pl.DataFrame) -> MappingStatistics:
    """What a normalized frame adds up to, in one pass of aggregations (no row as a Python object)."""
    totals = frame.select(
        *[pl.col(name).count().alias(f"filled:{name}") for name in _COUNTED_FIELDS],
        *[pl.col(name).drop_nulls().n_unique().alias(f"distinct:{name}") for name in _COUNTED_FIELDS],
        (pl.col("amount_minor") == 0).sum().alias("zero_amounts"),
    ).row(0, named=True)

    def counts(column: str) -> dict[str, int]:
        grouped = frame.group_by(column).len().drop_nulls(column).sort(column)
        return {str(key): int(n) for key, n in grouped.iter_rows()}

    days = frame.group_by(pl.col("transaction_date").dt.date().alias("day")).len().drop_nulls("day")
    return MappingStatistics(
        row_count=frame.height,
        filled={name: int(totals[f"filled:{name}"]) for name in _COUNTED_FIELDS},
        distinct={name: int(totals[f"distinct:{name}"]) for name in _COUNTED_FIELDS},
        direction_counts=counts("direction"), currency_counts=counts("currency"),
        zero_amounts=int(totals["zero_amounts"] or 0),
        transaction_days={day: int(n) for day, n in days.iter_rows()})


_check: type[FileParser] = PolarsFileParser
