"""Mapping guardrails over HTTP (issue 16 item 4): the mapping dry run, the file list, re-mapping a
processed file, on the in-memory container."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.bootstrap import bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from tests.support.sample_data import CARD_VS_BANK_A
from tests.unit.test_files_http import Api, error

SWITCH = (CARD_VS_BANK_A / "switch.csv").read_bytes()
BANK = (CARD_VS_BANK_A / "bank.csv").read_bytes()


@pytest.fixture
def api() -> Iterator[Api]:
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    with TestClient(create_app(container)) as client:
        yield Api(client, container)


def _file_state(api: Api, file_id: str) -> dict[str, Any]:
    body = api.client.get(f"/api/files/{file_id}", headers=api.auth).json()["data"]
    return {k: body[k] for k in ("status", "row_count", "transformation_rules", "normalized", "error_report")}


def test_a_dry_run_shows_rows_figures_and_warnings_and_changes_nothing(api: Api) -> None:
    file_id = api.upload(SWITCH, filename="switch.csv", file_type="switch").json()["data"]["id"]
    before = _file_state(api, file_id)
    mapping = json.loads(json.dumps(before["transformation_rules"]))
    # the switch file's amounts are unsigned: read "from sign" every row is a credit
    mapping["fields"]["direction"] = {"from_sign": {}}
    response = api.client.post(f"/api/files/{file_id}/map?dry_run=true&period_start=2025-12-01"
                               "&period_end=2025-12-15", json={"transformation_rules": mapping}, headers=api.auth)
    assert response.status_code == 200, response.text
    body = response.json()["data"]
    assert (body["dry_run"], body["mapping_source"], body["status"]) == (True, "given", "uploaded")
    assert (body["source_rows"], body["normalized_rows"], body["failed_rows"], len(body["rows"])) == (2000, 2000, 0, 50)
    assert body["rows"][0]["reference"] == "958667946125" and body["rows"][0]["amount_minor"] == 1042100
    assert body["direction_counts"] == {"credit": 2000} and body["currency_counts"] == {"NGN": 2000}
    assert body["fill_rates"]["reference"] == 1.0 and body["fill_rates"]["value_date"] == 0.0
    codes = {w["code"]: w for w in body["warnings"]}
    assert set(codes) == {"ONE_DIRECTION", "DATES_OUTSIDE_PERIOD"}
    assert codes["ONE_DIRECTION"]["rows"] == 2000 and "credits" in codes["ONE_DIRECTION"]["message"]
    assert 0 < codes["DATES_OUTSIDE_PERIOD"]["rows"] < 2000
    assert body["transaction_dates"]["first"].startswith("2025-1")
    assert _file_state(api, file_id) == before  # nothing changed


def test_dry_run_warns_of_zero_amounts_and_constant_columns(api: Api) -> None:
    text = "date,amount,currency,ref,batch\n" + "".join(
        f"2025-12-{d:02d},0.00,NGN,R{d},BATCH-1\n" for d in range(1, 13))
    file_id = api.upload(text.encode(), filename="zero.csv").json()["data"]["id"]
    rules = {"parse": {"format": "csv"}, "fields": {
        "amount": {"column": "amount"}, "direction": {"constant": "debit"}, "currency": {"column": "currency"},
        "transaction_date": {"column": "date"}, "reference": {"column": "batch"}}}
    body = api.client.post(f"/api/files/{file_id}/map?dry_run=true", json={"transformation_rules": rules},
                           headers=api.auth).json()["data"]
    codes = {(w["code"], w["field"]) for w in body["warnings"]}
    assert codes == {("ALL_AMOUNTS_ZERO", "amount_minor"), ("CONSTANT_COLUMN", "reference"),
                     ("ONE_DIRECTION", "direction")}
    assert body["zero_amounts"] == 12
    # the stored (proposed) mapping reads the real reference column: no constant-column warning
    stored = api.client.post(f"/api/files/{file_id}/map?dry_run=true", json={}, headers=api.auth).json()["data"]
    assert stored["mapping_source"] == "stored"
    assert "CONSTANT_COLUMN" not in {w["code"] for w in stored["warnings"]}


def test_dry_run_refusals(api: Api) -> None:
    file_id = api.upload(SWITCH, filename="switch.csv", file_type="switch").json()["data"]["id"]
    bad = api.client.post(f"/api/files/{file_id}/map?dry_run=true",
                          json={"transformation_rules": {"fields": {"amount": {"colour": "x"}}}}, headers=api.auth)
    assert bad.status_code == 400 and error(bad)["details"][0]["field"].startswith("transformation_rules.")
    half = api.client.post(f"/api/files/{file_id}/map?dry_run=true&period_start=2025-12-01", json={},
                           headers=api.auth)
    assert half.status_code == 400 and error(half)["details"][0]["field"] == "period_end"
    backwards = api.client.post(f"/api/files/{file_id}/map?dry_run=true&period_start=2025-12-02"
                                "&period_end=2025-12-01", json={}, headers=api.auth)
    assert backwards.status_code == 400
    not_dry = api.client.post(f"/api/files/{file_id}/map?period_start=2025-12-01&period_end=2025-12-31",
                              json={}, headers=api.auth)
    assert not_dry.status_code == 400 and _file_state(api, file_id)["status"] == "uploaded"
    missing_column = api.client.post(f"/api/files/{file_id}/map?dry_run=true", json={"transformation_rules": {
        "fields": {"amount": {"column": "nope"}, "direction": {"constant": "debit"}, "currency": {"constant": "NGN"},
                   "transaction_date": {"column": "tran_datetime"}}}}, headers=api.auth)
    assert missing_column.status_code in (400, 422), missing_column.text
    assert _file_state(api, file_id)["status"] == "uploaded"
    unknown = api.client.post("/api/files/00000000-0000-0000-0000-000000000001/map?dry_run=true", json={},
                              headers=api.auth)
    assert unknown.status_code == 404


def test_the_dry_run_is_the_use_case_behind_reckai_inspect(api: Api, tmp_path: Any,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from reckai.entrypoints.cli.main import main

    file_id = api.upload(SWITCH, filename="switch.csv", file_type="switch").json()["data"]["id"]
    body = api.client.post(f"/api/files/{file_id}/map?dry_run=true", json={}, headers=api.auth).json()["data"]
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps(body["transformation_rules"]))
    assert main(["inspect", str(CARD_VS_BANK_A / "switch.csv"), "--mapping", str(mapping), "--json",
                 "--limit", "50"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line) for line in out.splitlines()] == body["rows"]
    for warning in body["warnings"]:
        assert f"mapping warning [{warning['code']}]" in err


def test_the_list_route_literals_are_the_port_values() -> None:
    from typing import get_args

    from reckai.application.ports.files import FILE_STATUSES, FILE_TYPES
    from reckai.entrypoints.http.routes.files import FileStatus, FileType

    assert set(get_args(FileStatus)) == set(FILE_STATUSES) and set(get_args(FileType)) == set(FILE_TYPES)


def test_list_files_filters_and_pages(api: Api) -> None:
    bank = api.upload(BANK, filename="bank.csv", file_type="bank").json()["data"]["id"]
    switch = api.upload(SWITCH, filename="switch.csv", file_type="switch").json()["data"]["id"]
    assert api.client.post(f"/api/files/{switch}/map", json={}, headers=api.auth).status_code == 200
    listed = api.client.get("/api/files", headers=api.auth)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["meta"] == {"page": 1, "per_page": 20, "total": 2}
    assert {f["id"] for f in body["data"]} == {bank, switch}
    assert {f["id"]: f["status"] for f in body["data"]} == {bank: "uploaded", switch: "normalized"}

    def ids(query: str) -> list[str]:
        response = api.client.get(f"/api/files?{query}", headers=api.auth)
        assert response.status_code == 200, response.text
        return [f["id"] for f in response.json()["data"]]

    assert ids("status=normalized") == [switch] and ids("file_type=bank") == [bank]
    assert ids("kind=csv&format=csv&file_type=switch") == [switch] and ids("kind=xlsx") == []
    assert ids("uploaded_from=2000-01-01&uploaded_to=2999-01-01") != [] and ids("uploaded_to=2000-01-01") == []
    first, second = ids("per_page=1&page=1"), ids("per_page=1&page=2")
    assert len(first) == len(second) == 1 and set(first + second) == {bank, switch}
    for query in ("status=done", "file_type=ledger", "uploaded_from=yesterday", "per_page=0", "kind=",
                  "kind=c%00sv", "format=pdf", "kind=" + "x" * 21):
        refused = api.client.get(f"/api/files?{query}", headers=api.auth)
        assert refused.status_code == 400, (query, refused.text)
        assert error(refused)["code"] == "VALIDATION_ERROR"


SHARED = CARD_VS_BANK_A.parents[3] / "shared" / "data" / "card-vs-bank-a"
AGREEMENT_SAMPLES = [CARD_VS_BANK_A / "bank.csv", CARD_VS_BANK_A / "switch.csv"] + (
    [SHARED / "bank.csv", SHARED / "switch.csv"] if SHARED.is_dir() else [])


def test_reckai_reconcile_auto_and_the_upload_propose_the_same_mapping(api: Api, tmp_path: Any) -> None:
    """One proposal function (issue 16 item 4): the CLI's "auto" side and the upload's proposed
    mapping agree on every shared sample; the unsigned switch amounts are a constant debit in both."""
    from reckai.entrypoints.cli.main import main
    from tests.support import reconciliation_jobs as rj

    pairs = [(AGREEMENT_SAMPLES[i], AGREEMENT_SAMPLES[i + 1]) for i in range(0, len(AGREEMENT_SAMPLES), 2)]
    for run, (bank, switch) in enumerate(pairs):
        profile = rj.profile()
        profile["left"]["mapping"] = profile["right"]["mapping"] = "auto"
        path = tmp_path / f"auto-{run}.json"
        path.write_text(json.dumps(profile))
        out = tmp_path / f"out-{run}"
        assert main(["reconcile", "--left", str(bank), "--right", str(switch), "--profile", str(path),
                     "--out", str(out), "--period-start", "2025-12-01", "--period-end", "2025-12-31"]) == 0
        cli = json.loads((out / "summary.json").read_text())["auto_mappings"]
        for side, sample, file_type in (("left", bank, "bank"), ("right", switch, "switch")):
            uploaded = api.upload(sample.read_bytes(), filename=sample.name, file_type=file_type)
            assert uploaded.status_code == 201, uploaded.text
            assert uploaded.json()["data"]["transformation_rules"] == cli[side]["mapping"], (side, sample)
        assert cli["right"]["mapping"]["fields"]["direction"] == {"constant": "debit"}
        assert cli["left"]["mapping"]["fields"]["direction"]["from_sign"] == {"negative": "debit",
                                                                             "positive": "credit"}


def test_dry_run_rows_say_where_they_are_in_the_spreadsheet(api: Api) -> None:
    """Issue 16 item 6: leading empty rows and a title do not shift the positions: data row 1 of
    this sheet is spreadsheet row 7 of sheet "Statement"."""
    import io

    import xlsxwriter

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer)
    sheet = workbook.add_worksheet("Statement")
    sheet.write(3, 0, "ACME BANK statement")
    sheet.write_row(5, 0, ["date", "amount", "currency", "reference"])
    for i in range(3):
        sheet.write_row(6 + i, 0, [f"2025-12-0{i + 1}", f"-{i + 1}00.00", "NGN", f"R{i}"])
    workbook.close()
    uploaded = api.upload(buffer.getvalue(), filename="statement.xlsx")
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["data"]["transformation_rules"]["parse"]["header_row"] == 6
    body = api.client.post(f"/api/files/{uploaded.json()['data']['id']}/map?dry_run=true", json={},
                           headers=api.auth).json()["data"]
    assert [(r["row_number"], r["source_line"], r["source_sheet"], r["reference"]) for r in body["rows"]] == [
        (1, 7, "Statement", "R0"), (2, 8, "Statement", "R1"), (3, 9, "Statement", "R2")]


@pytest.mark.parametrize("path", ["/api/files?uploaded_from=", "/api/reconciliations?created_from="])
def test_a_moment_past_the_datetime_range_is_a_400_not_a_500(api: Api, path: str) -> None:
    response = api.client.get(path + "0001-01-01T00:00%2B05:00", headers=api.auth)
    assert response.status_code == 400 and error(response)["code"] == "VALIDATION_ERROR"
