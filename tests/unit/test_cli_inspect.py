"""`reckai inspect`: one use case (application.files.inspection) behind the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reckai.adapters.polars.file_processing import PolarsFileParser
from reckai.application.files.inspection import inspect_file
from reckai.entrypoints.cli.main import main

DATA = Path(__file__).resolve().parents[1] / "data"


def test_json_lines_one_object_per_row_with_both_dates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(DATA / "statements/continuity.mt940"), "--json"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 5
    assert {k: rows[2][k] for k in ("value_date", "transaction_date", "amount_minor", "direction", "status",
                                     "currency", "reference")} == {
        "value_date": "2025-12-02", "transaction_date": "2025-12-02T00:00:00", "amount_minor": 2000,
        "direction": "debit", "status": "reversed", "currency": "EUR", "reference": "REV"}
    assert "kind: mt940" in err and "statements: 3" in err and "warning [sequence_gap]" in err
    assert "reference            <- information/end_to_end_reference" in err


def test_table_with_detected_encoding_and_row_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(DATA / "mt940-corpus/self-provided/raiffeisen-cmi.sta")]) == 0
    out = capsys.readouterr().out
    assert "(detected, confidence 1.00)" in out and "row_number  transaction_date" in out
    bad = tmp_path / "bad.sta"
    bad.write_text(":20:X\n:25:1\n:28C:1\n:60F:C251130NGN0,00\n:61:garbage\n:61:251201D1,00NTRFREF\n"
                   ":62F:D251201NGN1,00\n")
    assert main(["inspect", str(bad)]) == 0
    assert "error: line 5 (row 1) [:61:] unreadable MT940 :61: statement line ('garbage')" in capsys.readouterr().out


def test_a_given_mapping_is_used_and_an_unusable_file_exits_1(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps({"parse": {"format": "mt940"}, "fields": {
        "amount": {"column": "amount", "decimal_separator": ","}, "direction": {"constant": "credit"},
        "currency": {"constant": "USD"}, "transaction_date": {"column": "value_date"}}}))
    assert main(["inspect", str(DATA / "statements/continuity.mt940"), "--mapping", str(mapping), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(r["currency"], r["direction"]) for r in rows} == {("USD", "credit")}
    assert main(["inspect", str(DATA / "statements/unknown-version.camt053.xml")]) == 1
    assert "line 2: element <Document>" in capsys.readouterr().err


def test_the_use_case_returns_the_preview_a_dry_run_needs() -> None:
    data = (DATA / "statements/report.camt052.xml").read_bytes()
    preview = inspect_file(PolarsFileParser(), data, "report.xml", limit=1)
    assert (preview.content.kind, preview.statement_count, preview.source_rows, len(preview.rows)) == (
        "camt052", 1, 2, 1)
    assert preview.mapping == preview.proposal.mapping and preview.rows[0]["reference"] == "E2E-INV-77"
