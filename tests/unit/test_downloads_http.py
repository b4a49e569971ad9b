"""Issue 14 §1 over HTTP on the in-memory container: a completed job's output files, the approved
ledger posting's CSV, the exceptions export (CSV and Excel), each audited; formula injection
neutralised in what comes out (tests/unit/test_formula_neutralisation.py holds the rule itself)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.application.approvals import jobs as workflow_jobs
from reckai.application.exceptions import export as export_cases
from reckai.application.ports.audit import AuditQuery
from reckai.application.ports.reconciliations import RuleVersion
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.domain.exceptions.lifecycle import ExceptionItem
from reckai.domain.exceptions.policy import SlaPolicy
from reckai.entrypoints.http.app import create_app
from tests.support import reconciliation_jobs as rj
from tests.support.identity import bearer, create_user_with_role, login, onboard

HOSTILE_RULE = '=HYPERLINK("http://evil.test","click")'
HOSTILE_NARRATION = "+cmd|' /C calc'!A0"


class World:
    def __init__(self, client: TestClient, container: Container) -> None:
        self.client, self.container = client, container
        self.org_id, admin = onboard(client)
        self.admin_id = admin.user_id
        self.tokens = {"admin": login(client, admin.org_code, admin.email, admin.password)}
        for role in ("analyst", "auditor", "supervisor"):
            self.tokens[role] = create_user_with_role(client, self.tokens["admin"], role)[1]
        self.job_id = ""

    def get(self, path: str, role: str = "admin", **kwargs: Any) -> Any:
        return self.client.get(path, headers={**bearer(self.tokens[role]), "User-Agent": "pytest-downloads"}, **kwargs)

    def fetch(self, url: str) -> bytes:
        """GET a signed app download URL (the memory storage's, like the filesystem backend's)."""
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        response = self.client.get(path)
        assert response.status_code == 200, response.text
        return bytes(response.content)

    def audit(self, action: str) -> list[Any]:
        page = self.container.audit_log.list_records(uuid.UUID(str(self.org_id)), AuditQuery(limit=500))
        return [r.event for r in page.records if r.event.action == action]


def _hostile_rules(database: Any, organization_id: Any, user_id: Any) -> None:
    versions = rj.rule_versions()
    with database.unit_of_work(organization_id) as uow:
        for index, (rule, raw) in enumerate(zip(versions, rj.profile()["rules"], strict=True)):
            named = RuleVersion(rule_id=rule.rule_id, version=rule.version,
                                name=HOSTILE_RULE if index == 0 else rule.name, definition=rule.definition,
                                applies_to=rule.applies_to)
            uow.matching_rules.add_version(named, created_by=user_id, priority=int(raw.get("priority", 0)))
        uow.commit()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    container.worker_runner.start()
    try:
        with TestClient(create_app(container)) as client:
            world = World(client, container)
            profile = rj.profile()
            files = []
            for data, name, kind, side in ((rj.bank_bytes(), "bank.csv", "bank", "left"),
                                           (rj.switch_bytes(), "switch.csv", "switch", "right")):
                uploaded = client.post("/api/files/upload", data={"file_type": kind}, files={"file": (name, data, "text/csv")},
                                       headers=bearer(world.tokens["admin"]))
                assert uploaded.status_code == 201, uploaded.text
                file_id = uploaded.json()["data"]["id"]
                mapped = client.post(f"/api/files/{file_id}/map", json={"transformation_rules": profile[side]["mapping"]},
                                     headers=bearer(world.tokens["admin"]))
                assert mapped.status_code == 200, mapped.text
                files.append(uuid.UUID(file_id))
            _hostile_rules(container.database, uuid.UUID(str(world.org_id)), world.admin_id)
            created = client.post("/api/reconciliations", json=rj.start_body(files[0], files[1], force=True),
                                  headers=bearer(world.tokens["admin"]))
            assert created.status_code == 201, created.text
            world.job_id = created.json()["data"]["id"]
            container.worker_runner.wake_relay()
            for _ in range(600):
                job = world.get(f"/api/reconciliations/{world.job_id}").json()["data"]
                if job["status"] in ("completed", "failed"):
                    break
                import time
                time.sleep(0.1)
            assert job["status"] == "completed", job
            yield world
    finally:
        container.worker_runner.stop()


# --- a job's outputs ---------------------------------------------------------------------------

def test_outputs_are_listed_with_size_and_sha256_and_download_as_listed(world: World) -> None:
    listed = world.get(f"/api/reconciliations/{world.job_id}/outputs", "auditor")
    assert listed.status_code == 200, listed.text
    outputs = {o["name"]: o for o in listed.json()["data"]}
    assert list(outputs) == ["results.csv", "results.parquet", "summary.json"]
    for name, output in outputs.items():
        link = world.get(output["download"], "analyst")
        assert link.status_code == 200, link.text
        body = link.json()["data"]
        expires = dt.datetime.fromisoformat(body["expires_at"])
        assert dt.timedelta(minutes=59) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=1)
        content = world.fetch(body["url"])
        assert len(content) == output["size_bytes"] and hashlib.sha256(content).hexdigest() == output["sha256"], name
    summary = world.get(f"/api/reconciliations/{world.job_id}").json()["data"]["summary"]
    link = world.get(outputs["summary.json"]["download"]).json()["data"]
    assert json.loads(world.fetch(link["url"])) == summary


def test_results_csv_rule_column_is_neutralised(world: World) -> None:
    link = world.get(f"/api/reconciliations/{world.job_id}/outputs/results.csv/download").json()["data"]
    rows = list(csv.DictReader(io.StringIO(world.fetch(link["url"]).decode())))
    rules = {row["rule"] for row in rows if row["kind"] == "match"}
    assert "'" + HOSTILE_RULE in rules and HOSTILE_RULE not in rules
    assert all(not cell.startswith(("=", "+", "@", "\t", "\r")) for row in rows for cell in row.values())


def test_output_download_is_audited_with_who_what_and_where(world: World) -> None:
    before = len(world.audit("reconciliation.output.download_link_issued"))
    assert world.get(f"/api/reconciliations/{world.job_id}/outputs/results.parquet/download", "auditor").status_code == 200
    events = world.audit("reconciliation.output.download_link_issued")
    assert len(events) == before + 1
    event = events[0] if events[0].metadata["name"] == "results.parquet" else events[-1]
    assert event.metadata["name"] == "results.parquet" and len(event.metadata["sha256"]) == 64
    assert event.user_id is not None and event.resource_id == uuid.UUID(world.job_id)
    assert event.user_agent == "pytest-downloads" and event.response_status == 200
    assert event.request_path == f"/api/reconciliations/{world.job_id}/outputs/results.parquet/download"


def test_outputs_refusals(world: World) -> None:
    unknown = world.get(f"/api/reconciliations/{world.job_id}/outputs/secrets.txt/download")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"
    traversal = world.get(f"/api/reconciliations/{world.job_id}/outputs/..%2F..%2Fetc/download")
    assert traversal.status_code == 404
    missing = world.get(f"/api/reconciliations/{uuid.uuid4()}/outputs")
    assert missing.status_code == 404
    assert world.get(f"/api/reconciliations/{world.job_id}/outputs", "supervisor").status_code == 403
    pending = world.client.post("/api/reconciliations", json=rj.start_body(uuid.uuid4(), uuid.uuid4()),
                                headers=bearer(world.tokens["admin"]))
    assert pending.status_code >= 400  # (no such files: a not-completed job is made below instead)
    with world.container.database.unit_of_work(uuid.UUID(str(world.org_id))) as uow:
        job = uow.reconciliation_jobs.get(uuid.UUID(world.job_id))
        import dataclasses

        from reckai.domain.reconciliation.jobs import JobStatus
        running = dataclasses.replace(job, id=uuid.uuid4(), status=JobStatus.PROCESSING)
        uow.reconciliation_jobs.add(running)
        uow.commit()
    for path in (f"/api/reconciliations/{running.id}/outputs",
                 f"/api/reconciliations/{running.id}/outputs/results.csv/download"):
        answer = world.get(path)
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "JOB_NOT_COMPLETED", answer.text


# --- the approved ledger posting ---------------------------------------------------------------

def _ledger_posting(world: World) -> str:
    body = {"type": "ledger_posting", "title": "Suspense", "description": "clear",
            "metadata": {"currency": "NGN", "entries": [
                {"account": "1001", "direction": "debit", "amount_minor": 1670450, "narration": HOSTILE_NARRATION},
                {"account": "2001", "direction": "credit", "amount_minor": 1670450, "narration": "@SUM(A1:A9)"}]}}
    created = world.client.post("/api/approvals", json=body, headers=bearer(world.tokens["analyst"]))
    assert created.status_code == 201, created.text
    return str(created.json()["data"]["id"])


def test_ledger_posting_csv_downloads_for_approval_readers_and_auditors(world: World) -> None:
    approval_id = _ledger_posting(world)
    pending = world.get(f"/api/approvals/{approval_id}/ledger-postings/download", "analyst")
    assert pending.status_code == 409 and pending.json()["error"]["code"] == "LEDGER_NOT_EXPORTED"
    approved = world.client.post(f"/api/approvals/{approval_id}/approve", json={},
                                 headers=bearer(world.tokens["supervisor"]))
    assert approved.status_code == 200, approved.text
    queued = world.get(f"/api/approvals/{approval_id}/ledger-postings/download", "analyst")
    assert queued.status_code == 409  # the export job has not run yet
    workflow_jobs.export_ledger_posting(world.container.workflow, world.container.storage,
                                        uuid.UUID(str(world.org_id)), uuid.UUID(approval_id))
    for role in ("analyst", "supervisor", "auditor", "admin"):
        link = world.get(f"/api/approvals/{approval_id}/ledger-postings/download", role)
        assert link.status_code == 200, (role, link.text)
        rows = list(csv.DictReader(io.StringIO(world.fetch(link.json()["data"]["url"]).decode())))
        assert [r["narration"] for r in rows] == ["'" + HOSTILE_NARRATION, "'@SUM(A1:A9)"]
        assert [r["amount_minor"] for r in rows] == ["1670450", "1670450"]
    events = [e for e in world.audit("approval.ledger_posting.download_link_issued")
              if e.resource_id == uuid.UUID(approval_id)]
    assert len(events) == 4 and all(e.user_agent == "pytest-downloads" and e.request_method == "GET" for e in events)


def test_ledger_posting_download_refuses_other_approvals(world: World) -> None:
    other = world.client.post("/api/approvals", json={"type": "report_generation", "title": "Aging",
                                                      "description": "x",
                                                      "metadata": {"report_type": "aging", "format": "csv"}},
                              headers=bearer(world.tokens["analyst"]))
    assert other.status_code == 201, other.text
    answer = world.get(f"/api/approvals/{other.json()['data']['id']}/ledger-postings/download")
    assert answer.status_code == 404
    assert world.get(f"/api/approvals/{uuid.uuid4()}/ledger-postings/download").status_code == 404


# --- the exceptions export ---------------------------------------------------------------------

def _seed_exceptions(world: World, count: int) -> list[ExceptionItem]:
    organization_id = uuid.UUID(str(world.org_id))
    job_id = uuid.uuid4()
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    items = []
    with world.container.database.unit_of_work(organization_id) as uow:
        for index in range(count):
            item = ExceptionItem.new(
                organization_id=organization_id, job_id=job_id, type="amount_mismatch",
                severity="high" if index % 3 else "low", created_at=start + dt.timedelta(minutes=index // 2),
                sla=SlaPolicy(), description=HOSTILE_RULE if index % 5 == 0 else f"break {index}",
                amount=Decimal("-16704.50") if index % 2 else Decimal(index), currency="NGN",
                transaction_date=dt.date(2025, 12, 1 + index % 28), ai_explanation=HOSTILE_NARRATION)
            uow.exceptions.add(item)
            items.append(item)
        uow.commit()
    return items


def test_export_streams_every_matching_row_as_csv(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_cases, "BATCH_ROWS", 7)  # many keyset batches, and ties on created_at
    items = _seed_exceptions(world, 60)
    job_id = str(items[0].job_id)
    answer = world.get(f"/api/exceptions/export?format=csv&severity=high&job_id={job_id}", "auditor")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    expected = [i for i in items if i.severity == "high"]
    assert len(rows) == len(expected) == 40
    assert {r["id"] for r in rows} == {str(i.id) for i in expected}
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)
    by_id = {str(i.id): i for i in expected}
    for row in rows:
        item = by_id[row["id"]]
        assert Decimal(row["amount"]) == item.amount and row["amount"] in ("-16704.50", str(item.amount))
        assert row["description"] == ("'" + HOSTILE_RULE if item.description == HOSTILE_RULE else item.description)
        assert row["ai_explanation"] == "'" + HOSTILE_NARRATION
    event = world.audit("exception.exported")[0]
    assert event.metadata == {"format": "csv", "filters": {"severity": "high", "job_id": job_id}}
    assert event.user_agent == "pytest-downloads" and event.response_status == 200


def test_export_as_excel_has_typed_cells(world: World) -> None:
    items = _seed_exceptions(world, 12)
    answer = world.get(f"/api/exceptions/export?format=excel&job_id={items[0].job_id}&sort=created_at")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    assert len(rows) == 13 and header[0] == "id"
    amounts = [row[header.index("amount")] for row in rows[1:]]
    assert all(isinstance(a, (int, float)) for a in amounts) and -16704.5 in amounts
    first = openpyxl.load_workbook(io.BytesIO(answer.content)).worksheets[0]
    amount_cell = first.cell(row=2, column=header.index("amount") + 1)
    assert amount_cell.data_type == "n" and amount_cell.number_format in ("#,##0", "#,##0.00")
    date_cell = first.cell(row=2, column=header.index("transaction_date") + 1)
    assert isinstance(date_cell.value, dt.datetime) and date_cell.number_format == "yyyy-mm-dd"
    texts = [row[header.index("description")] for row in rows[1:]]
    assert "'" + HOSTILE_RULE in texts and HOSTILE_RULE not in texts
    assert [row[0] for row in rows[1:]] == [str(i.id) for i in sorted(items, key=lambda i: (i.created_at, str(i.id)))]


def test_export_refusals(world: World) -> None:
    bad = world.get("/api/exceptions/export?format=pdf")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "VALIDATION_ERROR"
    assert world.get("/api/exceptions/export?severity=urgent").status_code == 400
    assert world.get("/api/exceptions/export?sort=amount").status_code == 400
    assert world.get("/api/exceptions/export", "supervisor").status_code == 403
    assert world.client.get("/api/exceptions/export").status_code == 401
