"""Mapping auto-detection on the shared fixture and on other export layouts; proposals must normalize."""

from __future__ import annotations

import datetime as dt

import pytest

from reckai.adapters.polars.normalize import normalize_file, propose_file_mapping
from reckai.domain.ingestion.detection import date_formats
from reckai.domain.ingestion.mapping import parse_mapping
from tests.support.sample_data import CARD_VS_BANK_A

SHARED = CARD_VS_BANK_A


def by_field(proposal) -> dict[str, tuple[str | None, str, float]]:  # type: ignore[no-untyped-def]
    return {f.target_field: (f.source_column, f.data_type, f.confidence) for f in proposal.fields}


@pytest.mark.parametrize("name", ["bank.csv", "switch.csv"])
def test_shared_fixture_proposals_normalize_without_errors(name: str) -> None:
    proposal = propose_file_mapping(SHARED / name)
    assert proposal.missing_required == []
    parse_mapping(proposal.mapping)  # valid per docs/mapping.md
    result = normalize_file(SHARED / name, proposal.mapping)
    assert result.errors == [] and result.row_count == result.source_rows
    fields = by_field(proposal)
    assert fields["amount"][:2] == ("amount", "currency")
    if name == "switch.csv":
        assert fields["reference"][0] == "rrn" and fields["account"][0] == "pan"
        assert fields["status"][0] == "response_code" and fields["transaction_date"][0] == "tran_datetime"
        assert fields["direction"][2] < 0.5  # all amounts positive: flagged as a guess
        assert proposal.mapping["fields"]["status"]["value_map"] == {"00": "success"}
    else:
        assert proposal.mapping["fields"]["reference"]["coalesce"][1]["column"] == "narration"
        assert fields["direction"][2] >= 0.8


def test_pipe_delimited_dd_mm_yyyy_with_narration_only_references() -> None:
    lines = ["Statement of account: 0123456789", "Period 01/12/2025 to 31/12/2025",
             "Txn Date|Value Date|Narration|Amount|Balance"]
    for i in range(1, 30):
        lines.append(f"{i:02d}/12/2025|{i:02d}/12/2025|POS PURCHASE @ SHOPRITE RRN:{138494808300 + i} TID:2057"
                     f"|-{i * 1000:,}.50|{10**6 - i:,}.00")
    lines.append("Closing Balance|||0|")
    data = "\n".join(lines).encode("utf-8-sig")
    proposal = propose_file_mapping(data)
    fields = by_field(proposal)
    assert proposal.mapping["parse"]["delimiter"] == "|" and proposal.mapping["parse"]["header_row"] == 3
    assert fields["transaction_date"][0] == "Txn Date" and fields["value_date"][0] == "Value Date"
    assert proposal.mapping["fields"]["transaction_date"]["formats"] == ["%d/%m/%Y"]
    assert proposal.mapping["fields"]["reference"] == {"column": "Narration", "regex": "RRN[:\\s#.-]*(\\d{12})"}
    assert fields["amount"][0] == "Amount"  # not Balance
    result = normalize_file(data, proposal.mapping)
    assert result.errors == [] and result.row_count == 29
    assert result.frame["reference"][0] == "138494808301"
    assert result.frame["amount_minor"][28] == 2900050 and result.frame["direction"][0] == "debit"
    assert result.frame["transaction_date"][12] == dt.datetime(2025, 12, 13)


def test_dr_cr_columns_with_naira_and_thousands_and_split_time() -> None:
    lines = ["Date,Time,Description,Debit,Credit,Currency"]
    for i in range(1, 25):
        debit, credit = (f'"₦{i * 1500:,}.00"', "") if i % 3 else ("", f'"₦{i * 100000:,}.25"')
        lines.append(f"2025-12-{i:02d},{i % 24:02d}:15:00,TRANSFER {i},{debit},{credit},NGN")
    data = "\n".join(lines).encode()
    proposal = propose_file_mapping(data)
    amount = proposal.mapping["fields"]["amount"]
    assert amount["debit_column"] == "Debit" and amount["credit_column"] == "Credit" and "₦" in amount["strip"]
    assert proposal.mapping["fields"]["transaction_date"]["time_column"] == "Time"
    assert "direction" not in proposal.mapping["fields"] and proposal.missing_required == []
    result = normalize_file(data, proposal.mapping)
    assert result.errors == []
    assert result.frame.select("amount_minor", "direction", "has_time").rows()[:3] == [
        (150000, "debit", True), (300000, "debit", True), (30000025, "credit", True)]
    assert result.frame["transaction_date"][1] == dt.datetime(2025, 12, 2, 2, 15)


def test_kobo_amounts_and_dr_cr_indicator_and_status_words() -> None:
    lines = ["TRAN_DATE\tAMOUNT_KOBO\tDR_CR\tSTATUS\tCCY\tRRN"]
    for i in range(1, 25):
        lines.append(f"2025120{i % 9 + 1}\t{i * 104210:012d}\t{'DR' if i % 2 else 'CR'}\t"
                     f"{'SUCCESSFUL' if i % 5 else 'REVERSED'}\tNGN\t{900000000000 + i}")
    data = "\n".join(lines).encode("utf-16-le")
    proposal = propose_file_mapping(data)
    fields = proposal.mapping["fields"]
    assert fields["amount"]["scale"] == "minor"
    assert fields["direction"]["column"] == "DR_CR"
    assert fields["status"]["value_map"]["REVERSED"] == "reversed"
    result = normalize_file(data, proposal.mapping)
    assert result.errors == []
    assert result.frame.select("amount_minor", "direction", "status").row(0) == (104210, "debit", "success")
    assert result.frame["status"][4] == "reversed"


def test_date_formats_prefer_day_first_and_keep_month_first_apart() -> None:
    assert date_formats(["13/12/2025", "01/12/2025"])[0] == ["%d/%m/%Y"]
    formats, coverage = date_formats(["2025-12-01", "2025-12-01 10:00:00"])
    assert coverage == 1.0 and set(formats) == {"%Y-%m-%d", "%Y-%m-%d %H:%M:%S"}
