"""The reconciliation API over HTTP on the in-memory container, with its in-process job worker
(tests/integration/test_reconciliation_jobs_services.py runs it against PostgreSQL, Redis, S3 and a
real `reckai worker` process)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from tests.support import reconciliation_jobs as rj
from tests.support.identity import bearer, create_user_with_role, login, onboard


class Api:
    def __init__(self, client: TestClient, container: Container) -> None:
        self.client = client
        self.container = container
        self.org_id, self.admin = onboard(client)
        self.token = login(client, self.admin.org_code, self.admin.email, self.admin.password)

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        return self.client.request(method, path, headers=bearer(token or self.token), **kwargs)

    def file(self, data: bytes, name: str, file_type: str, mapping: dict[str, Any]) -> uuid.UUID:
        uploaded = self.client.post("/api/files/upload", data={"file_type": file_type},
                                    files={"file": (name, data, "text/csv")}, headers=bearer(self.token))
        assert uploaded.status_code == 201, uploaded.text
        file_id = uploaded.json()["data"]["id"]
        mapped = self.call("POST", f"/api/files/{file_id}/map", json={"transformation_rules": mapping})
        assert mapped.status_code == 200, mapped.text
        return uuid.UUID(file_id)

    def wait(self, job_id: str, statuses: tuple[str, ...] = ("completed", "failed", "cancelled"),
             timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.call("GET", f"/api/reconciliations/{job_id}").json()["data"]
            if job["status"] in statuses:
                return job  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, job
            time.sleep(0.1)


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    container.worker_runner.start()
    try:
        with TestClient(create_app(container)) as client:
            api = Api(client, container)
            profile = rj.profile()
            api.left = api.file(rj.bank_bytes(), "bank.csv", "bank", profile["left"]["mapping"])  # type: ignore[attr-defined]
            api.right = api.file(rj.switch_bytes(), "switch.csv", "switch", profile["right"]["mapping"])  # type: ignore[attr-defined]
            rj.seed_rules(container.database, api.org_id, api.admin.user_id)
            yield api
    finally:
        container.worker_runner.stop()


def test_job_runs_in_the_background_and_agrees_with_reckai_reconcile(api: Api) -> None:
    created = api.call("POST", "/api/reconciliations", json=rj.start_body(api.left, api.right, force=True))  # type: ignore[attr-defined]
    assert created.status_code == 201, created.text
    body = created.json()["data"]
    assert body["status"] == "pending" and body["attempt"] == 1
    assert [r["name"] for r in body["rules"]] == [r["name"] for r in rj.profile()["rules"]]
    api.container.worker_runner.wake_relay()
    job = api.wait(body["id"])
    cli = rj.cli_summary()
    assert job["status"] == "completed", job
    assert job["warnings"] == [] and job["summary"]["warnings"] == []  # a plausible result
    assert job["progress"] == 100 and job["error_message"] is None
    assert job["total_rows"] == cli["rows"]["left"] + cli["rows"]["right"]
    assert job["matched_rows"] == cli["matched_rows"]["left"] + cli["matched_rows"]["right"]
    assert job["match_rate"] == f"{cli['match_rate']:.2f}"
    assert job["summary"]["matched_pairs"] == cli["matched_pairs"]
    assert {f["side"] for f in job["files"]} == {"left", "right"}

    results = api.call("GET", f"/api/reconciliations/{job['id']}/results?per_page=100&page=2").json()
    assert results["data"]["total"] == cli["matched_pairs"] and len(results["data"]["items"]) == 100
    assert results["data"]["exceptions_by_type"] == {k: v for k, v in cli["exceptions_by_type"].items() if v}
    assert results["data"]["links"]["exceptions"] == f"/api/exceptions?job_id={job['id']}"
    first = results["data"]["items"][0]
    assert {"left_row", "right_row", "rule", "confidence", "evidence"} <= set(first)
    suggestions = api.call("GET", f"/api/reconciliations/{job['id']}/results?kind=suggestions").json()["data"]
    assert suggestions["total"] == cli["suggested_pairs"]

    # Keyset paging: following next_cursor from page 1 reads what page 2, 3 read by offset.
    by_offset = [api.call("GET", f"/api/reconciliations/{job['id']}/results?per_page=50&page={n}").json()["data"]
                 for n in (1, 2, 3)]
    cursor = by_offset[0]["next_cursor"]
    for expected in by_offset[1:]:
        keyset = api.call("GET", f"/api/reconciliations/{job['id']}/results?per_page=50&cursor={cursor}").json()["data"]
        assert keyset["items"] == expected["items"] and keyset["total"] == expected["total"]
        cursor = keyset["next_cursor"]
    with api.container.database.unit_of_work(api.org_id) as uow:  # the recorded totals are the stored rows
        assert uow.reconciliation_results.count_matches(uuid.UUID(job["id"]), status="auto") == cli["matched_pairs"]
        assert uow.reconciliation_results.count_matches(uuid.UUID(job["id"]), status="suggested") == cli["suggested_pairs"]
    for bad in ("not-a-cursor", "MXwy", "LTF8Mg"):  # garbage, "1|2" without padding is fine, "-1|2"
        refused = api.call("GET", f"/api/reconciliations/{job['id']}/results?cursor={bad}")
        if bad == "MXwy":
            assert refused.status_code == 200
            continue
        assert refused.status_code == 400 and refused.json()["error"]["details"][0]["field"] == "cursor"
    last_page = -(-cli["matched_pairs"] // 100)
    tail = api.call("GET", f"/api/reconciliations/{job['id']}/results?per_page=100&page={last_page}").json()["data"]
    assert 0 < len(tail["items"]) <= 100 and (len(tail["items"]) == 100) == (tail["next_cursor"] is not None)


def test_list_filters_and_meta_rename_cancel_and_delete(api: Api) -> None:
    made = [api.call("POST", "/api/reconciliations", json=rj.start_body(api.left, api.right, f"job {i}", force=True))  # type: ignore[attr-defined]
            .json()["data"] for i in range(2)]
    cancelled = api.call("POST", f"/api/reconciliations/{made[0]['id']}/cancel").json()["data"]
    assert cancelled["status"] in ("cancelled", "processing")
    api.wait(made[0]["id"], ("cancelled",))
    again = api.call("POST", f"/api/reconciliations/{made[0]['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "JOB_ALREADY_FINISHED"
    listed = api.call("GET", "/api/reconciliations?status=cancelled&per_page=1").json()
    assert listed["meta"]["per_page"] == 1 and listed["meta"]["total"] >= 1
    assert all(j["status"] == "cancelled" for j in listed["data"])
    future = api.call("GET", "/api/reconciliations?created_from=2999-01-01").json()
    assert future["data"] == [] and future["meta"]["total"] == 0
    renamed = api.call("PUT", f"/api/reconciliations/{made[1]['id']}", json={"name": "renamed"})
    assert renamed.status_code == 200 and renamed.json()["data"]["name"] == "renamed"
    assert made[1]["previous_job_id"] == made[0]["id"]  # the same files again: linked to the earlier job
    api.wait(made[1]["id"])
    gone = api.call("DELETE", f"/api/reconciliations/{made[1]['id']}")
    assert gone.status_code == 200
    assert api.call("GET", f"/api/reconciliations/{made[1]['id']}").status_code == 404


def test_permissions_and_bad_requests(api: Api) -> None:
    _, auditor = create_user_with_role(api.client, api.token, "auditor")
    _, analyst = create_user_with_role(api.client, api.token, "analyst")
    body = rj.start_body(api.left, api.right, force=True)  # type: ignore[attr-defined]
    assert api.call("POST", "/api/reconciliations", token=auditor, json=body).status_code == 403
    assert api.call("GET", "/api/reconciliations", token=auditor).status_code == 200
    job = api.call("POST", "/api/reconciliations", token=analyst, json=body).json()["data"]
    api.wait(job["id"])
    assert api.call("DELETE", f"/api/reconciliations/{job['id']}", token=analyst).status_code == 403
    unknown = api.call("POST", "/api/reconciliations", json={**body, "surprise": 1})
    assert unknown.status_code == 400
    not_ready = api.call("POST", "/api/reconciliations", json={**body, "left_file_id": str(uuid.uuid4())})
    assert not_ready.status_code == 422 and not_ready.json()["error"]["code"] == "FILE_NOT_READY"
    no_rules = api.call("POST", "/api/reconciliations", json={**body, "rule_ids": [str(uuid.uuid4())]})
    assert no_rules.status_code == 422 and no_rules.json()["error"]["code"] == "NO_ACTIVE_RULES"
    assert api.call("GET", f"/api/reconciliations/{uuid.uuid4()}").status_code == 404
    pending = api.call("POST", "/api/reconciliations", json=body).json()["data"]
    early = api.call("GET", f"/api/reconciliations/{pending['id']}/results")
    assert early.status_code in (200, 409)


def test_an_implausible_result_completes_with_warnings_on_the_job_and_in_the_mail(api: Api) -> None:
    """Issue 16: the switch file's unsigned amounts read "from sign" are all credits; the job keeps
    the switch side's debits, so nothing takes part and nothing matches. The job still completes,
    with warnings a person sees on the job and in the completion mail. Its files are then
    processed; the dry run shows what was wrong, and the file can be re-mapped (a new version:
    tests/unit/test_files_remap_http.py follows that story)."""
    mapping = rj.profile()["right"]["mapping"]
    mapping["fields"]["direction"] = {"from_sign": {}}
    credits = api.file(rj.switch_bytes(), "switch-credits.csv", "switch", mapping)
    created = api.call("POST", "/api/reconciliations", json=rj.start_body(api.left, credits, "credits"))  # type: ignore[attr-defined]
    assert created.status_code == 201, created.text
    api.container.worker_runner.wake_relay()
    job = api.wait(created.json()["data"]["id"])
    assert job["status"] == "completed" and job["match_rate"] == "0.00", job
    assert [(w["code"], w["side"]) for w in job["warnings"]] == [("DIRECTION_FILTER_EMPTY", "right"),
                                                                 ("NO_MATCHES", None)]
    assert "none of the 2000 rows of the Switch side (right) is a debit" in job["warnings"][0]["message"]
    assert job["summary"]["warnings"] == [{**w} for w in job["warnings"]]
    deadline = time.monotonic() + 30

    def mails() -> list[str]:
        return [m.text_body for m in api.container.mailer.sent if "'credits'" in m.subject]  # type: ignore[attr-defined]

    while not mails():
        assert time.monotonic() < deadline, "no completion mail"
        api.container.worker_runner.wake_relay()
        time.sleep(0.1)
    assert "Warnings: the result looks implausible" in mails()[0] and "none of the 2000 rows" in mails()[0]

    # every exception's source row says where it is in the file (issue 16 item 6)
    listed = api.call("GET", f"/api/exceptions?job_id={job['id']}&per_page=1").json()["data"]
    detail = api.call("GET", f"/api/exceptions/{listed[0]['id']}")
    assert detail.status_code == 200, detail.text
    rows = [row for row in detail.json()["data"]["source_rows"].values() if row]
    assert rows and all(row["source"] == f"line {row['row_number'] + 1}" == f"line {row['source_line']}"
                        for row in rows)

    dry = api.call("POST", f"/api/files/{credits}/map?dry_run=true", json={})
    assert dry.status_code == 200 and dry.json()["data"]["status"] == "processed"
    assert {w["code"] for w in dry.json()["data"]["warnings"]} == {"ONE_DIRECTION"}
    remapped = api.call("POST", f"/api/files/{credits}/map", json={"transformation_rules": rj.profile()["right"]["mapping"]})
    assert remapped.status_code == 200, remapped.text
    assert remapped.json()["data"]["current_version"] == 2 and remapped.json()["data"]["status"] == "processed"

