"""Workbooks, XML (row path, camt.053) and MT940 into canonical rows."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import openpyxl
import pytest
import xlwt

from reckai.adapters.polars.normalize import normalize_file, propose_file_mapping
from reckai.adapters.polars.readers import inspect_content, read_table
from reckai.domain.ingestion.errors import InvalidWorkbook
from reckai.domain.ingestion.mapping import ParseSettings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures_data"

MAPPING = {"parse": {}, "fields": {
    "amount": {"column": "Amount"},
    "direction": {"from_sign": {"negative": "debit", "positive": "credit"}},
    "currency": {"constant": "NGN"},
    "transaction_date": {"column": "Date"},
    "reference": {"column": "Ref"},
}}


def xlsx_bytes() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Statement"
    sheet.append(["Account Statement for ACME LTD"])
    sheet.append([])
    sheet.append(["Date", "Amount", "Ref", "Narration"])
    sheet.append([dt.datetime(2025, 12, 1, 10, 5, 3), -1250.5, "000123", "POS"])
    sheet.append([dt.datetime(2025, 12, 2), 0.29, 123456789012, "ATM"])
    sheet.append([dt.datetime(2025, 12, 3), "=0.1+0.2", "X1", "formula"])  # float noise if cached
    sheet.append(["TOTAL", -1249.91, None, None])
    book.create_sheet("Other").append(["nothing here"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_xlsx_with_preamble_and_total_row() -> None:
    data = xlsx_bytes()
    info = inspect_content(data, "statement.xlsx")
    assert (info.format, info.kind) == ("excel", "xlsx") and info.inflated_bytes and info.inflated_bytes > 0
    result = normalize_file(data, MAPPING, filename="statement.xlsx")
    # openpyxl writes no cached value for the formula: the cell is empty, so the row is an error
    assert result.frame.select("row_number", "amount_minor", "direction", "reference").rows() == [
        (1, 125050, "debit", "000123"), (2, 29, "credit", "123456789012")]
    assert [(e.row_number, e.reason) for e in result.errors] == [(3, "amount missing")]
    assert result.header_line == 3
    assert (7, "trailer") in result.skipped_lines
    assert result.frame["transaction_date"][0] == dt.datetime(2025, 12, 1, 10, 5, 3)


def test_xlsx_sheet_by_name_and_unknown_sheet() -> None:
    data = xlsx_bytes()
    table = read_table(data, ParseSettings(sheet="Statement"))
    assert table.columns == ["Date", "Amount", "Ref", "Narration"]
    with pytest.raises(InvalidWorkbook) as caught:
        read_table(data, ParseSettings(sheet="Nope"))
    assert "Statement" in caught.value.message


def test_xls_through_calamine() -> None:
    book = xlwt.Workbook()
    sheet = book.add_sheet("S")
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for r, row in enumerate([["Date", "Amount", "Ref"], [dt.datetime(2025, 12, 1), 12.5, "R1"],
                             [dt.datetime(2025, 12, 2), -3, "R2"]]):
        for c, value in enumerate(row):
            sheet.write(r, c, value, date_style if isinstance(value, dt.datetime) else xlwt.Style.default_style)
    buffer = io.BytesIO()
    book.save(buffer)
    result = normalize_file(buffer.getvalue(), MAPPING, filename="s.xls")
    assert result.content.kind == "xls" and result.content.format == "excel"
    assert result.frame.select("amount_minor", "direction").rows() == [(1250, "credit"), (300, "debit")]


def test_generic_xml_with_row_path() -> None:
    xml = b"""<?xml version="1.0"?>
<Statement><Header><Account>123</Account></Header>
  <Txn id="1"><Date>2025-12-01</Date><Amt ccy="NGN">100.00</Amt><Ref>R1</Ref></Txn>
  <Txn id="2"><Date>2025-12-02</Date><Amt ccy="NGN">-5.50</Amt><Ref>R2</Ref></Txn>
</Statement>"""
    mapping = {"parse": {"format": "xml", "row_path": "Statement/Txn"}, "fields": {
        "amount": {"column": "Amt"}, "direction": {"from_sign": {}},
        "currency": {"column": "Amt/@ccy"}, "transaction_date": {"column": "Date"},
        "reference": {"column": "Ref"}, "secondary_reference": {"column": "@id"}}}
    result = normalize_file(xml, mapping)
    assert result.frame.select("amount_minor", "direction", "currency", "reference", "secondary_reference") \
        .rows() == [(10000, "credit", "NGN", "R1", "1"), (550, "debit", "NGN", "R2", "2")]
    # without a row path the repeating element is found
    assert read_table(xml).columns == ["@id", "Date", "Amt/@ccy", "Amt", "Ref"]


def test_camt053_statement_with_proposed_mapping() -> None:
    data = (FIXTURES / "statement.camt053.xml").read_bytes()
    assert inspect_content(data).kind == "camt053"
    proposal = propose_file_mapping(data)
    result = normalize_file(data, proposal.mapping)
    assert result.errors == []
    rows = result.frame.select("amount_minor", "direction", "reference", "status", "counterparty",
                               "transaction_date", "has_time").rows()
    assert rows == [(1670450, "debit", "138494808385", "success", "TOTAL ENERGIES LEKKI",
                     dt.datetime(2025, 12, 1), False),
                    (25000000, "credit", "FT25335X9Y8Z", "reversed", "ACME LTD",
                     dt.datetime(2025, 12, 1, 14, 30), True)]


def test_mt940_statement_with_proposed_mapping() -> None:
    data = (FIXTURES / "statement.mt940").read_bytes()
    info = inspect_content(data, "statement.txt")
    assert (info.format, info.kind) == ("txt", "mt940")
    result = normalize_file(data, propose_file_mapping(data).mapping)
    assert result.errors == []
    assert result.frame.select("amount_minor", "direction", "reference", "status", "value_date").rows() == [
        (1670450, "debit", "138494808385", "success", dt.date(2025, 12, 1)),
        (25000000, "credit", "NONREF", "success", dt.date(2025, 12, 1)),
        (481550, "debit", "272613879496", "success", dt.date(2025, 12, 2)),
        (10000, "credit", "REV1", "reversed", dt.date(2025, 12, 31)),
    ]
    assert result.frame["description"][0] == "POS PURCHASE @ TOTAL ENERGIES LEKKI RRN:138494808385 TID:20570464"
    assert result.frame["transaction_date"][3] == dt.datetime(2025, 12, 29)


def test_mt940_unreadable_statement_line_is_a_row_error() -> None:
    text = b":20:X\n:25:1\n:28C:1\n:60F:C251130NGN0,00\n:61:garbage\n:61:251201D1,00NTRFREF\n:62F:C251201NGN1,00\n"
    result = normalize_file(text, propose_file_mapping(text).mapping)
    assert result.row_count == 1
    assert [(e.row_number, e.line_number, e.reason) for e in result.errors] == [
        (1, 5, "unreadable MT940 :61: statement line")]
