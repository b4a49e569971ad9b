"""The fast paths of the delimited reader and the normalizer give what the general paths give.

- `_native_records` (polars' CSV reader) against the line-by-line reader `_plain_records`: same
  rows, line numbers, skipped lines; and it is taken whenever every line is exactly as wide as the
  header (it must decline otherwise, so that ragged rows are reported).
- `_plain_records` on lines holding quoted fields (the csv module reads just those lines) against
  the record-following reader `_quoted_records`: the same, whenever every record is one line; it
  declines (None) when a quoted field spans lines or the quoting is malformed.
- `raw` built by concatenation against polars' struct JSON encoder.
- coalesce sources and date formats that only look at the rows still empty.
(The plain-amount path is property-tested against the reference parser in test_ingestion_amounts.)
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reckai.adapters.charset.detector import detect_encoding
from reckai.adapters.polars.normalize import normalize_file
from reckai.adapters.polars.readers import (
    _lines_series,
    _native_records,
    _plain_records,
    _quoted_records,
    read_delimited_text,
    read_table,
)
from reckai.adapters.polars.source_table import LINE_NUMBER, SourceTable
from reckai.domain.ingestion.delimited import footer_regex
from reckai.domain.ingestion.errors import IngestionError
from reckai.domain.ingestion.mapping import ParseSettings
from reckai.domain.ingestion.sniffing import sniff_ascii_head, sniff_decoded

CELL_CHARS = st.sampled_from(list("abcXYZ019 .-:/") + ["\t", "\\", "\x01", "é", "₦", "\u2028"])
CELLS = st.lists(CELL_CHARS, max_size=6).map("".join)


@st.composite
def regions(draw: st.DrawFn) -> tuple[str, str, int]:
    """(delimiter, the text after the header, width): clean, ragged, blank and trailer lines."""
    delimiter = draw(st.sampled_from([",", ";", "|", "\t"]))
    width = draw(st.integers(min_value=2, max_value=5))
    lines = []
    for _ in range(draw(st.integers(min_value=1, max_value=12))):
        kind = draw(st.sampled_from(["row"] * 6 + ["short", "wide", "blank", "spaces", "empty"]))
        cells = [c.replace(delimiter, "") for c in draw(st.lists(CELLS, min_size=width, max_size=width))]
        if kind == "short":
            cells = cells[:-1]
        elif kind == "wide":
            cells = [*cells, "x"]
        elif kind == "blank":
            cells = [""] * width
        elif kind == "spaces":
            cells = [" "] * width
        lines.append("" if kind == "empty" else delimiter.join(cells))
    lines += draw(st.lists(st.sampled_from(["TOTAL" + delimiter * (width - 1), "END OF REPORT", ""]),
                           max_size=3))
    text = "\n".join(lines) + draw(st.sampled_from(["", "\n"]))
    return delimiter, text, width


def _native_is_possible(text: str, delimiter: str, width: int) -> bool:
    """Every line before the trailer block holds exactly width - 1 delimiters.

    The trailer block: walking back from the end over blank lines, the lines the footer pattern
    matches; the data part ends where its first line starts.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    end = len(lines)
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].replace(delimiter, "").strip(" \t") == "":
            continue
        if footer_regex(None).search(lines[i].strip()):
            end = i
            continue
        break
    body = lines[:end]
    return bool(body) and all(line.count(delimiter) == width - 1 for line in body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=regions())
@example(case=(",", ",\t", 2))  # found in CI: a tab trimmed off a cell made json_safe conservative
@example(case=(",", "a,b\n\t,\nc,d\n", 2))  # a blank line whose first cell is a tab
@example(case=(";", "a;b\n \t; \nc;d\n", 2))  # ... a space, then a tab
def test_native_reader_agrees_with_the_line_reader(case: tuple[str, str, int]) -> None:
    delimiter, text, width = case
    columns = [f"col{i}" for i in range(width)]
    raw = text.encode("utf-8")
    footer = footer_regex(None)
    line_frame, line_errors, line_skipped = _plain_records(_lines_series(raw, text), 7, delimiter, columns,
                                                           footer)
    native = _native_records(raw, 0, 7, delimiter, columns, footer)
    if native is None:
        assert not _native_is_possible(text, delimiter, width)
        return
    (frame, errors, skipped), json_safe = native
    assert errors == line_errors == []
    assert frame.equals(line_frame) and frame.schema == line_frame.schema
    assert skipped == line_skipped
    cells = [v for row in frame.select(columns).iter_rows() for v in row]
    # json_safe vouches that no cell needs JSON escaping (then `raw` is built by concatenation); it may
    # be conservative (a tab trimmed off a cell still counts), never optimistic.
    if json_safe:
        assert not any(c in v for v in cells for c in ("\\", "\t", "\x01"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=regions(), head=st.sampled_from(["", "h1,h2\n", "\ufeffname;x\n", 'Statement "Dec"\nPeriod: 1\n\na|b\n']))
def test_native_reader_reads_the_data_in_place_after_the_header_lines(case: tuple[str, str, int], head: str) -> None:
    """Given the whole buffer and the data's start, the native reader skips the lines before it
    (no copy of the body) and gives what it gives for the body alone, or declines as it does."""
    delimiter, text, width = case
    columns = [f"col{i}" for i in range(width)]
    footer = footer_regex(None)
    body = text.encode("utf-8")
    alone = _native_records(body, 0, 7, delimiter, columns, footer)
    in_place = _native_records(head.encode("utf-8") + body, len(head.encode("utf-8")), 7, delimiter, columns, footer)
    if alone is None:
        assert in_place is None
        return
    assert in_place is not None
    (frame, errors, skipped), json_safe = in_place
    assert frame.equals(alone[0][0]) and errors == alone[0][1] and skipped == alone[0][2]
    assert json_safe == alone[1]


QUOTED_CELL_CHARS = st.sampled_from(list('abcXYZ019 .-:/""') + ["\t", "\\", "é", "₦", ",", ";", "|"] * 2 + ["\n"])


def _csv_cell(cell: str, delimiter: str, style: str) -> str:
    """One cell as a CSV writer might put it: quoted (quotes doubled), bare, or broken quoting."""
    if style == "quoted" or (style == "bare" and any(c in cell for c in (delimiter, '"', "\n"))):
        return '"' + cell.replace('"', '""') + '"'
    if style == "unbalanced":
        return '"' + cell
    return cell


@st.composite
def quoted_regions(draw: st.DrawFn) -> tuple[str, str, int]:
    """(delimiter, the text after the header, width) with quoted cells, ragged, blank and trailer lines."""
    delimiter = draw(st.sampled_from([",", ";", "|", "\t"]))
    width = draw(st.integers(min_value=2, max_value=4))
    styles = st.sampled_from(["bare"] * 4 + ["quoted"] * 3 + (["unbalanced"] if draw(st.booleans()) else []))
    lines = []
    for _ in range(draw(st.integers(min_value=1, max_value=10))):
        count = draw(st.sampled_from([width] * 6 + [width - 1, width + 1]))
        cells = draw(st.lists(st.lists(QUOTED_CELL_CHARS, max_size=5).map("".join), min_size=count, max_size=count))
        lines.append(delimiter.join(_csv_cell(c, delimiter, draw(styles)) for c in cells))
    lines += draw(st.lists(st.sampled_from(["", '"",""', "TOTAL" + delimiter * (width - 1), '"END OF REPORT"']),
                           max_size=3))
    return delimiter, "\n".join(lines) + draw(st.sampled_from(["", "\n"])), width


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=quoted_regions())
@example(case=(",", 'a,"b,c"\n"x""y",z\n\n"",""\n', 2))
@example(case=(",", 'a,"b\nc"\nd,e\n', 2))
def test_line_reader_with_quoted_lines_agrees_with_the_record_reader(case: tuple[str, str, int]) -> None:
    delimiter, text, width = case
    columns = [f"col{i}" for i in range(width)]
    footer = footer_regex(None)
    by_line = _plain_records(_lines_series(text.encode("utf-8"), text), 7, delimiter, columns, footer)
    try:
        by_record = _quoted_records(text.split("\n"), 7, delimiter, columns, footer)
    except IngestionError:
        assert by_line is None  # malformed quoting: the caller takes the record reader, which says so
        return
    if by_line is None:  # declined: some record really spans lines
        assert by_record[0].height + len(by_record[1]) < len([x for x in text.split("\n") if x])
        return
    frame, errors, skipped = by_line
    assert frame.equals(by_record[0]) and frame.schema == by_record[0].schema
    assert errors == by_record[1]
    assert skipped == by_record[2]


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(CELLS, CELLS), min_size=1, max_size=20))
@example(rows=[("", "\x01\x01\x01")])  # was refused as a binary file before the memo column
def test_raw_is_the_json_of_the_source_row_on_either_path(rows: list[tuple[str, str]]) -> None:
    # A long memo keeps control characters under the sniffer's 5 % "binary file" threshold.
    memo = "m" * 300
    lines = ["date,amount,note,other,memo"]
    lines += [f"2025-01-02,1.00,{note.replace(',', '')},{other.replace(',', '')},{memo}" for note, other in rows]
    mapping = {"parse": {"delimiter": ","}, "fields": {
        "amount": {"column": "amount"}, "direction": {"constant": "debit"}, "currency": {"constant": "NGN"},
        "transaction_date": {"column": "date", "formats": ["%Y-%m-%d"]}}}
    result = normalize_file(("\n".join(lines) + "\n").encode("utf-8"), mapping, "x.csv")
    source = pl.DataFrame([line.split(",") for line in lines[1:]], schema=lines[0].split(","), orient="row")
    expected = source.select(pl.struct(pl.all()).struct.json_encode()).to_series().to_list()
    assert result.frame["raw"].to_list() == expected
    assert [json.loads(r)["note"] for r in expected] == source["note"].to_list()


QUOTING_CELLS = st.lists(st.sampled_from(list('abc019 ,"') + ["\\", "é"]), max_size=6).map("".join)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(QUOTING_CELLS, QUOTING_CELLS), min_size=1, max_size=20))
@example(rows=[('a,b', 'x"y'), ("", "plain")])
def test_raw_is_the_json_of_the_source_row_when_cells_are_quoted(rows: list[tuple[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # quotes a cell holding a comma or a quote
    writer.writerow(["date", "amount", "note", "other"])
    writer.writerows(["2025-01-02", "1.00", note, other] for note, other in rows)
    mapping = {"parse": {"delimiter": ","}, "fields": {
        "amount": {"column": "amount"}, "direction": {"constant": "debit"}, "currency": {"constant": "NGN"},
        "transaction_date": {"column": "date", "formats": ["%Y-%m-%d"]}}}
    result = normalize_file(buffer.getvalue().encode("utf-8"), mapping, "x.csv")
    expected = [json.dumps(dict(zip(["date", "amount", "note", "other"], ["2025-01-02", "1.00", note, other],
                                    strict=True)), ensure_ascii=False, separators=(",", ":")) for note, other in rows]
    assert [json.loads(r) for r in result.frame["raw"].to_list()] == [json.loads(e) for e in expected]


REFERENCE_CELLS = st.sampled_from(["", " ", "111111111111", " 222222222222 "])
NARRATIONS = st.sampled_from(["POS RRN:333333333333 X", "no rrn here", "", "RRN:44444444444 short"])
DATES = st.sampled_from(["2025-01-02 03:04:05", "02/01/2025", "2025-01-02", "bad", ""])


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(REFERENCE_CELLS, NARRATIONS, DATES), min_size=1, max_size=25))
def test_coalesce_and_date_formats_take_the_first_source_that_has_a_value(
        rows: list[tuple[str, str, str]]) -> None:
    lines = ["reference,narration,date,amount"] + [f"{r},{n},{d},1.00" for r, n, d in rows]
    formats = ["%Y-%m-%d %H:%M:%S", "%d/%m/%Y"]
    mapping = {"parse": {"delimiter": ","}, "fields": {
        "amount": {"column": "amount"}, "direction": {"constant": "credit"}, "currency": {"constant": "NGN"},
        "transaction_date": {"column": "date", "formats": formats},
        "reference": {"coalesce": [{"column": "reference"},
                                   {"column": "narration", "regex": "RRN:(\\d{12})"},
                                   {"column": "narration", "regex": "(rrn)", "default": "none"}]}}}
    result = normalize_file(("\n".join(lines) + "\n").encode("utf-8"), mapping, "x.csv")
    expected_refs: dict[int, str] = {}
    expected_dates: dict[int, tuple[dt.datetime, bool]] = {}
    for number, (reference, narration, date) in enumerate(rows, start=1):
        regex_hit = narration.split("RRN:")[1][:12] if "RRN:3" in narration else None
        expected_refs[number] = reference.strip() or regex_hit or ("rrn" if "rrn" in narration else "none")
        for fmt in formats:
            try:
                expected_dates[number] = (dt.datetime.strptime(date, fmt), "%H" in fmt)
                break
            except ValueError:
                continue
    got = {r["row_number"]: r for r in result.frame.iter_rows(named=True)}
    assert set(got) == set(expected_dates)  # rows without a parseable date are errors, not output
    for number, row in got.items():
        assert row["reference"] == expected_refs[number]
        assert (row["transaction_date"], row["has_time"]) == expected_dates[number]
    failed = {e.row_number for e in result.errors}
    assert failed == set(range(1, len(rows) + 1)) - set(expected_dates)


@st.composite
def empty_quoted_regions(draw: st.DrawFn) -> tuple[str, str, int]:
    """Regions whose only quotes write empty fields (`""`), now and then a quote inside a field."""
    delimiter = draw(st.sampled_from([",", ";", "|", "\t"]))
    width = draw(st.integers(min_value=2, max_value=4))
    cell = st.one_of(st.just('""'), st.just(""), st.text(alphabet="ab 1-", max_size=3),
                     st.sampled_from(['x""y', '"a""b"', '"', '"""']) if draw(st.booleans()) else st.just('""'))
    lines = []
    for _ in range(draw(st.integers(min_value=1, max_value=10))):
        count = draw(st.sampled_from([width] * 6 + [width - 1, width + 1]))
        lines.append(delimiter.join(draw(st.lists(cell, min_size=count, max_size=count))))
    lines += draw(st.lists(st.sampled_from(["", '""', "TOTAL" + delimiter * (width - 1)]), max_size=2))
    return delimiter, "\n".join(lines) + draw(st.sampled_from(["", "\n"])), width


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=empty_quoted_regions())
@example(case=(",", 'a,""\n"",""\n"",b\n', 2))
@example(case=(",", 'a,"",""\nb,c,d\n', 3))
@example(case=(",", ',\n\n,\n,\n,1,', 2))  # a wide last line without its newline
def test_empty_quoted_fields_take_the_native_reader_and_read_as_the_record_reader(
        case: tuple[str, str, int]) -> None:
    from reckai.adapters.polars.readers import _without_empty_quoted_fields

    delimiter, text, width = case
    columns = [f"col{i}" for i in range(width)]
    footer = footer_regex(None)
    unquoted = _without_empty_quoted_fields(text.encode("utf-8"), delimiter)
    if unquoted is None:  # another quote, or a last line of just "" (no final newline) that would vanish
        other_quote = any(field != '""' and '"' in field for line in text.split("\n") for field in line.split(delimiter))
        assert other_quote or text.split("\n")[-1] == '""'
        return
    assert len(unquoted) == len(text.encode("utf-8")) - 2 * text.count('""')
    native = _native_records(unquoted, 0, 7, delimiter, columns, footer)
    try:
        by_record = _quoted_records(text.split("\n"), 7, delimiter, columns, footer)
    except IngestionError:
        raise AssertionError("only empty quoted fields, yet the record reader refused the text") from None
    if native is None:  # ragged, blank or trailer lines: the line path runs, as before
        return
    (frame, errors, skipped), _ = native
    assert frame.equals(by_record[0]) and frame.schema == by_record[0].schema
    assert errors == by_record[1]
    assert skipped == by_record[2]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=empty_quoted_regions(), head=st.sampled_from(["h1,h2\n", "\ufeffname;x\n", "Statement\n\na|b\n"]))
@example(case=(",", '"",a\n', 2), head="h1,h2\n")
@example(case=(",", '""', 2), head="h1,h2\n")
def test_empty_quoted_fields_are_unquoted_in_place_after_unquoted_header_lines(
        case: tuple[str, str, int], head: str) -> None:
    """The reader drops the `""` of the whole buffer when the lines before the data hold no quote
    (no copy of the region first): what it reads is what it reads from the region alone."""
    from reckai.adapters.polars.readers import _without_empty_quoted_fields

    delimiter, text, width = case
    columns = [f"col{i}" for i in range(width)]
    footer = footer_regex(None)
    body, prefix = text.encode("utf-8"), head.encode("utf-8")
    alone = _without_empty_quoted_fields(body, delimiter)
    whole = _without_empty_quoted_fields(prefix + body, delimiter)
    if alone is not None and whole is not None:
        assert whole == prefix + alone
    # None (the slower paths read the file) exactly when the region alone gives None
    in_place = None if whole is None else _native_records(whole, len(prefix), 7, delimiter, columns, footer)
    from_region = None if alone is None else _native_records(alone, 0, 7, delimiter, columns, footer)
    assert (in_place is None) == (from_region is None)
    if in_place is not None and from_region is not None:
        assert in_place[0][0].equals(from_region[0][0])
        assert in_place[0][1:] == from_region[0][1:] and in_place[1] == from_region[1]


def _by_replacing(region: bytes, delimiter: str) -> bytes | None:
    """`_without_empty_quoted_fields` as it was first written (the four delimiter/newline patterns
    of `""` replaced until none is left, then the buffer's two ends): the definition the
    quote-by-quote version must agree with."""
    separator = delimiter.encode("utf-8")
    if len(separator) != 1:
        return None
    body = region
    for before in (separator, b"\n"):
        for after in (separator, b"\n"):
            token = before + b'""' + after
            while True:  # twice or more when empty fields are adjacent
                replaced = body.replace(token, before + after)
                if len(replaced) == len(body):
                    break
                body = replaced
                if b'"' not in body:  # the usual case: one pattern, one pass (a scan for a byte is cheap)
                    return body
    if body.startswith(b'""') and body[2:3] in (b"", separator, b"\n"):
        body = body[2:]
    if body.endswith(b'""') and body[-3:-2] in (b"", separator, b"\n"):
        if body[-3:-2] != separator:  # a last line of just `""`, no final newline: it would vanish
            return None
        body = body[:-2]
    return None if b'"' in body else body


@settings(max_examples=1000, deadline=None)
@given(text=st.lists(st.sampled_from(['a', ',', ';', '\n', '"', '""', ',"",', '\n""']), max_size=14).map("".join),
       delimiter=st.sampled_from([",", ";"]))
@example(text='""', delimiter=",")
@example(text='a\n""', delimiter=",")
@example(text='"",""\n""', delimiter=",")
def test_empty_quoted_fields_are_dropped_quote_by_quote_as_by_replacing(text: str, delimiter: str) -> None:
    from reckai.adapters.polars.readers import _without_empty_quoted_fields

    region = text.encode("utf-8")
    assert _without_empty_quoted_fields(region, delimiter) == _by_replacing(region, delimiter)


def _large_file(body_line: str, *, rows: int = 3_500, preamble: str = "", trailer: str = "", newline: str = "\n",
                odd_line: tuple[int, str] | None = None) -> bytes:
    lines = [f"{body_line}{i}" for i in range(rows)]
    if odd_line is not None:
        lines[odd_line[0]] = odd_line[1]
    text = preamble + "date,reference,narration,amount\n" + "\n".join(lines) + "\n" + trailer
    return text.replace("\n", newline).encode("utf-8")


def _read_whole(data: bytes, settings: ParseSettings) -> SourceTable:
    """The reader as it was: the whole file decoded before anything is read."""
    info, decoded = sniff_decoded(data, "x.csv", detector=detect_encoding)
    assert decoded is not None
    return read_delimited_text(decoded, info, settings, region_bytes=data)


LARGE_CASES = {
    "plain": _large_file("2025-12-01,1234567890,POS PURCHASE SHOPRITE IKEJA RRN 1234567890 with a long narration,-1500.25"),
    "preamble and trailer": _large_file("2025-12-01,123,narration,-1.50", preamble="Statement of account\nPeriod: Dec\n\n",
                                        trailer="\nTOTAL,,,-99\nEND OF REPORT\n", rows=12_000),
    "crlf": _large_file("2025-12-01,123,narration text,-1.50", newline="\r\n", rows=9_000),
    "quoted empty fields": _large_file('2025-12-01,"",narration text,-1.50', rows=9_000),
    "quoted field far down": _large_file("2025-12-01,123,narration text,-1.50", rows=9_000,
                                         odd_line=(8_000, '2025-12-01,123,"narration, quoted",-1.50')),
    "ragged row far down": _large_file("2025-12-01,123,narration text,-1.50", rows=9_000,
                                       odd_line=(8_500, "2025-12-01,123,-1.50")),
    "non-ASCII far down": _large_file("2025-12-01,123,narration text,-1.50", rows=9_000,
                                      odd_line=(8_500, "2025-12-01,123,café ₦,-1.50")),
    "backslash far down": _large_file("2025-12-01,123,narration text,-1.50", rows=9_000,
                                      odd_line=(8_500, "2025-12-01,123,a\\b,-1.50")),
    "semicolons": _large_file("2025-12-01;123;narration text;-1,50", rows=9_000).replace(b",", b";"),
    "no final newline": _large_file("2025-12-01,123,narration text,-1.50", rows=9_000)[:-1],
    "no header": b"1,2,3,4\n" * 80_000,
    "blank lines inside": _large_file("2025-12-01,123,narration text,-1.50", rows=9_000, odd_line=(7_000, ",,,")),
}


@pytest.mark.parametrize("name", sorted(LARGE_CASES))
@pytest.mark.parametrize("header_row", [None, 1])
def test_a_large_ascii_file_sniffed_from_its_head_reads_as_the_whole(name: str, header_row: int | None) -> None:
    """read_table decodes only the head of a large ASCII file (sniff_ascii_head); the table, its
    errors and skipped lines, and any error raised, are what reading the whole decoded file gives."""
    data = LARGE_CASES[name]
    settings = ParseSettings(header_row=header_row + (3 if name == "preamble and trailer" else 0)
                             if header_row else None)
    try:
        expected: SourceTable | str = _read_whole(data, settings)
    except IngestionError as exc:
        expected = f"{type(exc).__name__}: {exc.message}"
    try:
        got: SourceTable | str = read_table(data, settings, "x.csv")
    except IngestionError as exc:
        got = f"{type(exc).__name__}: {exc.message}"
    if isinstance(expected, str) or isinstance(got, str):
        assert got == expected
        return
    assert got.frame.equals(expected.frame) and got.frame.schema == expected.frame.schema
    assert (got.columns, got.content, got.row_errors, got.skipped_lines, got.header_line, got.json_safe_cells) == \
        (expected.columns, expected.content, expected.row_errors, expected.skipped_lines, expected.header_line,
         expected.json_safe_cells)
    assert (sniff_ascii_head(data, "x.csv") is not None) == data.isascii()  # the shortcut was taken


def test_the_head_sniffer_declines_what_it_cannot_prove() -> None:
    data = LARGE_CASES["plain"]
    assert sniff_ascii_head(data[:200_000]) is None  # small: decoding it all is cheap
    assert sniff_ascii_head(data.replace(b"POS", b"P\x00S", 1)) is None  # NUL: maybe UTF-16
    assert sniff_ascii_head(codecs.BOM_UTF8 + data) is None  # not ASCII
    assert sniff_ascii_head(b" \n" * 200_000 + data) is None  # a blank head: the whole may be blank
    bai2 = b"01,SENDER,RECEIVER,251201,0800,1,80,,2/\n" + b"16,195,150,0,,,NARRATION/\n" * 20_000 + b"99,0,1,3/\n"
    assert sniff_ascii_head(bai2) is None  # BAI2 is recognised by its trailer too


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.one_of(quoted_regions(), empty_quoted_regions()), head=st.sampled_from(["", "h1,h2\n", "Statement\n\na|b\n"]))
@example(case=(",", 'a,"b,c"\n"x""y",z\n\n"",""\n', 2), head="")
@example(case=(",", 'a,"b\nc"\nd,e\n', 2), head="h1,h2\n")
@example(case=(",", '"ab"c,d\n"x" ,y\n', 2), head="")
@example(case=(",", 'a,""\n"",""\nTOTAL,\n"",""\n', 2), head="")
def test_native_reader_following_quotes_agrees_with_the_record_reader(case: tuple[str, str, int], head: str) -> None:
    """polars following the quotes itself (no copy of the file): whenever the byte count proves
    the quotes only enclose whole fields, what it reads is what the csv module reads, row numbers,
    lines, blank and trailer lines included, in place after unquoted header lines too."""
    delimiter, text, width = case
    columns = [f"col{i}" for i in range(width)]
    footer = footer_regex(None)
    prefix = head.encode("utf-8")
    native = _native_records(prefix + text.encode("utf-8"), len(prefix), 7, delimiter, columns, footer, quoted=True)
    if native is None:
        return  # declined: the line and record readers take the file, as before
    by_record = _quoted_records(text.split("\n"), 7, delimiter, columns, footer)
    (frame, errors, skipped), json_safe = native
    assert frame.equals(by_record[0]) and frame.schema == by_record[0].schema
    assert errors == by_record[1]
    assert skipped == by_record[2]
    cells = [cell for row in frame.select(columns).iter_rows() for cell in row]
    assert json_safe == all(cell is None or not any(c == "\\" or c < " " or c == '"' for c in cell) for cell in cells)


def test_a_statement_with_empty_quoted_references_is_read_by_polars_following_the_quotes() -> None:
    """The bench statement's shape (`""` for a missing reference): the native reader takes it whole."""
    text = 'd,r,n\n' + "".join(f'2025-12-0{i % 9 + 1},{"" if i % 3 else chr(34) * 2},POS {i}\n' for i in range(40))
    native = _native_records(text.encode("ascii"), len("d,r,n\n"), 2, ",", ["d", "r", "n"], footer_regex(None),
                             quoted=True)
    assert native is not None
    (frame, errors, skipped), json_safe = native
    assert frame.height == 40 and not errors and not skipped and json_safe
    assert frame.get_column("r").to_list() == ["" for _ in range(40)]
    assert frame.get_column(LINE_NUMBER).to_list() == list(range(2, 42))
