"""A stream's periods over HTTP (in-memory container, in-process worker, a clock the test moves):
close through a period_close approval (the maker cannot approve it), the snapshot in
GET /api/streams/:id/periods and GET /api/streams/:id, a PATCH of a closed period's exception
answered 409 PERIOD_CLOSED, an adjustment and a reopen through their approvals."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.application.ports.reconciliations import RuleVersion
from reckai.bootstrap import bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from tests.support import reconciliation_jobs as rj
from tests.support.identity import SECOND_PASSWORD, bearer, create_user_with_role, login, onboard
from tests.support.period_scenarios import DAY1_BANK, DAY1_SWITCH, MovableClock
from tests.support.streams import EXACT_RULE, bank_csv, switch_csv

LAGOS = dt.timezone(dt.timedelta(hours=1))


class Api:
    def __init__(self, client: TestClient, container: Any, moved: MovableClock) -> None:
        self.client, self.container, self.moved = client, container, moved
        self.org_id, self.admin = onboard(client)
        self.token = login(client, self.admin.org_code, self.admin.email, self.admin.password)
        self.supervisor_email = f"sup.{uuid.uuid4().hex[:6]}@example.com"
        self.supervisor = create_user_with_role(client, self.token, "supervisor", email=self.supervisor_email)[1]

    def relogin(self) -> None:
        """After the clock moved on: fresh tokens."""
        self.token = login(self.client, self.admin.org_code, self.admin.email, self.admin.password)
        self.supervisor = login(self.client, self.admin.org_code, self.supervisor_email, SECOND_PASSWORD)

    def call(self, method: str, path: str, status: int, token: str | None = None, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=bearer(token or self.token), **kwargs)
        assert response.status_code == status, response.text
        return response.json()

    def file(self, data: bytes, name: str, file_type: str) -> str:
        side = "left" if file_type == "bank" else "right"
        uploaded = self.call("POST", "/api/files/upload", 201, data={"file_type": file_type},
                             files={"file": (name, data, "text/csv")})["data"]
        self.call("POST", f"/api/files/{uploaded['id']}/map", 200,
                  json={"transformation_rules": rj.profile()[side]["mapping"]})
        self.container.reconciliations.normalize_file(self.org_id, uuid.UUID(uploaded["id"]))
        return str(uploaded["id"])

    def wait(self, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            job = self.call("GET", f"/api/reconciliations/{job_id}", 200)["data"]
            if job["status"] in ("completed", "failed", "cancelled"):
                return job  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, job
            time.sleep(0.05)


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    moved = MovableClock(dt.datetime.now(dt.UTC))
    container = bootstrap_in_memory(scanner=InMemoryScanner(), clock=moved)
    container.worker_runner.start()
    try:
        with TestClient(create_app(container)) as client:
            api = Api(client, container, moved)
            rule = RuleVersion(uuid.uuid4(), 1, "rrn-exact", EXACT_RULE, ("bank", "switch"))
            with container.database.unit_of_work(api.org_id) as uow:
                uow.matching_rules.add_version(rule, created_by=api.admin.user_id, priority=10)
                uow.commit()
            yield api
    finally:
        container.worker_runner.stop()


def _code(body: dict[str, Any]) -> str:
    assert body["success"] is False
    return str(body["error"]["code"])


def test_a_period_closed_adjusted_and_reopened_over_http(api: Api) -> None:
    left, right = api.file(bank_csv(DAY1_BANK), "b1.csv", "bank"), api.file(switch_csv(DAY1_SWITCH), "s1.csv", "switch")
    stream = api.call("POST", "/api/streams", 201, json={
        "name": "periods over http", "currency": "NGN", "leading_side": "right",
        "left": {"template_file_id": left}, "right": {"template_file_id": right}})["data"]["id"]
    for file_id in (left, right):
        api.call("POST", f"/api/streams/{stream}/files", 201, json={"file_id": file_id})
    run = api.call("POST", f"/api/streams/{stream}/runs", 201)["data"]
    assert api.wait(run["job_id"])["status"] == "completed"
    today = api.moved.now.astimezone(LAGOS).date().isoformat()  # the org's zone: Africa/Lagos
    assert _code(api.call("POST", f"/api/streams/{stream}/periods/{today}/close", 422, json={})) == \
        "PERIOD_NOT_ENDED"
    assert _code(api.call("POST", f"/api/streams/{stream}/periods/2025-13-01/close", 400, json={})) == \
        "VALIDATION_ERROR"
    with api.container.database.unit_of_work(api.org_id) as uow:
        breaks = {(b.left_seq, b.right_seq): b.exception_id for b in uow.streams.breaks(uuid.UUID(stream),
                                                                                         active_only=False)}
    r3, r5 = str(breaks[(3, None)]), str(breaks[(None, 3)])
    api.call("PATCH", f"/api/exceptions/{r3}", 200, json={"status": "ignored", "reason": "bank fee"})

    api.moved.now += dt.timedelta(days=1)
    api.relogin()
    asked = api.call("POST", f"/api/streams/{stream}/periods/{today}/close", 202, json={"note": "day done"})["data"]
    assert asked["type"] == "period_close" and asked["metadata"]["period"] == today
    assert _code(api.call("POST", f"/api/streams/{stream}/periods/{today}/close", 409, json={})) == \
        "PERIOD_REQUEST_PENDING"
    assert _code(api.call("POST", f"/api/approvals/{asked['id']}/approve", 403, json={})) == \
        "SELF_APPROVAL_FORBIDDEN"
    api.call("POST", f"/api/approvals/{asked['id']}/approve", 200, token=api.supervisor, json={})

    periods = api.call("GET", f"/api/streams/{stream}/periods", 200)["data"]
    assert [(p["period"], p["status"], p["runs"]) for p in periods] == [(today, "closed", [1])]
    figures = periods[0]["figures"]
    assert figures["open_items"]["count"] == 3 and figures["closed_items"]["ignored"] == 1
    assert figures["amounts"]["NGN"]["closed_minor"] == 5000
    assert api.call("GET", f"/api/streams/{stream}", 200)["data"]["periods"][0]["figures"] == figures
    assert _code(api.call("PATCH", f"/api/exceptions/{r3}", 409, json={"status": "open", "reason": "x"})) == \
        "PERIOD_CLOSED"
    api.call("PATCH", f"/api/exceptions/{r5}", 200, json={"status": "in_progress"})  # carried: workable

    adjust = api.call("POST", f"/api/streams/{stream}/periods/{today}/adjustments", 202, json={
        "action": "reopen", "exception_ids": [r3], "reason": "the bank reversed the fee"})["data"]
    api.call("POST", f"/api/approvals/{adjust['id']}/approve", 200, token=api.supervisor, json={})
    assert api.call("GET", f"/api/exceptions/{r3}", 200)["data"]["exception"]["status"] == "open"
    detail = api.call("GET", f"/api/streams/{stream}/periods/{today}", 200)["data"]
    assert [a["approval_id"] for a in detail["adjustments"]] == [adjust["id"]]
    assert {i["exception_id"]: i["carried"] for i in detail["items"]}[r3] is False

    assert _code(api.call("POST", f"/api/streams/{stream}/periods/{today}/reopen", 400, json={"reason": " "})) == \
        "VALIDATION_ERROR"
    reopen = api.call("POST", f"/api/streams/{stream}/periods/{today}/reopen", 202,
                      json={"reason": "late file"})["data"]
    api.call("POST", f"/api/approvals/{reopen['id']}/approve", 200, token=api.supervisor, json={})
    assert api.call("GET", f"/api/streams/{stream}/periods", 200)["data"][0]["status"] == "reopened"
    api.call("PATCH", f"/api/exceptions/{r3}", 200, json={"status": "in_progress"})  # no longer frozen
    assert _code(api.call("GET", f"/api/streams/{stream}/periods?granularity=month", 400)) == "VALIDATION_ERROR"
