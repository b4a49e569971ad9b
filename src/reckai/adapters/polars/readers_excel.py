"""Excel (.xlsx / .xls) into a SourceTable through fastexcel (calamine), every cell as text.

Callers reach this only after `inspect_content` has counted the inflated bytes of an .xlsx (calamine
has no decompression limit) or checked the OLE2 signature of an .xls.

Excel stores numbers as binary doubles; calamine turns them into their shortest decimal text
("0.29"), which is the value the user typed. Formula results can carry binary noise
("1250.7900000000002"): like Excel's own display, such cells are cut to 15 significant digits.
"""

from __future__ import annotations

import re
from decimal import Decimal

import fastexcel
import polars as pl

from reckai.adapters.polars.non_transactions import skip_non_transactions
from reckai.adapters.polars.source_table import LINE_NUMBER, ROW_NUMBER, SourceTable
from reckai.domain.ingestion.delimited import find_header, footer_regex, header_names
from reckai.domain.ingestion.errors import HeaderNotFound, InvalidWorkbook, NoDataRows, RowError
from reckai.domain.ingestion.mapping import ParseSettings
from reckai.domain.ingestion.sniffing import ContentInfo

_SAMPLE_ROWS = 60
_TRAILER_LOOKBACK = 50
_NOISY_FLOAT = r"^-?[0-9]+\.[0-9]{10,}$"
_NOISY = re.compile(_NOISY_FLOAT)


def _excel_display(text: str) -> str:
    """A double's text cut to Excel's 15 significant digits, trailing zeros removed."""
    value = Decimal(text)
    rounded = format(value, ".15g") if value else "0"
    if "e" in rounded or "E" in rounded:
        rounded = format(Decimal(rounded), "f")
    if "." in rounded:
        rounded = rounded.rstrip("0").rstrip(".")
    return rounded


def read_workbook(data: bytes, info: ContentInfo, settings: ParseSettings) -> SourceTable:
    try:
        reader = fastexcel.read_excel(data)
        names = reader.sheet_names
        sheet = settings.sheet if settings.sheet is not None else 0
        if isinstance(sheet, int) and not 0 <= sheet < len(names):
            raise InvalidWorkbook(f"the workbook has no sheet number {sheet} (sheets: {', '.join(names)})",
                                  sheets=names)
        if isinstance(sheet, str) and sheet not in names:
            raise InvalidWorkbook(f"the workbook has no sheet {sheet!r} (sheets: {', '.join(names)})",
                                  sheets=names)
        # skip_rows=0: leading empty rows are kept, so a row's position is its spreadsheet row (the
        # default skips them, and "row 23" was then spreadsheet row 28)
        raw = reader.load_sheet(sheet, header_row=None, dtypes="string", skip_rows=0).to_polars()
        sheet_name = names[sheet] if isinstance(sheet, int) else sheet
    except fastexcel.FastExcelError as exc:
        raise InvalidWorkbook(f"the workbook could not be read ({str(exc).splitlines()[0]})") from exc
    if raw.width == 0 or raw.height == 0:
        raise NoDataRows("the sheet is empty")
    positional = [f"c{i}" for i in range(raw.width)]
    raw = raw.rename(dict(zip(raw.columns, positional)))
    raw = raw.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(LINE_NUMBER))
    blank = pl.all_horizontal([pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in positional])
    raw = raw.with_columns(blank.alias("__blank"))
    non_blank = raw.filter(~pl.col("__blank"))
    sample = [(line, ["" if v is None else v for v in cells]) for line, *cells in
              non_blank.head(_SAMPLE_ROWS).select(LINE_NUMBER, *positional).iter_rows()]
    if settings.header_row is not None:
        found = [r for r in sample if r[0] == settings.header_row]
        if not found:
            raise HeaderNotFound(f"parse.header_row {settings.header_row} is empty or beyond the first rows",
                                 header_row=settings.header_row)
        header_line, header_cells = found[0]
    else:
        header_line, header_cells = find_header(sample)
    # Columns right of the last named header cell that hold nothing are the used range's slack.
    last_named = max(i for i, cell in enumerate(header_cells) if cell.strip())
    columns = header_names(header_cells[: last_named + 1])
    kept = positional[: last_named + 1]
    skipped: list[tuple[int, str]] = [(line, "preamble") for line, _ in sample if line < header_line]
    body = raw.filter(pl.col(LINE_NUMBER) > header_line)
    footer = footer_regex(settings.skip_footer_pattern)
    tail = body.filter(~pl.col("__blank")).tail(_TRAILER_LOOKBACK)
    trailer_lines: list[int] = []
    for line, *cells in reversed(tail.select(LINE_NUMBER, *positional).rows()):
        if footer.search(" ".join(c for c in cells if c).strip()):
            trailer_lines.append(line)
            continue
        break
    skipped.extend((line, "trailer") for line in sorted(trailer_lines))
    first_trailer = min(trailer_lines) if trailer_lines else None
    if first_trailer is not None:
        body = body.filter(pl.col(LINE_NUMBER) < first_trailer)
    skipped.extend((int(line), "blank line") for line in body.filter(pl.col("__blank"))[LINE_NUMBER])
    # Cells right of the header with a value: those rows are ragged, reported, never silently cut.
    extra = positional[last_named + 1:]
    body = body.filter(~pl.col("__blank")).with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_NUMBER))
    row_errors: list[RowError] = []
    if extra:
        overflow = pl.any_horizontal([pl.col(c).is_not_null() & (pl.col(c).str.strip_chars() != "")
                                      for c in extra])
        ragged = body.filter(overflow)
        row_errors = [RowError(row_number=r, line_number=ln, column=None, value=None,
                               reason=f"cells beyond the {len(columns)} header columns hold values")
                      for r, ln in ragged.select(ROW_NUMBER, LINE_NUMBER).iter_rows()]
        body = body.filter(~overflow)
    for c in kept:
        if body[c].str.contains(_NOISY_FLOAT).any():
            body = body.with_columns(pl.col(c).map_elements(
                lambda v: _excel_display(v) if _NOISY.match(v) else v, return_dtype=pl.String))
    frame = body.select(ROW_NUMBER, LINE_NUMBER, *kept).rename(dict(zip(kept, columns)))
    source = skip_non_transactions(SourceTable(frame=frame, columns=columns, content=info, row_errors=row_errors,
                                               skipped_lines=skipped, header_line=header_line,
                                               sheet_name=sheet_name), settings)
    if source.frame.height == 0 and not source.row_errors:
        raise NoDataRows("the sheet has a header but no data rows", header_line=header_line)
    return source
