"""GET /api/audit-logs, /verify and /export over the in-memory container (issue 17 item 1):
filters and keyset paging, verification over a period naming the first broken row, the CSV export
neutralised, and every one of these reads recorded as an access event. The same routes run on
PostgreSQL in tests/integration/test_audit_trail_postgres.py."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.application.ports.audit import AuditQuery
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.domain.audit.events import AuditEvent, AuditRecord
from reckai.entrypoints.http.app import create_app
from tests.support.identity import bearer, create_user_with_role, login, onboard


@dataclasses.dataclass
class World:
    container: Container
    client: TestClient[Any]
    org: uuid.UUID
    admin: str
    auditor: str
    analyst: str
    auditor_id: uuid.UUID


@pytest.fixture
def world() -> Iterator[World]:
    container = bootstrap_in_memory()
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        org, admin = onboard(client)
        admin_token = login(client, admin.org_code, admin.email, admin.password)
        auditor_id, auditor = create_user_with_role(client, admin_token, "auditor")
        _, analyst = create_user_with_role(client, admin_token, "analyst")
        yield World(container, client, org, admin_token, auditor, analyst, auditor_id)
    container.close()


def _write(world: World, count: int, **fields: Any) -> list[AuditRecord]:
    return [world.container.audit_log.record_independently(AuditEvent(
        organization_id=world.org, **{"action": "test.event", **fields})) for _ in range(count)]


def _get(world: World, path: str, token: str | None = None, **params: Any) -> Any:
    response = world.client.get(path, params=params, headers=bearer(token or world.auditor))
    return response


def test_admin_and_auditor_read_the_trail_an_analyst_may_not(world: World) -> None:
    for token in (world.admin, world.auditor):
        response = _get(world, "/api/audit-logs", token)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["success"] is True and body["data"], body
        sequences = [row["sequence_number"] for row in body["data"]]
        assert sequences == sorted(sequences, reverse=True)
    for path in ("/api/audit-logs", "/api/audit-logs/verify", "/api/audit-logs/export"):
        denied = _get(world, path, world.analyst)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "PERMISSION_DENIED"


def test_filters_and_keyset_paging(world: World) -> None:
    user = uuid.uuid4()
    resource = uuid.uuid4()
    mine = _write(world, 7, action="test.mine", user_id=user, resource_type="thing", resource_id=resource)
    _write(world, 3, action="test.failed", response_status=409)
    _write(world, 2, action="test.other")
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"action": "test.mine", "per_page": 3}
        if cursor:
            params["cursor"] = cursor
        body = _get(world, "/api/audit-logs", **params).json()
        seen += [row["sequence_number"] for row in body["data"]]
        assert all(row["action"] == "test.mine" for row in body["data"])
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    assert seen == [r.sequence_number for r in reversed(mine)]
    for params in ({"user_id": str(user)}, {"resource_type": "thing", "resource_id": str(resource)}):
        assert len(_get(world, "/api/audit-logs", **params, per_page=100).json()["data"]) == 7
    failures = _get(world, "/api/audit-logs", outcome="failure", per_page=100).json()["data"]
    assert {row["action"] for row in failures} >= {"test.failed"}
    assert all(row["response_status"] >= 400 for row in failures)
    successes = _get(world, "/api/audit-logs", outcome="success", per_page=500).json()["data"]
    assert all(row["response_status"] is None or row["response_status"] < 400 for row in successes)
    first, last = mine[0].created_at, mine[-1].created_at
    period = _get(world, "/api/audit-logs", action="test.mine", per_page=100,
                  **{"from": first.replace(tzinfo=dt.UTC).isoformat(),
                     "to": (last + dt.timedelta(microseconds=1)).replace(tzinfo=dt.UTC).isoformat()}).json()
    assert len(period["data"]) == 7


@pytest.mark.parametrize("params", [
    {"outcome": "maybe"}, {"cursor": "not-a-cursor"}, {"from": "2026-01-01T00:00:00"}, {"per_page": 501},
    {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, {"user_id": "nope"},
])
def test_bad_filters_are_400_naming_the_field(world: World, params: dict[str, Any]) -> None:
    response = _get(world, "/api/audit-logs", **params)
    assert response.status_code == 400, response.text
    assert response.json()["success"] is False


def test_verify_is_intact_then_names_the_first_broken_row_within_the_period(world: World) -> None:
    records = _write(world, 6, action="test.chain")
    body = _get(world, "/api/audit-logs/verify").json()["data"]
    assert body["intact"] is True and body["first_break"] is None and body["records_checked"] >= 6
    audit_log: Any = world.container.audit_log.inner  # type: ignore[attr-defined]
    victim = records[3]
    audit_log.tamper(world.org, victim.sequence_number,
                     lambda r: dataclasses.replace(r, event=dataclasses.replace(r.event, action="test.forged")))
    broken = _get(world, "/api/audit-logs/verify").json()["data"]
    assert broken["intact"] is False
    assert broken["first_break"]["sequence_number"] == victim.sequence_number
    assert broken["first_break"]["record_id"] == str(victim.id)
    assert broken["first_break"]["reason"] == "hash_mismatch"
    # a period that ends before the tampered row is intact; one that holds it is not
    before = _get(world, "/api/audit-logs/verify", to=(victim.created_at.replace(tzinfo=dt.UTC)).isoformat()).json()
    if records[2].created_at < victim.created_at:  # the memory clock may give equal timestamps
        assert before["data"]["intact"] is True


def test_export_streams_every_matching_row_neutralised(world: World) -> None:
    _write(world, 3, action="test.export", user_agent="=HYPERLINK(\"http://evil\")", metadata={"note": "+cmd"})
    response = _get(world, "/api/audit-logs/export", action="test.export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert rows[0][:5] == ["sequence_number", "id", "created_at", "user_id", "action"]
    assert len(rows) == 4
    agent = rows[0].index("user_agent")
    assert all(row[agent].startswith("'=") for row in rows[1:])


def test_reading_the_trail_is_recorded_as_access_events(world: World) -> None:
    _get(world, "/api/audit-logs", action="test.none")
    _get(world, "/api/audit-logs/verify")
    _get(world, "/api/audit-logs/export").read()
    world.container.access_recorder.flush()
    page = world.container.audit_log.list_records(world.org, AuditQuery(user_id=world.auditor_id, limit=100))
    actions = [r.event.action for r in page.records]
    assert {"access.audit_logs.list", "access.audit_logs.verify", "access.audit_logs.export"} <= set(actions)
    listed = next(r for r in page.records if r.event.action == "access.audit_logs.list")
    assert listed.event.metadata["filters"] == {"action": "test.none"}
    assert listed.event.request_path == "/api/audit-logs"
    assert "accessed_at" in listed.event.metadata


def test_a_period_too_long_for_one_request_is_a_400_pointing_to_the_cli(world: World,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from reckai.application import audit_trail

    records = _write(world, 5, action="test.long")
    monkeypatch.setattr(audit_trail, "VERIFY_MAX_ROWS", 3)
    response = _get(world, "/api/audit-logs/verify")
    assert response.status_code == 400, response.text
    assert "reckai audit verify" in response.text and response.json()["error"]["details"][0]["field"] == "from"
    recent = _get(world, "/api/audit-logs/verify", **{"from": records[-1].created_at.replace(tzinfo=dt.UTC).isoformat()})
    assert recent.status_code == 200 and recent.json()["data"]["intact"] is True
