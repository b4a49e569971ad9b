"""The stream API over HTTP on the in-memory container with its in-process worker: status codes and
error envelopes of each route, a run started over HTTP and read back with its figures, the one-off
job over two files already reconciled together (409 naming the earlier job, unless force), and a
stream's run that cannot be deleted."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.application.ports.rate_limit import TIERS
from reckai.application.ports.reconciliations import RuleVersion
from reckai.bootstrap import bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from tests.support import reconciliation_jobs as rj
from tests.support.identity import bearer, create_user_with_role, login, onboard
from tests.support.stream_scenarios import DAY1_BANK, DAY1_SWITCH, DAY2_BANK, DAY2_SWITCH
from tests.support.streams import EXACT_RULE, bank_csv, switch_csv


class Api:
    def __init__(self, client: TestClient, container: Any) -> None:
        self.client, self.container = client, container
        self.org_id, admin = onboard(client)
        self.admin_id = admin.user_id
        self.token = login(client, admin.org_code, admin.email, admin.password)
        self.auditor = create_user_with_role(client, self.token, "auditor")[1]

    def call(self, method: str, path: str, status: int, token: str | None = None, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=bearer(token or self.token), **kwargs)
        assert response.status_code == status, response.text
        return response.json()

    def file(self, data: bytes, name: str, file_type: str) -> str:
        side = "left" if file_type == "bank" else "right"
        self.container.rate_limiter.reset(TIERS["upload"], str(self.admin_id))  # many uploads in one module
        uploaded = self.call("POST", "/api/files/upload", 201, data={"file_type": file_type},
                             files={"file": (name, data, "text/csv")})["data"]
        self.call("POST", f"/api/files/{uploaded['id']}/map", 200,
                  json={"transformation_rules": rj.profile()[side]["mapping"]})
        self.container.reconciliations.normalize_file(self.org_id, uuid.UUID(uploaded["id"]))
        return str(uploaded["id"])

    def wait(self, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            self.container.rate_limiter.reset(TIERS["api"], str(self.admin_id))  # polling is many requests
            job = self.call("GET", f"/api/reconciliations/{job_id}", 200)["data"]
            if job["status"] in ("completed", "failed", "cancelled"):
                return job  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, job
            time.sleep(0.05)


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    container.worker_runner.start()
    try:
        with TestClient(create_app(container)) as client:
            api = Api(client, container)
            rule = RuleVersion(uuid.uuid4(), 1, "rrn-exact", EXACT_RULE, ("bank", "switch"))
            with container.database.unit_of_work(api.org_id) as uow:
                uow.matching_rules.add_version(rule, created_by=api.admin_id, priority=10)
                uow.commit()
            yield api
    finally:
        container.worker_runner.stop()


def _error(body: dict[str, Any]) -> tuple[str, list[str]]:
    assert body["success"] is False
    return body["error"]["code"], [detail["field"] for detail in body["error"]["details"]]


def test_a_stream_over_http_two_days(api: Api) -> None:
    left, right = api.file(bank_csv(DAY1_BANK), "b1.csv", "bank"), api.file(switch_csv(DAY1_SWITCH), "s1.csv", "switch")
    created = api.call("POST", "/api/streams", 201, json={
        "name": "POS vs bank 0123", "currency": "NGN", "leading_side": "right",
        "left": {"template_file_id": left}, "right": {"template_file_id": right}})["data"]
    stream = created["id"]
    assert created["left"]["file_type"] == "bank" and [r["name"] for r in created["rules"]] == ["rrn-exact"]
    # name taken, bad currency, unknown field, both mapping and template: clear 4xx envelopes
    assert _error(api.call("POST", "/api/streams", 409, json={
        "name": "POS vs bank 0123", "currency": "NGN", "left": {"template_file_id": left},
        "right": {"template_file_id": right}})) == ("STREAM_NAME_TAKEN", ["name"])
    assert _error(api.call("POST", "/api/streams", 400, json={
        "name": "x", "currency": "naira", "left": {"template_file_id": left},
        "right": {"template_file_id": right}}))[1] == ["currency"]
    assert api.call("POST", "/api/streams", 400, json={"name": "x", "currency": "NGN", "left": {}, "right": {},
                                                        "surprise": 1})["success"] is False
    assert _error(api.call("POST", "/api/streams", 400, json={
        "name": "y", "currency": "NGN", "left": {"template_file_id": left, "mapping": {}},
        "right": {"template_file_id": right}}))[1] == ["left"]
    assert _error(api.call("POST", f"/api/streams/{stream}/runs", 409))[0] == "STREAM_NOTHING_TO_RUN"
    for file_id in (left, right):
        api.call("POST", f"/api/streams/{stream}/files", 201, json={"file_id": file_id})
    assert _error(api.call("POST", f"/api/streams/{stream}/files", 409, json={"file_id": left}))[0] == \
        "FILE_ALREADY_USED"
    run = api.call("POST", f"/api/streams/{stream}/runs", 201)["data"]
    assert run["run_number"] == 1
    assert _error(api.call("POST", f"/api/streams/{stream}/runs", 409))[0] in ("STREAM_RUN_IN_PROGRESS",
                                                                               "STREAM_NOTHING_TO_RUN")
    assert api.wait(run["job_id"])["status"] == "completed"
    # A stream's run is part of its history: not deletable.
    assert _error(api.call("DELETE", f"/api/reconciliations/{run['job_id']}", 409))[0] == "JOB_IS_STREAM_RUN"

    left2, right2 = api.file(bank_csv(DAY2_BANK), "b2.csv", "bank"), api.file(switch_csv(DAY2_SWITCH), "s2.csv",
                                                                                 "switch")
    api.call("POST", f"/api/streams/{stream}/files", 201, json={"file_id": left2, "side": "left"})
    api.call("POST", f"/api/streams/{stream}/files", 201, json={"file_id": right2})
    run2 = api.call("POST", f"/api/streams/{stream}/runs", 201)["data"]
    assert api.wait(run2["job_id"])["status"] == "completed"
    details = api.call("GET", f"/api/streams/{stream}", 200, token=api.auditor)["data"]  # auditors read streams
    assert [r["run_number"] for r in details["runs"]] == [1, 2]
    # A run's matches name stream row numbers: each is looked up to its file and row.
    row = api.call("GET", f"/api/streams/{stream}/rows/right/3", 200, token=api.auditor)["data"]
    assert row == {**row, "side": "right", "stream_row": 3, "file_id": right2, "row_number": 1, "run_number": 2}
    assert api.call("GET", f"/api/streams/{stream}/rows/left/999", 404)["success"] is False
    for bad in ("left/0", "middle/1", f"left/{2**63}"):
        assert api.call("GET", f"/api/streams/{stream}/rows/{bad}", 400)["success"] is False
    assert api.call("GET", f"/api/streams/{stream}/rows/left/x", 404)["success"] is False  # no such route
    assert details["runs"][1]["figures"]["closed_by_later_match"] == 2
    assert details["open_items"] == {"left": 1, "right": 0}
    assert len(details["files"]) == 4 and all(f["job_id"] for f in details["files"])
    listed = api.call("GET", "/api/streams?per_page=5", 200)
    assert listed["meta"]["total"] == 1 and listed["data"][0]["id"] == stream
    renamed = api.call("PUT", f"/api/streams/{stream}", 200, json={"name": "POS vs bank 0123 (NGN)"})["data"]
    assert renamed["name"] == "POS vs bank 0123 (NGN)"
    api.call("PUT", f"/api/streams/{stream}", 403, token=api.auditor, json={"name": "no"})
    assert _error(api.call("GET", f"/api/streams/{uuid.uuid4()}", 404))[0] == "NOT_FOUND"


def test_a_one_off_job_over_files_already_reconciled_together_is_409_unless_forced(api: Api) -> None:
    left, right = api.file(bank_csv(DAY1_BANK, balance="9.00"), "b.csv", "bank"), \
        api.file(switch_csv(DAY1_SWITCH, note="X"), "s.csv", "switch")
    body = rj.start_body(uuid.UUID(left), uuid.UUID(right), "first")
    first = api.call("POST", "/api/reconciliations", 201, json=body)["data"]
    refused = api.call("POST", "/api/reconciliations", 409, json={**body, "name": "again"})
    assert _error(refused) == ("FILES_ALREADY_RECONCILED", ["force"])
    assert first["id"] in refused["error"]["message"]
    forced = api.call("POST", "/api/reconciliations", 201, json={**body, "name": "again", "force": True})["data"]
    assert forced["previous_job_id"] == first["id"]
    api.wait(first["id"])
    api.wait(forced["id"])


def _by_key(api: Api, job_id: str) -> dict[tuple[str, int | None, int | None], dict[str, Any]]:
    items = api.call("GET", f"/api/exceptions?job_id={job_id}&per_page=100", 200)["data"]
    return {(e["type"], e["left_row"], e["right_row"]): e for e in items}


def test_a_forced_job_inherits_the_state_of_the_earlier_jobs_exceptions(api: Api) -> None:
    """Issue 15 item 3: forced over the same files (same versions, same row numbers), each exception
    takes the state of the earlier job's with the same key, as a system action: a resolved one stays
    resolved with its resolution, an assigned one keeps its assignee, SLA clock and comments, an
    untouched one stays open; the earlier job's exceptions do not change; one audit row."""
    left, right = api.file(bank_csv(DAY1_BANK, balance="7.00"), "b7.csv", "bank"), \
        api.file(switch_csv(DAY1_SWITCH, note="Z"), "s7.csv", "switch")
    body = rj.start_body(uuid.UUID(left), uuid.UUID(right), "first")
    first = api.call("POST", "/api/reconciliations", 201, json=body)["data"]
    assert api.wait(first["id"])["status"] == "completed"
    earlier = _by_key(api, first["id"])
    assert len(earlier) == 3, earlier  # bank rows 2 and 3, switch row 2 (DAY1: one match)
    resolved_key, assigned_key, open_key = sorted(earlier, key=lambda k: (k[1] is None, k[1] or 0, k[2] or 0))
    resolved = api.call("POST", f"/api/exceptions/{earlier[resolved_key]['id']}/resolve", 200, json={
        "resolution_code": "corrected_at_source", "resolution_note": "the bank corrected the entry"})["data"]
    assert resolved["exception"]["status"] == "resolved", resolved
    assigned = earlier[assigned_key]["id"]
    api.call("PATCH", f"/api/exceptions/{assigned}", 200, json={"status": "in_progress"})
    api.call("POST", f"/api/exceptions/{assigned}/assign", 200, json={"assignee_id": str(api.admin_id)})
    api.call("POST", f"/api/exceptions/{assigned}/comments", 201, json={"content": "asked the bank"})
    earlier = _by_key(api, first["id"])

    forced = api.call("POST", "/api/reconciliations", 201, json={**body, "name": "again", "force": True})["data"]
    done = api.wait(forced["id"])
    assert done["status"] == "completed", done
    assert done["summary"]["inherited"] == {"from_job_id": first["id"], "exceptions": 3}
    later = _by_key(api, forced["id"])
    assert set(later) == set(earlier)
    for key, item in later.items():
        assert item["id"] != earlier[key]["id"] and item["inherited_from"] == earlier[key]["id"]
        assert item["due_at"] == earlier[key]["due_at"]  # the SLA clock carries on
    closed = later[resolved_key]
    assert (closed["status"], closed["resolution_code"], closed["resolution_note"], closed["resolved_by"],
            closed["resolved_at"]) == ("resolved", "corrected_at_source", "the bank corrected the entry",
                                       str(api.admin_id), earlier[resolved_key]["resolved_at"])
    carried = later[assigned_key]
    assert (carried["status"], carried["assigned_to"]) == ("in_progress", str(api.admin_id))
    assert later[open_key]["status"] == "open" and later[open_key]["assigned_to"] is None
    detail = api.call("GET", f"/api/exceptions/{carried['id']}", 200)["data"]
    assert [(c["content"], c["user_id"]) for c in detail["comments"]] == [("asked the bank", str(api.admin_id))]
    inherit = [h for h in detail["history"] if h["action"] == "inherit"]
    assert len(inherit) == 1 and inherit[0]["actor_id"] is None
    assert (inherit[0]["from_status"], inherit[0]["to_status"]) == ("open", "in_progress")
    assert inherit[0]["changes"]["note"] == f"inherited from exception {earlier[assigned_key]['id']} of job {first['id']}"
    assert _by_key(api, first["id"]) == earlier  # the earlier job's exceptions are only read
    audit = api.call("GET", f"/api/audit-logs?action=exception.inherited&resource_id={forced['id']}", 200)["data"]
    assert len(audit) == 1 and audit[0]["user_id"] is None
    assert audit[0]["metadata"]["count"] == 3 and audit[0]["metadata"]["previous_job_id"] == first["id"]

    # Forced again with a rule that matches nothing: two more breaks (bank row 1, switch row 1), only
    # in this job: they stay new; the three others inherit from the newest earlier job (`forced`).
    never = RuleVersion(uuid.uuid4(), 1, "never", {**EXACT_RULE, "conditions": {
        "right": [{"field": "status", "op": "eq", "value": "nope"}], "auto_match_threshold": 0.5}},
        ("gl", "card"))  # not a default rule of bank against switch: given by id only
    with api.container.database.unit_of_work(api.org_id) as uow:
        uow.matching_rules.add_version(never, created_by=api.admin_id, priority=5)
        uow.commit()
    wider = api.call("POST", "/api/reconciliations", 201, json={
        **body, "name": "wider", "force": True, "rule_ids": [str(never.rule_id)]})["data"]
    assert api.wait(wider["id"])["status"] == "completed"
    widest = _by_key(api, wider["id"])
    only_new = {key for key in widest if key not in later}
    assert len(widest) == 5 and {(k[1], k[2]) for k in only_new} == {(1, None), (None, 1)}
    for key in only_new:
        assert (widest[key]["status"], widest[key]["inherited_from"], widest[key]["assigned_to"]) == ("open", None, None)
    assert {key: widest[key]["inherited_from"] for key in later} == {key: later[key]["id"] for key in later}
    # a person works on one of them; the next forced job (the exact rule again) does not have it:
    # it is left as it is, the three others inherit from `wider`
    kept = widest[next(iter(only_new))]["id"]
    api.call("POST", f"/api/exceptions/{kept}/assign", 200, json={"assignee_id": str(api.admin_id)})
    widest = _by_key(api, wider["id"])
    again = api.call("POST", "/api/reconciliations", 201, json={**body, "name": "exact again", "force": True})["data"]
    assert api.wait(again["id"])["status"] == "completed"
    last = _by_key(api, again["id"])
    assert set(last) == set(later) and all(last[k]["inherited_from"] == widest[k]["id"] for k in last)
    assert last[resolved_key]["status"] == "resolved" and last[assigned_key]["assigned_to"] == str(api.admin_id)
    assert _by_key(api, wider["id"]) == widest  # the earlier job's, with the one only in it, untouched
