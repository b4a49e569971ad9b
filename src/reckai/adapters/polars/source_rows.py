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

from reckai.adapters.polars.search_keys import (
    KEY_SOURCES,
    masked_account_candidates,
    masked_account_expr,
    search_key_expr,
)
from reckai.application.ports.files import FilesUnitOfWork
from reckai.application.ports.reconciliations import RowFinder, RowSearch
from reckai.application.ports.storage import FileStorage, StorageObjectMissing
from reckai.application.ports.unit_of_work import Database
from reckai.application.ports.workflow import RowAmounts, SourceRows, StoredRowAmount
from reckai.domain.ingestion.canonical import MINOR_UNIT_EXPONENTS


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

    def row(self, organization_id: uuid.UUID, file_id: uuid.UUID, row_number: int,
            job_id: uuid.UUID | None = None) -> dict[str, object] | None:
        with self.database.unit_of_work(organization_id) as uow:
            normalized = (uow.normalized_files.for_job(job_id, file_id) if job_id is not None
                          else uow.normalized_files.get_for_file(file_id))
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


    def find_rows(self, storage_path: str, search: RowSearch) -> list[int]:
        columns = ["row_number", "amount_minor", "currency", "transaction_date", *KEY_SOURCES]
        try:
            with self.storage.open(storage_path) as stream:
                data = stream.read()
            lazy = pl.read_parquet(io.BytesIO(data), columns=columns).lazy()
        except (StorageObjectMissing, pl.exceptions.PolarsError, OSError):
            return []
        conditions = []
        for name in ("reference", "secondary_reference"):
            key = search_key_expr(pl.col(name))
            exact, prefix = getattr(search, name), getattr(search, f"{name}_prefix")
            if exact is not None:
                conditions.append(key == exact)
            if prefix is not None:
                conditions.append(key.str.starts_with(prefix))
        if search.masked_account is not None:  # the cheap test first: the masking runs on what passes it
            lazy = lazy.filter(masked_account_candidates(pl.col("account"), search.masked_account)).collect().lazy()
            conditions.append(masked_account_expr(pl.col("account")) == search.masked_account)
        if search.channels:
            conditions.append(search_key_expr(pl.col("channel")).is_in(list(search.channels)))
        # in millionths of the major unit, integers only (a filter has at most 6 decimals; no float)
        scale = pl.col("currency").str.to_uppercase().replace_strict(
            {code: 10 ** (6 - exponent) for code, exponent in MINOR_UNIT_EXPONENTS.items()}, default=10**4,
            return_dtype=pl.Int128)
        micro = pl.col("amount_minor").cast(pl.Int128) * scale
        if search.amount_min is not None:
            conditions.append(micro >= int(search.amount_min * 10**6))
        if search.amount_max is not None:
            conditions.append(micro <= int(search.amount_max * 10**6))
        day = pl.col("transaction_date").dt.date()
        if search.date_from is not None:
            conditions.append(day >= search.date_from)
        if search.date_to is not None:
            conditions.append(day <= search.date_to)
        if conditions:
            lazy = lazy.filter(pl.all_horizontal(conditions))
        return sorted(int(n) for n in lazy.select("row_number").collect()["row_number"].to_list())


_check: type[SourceRows] = NormalizedSourceRows
_check_finder: type[RowFinder] = NormalizedSourceRows
_check_amounts: type[RowAmounts] = NormalizedSourceRows
