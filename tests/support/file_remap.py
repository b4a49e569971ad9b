"""Re-mapping a file a job used, over HTTP as a person meets it (issue 16 item 4): the mapping was
wrong, the job matched nothing; the person re-maps the file, which makes a new normalized version,
and starts the job again. The earlier job keeps its results, exception details and source rows
(it reads the version it used); the new job reads the new version. A re-map that fails changes
nothing. Run on the in-memory container (tests/unit/test_files_remap_http.py) and on PostgreSQL
(tests/integration/test_files_remap_postgres.py)."""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from litestar.testing import TestClient

from tests.support import reconciliation_jobs as rj
from tests.support.identity import bearer, login, onboard


class Person:
    def __init__(self, client: TestClient, container: Any) -> None:
        self.client, self.container = client, container
        self.org_id, self.admin = onboard(client)
        self.token = login(client, self.admin.org_code, self.admin.email, self.admin.password)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.request(method, path, headers=bearer(self.token), **kwargs)

    def upload(self, data: bytes, name: str, file_type: str) -> str:
        uploaded = self.client.post("/api/files/upload", data={"file_type": file_type},
                                    files={"file": (name, data, "text/csv")}, headers=bearer(self.token))
        assert uploaded.status_code == 201, uploaded.text
        return str(uploaded.json()["data"]["id"])

    def map(self, file_id: str, mapping: dict[str, Any] | None, **extra: Any) -> Any:
        return self.call("POST", f"/api/files/{file_id}/map", json={"transformation_rules": mapping, **extra})

    def file(self, file_id: str) -> dict[str, Any]:
        found = self.call("GET", f"/api/files/{file_id}")
        assert found.status_code == 200, found.text
        return found.json()["data"]  # type: ignore[no-any-return]

    def run(self, left: str, right: str, name: str, **extra: Any) -> dict[str, Any]:
        created = self.call("POST", "/api/reconciliations",
                            json={**rj.start_body(uuid.UUID(left), uuid.UUID(right), name), **extra})
        assert created.status_code == 201, created.text
        job_id = created.json()["data"]["id"]
        self.work(uuid.UUID(job_id))
        deadline = time.monotonic() + 60
        while True:
            job = self.call("GET", f"/api/reconciliations/{job_id}").json()["data"]
            if job["status"] in ("completed", "failed", "cancelled"):
                assert job["status"] == "completed", job
                return job  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, job
            self.container.worker_runner.wake_relay()
            time.sleep(0.1)

    def work(self, job_id: uuid.UUID) -> None:
        """Have the job run: the in-process worker picks it up (memory); the PostgreSQL test runs
        the attempt itself."""
        self.container.worker_runner.wake_relay()

    def exceptions(self, job_id: str) -> list[dict[str, Any]]:
        listed = self.call("GET", f"/api/exceptions?job_id={job_id}&per_page=100&sort=created_at")
        assert listed.status_code == 200, listed.text
        return listed.json()["data"]  # type: ignore[no-any-return]

    def right_source_row(self, job_id: str) -> tuple[str, dict[str, Any]]:
        """An exception of the job about a switch (right) row, and that row as its detail shows it."""
        for item in self.exceptions(job_id):
            detail = self.call("GET", f"/api/exceptions/{item['id']}")
            assert detail.status_code == 200, detail.text
            row = detail.json()["data"]["source_rows"].get("right")
            if row:
                return item["id"], row
        raise AssertionError(f"job {job_id} has no exception about a right-side row")

    def source_row(self, exception_id: str) -> dict[str, Any]:
        row = self.call("GET", f"/api/exceptions/{exception_id}").json()["data"]["source_rows"]["right"]
        assert row
        return row  # type: ignore[no-any-return]


def remap_story(person: Person) -> None:
    """The wrong mapping, the job that matched nothing, the re-map, the next jobs."""
    good = rj.profile()["right"]["mapping"]
    wrong = copy.deepcopy(good)
    wrong["fields"]["direction"] = {"from_sign": {}}  # unsigned amounts read as credits: nothing is a debit
    bank = person.upload(rj.bank_bytes(), "bank.csv", "bank")
    assert person.map(bank, rj.profile()["left"]["mapping"]).status_code == 200
    switch = person.upload(rj.switch_bytes(), "switch.csv", "switch")
    first = person.map(switch, wrong)
    assert first.status_code == 200, first.text
    assert first.json()["data"]["current_version"] == 1

    # the job over version 1 matches nothing
    job_a = person.run(bank, switch, "with the wrong mapping")
    assert job_a["match_rate"] == "0.00"
    assert ("DIRECTION_FILTER_EMPTY", "right") in [(w["code"], w["side"]) for w in job_a["warnings"]]
    exceptions_a = person.exceptions(job_a["id"])
    assert person.file(switch)["status"] == "processed"

    # the re-map: a processed file, re-mapped with the right direction
    remapped = person.map(switch, good)
    assert remapped.status_code == 200, remapped.text
    body = remapped.json()["data"]
    assert body["status"] == "processed" and body["current_version"] == 2
    assert body["normalized"]["version"] == 2 and body["row_count"] == body["normalized"]["row_count"] == 2000
    assert [(v["version"], v["current"], v["row_count"]) for v in body["versions"]] == [(1, False, 2000),
                                                                                      (2, True, 2000)]
    assert body["versions"][0]["transformation_rules"]["fields"]["direction"] == {"from_sign": {}}
    assert body["versions"][1]["transformation_rules"]["fields"]["direction"] == {"constant": "debit"}
    assert body["transformation_rules"]["fields"]["direction"] == {"constant": "debit"}
    assert {v["created_by"] for v in body["versions"]} == {str(person.admin.user_id)}
    assert all(v["created_at"] for v in body["versions"])

    # the earlier job is untouched: the same job, the same exceptions
    assert person.call("GET", f"/api/reconciliations/{job_a['id']}").json()["data"] == job_a
    assert person.exceptions(job_a["id"]) == exceptions_a

    # a job started after the re-map reads version 2 (no force needed: other rows than job A read)
    job_b = person.run(bank, switch, "with the right mapping")
    assert float(job_b["match_rate"]) > 50, job_b
    assert "DIRECTION_FILTER_EMPTY" not in {w["code"] for w in job_b["warnings"]}
    again = person.call("POST", "/api/reconciliations",
                        json=rj.start_body(uuid.UUID(bank), uuid.UUID(switch), "the same version again"))
    assert again.status_code == 409 and again.json()["error"]["code"] == "FILES_ALREADY_RECONCILED"

    # job B's exception details and source rows do not move when the file is re-mapped once more
    exception_id, row_b = person.right_source_row(job_b["id"])
    assert row_b["direction"] == "debit" and row_b["description"] and not row_b["description"].isdigit()
    third = copy.deepcopy(good)
    third["fields"]["description"] = {"column": "terminal_id"}
    assert person.map(switch, third).status_code == 200
    assert person.file(switch)["current_version"] == 3
    assert person.source_row(exception_id) == row_b
    job_c = person.run(bank, switch, "descriptions from the terminal id")
    _, row_c = person.right_source_row(job_c["id"])
    assert row_c["description"].isdigit()  # version 3: the terminal id
    assert person.call("GET", f"/api/reconciliations/{job_a['id']}").json()["data"] == job_a
    assert [v["version"] for v in person.file(switch)["versions"]] == [1, 2, 3]


def failed_remap_story(person: Person) -> None:
    """Re-maps that fail leave the file as it was."""
    good = rj.profile()["right"]["mapping"]
    switch = person.upload(rj.switch_bytes() + b"\r\n", "switch-2.csv", "switch")
    assert person.map(switch, good).status_code == 200
    before = person.file(switch)

    missing_column = copy.deepcopy(good)
    missing_column["fields"]["amount"]["column"] = "no_such_column"
    refused = person.map(switch, missing_column)  # found while reading the file: after the mapping was parsed
    assert refused.status_code == 400 and "no_such_column" in refused.text, refused.text
    bad_dates = copy.deepcopy(good)
    bad_dates["fields"]["transaction_date"]["formats"] = ["%d/%m/%Y"]  # no row reads with it
    failed = person.map(switch, bad_dates)
    assert failed.status_code == 422 and failed.json()["error"]["code"] == "NORMALIZATION_FAILED", failed.text
    assert failed.json()["error"]["details"]  # the rows that failed, in the answer
    invalid = person.map(switch, {**good, "fields": {**good["fields"], "amount": {"colour": "red"}}})
    assert invalid.status_code == 400 and invalid.json()["error"]["code"] == "VALIDATION_ERROR"

    after = person.file(switch)
    assert after == before  # status, version, mapping, row count, report: as they were
    assert after["status"] == "normalized" and after["current_version"] == 1 and after["error_message"] is None

    # allow_row_errors keeps the rows that pass: that is a new version
    kept = person.map(switch, bad_dates, allow_row_errors=True)
    assert kept.status_code == 200, kept.text
    assert kept.json()["data"]["current_version"] == 2 and kept.json()["data"]["row_count"] == 0
