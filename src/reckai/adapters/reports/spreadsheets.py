"""A report as a zip of CSVs (one file per table, the csv module) or as an Excel workbook
(xlsxwriter: one sheet per table, typed cells, frozen header, autofilter, native charts).

Every text cell goes through the formula-injection rule (domain/exports/cells.py, via the shared
table writer for CSV and `neutralise_cell` here for Excel), the cover's lines included. Amounts are
numeric cells in major units with a number format showing their decimal places.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import xlsxwriter

from reckai.adapters.spreadsheets.tables import CsvTableWriter
from reckai.application.ports.exports import Column, ColumnKind
from reckai.application.ports.reports import ReportRenderer
from reckai.application.reports.document import ReportDocument, ReportTable
from reckai.domain.exports.cells import neutralise_cell

COVER_TABLE = "cover"
_COVER_COLUMNS = (Column("field"), Column("value"))


def cover_rows(document: ReportDocument) -> list[list[str]]:
    cover = document.cover
    rows = [["report", cover.title], ["organization", cover.organization], ["period", cover.period],
            ["data_as_of", cover.data_as_of.astimezone(dt.UTC).isoformat()],
            ["generated_by", cover.generated_by],
            ["generated_at", cover.generated_at.astimezone(dt.UTC).isoformat()]]
    rows.extend(["job", job] for job in cover.jobs)
    rows.extend([label, value] for label, value in cover.facts)
    return rows


class ZippedCsvRenderer:
    """`cover.csv` then `{table}.csv` per table, in the document's order."""

    def __init__(self) -> None:
        self._writer = CsvTableWriter()

    def _csv(self, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> bytes:
        return b"".join(self._writer.chunks(columns, rows))

    def render(self, document: ReportDocument) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{COVER_TABLE}.csv", self._csv(_COVER_COLUMNS, cover_rows(document)))
            for table in document.tables:
                archive.writestr(f"{table.name}.csv", self._csv(table.columns, table.rows))
        return buffer.getvalue()


class ExcelReportRenderer:
    def render(self, document: ReportDocument) -> bytes:
        buffer = io.BytesIO()
        workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "remove_timezone": True,
                                                "strings_to_formulas": False, "strings_to_urls": False,
                                                "strings_to_numbers": False})
        try:
            formats = _Formats(workbook)
            cover = workbook.add_worksheet(COVER_TABLE)
            cover.write_string(0, 0, "field", formats.bold)
            cover.write_string(0, 1, "value", formats.bold)
            for index, (label, value) in enumerate(cover_rows(document), start=1):
                cover.write_string(index, 0, str(neutralise_cell(label)))
                cover.write_string(index, 1, str(neutralise_cell(value)))
            cover.set_column(0, 0, 18)
            cover.set_column(1, 1, 70)
            sheets = {table.name: self._sheet(workbook, formats, table) for table in document.tables}
            for chart_spec in document.charts:
                table = document.table(chart_spec.table)
                sheet = sheets[table.name]
                if not table.rows:
                    continue
                names = [c.name for c in table.columns]
                category = names.index(chart_spec.category)
                kind = {"line": ("line", None), "column": ("column", None),
                        "stacked_column": ("column", "stacked")}[chart_spec.kind]
                chart = workbook.add_chart({"type": kind[0], **({"subtype": kind[1]} if kind[1] else {})})
                last = len(table.rows)
                for value in chart_spec.values:
                    column = names.index(value)
                    chart.add_series({"name": [sheet.name, 0, column],
                                      "categories": [sheet.name, 1, category, last, category],
                                      "values": [sheet.name, 1, column, last, column]})
                chart.set_title({"name": chart_spec.title})
                sheet.insert_chart(1, len(names) + 1, chart)
        finally:
            workbook.close()
        return buffer.getvalue()

    def _sheet(self, workbook: Any, formats: _Formats, table: ReportTable) -> Any:
        sheet = workbook.add_worksheet(table.name[:31])
        for index, column in enumerate(table.columns):
            sheet.write_string(0, index, str(neutralise_cell(column.name)), formats.bold)
            sheet.set_column(index, index, max(12, min(40, len(column.name) + 2)))
        for row_index, row in enumerate(table.rows, start=1):
            for index, (value, column) in enumerate(zip(row, table.columns, strict=True)):
                _write(sheet, formats, row_index, index, value, column.kind)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(len(table.rows), 1), len(table.columns) - 1)
        return sheet


class _Formats:
    def __init__(self, workbook: Any) -> None:
        self._workbook = workbook
        self.bold = workbook.add_format({"bold": True})
        self.date = workbook.add_format({"num_format": "yyyy-mm-dd"})
        self.moment = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.ratio = workbook.add_format({"num_format": "0.00"})
        self._amounts: dict[int, Any] = {}

    def amount(self, places: int) -> Any:
        if places not in self._amounts:
            pattern = "#,##0" + ("." + "0" * places if places > 0 else "")
            self._amounts[places] = self._workbook.add_format({"num_format": pattern})
        return self._amounts[places]


def _write(sheet: Any, formats: _Formats, row: int, column: int, value: Any, kind: ColumnKind) -> None:
    if value is None:
        return
    if kind is ColumnKind.AMOUNT and isinstance(value, Decimal):
        sheet.write_number(row, column, value, formats.amount(max(0, -int(value.as_tuple().exponent))))
    elif kind is ColumnKind.INTEGER and isinstance(value, int):
        sheet.write_number(row, column, value)
    elif kind is ColumnKind.DECIMAL and isinstance(value, (int, Decimal)):
        sheet.write_number(row, column, value, formats.ratio)
    elif isinstance(value, dt.datetime):
        sheet.write_datetime(row, column, value.astimezone(dt.UTC), formats.moment)
    elif isinstance(value, dt.date):
        sheet.write_datetime(row, column, value, formats.date)
    else:
        sheet.write_string(row, column, str(neutralise_cell(str(value))))


if TYPE_CHECKING:
    _check_csv: ReportRenderer = ZippedCsvRenderer()
    _check_excel: ReportRenderer = ExcelReportRenderer()
