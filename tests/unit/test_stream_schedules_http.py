"""The schedule routes over HTTP on the in-memory container: set (validated: a clear 400 per field),
read (with the next slot in the organization's zone), shown in GET /api/streams/:id, replaced,
removed; auditors read, they do not set."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.application.ports.reconciliations import RuleVersion
from reckai.bootstrap import bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from tests.support.stream_scenarios import DAY1_BANK, DAY1_SWITCH
from tests.support.streams import EXACT_RULE, bank_csv, switch_csv
from tests.unit.test_streams_http import Api


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    with TestClient(create_app(container)) as client:
        api = Api(client, container)
        rule = RuleVersion(uuid.uuid4(), 1, "rrn-exact", EXACT_RULE, ("bank", "switch"))
        with container.database.unit_of_work(api.org_id) as uow:
            uow.matching_rules.add_version(rule, created_by=api.admin_id, priority=10)
            organization = uow.organizations.get(api.org_id)
            organization.settings = {**(organization.settings or {}), "timezone": "Asia/Kolkata"}
            uow.organizations.update(organization)
            uow.commit()
        yield api


def _error(body: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    assert body["success"] is False
    details = body["error"]["details"]
    return body["error"]["code"], [d["field"] for d in details], [d["message"] for d in details]


def test_a_schedule_over_http(api: Api) -> None:
    left = api.file(bank_csv(DAY1_BANK), "b.csv", "bank")
    right = api.file(switch_csv(DAY1_SWITCH), "s.csv", "switch")
    stream = api.call("POST", "/api/streams", 201, json={
        "name": "scheduled", "currency": "NGN", "left": {"template_file_id": left},
        "right": {"template_file_id": right}})["data"]["id"]
    path = f"/api/streams/{stream}/schedule"
    assert api.call("GET", f"/api/streams/{stream}", 200)["data"]["schedule"] is None
    assert _error(api.call("GET", path, 404))[0] == "NOT_FOUND"
    body = {"cron": "30 6 * * 1-5", "expected_files": {"left": 1, "right": 1}, "grace_minutes": 90}
    # Bad input: one clear detail per field, nothing stored.
    for bad, field, words in (
            ({"cron": "61 6 * * *"}, "cron", "Bad minute"),
            ({"cron": "0 6 * *"}, "cron", "five fields"),
            ({"cron": "@daily"}, "cron", "five fields"),
            ({"cron": "0 6 31 2 *"}, "cron", "Bad day-of-month"),
            ({"expected_files": {"left": 0, "right": 0}}, "expected_files", "at least one"),
            ({"expected_files": {"left": -1, "right": 1}}, "expected_files.left", "0 to 100"),
            ({"grace_minutes": 24 * 60}, "grace_minutes", "shorter than the time between two slots of the schedule (1440 minutes)"),
            ({"cron": "*/15 * * * *", "grace_minutes": 15}, "grace_minutes", "(15 minutes)")):
        code, fields, messages = _error(api.call("PUT", path, 400, json={**body, **bad}))
        assert (code, fields) == ("VALIDATION_ERROR", [field]), messages
        assert words in messages[0], messages
    assert api.call("PUT", path, 400, json={**body, "surprise": 1})["success"] is False
    api.call("PUT", path, 403, token=api.auditor, json=body)
    assert api.call("GET", f"/api/streams/{stream}", 200)["data"]["schedule"] is None

    schedule = api.call("PUT", path, 200, json=body)["data"]
    assert schedule == {**schedule, "cron": "30 6 * * 1-5", "timezone": "Asia/Kolkata", "grace_minutes": 90,
                        "expected_files": {"left": 1, "right": 1}, "recent_slots": [],
                        "description": "At 06:30 on Monday through Friday"}
    # 06:30 in Kolkata (UTC+05:30) is 01:00 UTC, on a weekday
    next_slot = dt.datetime.fromisoformat(schedule["next_slot"])
    assert (next_slot.utcoffset(), next_slot.hour, next_slot.minute) == (dt.timedelta(0), 1, 0)
    assert next_slot.weekday() < 5 and next_slot > dt.datetime.now(dt.UTC)
    shown = api.call("GET", f"/api/streams/{stream}", 200, token=api.auditor)["data"]["schedule"]
    assert shown["next_slot"] == schedule["next_slot"] and shown["cron"] == "30 6 * * 1-5"
    assert api.call("GET", path, 200, token=api.auditor)["data"]["cron"] == "30 6 * * 1-5"

    replaced = api.call("PUT", path, 200, json={"cron": "0  7 * * *", "expected_files": {"right": 2}})["data"]
    assert (replaced["cron"], replaced["expected_files"], replaced["grace_minutes"]) == (
        "0 7 * * *", {"left": 0, "right": 2}, 0)
    assert replaced["created_at"] == schedule["created_at"]
    api.call("DELETE", path, 403, token=api.auditor)
    assert api.call("DELETE", path, 200)["data"] == {"stream_id": stream, "schedule": None}
    assert _error(api.call("DELETE", path, 404))[0] == "NOT_FOUND"
    assert api.call("GET", f"/api/streams/{stream}", 200)["data"]["schedule"] is None
    assert _error(api.call("PUT", f"/api/streams/{uuid.uuid4()}/schedule", 404, json=body))[0] == "NOT_FOUND"
