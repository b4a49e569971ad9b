"""The table writers of application/ports/exports.py: CSV (the csv module) and Excel (xlsxwriter in
constant_memory mode, to a temporary file: rows are flushed as they are written, so memory stays
flat at a million rows; a sheet holds at most 1,048,576 rows, so the rows go on to further sheets,
each with the header)."""

from __future__ import annotations

import datetime as dt
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import xlsxwriter

from reckai.application.ports.exports import Column, ColumnKind, TableWriter
from reckai.domain.exports.cells import neutralise_cell, safe_csv_writer

EXCEL_MAX_ROWS = 1_048_576  # per sheet, the header row included
CSV_FLUSH_ROWS = 2_000
READ_CHUNK = 1024 * 1024


def _csv_text(value: Any, kind: ColumnKind) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


class CsvTableWriter:
    media_type = "text/csv; charset=utf-8"
    extension = "csv"

    def chunks(self, columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
        buffer = io.StringIO()
        writer = safe_csv_writer(buffer, lineterminator="\r\n")
        writer.writerow([c.name for c in columns])
        pending = 0
        for row in rows:
            writer.writerow([_csv_text(v, c.kind) for v, c in zip(row, columns, strict=True)])
            pending += 1
            if pending >= CSV_FLUSH_ROWS:
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
                pending = 0
        yield buffer.getvalue().encode("utf-8")


class XlsxTableWriter:
    media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    extension = "xlsx"

    def __init__(self, sheet_name: str = "data", max_rows: int = EXCEL_MAX_ROWS) -> None:
        self._sheet_name = sheet_name
        self._max_rows = max_rows  # lowered by tests to see the spill without a million rows

    def chunks(self, columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
        handle, path = tempfile.mkstemp(prefix="reckai-export-", suffix=".xlsx")
        os.close(handle)
        try:
            self._write(path, columns, rows)
            with open(path, "rb") as stream:
                while chunk := stream.read(READ_CHUNK):
                    yield chunk
        finally:
            os.unlink(path)

    def _write(self, path: str, columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> None:
        workbook = xlsxwriter.Workbook(path, {"constant_memory": True, "remove_timezone": True,
                                              "strings_to_formulas": False, "strings_to_urls": False})
        bold = workbook.add_format({"bold": True})
        dates = workbook.add_format({"num_format": "yyyy-mm-dd"})
        moments = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        amount_formats: dict[int, Any] = {}

        def amount_format(places: int) -> Any:
            if places not in amount_formats:
                pattern = "#,##0" + ("." + "0" * places if places > 0 else "")
                amount_formats[places] = workbook.add_format({"num_format": pattern})
            return amount_formats[places]

        sheets = 0
        sheet: Any = None
        row_index = self._max_rows

        def new_sheet() -> Any:
            nonlocal sheets
            sheets += 1
            created = workbook.add_worksheet(self._sheet_name if sheets == 1 else f"{self._sheet_name} ({sheets})")
            for index, column in enumerate(columns):
                created.write_string(0, index, column.name, bold)
            created.freeze_panes(1, 0)
            return created

        try:
            for row in rows:
                if row_index >= self._max_rows:
                    sheet, row_index = new_sheet(), 1
                for index, (value, column) in enumerate(zip(row, columns, strict=True)):
                    if value is None:
                        continue
                    kind = column.kind
                    if kind is ColumnKind.AMOUNT and isinstance(value, Decimal):
                        places = max(0, -int(value.as_tuple().exponent))
                        sheet.write_number(row_index, index, value, amount_format(places))
                    elif kind in (ColumnKind.INTEGER, ColumnKind.DECIMAL) and isinstance(value, (int, Decimal)):
                        sheet.write_number(row_index, index, value)
                    elif isinstance(value, dt.datetime):
                        sheet.write_datetime(row_index, index, value.astimezone(dt.UTC), moments)
                    elif isinstance(value, dt.date):
                        sheet.write_datetime(row_index, index, value, dates)
                    else:
                        sheet.write_string(row_index, index, str(neutralise_cell(str(value))))
                row_index += 1
            if sheet is None:
                new_sheet()
        finally:
            workbook.close()


if TYPE_CHECKING:
    _check_csv: TableWriter = CsvTableWriter()
    _check_xlsx: TableWriter = XlsxTableWriter()
