"""Issue 16 item 3 end to end on the in-memory container: a reconciliation job run by the worker
stores its exceptions with the search keys of their rows (found again by them), and the job's
results page takes the same row filters (tests/unit/test_exception_search.py: the keys and the
exception filters one by one)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.bootstrap import bootstrap_in_memory
from reckai.domain.exceptions.search import masked_account, search_key
from reckai.domain.ingestion.canonical import minor_unit_exponent
from tests.support import reconciliation_jobs as rj
from tests.support.identity import bearer
from tests.unit.test_api_fuzz_regressions import Api


@pytest.fixture(scope="module")
def job() -> Iterator[tuple[Api, dict[str, Any], list[str]]]:
    from reckai.entrypoints.http.app import create_app

    container = bootstrap_in_memory(scanner=InMemoryScanner())
    container.worker_runner.start()
    try:
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            api = Api(client, container)
            profile = rj.profile()
            files = []
            for data, name, kind, side in ((rj.bank_bytes(), "bank.csv", "bank", "left"),
                                           (rj.switch_bytes(), "switch.csv", "switch", "right")):
                uploaded = api.client.post("/api/files/upload", data={"file_type": kind},
                                           files={"file": (name, data, "text/csv")}, headers=bearer(api.token))
                assert uploaded.status_code == 201, uploaded.text
                file_id = uploaded.json()["data"]["id"]
                mapped = api.call("POST", f"/api/files/{file_id}/map",
                                  json={"transformation_rules": profile[side]["mapping"]})
                assert mapped.status_code == 200, mapped.text
                files.append(file_id)
            rj.seed_rules(container.database, api.org_id, api.admin.user_id)
            started = api.call("POST", "/api/reconciliations", json=rj.start_body(*files)).json()["data"]
            container.worker_runner.wake_relay()
            deadline = time.monotonic() + 120
            while (done := api.call("GET", f"/api/reconciliations/{started['id']}").json()["data"])[
                    "status"] != "completed":
                assert done["status"] not in ("failed", "cancelled") and time.monotonic() < deadline, done
                time.sleep(0.1)
            yield api, done, files
    finally:
        container.worker_runner.stop()


def _row(api: Api, file_id: str, number: int) -> dict[str, Any]:
    row = api.container.source_rows.row(api.org_id, uuid.UUID(file_id), number)
    assert row is not None
    return row


def test_a_jobs_exceptions_carry_their_rows_keys_and_are_found_by_them(job: Any) -> None:
    api, done, files = job
    listed = api.call("GET", "/api/exceptions", params={"job_id": done["id"], "per_page": 100}).json()["data"]
    checked = 0
    for item in listed:
        side, number = ("left", item["left_row"]) if item["left_row"] else ("right", item["right_row"])
        row = _row(api, files[0] if side == "left" else files[1], number)
        if item["left_row"] and item["right_row"]:
            continue  # a pair: the left row's keys, checked on the one-sided breaks
        assert item["reference"] == search_key(row["reference"]), (item, row)
        assert item["secondary_reference"] == search_key(row["secondary_reference"])
        assert item["masked_account"] == masked_account(row["account"])
        assert item["channel"] == search_key(row["channel"])
        if item["reference"]:
            found = api.call("GET", "/api/exceptions", params={"job_id": done["id"], "reference": row["reference"]})
            assert item["id"] in {e["id"] for e in found.json()["data"]}
            checked += 1
    assert checked >= 3  # the sample files' breaks have references


def test_the_results_page_takes_the_row_filters(job: Any) -> None:
    api, done, files = job
    path = f"/api/reconciliations/{done['id']}/results"
    everything = api.call("GET", path, params={"per_page": 100}).json()["data"]
    pair = everything["items"][3]
    left = _row(api, files[0], pair["left_row"])
    assert left["reference"]
    by_reference = api.call("GET", path, params={"reference": left["reference"].lower()}).json()["data"]
    assert (pair["left_row"], pair["right_row"]) in {(p["left_row"], p["right_row"]) for p in by_reference["items"]}
    assert 1 <= by_reference["total"] < everything["total"]
    prefix = api.call("GET", path, params={"reference_prefix": left["reference"][:-2]}).json()["data"]
    assert prefix["total"] >= by_reference["total"]
    amount = Decimal(left["amount_minor"]).scaleb(-minor_unit_exponent(left["currency"]))
    day = left["transaction_date"][:10]
    exact = api.call("GET", path, params={"amount_min": str(amount), "amount_max": str(amount), "date_from": day,
                                          "date_to": day}).json()["data"]
    assert (pair["left_row"], pair["right_row"]) in {(p["left_row"], p["right_row"]) for p in exact["items"]}
    nothing = api.call("GET", path, params={"reference": "NO-SUCH-REFERENCE"}).json()["data"]
    assert (nothing["items"], nothing["total"]) == ([], 0)
    refused = api.call("GET", path, params={"referense": "x"})
    assert refused.status_code == 400 and refused.json()["error"]["details"][0]["field"] == "referense"
    assert api.call("GET", path, params={"reference": " "}).status_code == 400
