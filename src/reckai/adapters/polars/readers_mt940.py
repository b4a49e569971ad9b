"""MT940/MT942/MT950 text into a SourceTable (the parsing itself is pure domain code)."""

from __future__ import annotations

import polars as pl

from reckai.adapters.polars.source_table import LINE_NUMBER, ROW_NUMBER, SourceTable
from reckai.domain.ingestion.mt940 import MT940_COLUMNS, parse_mt940
from reckai.domain.ingestion.sniffing import ContentInfo
from reckai.domain.ingestion.statements import mt940_identity

# Rows parsed into Python strings before they become a frame chunk: 100k transactions held as
# Python lists took ~130 MB, and left the heap that much larger for the normalizing after it.
_CHUNK_ROWS = 10_000
_SCHEMA = {ROW_NUMBER: pl.Int64, LINE_NUMBER: pl.Int64, **{c: pl.String for c in MT940_COLUMNS}}


def read_mt940_table(text: str, info: ContentInfo) -> SourceTable:
    chunks: list[pl.DataFrame] = []

    def take(columns: dict[str, list[str | None]], lines: list[int], row_numbers: list[int]) -> None:
        chunks.append(pl.DataFrame({ROW_NUMBER: row_numbers, LINE_NUMBER: lines, **columns}, schema=_SCHEMA))

    parsed = parse_mt940(text.replace("\r\n", "\n").replace("\r", "\n"), sink=take, chunk_rows=_CHUNK_ROWS)
    frame = pl.concat(chunks, rechunk=True) if chunks else pl.DataFrame(schema=_SCHEMA)
    info = ContentInfo(format="txt", kind=parsed.message_type, encoding=info.encoding,
                       encoding_confidence=info.encoding_confidence)
    return SourceTable(frame=frame, columns=list(MT940_COLUMNS), content=info, row_errors=parsed.errors,
                       warnings=parsed.warnings, statement_count=len(parsed.statements),
                       statements=[identity for s in parsed.statements if (identity := mt940_identity(
                           parsed.message_type, s.account, s.reference, s.number, s.opening_date, s.opening,
                           s.line)) is not None])
