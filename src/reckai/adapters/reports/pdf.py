"""A report as PDF (reportlab; docs/decisions/pdf-reports.md): a cover page, then each table under
its title with its header repeated on every page it breaks across, and the report's charts (line,
column, stacked column) drawn with reportlab's own chart library.

The PDF is the summary a person reads: each table is printed up to `max_rows` rows, with a line
saying how many there are; the full detail is in the Excel and CSV formats of the same report.
Text is escaped before it reaches reportlab's paragraph markup (a `<` in a description is text).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    CondPageBreak,
    KeepTogether,
    LongTable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)

from reckai.application.ports.exports import ColumnKind
from reckai.application.ports.reports import ReportRenderer
from reckai.application.reports.document import ReportChart, ReportDocument, ReportTable

PAGE = landscape(A4)
MAX_ROWS = 500  # per table in the PDF; the Excel and CSV formats hold every row
MAX_CELL_CHARACTERS = 300
SERIES_COLORS = (colors.HexColor("#1f77b4"), colors.HexColor("#ff7f0e"), colors.HexColor("#2ca02c"),
                 colors.HexColor("#d62728"), colors.HexColor("#9467bd"), colors.HexColor("#8c564b"),
                 colors.HexColor("#e377c2"), colors.HexColor("#7f7f7f"), colors.HexColor("#bcbd22"),
                 colors.HexColor("#17becf"))


def _text(value: Any, kind: ColumnKind) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        if kind is ColumnKind.AMOUNT:
            places = max(0, -int(value.as_tuple().exponent))
            return f"{value:,.{places}f}"
        return format(value, "f")
    if isinstance(value, int) and kind is ColumnKind.INTEGER:
        return f"{value:,}"
    text = str(value)
    return text if len(text) <= MAX_CELL_CHARACTERS else text[:MAX_CELL_CHARACTERS - 1] + "…"


class PdfReportRenderer:
    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        self._max_rows = max_rows
        styles = getSampleStyleSheet()
        self._title = styles["Title"]
        self._heading = styles["Heading2"]
        self._body = styles["BodyText"]
        self._cell = ParagraphStyle("cell", parent=styles["BodyText"], fontSize=7, leading=8.5)
        self._number = ParagraphStyle("number", parent=self._cell, alignment=TA_RIGHT)
        self._head = ParagraphStyle("head", parent=self._cell, fontName="Helvetica-Bold")

    def render(self, document: ReportDocument) -> bytes:
        buffer = io.BytesIO()
        cover = document.cover
        footer = f"{cover.organization} - {cover.title} - {cover.period}"

        def on_page(canvas: Any, doc: Any) -> None:
            canvas.saveState()
            canvas.setFont("Helvetica", 7)
            canvas.drawString(15 * mm, 8 * mm, footer[:150])
            canvas.drawRightString(PAGE[0] - 15 * mm, 8 * mm, f"page {doc.page}")
            canvas.restoreState()

        template = SimpleDocTemplate(buffer, pagesize=PAGE, leftMargin=15 * mm, rightMargin=15 * mm,
                                     topMargin=15 * mm, bottomMargin=15 * mm, title=cover.title,
                                     author=cover.generated_by, subject=f"{cover.organization}, {cover.period}",
                                     creator="ReckAI")
        story: list[Any] = self._cover(document)
        charts = {chart.table: chart for chart in document.charts}
        for table in document.tables:
            story.extend(self._table(table, template.width))
            chart = charts.get(table.name)
            if chart is not None and table.rows:
                story.append(KeepTogether([Spacer(1, 4 * mm), _chart(chart, table)]))
            story.append(Spacer(1, 6 * mm))
        template.build(story, onFirstPage=on_page, onLaterPages=on_page)
        return buffer.getvalue()

    def _cover(self, document: ReportDocument) -> list[Any]:
        cover = document.cover
        lines = [("Organization", cover.organization), ("Period", cover.period),
                 ("Data as of", _text(cover.data_as_of, ColumnKind.DATETIME)),
                 ("Generated by", cover.generated_by),
                 ("Generated at", _text(cover.generated_at, ColumnKind.DATETIME)),
                 *cover.facts]
        story: list[Any] = [Spacer(1, 25 * mm), Paragraph(escape(cover.title), self._title), Spacer(1, 8 * mm)]
        story.extend(Paragraph(f"<b>{escape(label)}:</b> {escape(value)}", self._body) for label, value in lines)
        story.append(Spacer(1, 4 * mm))
        story.append(Paragraph(f"<b>Jobs covered ({len(cover.jobs)}):</b>", self._body))
        story.extend(Paragraph(escape(job), self._body) for job in cover.jobs[:40])
        if len(cover.jobs) > 40:
            story.append(Paragraph(f"... and {len(cover.jobs) - 40} more (listed in the Excel and CSV formats)",
                                   self._body))
        story.append(Spacer(1, 6 * mm))
        story.append(Paragraph("The SHA-256 of this file is recorded in the audit trail (report.generated) and "
                               "shown by GET /api/reports/{id}; amounts are per currency, never summed across "
                               "currencies.", self._body))
        story.append(PageBreak())
        return story

    def _table(self, table: ReportTable, width: float) -> list[Any]:
        shown = list(table.rows[:self._max_rows])
        # a title is never left alone at the foot of a page: start a new one when less than this is left
        story: list[Any] = [CondPageBreak(35 * mm), Paragraph(escape(table.title), self._heading)]
        notes = [table.note] if table.note else []
        if len(table.rows) > len(shown):
            notes.append(f"the first {len(shown):,} of {len(table.rows):,} rows; every row is in the Excel and CSV "
                         "formats")
        story.extend(Paragraph(escape(note), self._body) for note in notes)
        if not shown:
            story.append(Paragraph("(no rows)", self._body))
            return story
        header = [Paragraph(escape(c.name), self._head) for c in table.columns]
        numeric = [i for i, c in enumerate(table.columns)
                   if c.kind in (ColumnKind.AMOUNT, ColumnKind.INTEGER, ColumnKind.DECIMAL)]
        styles = [self._number if i in numeric else self._cell for i in range(len(table.columns))]
        body = [[Paragraph(escape(_text(v, c.kind)), style)
                 for v, c, style in zip(row, table.columns, styles, strict=True)] for row in shown]
        widths = _widths(table, shown, width)
        grid = LongTable([header, *body], colWidths=widths, repeatRows=1)
        style = [("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                 ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde6f0")),
                 ("VALIGN", (0, 0), (-1, -1), "TOP"),
                 ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f5f7fa")])]
        grid.setStyle(TableStyle(style))
        story.append(grid)
        return story


def _widths(table: ReportTable, rows: Sequence[Sequence[Any]], width: float) -> list[float]:
    """Column widths in proportion to their longest text (header included), each at least 12 mm."""
    longest = []
    for index, column in enumerate(table.columns):
        sample = [len(_text(row[index], column.kind)) for row in rows[:200]]
        longest.append(max(6, min(60, max([len(column.name), *sample]))))
    total = sum(longest)
    widths = [max(12 * mm, width * n / total) for n in longest]
    scale = min(1.0, width / sum(widths))
    return [w * scale for w in widths]


def _number(value: Any) -> float | None:
    # a chart's coordinate only: the figures themselves are printed exactly in the tables
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return float(value)
    return None


def _chart(spec: ReportChart, table: ReportTable) -> Drawing:
    names = [c.name for c in table.columns]
    category = names.index(spec.category)
    rows = list(table.rows[:60])
    labels = [_text(row[category], table.columns[category].kind)[:12] for row in rows]
    series = [[_number(row[names.index(value)]) or 0.0 for row in rows] for value in spec.values]
    drawing = Drawing(250 * mm, 80 * mm)
    drawing.add(String(0, 75 * mm, spec.title, fontName="Helvetica-Bold", fontSize=10))
    chart: Any = HorizontalLineChart() if spec.kind == "line" else VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 15 * mm, 12 * mm, 185 * mm, 55 * mm
    chart.data = series or [[0.0]]
    chart.categoryAxis.categoryNames = labels
    chart.categoryAxis.labels.fontSize = 6
    chart.categoryAxis.labels.angle = 30 if len(labels) > 8 else 0
    chart.categoryAxis.labels.boxAnchor = "ne" if len(labels) > 8 else "n"
    chart.valueAxis.labels.fontSize = 6
    chart.valueAxis.valueMin = 0
    if spec.kind == "stacked_column":
        chart.categoryAxis.style = "stacked"
    for index in range(len(series)):
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        if spec.kind == "line":
            chart.lines[index].strokeColor = color
            chart.lines[index].strokeWidth = 1.2
        else:
            chart.bars[index].fillColor = color
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = 205 * mm, 65 * mm
    legend.fontSize = 7
    legend.alignment = "right"
    legend.colorNamePairs = [(SERIES_COLORS[i % len(SERIES_COLORS)], name[:24]) for i, name in enumerate(spec.values)]
    drawing.add(legend)
    return drawing


if TYPE_CHECKING:
    _check: ReportRenderer = PdfReportRenderer()
