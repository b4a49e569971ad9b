"""Bank statement formats as banks send them (issue 18): the MT940 corpus, MT942, continuity,
encodings, camt.052/054."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from reckai.adapters.charset.detector import detect_encoding
from reckai.adapters.polars.normalize import normalize_file, propose_file_mapping
from reckai.adapters.polars.readers import inspect_content, read_table
from reckai.domain.ingestion.errors import (
    ForbiddenXmlConstruct,
    IngestionError,
    UndecodableText,
    UnsupportedContent,
)
from reckai.domain.ingestion.mapping import ParseSettings
from reckai.domain.ingestion.mt940 import MT940_COLUMNS, parse_mt940
from reckai.domain.ingestion.sniffing import ENCODING_CONFIDENCE_THRESHOLD, decode_text

DATA = Path(__file__).resolve().parents[1] / "data"
CORPUS = DATA / "mt940-corpus"
STATEMENTS = DATA / "statements"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_corpus_file_reads_as_the_mt940_library_reads_it(name: str) -> None:
    """No user input: content sniffing, the proposed mapping, normalization."""
    data = (CORPUS / name).read_bytes()
    info = inspect_content(data, Path(name).name)
    assert info.kind in ("mt940", "mt942")
    result = normalize_file(data, propose_file_mapping(data, Path(name).name).mapping, Path(name).name)
    assert result.errors == []
    assert result.row_count == EXPECTED[name]["transactions"]
    assert sorted(d.isoformat() for d in result.frame["value_date"].to_list()) == EXPECTED[name]["value_dates"]


@pytest.mark.parametrize("chunk_rows", [1, 2, 3])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rows_handed_over_in_chunks_are_the_rows_read_whole(name: str, chunk_rows: int) -> None:
    """The reader takes rows a chunk at a time (bounded memory); every corpus file reads the same."""
    text = (CORPUS / name).read_bytes().decode("latin-1").replace("\r\n", "\n").replace("\r", "\n")
    whole = parse_mt940(text)
    taken: dict[str, list[str | None]] = {c: [] for c in MT940_COLUMNS}
    lines: list[int] = []
    row_numbers: list[int] = []
    chunks: list[int] = []

    def sink(columns: dict[str, list[str | None]], chunk_lines: list[int], numbers: list[int]) -> None:
        chunks.append(len(chunk_lines))
        for column, values in columns.items():
            taken[column].extend(values)
        lines.extend(chunk_lines)
        row_numbers.extend(numbers)

    chunked = parse_mt940(text, sink=sink, chunk_rows=chunk_rows)
    assert taken == whole.columns and lines == whole.lines and row_numbers == whole.row_numbers
    assert chunked.row_count == len(whole.lines) == sum(chunks)
    assert all(size == chunk_rows for size in chunks[:-1])
    assert chunked.rows == [] and chunked.warnings == whole.warnings and chunked.errors == whole.errors
    assert chunked.message_type == whole.message_type


def _normalized(path: Path) -> tuple[list[dict[str, object]], object]:
    data = path.read_bytes()
    result = normalize_file(data, propose_file_mapping(data, path.name).mapping, path.name)
    return result.frame.to_dicts(), result


def test_an_impossible_bank_date_is_the_last_day_of_the_month_with_a_row_warning() -> None:
    rows, result = _normalized(CORPUS / "self-provided/february_30.sta")
    assert rows[0]["value_date"] == dt.date(2016, 2, 29)
    assert [(w.kind, w.row_number, w.line_number) for w in result.warnings] == [("row", 1, 6)]  # type: ignore[attr-defined]
    assert "160230 does not exist" in result.warnings[0].message  # type: ignore[attr-defined]


def test_quirky_statement_lines_of_real_banks() -> None:
    citi, _ = _normalized(CORPUS / "citi/mt940.txt")  # spaces for the entry date, funds code D
    assert (citi[0]["amount_minor"], citi[0]["direction"], citi[0]["transaction_date"]) == (
        21239, "debit", dt.datetime(2024, 3, 12))
    knab, _ = _normalized(CORPUS / "jejik/knab.sta")  # C500NTRF: no decimal comma
    assert [r["amount_minor"] for r in knab] == [50000, 726000, 50000]
    sberbank, _ = _normalized(CORPUS / "sberbank/171011_01234945.sta")  # 'S   X' and :NS: blocks
    assert [(r["amount_minor"], r["currency"]) for r in sberbank][:2] == [(240200, "HUF"), (346000, "HUF")]


def test_mt942_interim_report_is_recognised() -> None:
    data = (CORPUS / "self-provided/mt942.sta").read_bytes()
    assert inspect_content(data).kind == "mt942"
    rows, result = _normalized(CORPUS / "self-provided/mt942.sta")
    assert result.content.kind == "mt942"  # type: ignore[attr-defined]
    assert [(r["amount_minor"], r["currency"], r["direction"]) for r in rows] == [(42, "EUR", "debit")]


def test_structured_86_gives_description_counterparty_and_reference() -> None:
    rows, _ = _normalized(CORPUS / "self-provided/gv_codes.sta")
    assert rows[0]["counterparty"] == "PayPal (Europe) S.a.r.l. et"
    assert rows[0]["reference"] == "1234567890123 PAYPAL"  # EREF+
    assert rows[0]["description"] == ". SPOTIFY, Ihr Einkaufbei SPOTIFY"  # SVWZ+, wrapped at ?25/?26
    dutch, _ = _normalized(STATEMENTS / "truncated.mt940")
    assert (dutch[0]["counterparty"], dutch[0]["description"], dutch[0]["reference"]) == (
        "J. JANSEN", "Factuur 2025-41", "NONREF")  # EREF NOTPROVIDED is no reference


def test_statement_continuity_and_a_repeated_statement_are_file_warnings() -> None:
    data = (STATEMENTS / "continuity.mt940").read_bytes()
    assert inspect_content(data).kind == "mt940"  # {4::20: on one line, whitespace before :20:
    rows, result = _normalized(STATEMENTS / "continuity.mt940")
    assert len(rows) == 5  # every row still loaded
    kinds = [(w.kind, w.line_number) for w in result.warnings]  # type: ignore[attr-defined]
    assert kinds == [("balance_mismatch", 9), ("sequence_gap", 9), ("balance_gap", 9),
                     ("duplicate_statement", 17), ("balance_gap", 17)]
    messages = [w.message for w in result.warnings]  # type: ignore[attr-defined]
    assert "= 1080.00, but the closing balance is 1090.00 (difference -10.00)" in messages[0]
    assert "00003/001 does not follow 00001/001" in messages[1]
    assert "previous statement's closing balance 1100.00 (difference 50.00)" in messages[2]
    assert "repeats the statement on line 9" in messages[3]
    reversal = rows[2]  # RC: a reversal of a credit is a debit, status reversed
    assert (reversal["direction"], reversal["status"], reversal["amount_minor"]) == ("debit", "reversed", 2000)
    assert rows[0]["reference"] == "E2E-1" and rows[0]["counterparty"] == "ACME GMBH"


def test_a_truncated_statement_is_a_warning_naming_its_line() -> None:
    rows, result = _normalized(STATEMENTS / "truncated.mt940")
    assert len(rows) == 1
    assert [(w.kind, w.line_number) for w in result.warnings] == [("truncated", 1)]  # type: ignore[attr-defined]
    assert "no :62F:/:62M: closing balance" in result.warnings[0].message  # type: ignore[attr-defined]


# --- encodings --------------------------------------------------------------------------------


def test_a_code_page_852_statement_is_detected_and_shown_with_the_proposal() -> None:
    data = (CORPUS / "self-provided/raiffeisen-cmi.sta").read_bytes()
    with pytest.raises(UndecodableText):
        decode_text(data)  # neither utf-8 nor windows-1252
    info = inspect_content(data)
    assert info.encoding in ("cp852", "cp437")  # the two read these bytes identically
    assert info.encoding_confidence is not None and info.encoding_confidence >= ENCODING_CONFIDENCE_THRESHOLD
    proposal = propose_file_mapping(data).to_dict()
    assert proposal["encoding"] == {"name": info.encoding, "confidence": info.encoding_confidence,
                                    "detected": True}
    rows, _ = _normalized(CORPUS / "self-provided/raiffeisen-cmi.sta")
    assert "napi összevont utánvét" in str(rows[0]["description"])


def test_too_little_evidence_is_refused_with_the_candidates_named() -> None:
    data = b"date,amount,narration\n2025-12-01,1.00,x\x81\x8d\n"
    guess = detect_encoding(data)
    assert guess.confidence < ENCODING_CONFIDENCE_THRESHOLD
    with pytest.raises(UndecodableText) as caught:
        inspect_content(data)
    assert "candidates: " in caught.value.message and caught.value.details["candidates"]


def test_a_declared_encoding_always_wins() -> None:
    data = (CORPUS / "self-provided/raiffeisen-cmi.sta").read_bytes()
    table = read_table(data, ParseSettings(format="mt940", encoding="cp852"))
    assert table.content.encoding == "cp852" and table.content.encoding_confidence is None
    latin = "date;amount;narration\n2025-12-01;1,00;Caf\xe9 \u20ac\n".encode("cp1252")
    assert read_table(latin).content.encoding == "windows-1252"  # the fallback, before any detection
    assert read_table(latin).content.encoding_confidence is None


# --- camt.052 / camt.054 ------------------------------------------------------------------------


def test_camt052_report_reads_into_the_camt053_columns() -> None:
    data = (STATEMENTS / "report.camt052.xml").read_bytes()
    assert (inspect_content(data).format, inspect_content(data).kind) == ("xml", "camt052")
    rows, result = _normalized(STATEMENTS / "report.camt052.xml")
    assert result.content.kind == "camt052"  # type: ignore[attr-defined]
    assert [(r["amount_minor"], r["direction"], r["reference"], r["counterparty"]) for r in rows] == [
        (12050, "credit", "E2E-INV-77", "Muster GmbH"), (30000, "debit", "SAL-1", "Anna Schmidt")]
    assert rows[0]["value_date"] == dt.date(2025, 12, 3)


def test_expand_transaction_details_gives_one_row_per_detail() -> None:
    data = (STATEMENTS / "report.camt052.xml").read_bytes()
    mapping = propose_file_mapping(data).mapping
    mapping["parse"] = {**mapping["parse"], "expand_transaction_details": True}
    result = normalize_file(data, mapping)
    assert result.frame.select("amount_minor", "reference", "counterparty", "transaction_date").rows() == [
        (12050, "E2E-INV-77", "Muster GmbH", dt.datetime(2025, 12, 2)),
        (10000, "SAL-1", "Anna Schmidt", dt.datetime(2025, 12, 2)),
        (20000, "SAL-2", "Ben Weber", dt.datetime(2025, 12, 2))]
    assert result.warnings == []


def test_camt054_details_that_do_not_sum_to_the_entry_are_a_warning() -> None:
    data = (STATEMENTS / "notification.camt054.xml").read_bytes()
    assert inspect_content(data).kind == "camt054"
    mapping = propose_file_mapping(data).mapping
    assert normalize_file(data, mapping).row_count == 1  # by default one row per entry
    mapping["parse"] = {**mapping["parse"], "expand_transaction_details": True}
    result = normalize_file(data, mapping)
    assert [r["amount_minor"] for r in result.frame.to_dicts()] == [5000, 2000]
    assert [(w.kind, w.line_number) for w in result.warnings] == [("details_sum", 8)]
    assert "sum to 70.00, not the entry amount 75.00" in result.warnings[0].message


def test_an_unknown_camt_version_is_refused_naming_the_element() -> None:
    data = (STATEMENTS / "unknown-version.camt053.xml").read_bytes()
    with pytest.raises(UnsupportedContent) as caught:
        read_table(data)
    assert "line 2: element <Document>" in caught.value.message and "001.99" in caught.value.message


# --- BAI2, OFX/QFX ------------------------------------------------------------------------------


def test_bai2_through_the_bai2_library() -> None:
    data = (STATEMENTS / "lockbox.bai2").read_bytes()
    assert (inspect_content(data).format, inspect_content(data).kind) == ("txt", "bai2")
    rows, result = _normalized(STATEMENTS / "lockbox.bai2")
    assert [(r["amount_minor"], r["direction"], r["reference"], r["channel"]) for r in rows] == [
        (150000, "credit", "CREF001", "Preauthorized ACH Credit"), (125000, "debit", "CHK1042", "Check Paid"),
        (50000, "debit", "BREF003", "Outgoing Money Transfer")]
    assert rows[1]["description"] == "CHECK PAID,CHECK NUMBER 1042"  # the 88 continuation
    assert {r["value_date"] for r in rows} == {dt.date(2025, 12, 1)}  # the group's as-of date
    assert result.frame["row_number"].to_list() == [1, 2, 3]
    assert read_table(data).frame["__line_number"].to_list() == [4, 5, 7]


def test_bai2_control_totals_that_do_not_add_up_are_refused_naming_the_line() -> None:
    data = (STATEMENTS / "bad-totals.bai2").read_bytes()
    with pytest.raises(IngestionError) as caught:
        read_table(data)
    assert caught.value.message.startswith("line 8: BAI2 control totals do not add up")
    assert "expected 1300001, found 1300000" in caught.value.message and caught.value.details["line"] == 8


@pytest.mark.parametrize(("name", "fmt", "expected"), [
    ("checking.ofx", "txt", [(4217, "debit", "FIT-0001", "COFFEE ROASTERS", "CARD 1234 PURCHASE"),
                             (150000, "credit", "PAYROLL-77", "ACME PAYROLL", "SALARY DEC"),
                             (25000, "debit", "1042", "CHECK 1042", "CHECK 1042")]),
    ("card.qfx", "xml", [(1999, "debit", "CC-1", "STREAMING SERVICE", "STREAMING SERVICE"),
                         (500, "credit", "CC-2", "REFUND STREAMING", "PARTIAL REFUND")]),
])
def test_ofx_1_and_2_through_ofxtools(name: str, fmt: str, expected: list[tuple[object, ...]]) -> None:
    data = (STATEMENTS / name).read_bytes()
    assert (inspect_content(data).format, inspect_content(data).kind) == (fmt, "ofx")
    rows, _ = _normalized(STATEMENTS / name)
    assert [(r["amount_minor"], r["direction"], r["reference"], r["counterparty"], r["description"])
            for r in rows] == expected


def test_a_doctype_behind_a_comment_is_still_refused() -> None:
    data = (b'<?xml version="1.0"?><!-- <a> --><!DOCTYPE d [<!ENTITY x "y">]>'
            b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><a>&x;</a></Document>')
    with pytest.raises(ForbiddenXmlConstruct):
        inspect_content(data)
    with pytest.raises(ForbiddenXmlConstruct):
        read_table(data)


@pytest.mark.parametrize("name", ["statements/report.camt052.xml", "statements/notification.camt054.xml",
                                  "statements/lockbox.bai2", "statements/checking.ofx", "statements/card.qfx"])
def test_auto_mapped_profile_sides_read_every_format(name: str) -> None:
    """`"mapping": "auto"` on both sides: a statement whose bank references are unique, reconciled
    against itself, matches every row to itself."""
    from reckai.application.reconcile import reconcile_files
    from reckai.bootstrap_matching import build_file_matching
    from reckai.domain.reconciliation.profile import parse_profile

    path = str(DATA / name)
    currency = normalize_file(Path(path).read_bytes(), propose_file_mapping(Path(path).read_bytes()).mapping
                              ).frame["currency"][0]
    profile = parse_profile({
        "name": "auto", "currency": currency, "left": {"label": "Bank", "mapping": "auto"},
        "right": {"label": "Books", "mapping": "auto"},
        "rules": [{"name": "same", "rule_type": "exact", "priority": 10, "date_tolerance_days": 0,
                   "field_mappings": [{"left": "secondary_reference", "right": "secondary_reference"}]}]})
    matching = build_file_matching("polars")
    outcome = reconcile_files(path, path, profile, None, matching.source, matching.engine)
    assert set(outcome.auto_mappings) == {"left", "right"}
    assert not outcome.left_row_errors and not outcome.right_row_errors
    rows = normalize_file(Path(path).read_bytes(), propose_file_mapping(Path(path).read_bytes()).mapping).row_count
    matches = outcome.result.matches
    assert set(zip(matches["left_row"].to_list(), matches["right_row"].to_list(), strict=True)) == {
        (i, i) for i in range(1, rows + 1)}
