"""normalize_file on delimited text: the shared card-vs-bank fixture and the family of messy exports."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from reckai.adapters.polars.normalize import (
    CANONICAL_SCHEMA,
    normalize_file,
    read_parquet_bytes,
    write_parquet_bytes,
)
from reckai.domain.ingestion.canonical import CANONICAL_FIELD_NAMES
from reckai.domain.ingestion.errors import HeaderNotFound, InvalidMapping, NoDataRows
from tests.support.sample_data import CARD_VS_BANK_A

SHARED = CARD_VS_BANK_A

BANK_MAPPING = {
    "parse": {"format": "csv"},
    "fields": {
        "amount": {"column": "amount"},
        "direction": {"from_sign": {"negative": "debit", "positive": "credit"}},
        "currency": {"column": "currency"},
        "transaction_date": {"column": "trans_date", "formats": ["%Y-%m-%d"]},
        "value_date": {"column": "value_date", "formats": ["%Y-%m-%d"]},
        "reference": {"coalesce": [{"column": "reference"},
                                   {"column": "narration", "regex": "RRN:(\\d{6,12})"}]},
        "description": {"column": "narration"},
    },
}
SWITCH_MAPPING = {
    "parse": {},
    "fields": {
        "amount": {"column": "amount"},
        "direction": {"constant": "debit"},
        "currency": {"column": "currency"},
        "transaction_date": {"column": "tran_datetime", "formats": ["%Y-%m-%d %H:%M:%S"]},
        "reference": {"column": "rrn"},
        "secondary_reference": {"column": "stan"},
        "account": {"column": "pan"},
        "channel": {"column": "channel", "upper": True},
        "counterparty": {"column": "merchant_name"},
        "status": {"column": "response_code", "value_map": {"00": "success"}, "default": "failed"},
    },
}


def simple_mapping(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "amount": {"column": "amount"},
        "direction": {"from_sign": {"negative": "debit", "positive": "credit"}},
        "currency": {"constant": "NGN"},
        "transaction_date": {"column": "date", "formats": ["%Y-%m-%d", "%d/%m/%Y"]},
    }
    base.update(fields)
    return {"parse": {}, "fields": base}


@pytest.fixture(scope="module")
def shared_data() -> Path:
    return SHARED


def test_bank_statement_normalizes_every_row_with_rrn_from_narration(shared_data: Path) -> None:
    result = normalize_file(shared_data / "bank.csv", BANK_MAPPING)
    source = pl.read_csv(shared_data / "bank.csv", infer_schema=False)
    assert result.errors == []
    assert result.row_count == source.height == result.source_rows
    assert result.frame.schema == CANONICAL_SCHEMA
    assert tuple(result.frame.columns) == CANONICAL_FIELD_NAMES
    first = result.frame.row(0, named=True)
    assert first["amount_minor"] == 1670450 and first["direction"] == "debit"
    assert first["transaction_date"] == dt.datetime(2025, 12, 1) and first["has_time"] is False
    assert first["reference"] == "138494808385"
    # rows whose reference cell is empty get the RRN out of the narration
    empty_ref = source.with_row_index("i").filter(pl.col("reference").is_null()
                                                  & pl.col("narration").str.contains("RRN:"))
    assert empty_ref.height > 0
    for i, narration in empty_ref.select("i", "narration").iter_rows():
        assert result.frame["reference"][i] in narration
    # the magnitude and sign agree with the source text, for every row
    signs = source["amount"].str.starts_with("-")
    assert (result.frame["direction"] == "debit").to_list() == signs.to_list()


def test_switch_file_maps_status_channel_and_timestamps(shared_data: Path) -> None:
    result = normalize_file(shared_data / "switch.csv", SWITCH_MAPPING)
    assert result.errors == [] and result.row_count == 2000
    row = result.frame.row(0, named=True)
    assert row["transaction_date"] == dt.datetime(2025, 12, 25, 3, 44, 9) and row["has_time"] is True
    assert row["status"] == "failed" and row["reference"] == "958667946125"
    assert row["secondary_reference"] == "028227"  # leading zero kept: cells are text
    assert json.loads(row["raw"])["response_code"] == "06"
    assert set(result.frame["status"].unique()) <= {"success", "failed"}


def test_quoted_fields_with_delimiters_quotes_and_newlines(tmp_path: Path) -> None:
    text = ('date,amount,narration\n'
            '2025-12-01,"1,250.00","POS, ""SHOPRITE"" LEKKI"\n'
            '2025-12-02,-3.50,"two\nlines"\n'
            '2025-12-03,7,plain\n')
    result = normalize_file(text.encode(), simple_mapping(description={"column": "narration"}))
    assert result.errors == []
    assert result.frame["amount_minor"].to_list() == [125000, 350, 700]
    assert result.frame["description"].to_list() == ['POS, "SHOPRITE" LEKKI', "two\nlines", "plain"]
    assert result.frame["direction"].to_list() == ["credit", "debit", "credit"]
    assert result.frame["row_number"].to_list() == [1, 2, 3]


def test_preamble_and_trailer_lines_are_skipped_and_listed() -> None:
    text = ("Account Statement for ACME LTD\n"
            "Period: 01/12/2025 - 31/12/2025\n"
            "\n"
            "date|amount|narration\n"
            "01/12/2025|100.00|a\n"
            "02/12/2025|-50.00|b\n"
            "TOTAL|50.00|\n"
            "END OF STATEMENT\n")
    result = normalize_file(text.encode(), simple_mapping())
    assert result.errors == [] and result.row_count == 2
    assert result.header_line == 4
    assert result.content.delimiter == "|" and result.content.kind == "pipe"
    assert (7, "trailer") in result.skipped_lines and (8, "trailer") in result.skipped_lines
    assert (1, "preamble") in result.skipped_lines
    assert result.frame["transaction_date"].to_list() == [dt.datetime(2025, 12, 1), dt.datetime(2025, 12, 2)]


@pytest.mark.parametrize("quoted", [False, True])
def test_ragged_rows_are_reported_with_line_numbers_never_padded(quoted: bool) -> None:
    q = '"' if quoted else ""
    text = (f"date,amount,narration\n"
            f"2025-12-01,1.00,{q}ok{q}\n"
            f"2025-12-02,2.00\n"
            f"2025-12-03,3.00,{q}x{q},extra\n"
            f"2025-12-04,4.00,{q}ok{q}\n")
    result = normalize_file(text.encode(), simple_mapping())
    assert result.row_count == 2 and result.source_rows == 4
    assert [(e.row_number, e.line_number) for e in result.errors] == [(2, 3), (3, 4)]
    assert result.errors[0].reason == "expected 3 fields, found 2"
    assert result.errors[1].reason == "expected 3 fields, found 4"
    assert result.frame["row_number"].to_list() == [1, 4]


def test_debit_credit_columns_with_naira_sign_and_thousands() -> None:
    text = ("Date;Narration;DR;CR;Balance\n"
            "01/12/2025;ATM;₦1,250.50;;₦10,000.00\n"
            "02/12/2025;Transfer in;;₦ 2,000,000.00;₦2,010,000.00\n"
            "03/12/2025;Bad;₦1,2,50.00;;0\n"
            "04/12/2025;Both;1.00;2.00;0\n")
    mapping = {"parse": {}, "fields": {
        "amount": {"debit_column": "DR", "credit_column": "CR", "strip": ["₦", "NGN"]},
        "currency": {"constant": "NGN"},
        "transaction_date": {"column": "Date", "formats": ["%d/%m/%Y"]},
        "description": {"column": "Narration"}}}
    result = normalize_file(text.encode("utf-8-sig"), mapping)
    assert result.frame.select("amount_minor", "direction").rows() == [(125050, "debit"),
                                                                        (200000000, "credit")]
    reasons = {(e.row_number, e.reason) for e in result.errors}
    assert (3, "misplaced thousands separator ','") in reasons
    assert (4, "both debit and credit hold an amount") in reasons


def test_kobo_amounts_split_date_time_and_value_maps() -> None:
    text = ("TXN DATE\tTXN TIME\tAMOUNT_KOBO\tRESP\tDRCR\n"
            "2025-12-01\t13:05:09\t000001042100\t00\tDR\n"
            "2025-12-01\t\t29\t51\tCR\n"
            "2025-12-02\t25:00:00\t100\t00\tDR\n")
    mapping = {"parse": {}, "fields": {
        "amount": {"column": "AMOUNT_KOBO", "scale": "minor"},
        "direction": {"column": "DRCR", "value_map": {"DR": "debit", "CR": "credit"}},
        "currency": {"constant": "NGN"},
        "transaction_date": {"column": "TXN DATE", "formats": ["%Y-%m-%d"], "time_column": "TXN TIME"},
        "status": {"column": "RESP", "value_map": {"00": "success"}, "default": "failed"}}}
    result = normalize_file(text.encode("utf-16"), mapping)
    assert result.content.kind == "tsv" and result.content.encoding == "utf-16"
    assert result.frame.select("amount_minor", "direction", "status", "transaction_date", "has_time").rows() \
        == [(1042100, "debit", "success", dt.datetime(2025, 12, 1, 13, 5, 9), True),
            (29, "credit", "failed", dt.datetime(2025, 12, 1), False)]
    assert [(e.row_number, e.column) for e in result.errors] == [(3, "TXN DATE")]
    assert "time in column 'TXN TIME'" in result.errors[0].reason


def test_windows_1252_text_decodes() -> None:
    text = "date,amount,narration\n2025-12-01,5.00,Caf\xe9 \u20ac\n"
    result = normalize_file(text.encode("cp1252"), simple_mapping(description={"column": "narration"}))
    assert result.content.encoding == "windows-1252"
    assert result.frame["description"].to_list() == ["Caf\xe9 \u20ac"]


def test_unparseable_values_are_row_errors_with_the_value() -> None:
    text = ("date,amount,currency\n"
            "2025-12-01,12.345,NGN\n"   # 3 decimals for a 2-decimal currency: error, not rounding
            "2025-13-01,1.00,NGN\n"
            "2025-12-02,abc,NGN\n"
            "2025-12-02,1.000,KWD\n"
            "2025-12-02,,NGN\n"
            "2025-12-02,1.00,naira\n")
    result = normalize_file(text.encode(), simple_mapping(currency={"column": "currency"}))
    assert result.frame.select("row_number", "amount_minor", "currency").rows() == [(4, 1000, "KWD")]
    by_row = {e.row_number: e for e in result.errors}
    assert by_row[1].value == "12.345" and by_row[1].reason == "more than 2 decimal places for this currency (amounts are never rounded)"
    assert by_row[2].column == "date" and by_row[2].value == "2025-13-01"
    assert by_row[3].reason == "not a number"
    assert by_row[5].reason == "amount missing"
    assert by_row[6].reason == "not an ISO 4217 currency code"


def test_mapping_naming_a_missing_column_is_refused_with_the_columns() -> None:
    with pytest.raises(InvalidMapping) as caught:
        normalize_file(b"date,amount\n2025-12-01,1\n", simple_mapping(reference={"column": "rrn"}))
    assert "'rrn'" in caught.value.message and "'amount'" in caught.value.message


def test_header_only_file_has_no_data_rows() -> None:
    with pytest.raises(NoDataRows):
        normalize_file(b"date,amount\n", simple_mapping())


def test_file_without_header_row_is_refused() -> None:
    with pytest.raises(HeaderNotFound):
        normalize_file(b"2025-12-01,1.00\n2025-12-02,2.00\n", simple_mapping())


def test_parquet_round_trip_keeps_canonical_frame(shared_data: Path) -> None:
    result = normalize_file(shared_data / "switch.csv", SWITCH_MAPPING)
    data = write_parquet_bytes(result.frame)
    assert data[:4] == b"PAR1"
    assert read_parquet_bytes(data).equals(result.frame)


def test_file_parser_port_adapter_round_trip() -> None:
    from reckai.adapters.polars.file_processing import PolarsFileParser

    parser = PolarsFileParser()
    data = b"date,amount,narration\n2025-12-01,-1.50,POS RRN:123456789012\n2025-12-02,x,bad\n"
    assert parser.inspect(data, "a.csv").kind == "csv"
    mapping = parser.parse_mapping(simple_mapping(reference={"column": "narration", "regex": "RRN:(\\d{12})"}))
    outcome = parser.normalize(lambda: data, mapping, "a.csv")
    frame = read_parquet_bytes(outcome.parquet)
    assert frame.select("amount_minor", "direction", "reference").rows() == [(150, "debit", "123456789012")]
    assert (outcome.row_count, outcome.source_rows) == (1, 2)
    assert outcome.report["errors"][0]["row_number"] == 2 and outcome.report["failed_rows"] == 1


@pytest.mark.parametrize(("status", "expected", "failed"), [
    ({"column": "RESP", "value_map": {"00": "success"}, "default": "failed"}, ["success", "failed", "failed"], []),
    ({"column": "RESP", "value_map": {"00": "success"}}, ["success", "unknown"], [2]),
    ({"constant": "reversed"}, ["reversed"] * 3, []),
    ({"column": "RESP", "upper": True}, ["unknown"], [1, 2]),
])
def test_status_from_a_value_map_or_a_constant_is_known_valid(
        status: dict[str, object], expected: list[str], failed: list[int]) -> None:
    """A value_map with a default (or a constant) can only give the statuses the mapping names,
    which the mapping's parser has checked: no row is lower-cased or checked again; values read
    from the file still are (a value outside the four is a row error, an empty one "unknown")."""
    text = "date,amount,RESP\n2025-12-01,5.00,00\n2025-12-01,6.00,51\n2025-12-01,7.00,\n"
    mapping = {"parse": {}, "fields": {
        "amount": {"column": "amount"}, "direction": {"constant": "debit"}, "currency": {"constant": "NGN"},
        "transaction_date": {"column": "date", "formats": ["%Y-%m-%d"]}, "status": status}}
    result = normalize_file(text.encode("utf-8"), mapping)
    assert result.frame["status"].to_list() == expected
    assert [e.row_number for e in result.errors] == failed
    assert all("status is not success" in e.reason for e in result.errors)
