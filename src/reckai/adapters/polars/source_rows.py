"""Source rows for the exception detail screen, read from a file's normalized Parquet (SourceRows port).

One row is picked with a predicate on `row_number`; the Parquet is read whole from storage (files
are at most the upload limit). Values are made JSON-ready: dates and datetimes ISO-8601, integers
(minor units) as they are, the raw source columns as they were read.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterable

import polars as pl

from reckai.application.ports.files import FilesUnitOfWork
from reckai.application.ports.storage import FileStorage, StorageObjectMissing
from reckai.application.ports.unit_of_work import Database
from reckai.application.ports.workflow import RowAmounts, SourceRows, StoredRowAmount


def _plain(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _position(line: object, sheet: object) -> str | None:
    """Where a person finds the row, as the outputs say it (result_tables.position_text): "line
    28", or "Statement row 28" in a workbook; None for a form written before positions were kept."""
    if line is None:
        return None
    return f"{sheet} row {line}" if sheet is not None else f"line {line}"


class NormalizedSourceRows:
    def __init__(self, database: Database[FilesUnitOfWork], storage: FileStorage) -> None:
        self.database = database
        self.storage = storage

    def row(self, organization_id: uuid.UUID, file_id: uuid.UUID, row_number: int) -> dict[str, object] | None:
        with self.database.unit_of_work(organization_id) as uow:
            normalized = uow.normalized_files.get_for_file(file_id)
        if normalized is None:
            return None
        with self.storage.open(normalized.storage_path) as stream:
            data = stream.read()
        try:
            frame = pl.read_parquet(io.BytesIO(data)).filter(pl.col("row_number") == row_number)
        except (pl.exceptions.PolarsError, OSError):
            return None
        if frame.height == 0:
            return None
        row = {k: _plain(v) for k, v in frame.row(0, named=True).items()}
        return {"file_id": str(file_id), **row, "source": _position(row.get("source_line"), row.get("source_sheet"))}

    def amounts(self, storage_path: str, row_numbers: Iterable[int]) -> dict[int, StoredRowAmount]:
        wanted = sorted(set(row_numbers))
        try:
            with self.storage.open(storage_path) as stream:
                data = stream.read()
            frame = (pl.read_parquet(io.BytesIO(data), columns=["row_number", "amount_minor", "currency"])
                     .filter(pl.col("row_number").is_in(wanted)))
        except (StorageObjectMissing, pl.exceptions.PolarsError, OSError):
            return {}  # the normalized form is gone: no row has a stored amount
        return {int(number): StoredRowAmount(int(amount), str(currency))
                for number, amount, currency in frame.iter_rows()
                if number is not None and amount is not None and currency is not None}


_check: type[SourceRows] = NormalizedSourceRows
_check_amounts: type[RowAmounts] = NormalizedSourceRows
