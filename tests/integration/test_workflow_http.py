"""Every workflow endpoint over HTTP against PostgreSQL, for each role: /api/exceptions,
/api/approvals, /api/rules. Real sign-in (tests/support/identity.py), real row-level security."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from reckai.bootstrap import Container, bootstrap
from reckai.domain.exceptions.lifecycle import ExceptionItem
from reckai.domain.exceptions.policy import SlaPolicy
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.support.identity import bearer, create_user_with_role, login, onboard
from tests.unit.workflow_builders import seed_stored_rows

pytestmark = pytest.mark.integration

ROLES = ("admin", "analyst", "auditor", "supervisor")
EXACT = {"rule_type": "exact", "priority": 1, "field_mappings": [{"left": "reference", "right": "reference"}]}


@pytest.fixture(scope="module")
def container(pg_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root = tmp_path_factory.mktemp("workflow-http")
    settings = Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=pg_database.app_url, pool_size=4),
                        storage=StorageSettings(backend="filesystem", filesystem_root=root / "storage"),
                        mailer=MailerSettings(backend="file", outbox_dir=root / "mail"))
    built = bootstrap(settings)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture(scope="module")
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass
class Tenant:
    organization_id: uuid.UUID
    tokens: dict[str, str]
    ids: dict[str, uuid.UUID]
    container: Container

    def h(self, who: str) -> dict[str, str]:
        return bearer(self.tokens[who])

    def uow(self) -> Any:
        return self.container.database.unit_of_work(self.organization_id)

    def job(self) -> uuid.UUID:
        job_id = uuid.uuid4()
        with self.uow() as uow:
            uow.connection.execute(text("INSERT INTO reconciliation_jobs (id, organization_id, name, status, created_by)"
                                        " VALUES (:id, :org, 'job', 'completed', :by)"),
                                   {"id": job_id, "org": self.organization_id, "by": self.ids["admin"]})
            uow.commit()
        return job_id

    def exception(self, amount: str = "100.00", **fields: Any) -> uuid.UUID:
        item = ExceptionItem.new(organization_id=self.organization_id, job_id=fields.pop("job_id", None) or self.job(),
                                  type="amount_mismatch", severity=fields.pop("severity", "medium"),
                                  description="amounts differ", created_at=dt.datetime.now(dt.UTC), sla=SlaPolicy(),
                                  amount=Decimal(amount), **fields)
        with self.uow() as uow:
            uow.exceptions.add(item)
            uow.commit()
        return item.id


def make_tenant(client: TestClient, container: Container) -> Tenant:
    organization_id, admin = onboard(client)
    admin_token = login(client, admin.org_code, admin.email, admin.password)
    tokens, ids = {"admin": admin_token}, {"admin": admin.user_id}
    for name, role in (("analyst", "analyst"), ("auditor", "auditor"), ("supervisor", "supervisor"),
                       ("supervisor2", "supervisor")):
        ids[name], tokens[name] = create_user_with_role(client, admin_token, role)
    return Tenant(organization_id, tokens, ids, container)


@pytest.fixture(scope="module")
def tenant(client: TestClient, container: Container) -> Tenant:
    return make_tenant(client, container)


def data(response: Any, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


def error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    return body["error"]  # type: ignore[no-any-return]


# --- exceptions ------------------------------------------------------------------------------


def test_exception_list_and_detail_by_role(client: TestClient, tenant: Tenant) -> None:
    job = tenant.job()
    ids = [tenant.exception(str(100 * (i + 1)), job_id=job, severity=("low", "high")[i % 2]) for i in range(5)]
    for who in ("admin", "analyst", "auditor"):
        page = client.get(f"/api/exceptions?job_id={job}&per_page=2", headers=tenant.h(who))
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["data"]) == 2 and body["meta"]["total"] == 5 and body["meta"]["next_cursor"]
    error(client.get("/api/exceptions", headers=tenant.h("supervisor")), 403, "PERMISSION_DENIED")
    nxt = client.get(f"/api/exceptions?job_id={job}&per_page=2&cursor={body['meta']['next_cursor']}",
                     headers=tenant.h("auditor")).json()
    assert len({*[i["id"] for i in body["data"]], *[i["id"] for i in nxt["data"]]}) == 4
    filtered = data(client.get(f"/api/exceptions?job_id={job}&severity=high&amount_min=300&sort=amount",
                               headers=tenant.h("analyst")), 200)
    assert [Decimal(i["amount"]) for i in filtered] == [Decimal(400)]
    error(client.get("/api/exceptions?sort=colour", headers=tenant.h("analyst")), 400, "VALIDATION_ERROR")
    error(client.get("/api/exceptions?status=open,closed", headers=tenant.h("analyst")), 400, "VALIDATION_ERROR")
    error(client.get("/api/exceptions?cursor=nonsense", headers=tenant.h("analyst")), 400, "VALIDATION_ERROR")
    detail = data(client.get(f"/api/exceptions/{ids[0]}", headers=tenant.h("auditor")), 200)
    assert detail["exception"]["id"] == str(ids[0]) and detail["history"] == [] and detail["comments"] == []
    error(client.get(f"/api/exceptions/{uuid.uuid4()}", headers=tenant.h("analyst")), 404, "NOT_FOUND")


def test_patch_resolve_assign_comment_and_invalid_transition_envelope(client: TestClient, tenant: Tenant) -> None:
    item = tenant.exception()
    error(client.patch(f"/api/exceptions/{item}", json={"status": "in_progress"}, headers=tenant.h("auditor")),
          403, "PERMISSION_DENIED")
    wrong = error(client.patch(f"/api/exceptions/{item}", json={"status": "escalated"},
                               headers=tenant.h("analyst")), 409, "INVALID_TRANSITION")
    assert wrong["message"] == ("cannot move to escalated from an exception that is open: "
                                "start it (PATCH status in_progress) first")
    error(client.patch(f"/api/exceptions/{item}", json={"severity": "critical"}, headers=tenant.h("analyst")),
          400, "REASON_REQUIRED")
    error(client.patch(f"/api/exceptions/{item}", json={"colour": "red"}, headers=tenant.h("analyst")),
          400, "VALIDATION_ERROR")
    body = data(client.patch(f"/api/exceptions/{item}", json={"status": "in_progress", "severity": "high",
                                                              "reason": "customer called"},
                             headers=tenant.h("analyst")), 200)
    assert body["exception"]["status"] == "in_progress" and body["exception"]["severity"] == "high"
    error(client.post(f"/api/exceptions/{item}/assign", json={"assignee_id": str(tenant.ids["auditor"])},
                      headers=tenant.h("admin")), 400, "VALIDATION_ERROR")
    assigned = data(client.post(f"/api/exceptions/{item}/assign", json={"assignee_id": str(tenant.ids["analyst"])},
                                headers=tenant.h("admin")), 200)
    assert assigned["assigned_to"] == str(tenant.ids["analyst"])
    mine = client.get("/api/exceptions?assigned_to=me", headers=tenant.h("analyst")).json()["data"]
    assert [i["id"] for i in mine] == [str(item)]
    comment = data(client.post(f"/api/exceptions/{item}/comments", json={"content": "called the bank"},
                               headers=tenant.h("analyst")), 201)
    error(client.post(f"/api/exceptions/{item}/comments", json={"content": "x"}, headers=tenant.h("auditor")),
          403, "PERMISSION_DENIED")
    error(client.post(f"/api/exceptions/{item}/resolve", json={"resolution_code": "other", "resolution_note": " "},
                      headers=tenant.h("analyst")), 400, "VALIDATION_ERROR")
    error(client.post(f"/api/exceptions/{item}/resolve", json={"resolution_code": "other", "resolution_note": "n"},
                      headers=tenant.h("auditor")), 403, "PERMISSION_DENIED")
    resolved = data(client.post(f"/api/exceptions/{item}/resolve",
                                json={"resolution_code": "corrected_at_source", "resolution_note": "reversed"},
                                headers=tenant.h("analyst")), 200)
    assert resolved["exception"]["resolved_by"] == str(tenant.ids["analyst"]) and resolved["pending_approval"] is None
    detail = data(client.get(f"/api/exceptions/{item}", headers=tenant.h("analyst")), 200)
    assert detail["comments"][0]["id"] == comment["id"]
    assert [h["action"] for h in detail["history"]] == ["severity_override", "start", "assign", "comment", "resolve"]
    reopened = data(client.patch(f"/api/exceptions/{item}", json={"status": "open", "reason": "bounced"},
                                 headers=tenant.h("analyst")), 200)
    assert reopened["exception"]["status"] == "open" and reopened["exception"]["resolved_by"] is None


def _history(client: TestClient, tenant: Tenant, exception_id: Any) -> list[tuple[Any, ...]]:
    detail = data(client.get(f"/api/exceptions/{exception_id}", headers=tenant.h("analyst")), 200)
    return [(h["action"], h["from_status"], h["to_status"], h["changes"].get("implicit"), h["actor_id"])
            for h in detail["history"]]


def _audited(tenant: Tenant, exception_id: Any) -> list[tuple[str, list[Any]]]:
    from reckai.application.ports.audit import AuditQuery

    records = tenant.container.audit_log.list_records(tenant.organization_id, AuditQuery(limit=500)).records
    return [(r.event.action, [(c["action"], c.get("implicit")) for c in r.event.metadata.get("changes", [])])
            for r in reversed(records) if str(r.event.resource_id) == str(exception_id)]


def test_http_resolve_and_ignore_straight_from_open_record_the_implicit_start(client: TestClient,
                                                                              tenant: Tenant) -> None:
    analyst = str(tenant.ids["analyst"])
    started = [("start", "open", "in_progress", True, analyst)]
    patched = tenant.exception("10.00")
    body = data(client.patch(f"/api/exceptions/{patched}", json={
        "status": "resolved", "resolution_code": "corrected_at_source", "resolution_note": "reversed"},
        headers=tenant.h("analyst")), 200)
    assert body["exception"]["status"] == "resolved" and body["pending_approval"] is None
    assert _history(client, tenant, patched) == started + [("resolve", "in_progress", "resolved", None, analyst)]
    assert _audited(tenant, patched) == [("exception.updated", [("start", True)]), ("exception.resolved", [])]
    posted = tenant.exception("10.00")
    data(client.post(f"/api/exceptions/{posted}/resolve", json={"resolution_code": "other", "resolution_note": "n"},
                     headers=tenant.h("analyst")), 200)
    assert _history(client, tenant, posted) == started + [("resolve", "in_progress", "resolved", None, analyst)]
    ignored = tenant.exception("10.00")
    error(client.patch(f"/api/exceptions/{ignored}", json={"status": "ignored"}, headers=tenant.h("analyst")),
          400, "REASON_REQUIRED")
    assert _history(client, tenant, ignored) == []  # the refusal left no implicit start behind
    data(client.patch(f"/api/exceptions/{ignored}", json={"status": "ignored", "reason": "duplicate feed"},
                      headers=tenant.h("analyst")), 200)
    assert _history(client, tenant, ignored) == started + [("ignore", "in_progress", "ignored", None, analyst)]
    assert _audited(tenant, ignored) == [("exception.updated", [("start", True), ("ignore", None)])]


def test_http_bulk_resolve_from_open_and_a_refusal_naming_every_failing_exception(client: TestClient,
                                                                                   tenant: Tenant) -> None:
    fresh = [tenant.exception("10.00") for _ in range(15)]
    outcomes = data(client.post("/api/exceptions/bulk/resolve", json={
        "exception_ids": [str(i) for i in fresh], "resolution_code": "timing_cleared", "resolution_note": "settled"},
        headers=tenant.h("analyst")), 200)
    assert {o["exception"]["status"] for o in outcomes} == {"resolved"}
    assert all(_history(client, tenant, i)[0][:4] == ("start", "open", "in_progress", True) for i in fresh)
    good, escalated, unknown = tenant.exception("10.00"), tenant.exception("10.00"), uuid.uuid4()
    data(client.patch(f"/api/exceptions/{escalated}", json={"status": "in_progress"}, headers=tenant.h("analyst")), 200)
    data(client.patch(f"/api/exceptions/{escalated}", json={"status": "escalated"}, headers=tenant.h("analyst")), 200)
    refused = error(client.post("/api/exceptions/bulk/resolve", json={
        "exception_ids": [str(good), str(fresh[0]), str(unknown), str(escalated)], "resolution_code": "other",
        "resolution_note": "n"}, headers=tenant.h("analyst")), 409, "BULK_REFUSED")
    assert refused["message"] == "cannot resolve 2 of the exceptions; nothing was changed"
    assert refused["details"] == [
        {"field": "exception_ids[1]", "message": f"{fresh[0]}: cannot resolve an exception that is resolved: "
                                                 "reopen it (PATCH status open with a reason) first"},
        {"field": "exception_ids[2]", "message": f"{unknown}: not found"}]
    assert _status(client, tenant, good) == "open" and _history(client, tenant, good) == []
    refused_assign = error(client.post("/api/exceptions/bulk/assign", json={
        "exception_ids": [str(good), str(unknown), str(fresh[1])], "assignee_id": str(tenant.ids["analyst"])},
        headers=tenant.h("analyst")), 409, "BULK_REFUSED")
    assert refused_assign["details"] == [
        {"field": "exception_ids[1]", "message": f"{unknown}: not found"},
        {"field": "exception_ids[2]", "message": f"{fresh[1]}: cannot assign an exception that is resolved: "
                                                 "reopen it (PATCH status open with a reason) first"}]
    assert data(client.get(f"/api/exceptions/{good}", headers=tenant.h("analyst")), 200)["exception"][
        "assigned_to"] is None
    # escalated -> resolved is a transition of its own: it was not refused above, and needs no start
    data(client.post("/api/exceptions/bulk/resolve", json={
        "exception_ids": [str(escalated), str(good)], "resolution_code": "other", "resolution_note": "n"},
        headers=tenant.h("analyst")), 200)
    assert [h[0] for h in _history(client, tenant, escalated)] == ["start", "escalate", "resolve"]


def test_bulk_and_threshold_approval_over_http(client: TestClient, tenant: Tenant) -> None:
    small, big = tenant.exception("10.00"), tenant.exception("5000000.00")
    data(client.post("/api/exceptions/bulk/assign", json={"exception_ids": [str(small), str(big)],
                                                          "assignee_id": str(tenant.ids["analyst"])},
                     headers=tenant.h("analyst")), 200)
    for item in (small, big):
        client.patch(f"/api/exceptions/{item}", json={"status": "in_progress"}, headers=tenant.h("analyst"))
    setting = data(client.post("/api/approvals", json={
        "type": "system_setting", "title": "Resolution threshold", "description": "money at stake",
        "metadata": {"key": "workflow", "value": {"resolution_approval_threshold": {"NGN": "1000000.00"}}}},
        headers=tenant.h("admin")), 201)
    data(client.post(f"/api/approvals/{setting['id']}/approve", json={}, headers=tenant.h("supervisor")), 200)
    outcomes = data(client.post("/api/exceptions/bulk/resolve", json={
        "exception_ids": [str(small), str(big)], "resolution_code": "written_off", "resolution_note": "small"},
        headers=tenant.h("analyst")), 200)
    assert outcomes[0]["pending_approval"] is None and outcomes[1]["pending_approval"]["type"] == "exception_resolution"
    approval_id = outcomes[1]["pending_approval"]["id"]
    # the supervisor cannot list exceptions but reads the one the approval is about, on the approval
    view = data(client.get(f"/api/approvals/{approval_id}", headers=tenant.h("supervisor")), 200)
    assert view["subject"]["exception"]["id"] == str(big)
    single = client.post(f"/api/exceptions/{big}/resolve", json={"resolution_code": "other", "resolution_note": "n"},
                         headers=tenant.h("analyst"))
    error(single, 400, "VALIDATION_ERROR")  # one resolution of this exception is already waiting
    data(client.post(f"/api/approvals/{approval_id}/approve", json={"comment": "ok"}, headers=tenant.h("supervisor")),
         200)
    assert data(client.get(f"/api/exceptions/{big}", headers=tenant.h("analyst")), 200)["exception"]["status"] \
        == "resolved"


def test_manual_matching_endpoints(client: TestClient, tenant: Tenant) -> None:
    job = tenant.job()
    with tenant.uow() as uow:
        files = []
        for side in ("left", "right"):
            file_id = uuid.uuid4()
            uow.connection.execute(text(
                "INSERT INTO reconciliation_files (id, organization_id, name, original_filename, file_type, format,"
                " size_bytes, storage_path, status, uploaded_by) VALUES (:id, :org, :n, :n, 'bank', 'csv', 1, 'x',"
                " 'normalized', :by)"), {"id": file_id, "org": tenant.organization_id, "n": side,
                                         "by": tenant.ids["admin"]})
            uow.connection.execute(text("INSERT INTO reconciliation_job_files (job_id, file_id, organization_id, side)"
                                        " VALUES (:job, :file, :org, :side)"),
                                   {"job": job, "file": file_id, "org": tenant.organization_id, "side": side})
            files.append(file_id)
        uow.commit()
    seed_stored_rows(tenant.container, tenant.organization_id, files[0], {3: (100, "NGN"), 10: (7, "NGN"),
                                                                          12: (5, "NGN")})
    seed_stored_rows(tenant.container, tenant.organization_id, files[1], {4: (100, "NGN"), 9: (1, "NGN"),
                                                                          10: (7, "NGN"), 20: (5, "NGN")})
    item = tenant.exception(job_id=job, left_file_id=files[0], left_row=3)
    linked = data(client.post("/api/exceptions/matching/link", json={
        "job_id": str(job), "rows": [{"side": "left", "row_number": 3, "amount_minor": 100},
                                     {"side": "right", "row_number": 4, "amount_minor": 100}], "note": "same RRN"},
        headers=tenant.h("analyst")), 201)
    assert linked["status"] == "manual" and len(linked["members"]) == 2
    assert data(client.get(f"/api/exceptions/{item}", headers=tenant.h("analyst")), 200)["exception"]["resolution_code"] \
        == "matched_manually"
    error(client.post("/api/exceptions/matching/link", json={
        "job_id": str(job), "rows": [{"side": "left", "row_number": 3}, {"side": "right", "row_number": 9}]},
        headers=tenant.h("analyst")), 409, "MATCH_STATE_CONFLICT")
    error(client.post("/api/exceptions/matching/confirm", json={"job_id": str(job), "left_row": 1, "right_row": 1},
                      headers=tenant.h("analyst")), 404, "NOT_FOUND")
    with tenant.uow() as uow:  # the engine's output, as the reconciliation job writes it
        for status, left, right in (("suggested", 10, 10), ("suggested", 11, 11), ("auto", 12, 12)):
            uow.connection.execute(text(
                "INSERT INTO reconciliation_matches (organization_id, job_id, attempt, status, left_row, right_row,"
                " rule, rule_version, confidence) VALUES (:org, :job, 1, :status, :l, :r, 'fuzzy name', 2, 0.7)"),
                {"org": tenant.organization_id, "job": job, "status": status, "l": left, "r": right})
        uow.commit()
    confirmed = data(client.post("/api/exceptions/matching/confirm",
                                 json={"job_id": str(job), "left_row": 10, "right_row": 10},
                                 headers=tenant.h("analyst")), 201)
    assert confirmed["status"] == "manual" and confirmed["rule_version"] == 2
    assert confirmed["evidence"]["confirmed_by"] == str(tenant.ids["analyst"])
    error(client.post("/api/exceptions/matching/decline", json={"job_id": str(job), "left_row": 10, "right_row": 10},
                      headers=tenant.h("analyst")), 409, "MATCH_STATE_CONFLICT")
    data(client.post("/api/exceptions/matching/decline",
                     json={"job_id": str(job), "left_row": 11, "right_row": 11, "reason": "other customer"},
                     headers=tenant.h("analyst")), 201)
    with tenant.uow() as uow:
        from reckai.application.exceptions.matching import declined_row_pairs

        assert declined_row_pairs(uow, files[0], files[1]) == {(11, 11)}
    error(client.post("/api/exceptions/matching/link", json={  # row 12 is in an engine auto match
        "job_id": str(job), "rows": [{"side": "left", "row_number": 12}, {"side": "right", "row_number": 20}]},
        headers=tenant.h("analyst")), 409, "MATCH_STATE_CONFLICT")
    error(client.post("/api/exceptions/matching/decline", json={"job_id": str(job), "left_row": 1, "right_row": 1},
                      headers=tenant.h("auditor")), 403, "PERMISSION_DENIED")


# --- approvals -------------------------------------------------------------------------------


def test_approval_endpoints_by_role(client: TestClient, tenant: Tenant) -> None:
    report = {"type": "report_generation", "title": "Aging report", "description": "month end",
              "metadata": {"report_type": "aging", "format": "csv"}}
    error(client.post("/api/approvals", json=report, headers=tenant.h("supervisor")), 403, "PERMISSION_DENIED")
    error(client.post("/api/approvals", json=report, headers=tenant.h("auditor")), 403, "PERMISSION_DENIED")
    error(client.post("/api/approvals", json={**report, "metadata": {"report_type": "weekly", "format": "csv"}},
                      headers=tenant.h("analyst")), 400, "VALIDATION_ERROR")
    created = data(client.post("/api/approvals", json=report, headers=tenant.h("analyst")), 201)
    assert created["status"] == "pending"
    error(client.get("/api/approvals", headers=tenant.h("auditor")), 403, "PERMISSION_DENIED")
    listed = client.get("/api/approvals?status=pending&type=report_generation&requested_by=me",
                        headers=tenant.h("analyst")).json()
    assert [a["id"] for a in listed["data"]] == [created["id"]] and listed["meta"]["total"] == 1
    everything = data(client.get("/api/approvals", headers=tenant.h("supervisor")), 200)
    statuses = [a["status"] for a in everything]
    assert statuses == sorted(statuses, key=lambda s: s != "pending")  # pending first
    error(client.post(f"/api/approvals/{created['id']}/approve", json={}, headers=tenant.h("analyst")),
          403, "PERMISSION_DENIED")
    error(client.post(f"/api/approvals/{created['id']}/decline", json={}, headers=tenant.h("supervisor")),
          400, "VALIDATION_ERROR")
    error(client.post(f"/api/approvals/{created['id']}/cancel", json={}, headers=tenant.h("admin")),
          403, "ONLY_REQUESTER_MAY_CANCEL")
    declined = data(client.post(f"/api/approvals/{created['id']}/decline", json={"comment": "not this month"},
                                headers=tenant.h("supervisor")), 200)
    assert declined["approval"]["status"] == "declined"
    error(client.post(f"/api/approvals/{created['id']}/approve", json={}, headers=tenant.h("supervisor2")),
          409, "APPROVAL_ALREADY_DECIDED")
    own = data(client.post("/api/approvals", json={**report, "title": "Mine"}, headers=tenant.h("admin")), 201)
    error(client.post(f"/api/approvals/{own['id']}/approve", json={}, headers=tenant.h("admin")),
          403, "SELF_APPROVAL_FORBIDDEN")
    cancelled = data(client.post(f"/api/approvals/{own['id']}/cancel", headers=tenant.h("admin")), 200)
    assert cancelled["approval"]["status"] == "cancelled"
    error(client.get(f"/api/approvals/{uuid.uuid4()}", headers=tenant.h("admin")), 404, "NOT_FOUND")


def test_user_onboarding_and_ledger_posting_over_http(client: TestClient, tenant: Tenant) -> None:
    email = f"new.{uuid.uuid4().hex[:6]}@example.com"
    onboarding = data(client.post("/api/approvals", json={
        "type": "user_onboarding", "title": "New auditor", "description": "external audit",
        "metadata": {"email": email, "name": "Nora Auditor", "role": "auditor"}}, headers=tenant.h("admin")), 201)
    approved = data(client.post(f"/api/approvals/{onboarding['id']}/approve", json={},
                                headers=tenant.h("supervisor")), 200)
    assert approved["effect"]["kind"] == "user_created"
    users = data(client.get("/api/users?per_page=100", headers=tenant.h("admin")), 200)
    assert email in [u["email"] for u in users]
    posting = data(client.post("/api/approvals", json={
        "type": "ledger_posting", "title": "Suspense clearing", "description": "clear suspense",
        "metadata": {"currency": "NGN", "entries": [{"account": "1001", "direction": "debit", "amount_minor": 5000},
                                                     {"account": "2001", "direction": "credit", "amount_minor": 5000}]}},
        headers=tenant.h("analyst")), 201)
    done = data(client.post(f"/api/approvals/{posting['id']}/approve", json={}, headers=tenant.h("supervisor")), 200)
    assert done["effect"]["kind"] == "ledger_export_queued"
    assert done["approval"]["metadata"]["export"]["status"] == "queued"


# --- rules -----------------------------------------------------------------------------------


def test_rule_endpoints_by_role_and_approval(client: TestClient, tenant: Tenant) -> None:
    name = f"By reference {uuid.uuid4().hex[:6]}"
    error(client.post("/api/rules", json={"name": name, "definition": EXACT}, headers=tenant.h("analyst")),
          403, "PERMISSION_DENIED")
    error(client.post("/api/rules", json={"name": name, "definition": {**EXACT, "rule_type": "magic"}},
                      headers=tenant.h("admin")), 400, "VALIDATION_ERROR")
    proposal = client.post("/api/rules", json={"name": name, "definition": EXACT}, headers=tenant.h("admin"))
    created = data(proposal, 202)
    rule_id = created["rule"]["id"]
    assert created["rule"]["is_active"] is False and created["version"]["status"] == "pending"
    assert created["approval"]["type"] == "rule_configuration"
    error(client.post("/api/rules", json={"name": name, "definition": EXACT}, headers=tenant.h("admin")),
          409, "RULE_NAME_TAKEN")
    for who in ("auditor", "supervisor"):
        error(client.get("/api/rules", headers=tenant.h(who)), 403, "PERMISSION_DENIED")
    error(client.put(f"/api/rules/{rule_id}", json={"definition": EXACT}, headers=tenant.h("admin")),
          409, "RULE_CHANGE_PENDING")
    data(client.post(f"/api/approvals/{created['approval']['id']}/approve", json={}, headers=tenant.h("supervisor")),
         200)
    rule = data(client.get(f"/api/rules/{rule_id}", headers=tenant.h("analyst")), 200)
    assert rule["rule"]["is_active"] and rule["rule"]["approval_id"] == created["approval"]["id"]
    assert rule["rule"]["approved_at"] and rule["versions"][0]["status"] == "active"
    changed = data(client.put(f"/api/rules/{rule_id}", json={"definition": {**EXACT, "date_tolerance_days": 2}},
                              headers=tenant.h("admin")), 202)
    assert changed["version"]["version"] == 2
    data(client.post(f"/api/approvals/{changed['approval']['id']}/approve", json={}, headers=tenant.h("supervisor2")),
         200)
    assert data(client.get(f"/api/rules/{rule_id}", headers=tenant.h("admin")), 200)["rule"]["date_tolerance_days"] == 2
    removal = data(client.delete(f"/api/rules/{rule_id}", headers=tenant.h("admin")), 202)
    data(client.post(f"/api/approvals/{removal['approval']['id']}/approve", json={}, headers=tenant.h("supervisor")),
         200)
    listed = data(client.get("/api/rules?active=true", headers=tenant.h("analyst")), 200)
    assert rule_id not in [r["id"] for r in listed]
    error(client.post("/api/rules/preview", json={"job_id": str(uuid.uuid4()), "definition": EXACT},
                      headers=tenant.h("analyst")), 404, "NOT_FOUND")
    pending_job = tenant.job()
    with tenant.uow() as uow:
        uow.connection.execute(text("UPDATE reconciliation_jobs SET status = 'processing' WHERE id = :id"),
                               {"id": pending_job})
        uow.commit()
    error(client.post("/api/rules/preview", json={"job_id": str(pending_job), "definition": EXACT},
                      headers=tenant.h("analyst")), 409, "CONFLICT")


def test_other_tenant_sees_nothing(client: TestClient, tenant: Tenant, container: Container) -> None:
    item = tenant.exception()
    approval = data(client.post("/api/approvals", json={
        "type": "report_generation", "title": "t", "description": "d",
        "metadata": {"report_type": "sla", "format": "pdf"}}, headers=tenant.h("analyst")), 201)
    other = make_tenant(client, container)
    error(client.get(f"/api/exceptions/{item}", headers=other.h("admin")), 404, "NOT_FOUND")
    error(client.patch(f"/api/exceptions/{item}", json={"status": "in_progress"}, headers=other.h("analyst")),
          404, "NOT_FOUND")
    error(client.post(f"/api/approvals/{approval['id']}/approve", json={}, headers=other.h("supervisor")),
          404, "NOT_FOUND")
    assert client.get("/api/exceptions", headers=other.h("admin")).json()["meta"]["total"] == 0


ENDPOINTS = [  # (method, path, body, permission the route declares)
    ("GET", "/api/exceptions", None, "exceptions:read"),
    ("GET", "/api/exceptions/{id}", None, "exceptions:read"),
    ("PATCH", "/api/exceptions/{id}", {"status": "in_progress"}, "exceptions:write"),
    ("POST", "/api/exceptions/{id}/resolve", {"resolution_code": "other", "resolution_note": "n"},
     "exceptions:resolve"),
    ("POST", "/api/exceptions/{id}/assign", {"assignee_id": None}, "exceptions:write"),
    ("POST", "/api/exceptions/{id}/comments", {"content": "c"}, "exceptions:write"),
    ("POST", "/api/exceptions/bulk/assign", {"exception_ids": ["{id}"], "assignee_id": None}, "exceptions:write"),
    ("POST", "/api/exceptions/bulk/resolve", {"exception_ids": ["{id}"], "resolution_code": "other",
                                              "resolution_note": "n"}, "exceptions:resolve"),
    ("POST", "/api/exceptions/matching/confirm", {"job_id": "{id}", "left_row": 1, "right_row": 1},
     "exceptions:write"),
    ("POST", "/api/exceptions/matching/decline", {"job_id": "{id}", "left_row": 1, "right_row": 1},
     "exceptions:write"),
    ("POST", "/api/exceptions/matching/link", {"job_id": "{id}", "rows": []}, "exceptions:write"),
    ("GET", "/api/approvals", None, "approvals:read"),
    ("POST", "/api/approvals", {"type": "report_generation", "title": "t", "description": "d",
                                "metadata": {"report_type": "nope"}}, "approvals:create"),
    ("GET", "/api/approvals/{id}", None, "approvals:read"),
    ("POST", "/api/approvals/{id}/approve", {}, "approvals:approve"),
    ("POST", "/api/approvals/{id}/decline", {"comment": "c"}, "approvals:approve"),
    ("POST", "/api/approvals/{id}/cancel", {}, "approvals:create"),
    ("GET", "/api/rules", None, "settings:read"),
    ("POST", "/api/rules", {"name": "", "definition": {}}, "settings:write"),
    ("GET", "/api/rules/{id}", None, "settings:read"),
    ("PUT", "/api/rules/{id}", {"definition": {}}, "settings:write"),
    ("DELETE", "/api/rules/{id}", None, "settings:write"),
    ("POST", "/api/rules/preview", {"job_id": "{id}", "definition": {}}, "settings:read"),
]


def test_every_endpoint_for_every_role(client: TestClient, tenant: Tenant) -> None:
    """The guard answers 403 exactly when the role lacks the route's permission (spec §2.2 matrix);
    otherwise the request reaches the use case (here: unknown ids or bad bodies, so nothing changes)."""
    from reckai.domain.identity.permissions import has_permission

    missing = str(uuid.uuid4())
    checked = 0
    for method, path, body, permission in ENDPOINTS:
        url = path.replace("{id}", missing)
        payload = None if body is None else {k: (missing if v == "{id}" else [missing] if v == ["{id}"] else v)
                                             for k, v in body.items()}
        for role in ROLES:
            response = client.request(method, url, json=payload, headers=tenant.h(role))
            if has_permission(role, permission):
                assert response.status_code != 403 or response.json()["error"]["code"] != "PERMISSION_DENIED", \
                    (method, path, role, response.text)
                assert response.status_code < 500, (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role, response.text)
                assert response.json()["error"]["code"] == "PERMISSION_DENIED"
            checked += 1
    assert checked == len(ENDPOINTS) * len(ROLES)


# --- issue 12, item 1: every way out of the open set obeys the threshold ---------------------


def _approve_setting(client: TestClient, tenant: Tenant, value: Any, key: str = "workflow") -> None:
    setting = data(client.post("/api/approvals", json={
        "type": "system_setting", "title": "Workflow controls", "description": "threshold",
        "metadata": {"key": key, "value": value}}, headers=tenant.h("admin")), 201)
    data(client.post(f"/api/approvals/{setting['id']}/approve", json={}, headers=tenant.h("supervisor")), 200)


@pytest.fixture(scope="module")
def strict(client: TestClient, container: Container) -> Tenant:
    """A tenant whose supervisor approved a NGN 100 threshold (the security review's setting)."""
    tenant = make_tenant(client, container)
    _approve_setting(client, tenant, {"resolution_approval_threshold": {"NGN": "100.00"}})
    return tenant


def rows_job(tenant: Tenant, rows: dict[str, dict[int, tuple[int, str]]],
             suggestions: tuple[tuple[int, int], ...] = ()) -> tuple[uuid.UUID, dict[str, uuid.UUID]]:
    """A job over a left and a right file whose normalized rows are `rows[side]` (stored amounts)."""
    job = tenant.job()
    files = {}
    with tenant.uow() as uow:
        for side in ("left", "right"):
            file_id = uuid.uuid4()
            uow.connection.execute(text(
                "INSERT INTO reconciliation_files (id, organization_id, name, original_filename, file_type, format,"
                " size_bytes, storage_path, status, uploaded_by) VALUES (:id, :org, :n, :n, 'bank', 'csv', 1, 'x',"
                " 'normalized', :by)"), {"id": file_id, "org": tenant.organization_id, "n": side,
                                         "by": tenant.ids["admin"]})
            uow.connection.execute(text("INSERT INTO reconciliation_job_files (job_id, file_id, organization_id, side)"
                                        " VALUES (:job, :file, :org, :side)"),
                                   {"job": job, "file": file_id, "org": tenant.organization_id, "side": side})
            files[side] = file_id
        for left, right in suggestions:
            uow.connection.execute(text(
                "INSERT INTO reconciliation_matches (organization_id, job_id, attempt, status, left_row, right_row,"
                " rule, rule_version, confidence) VALUES (:org, :job, 1, 'suggested', :l, :r, 'fuzzy', 1, 0.7)"),
                {"org": tenant.organization_id, "job": job, "l": left, "r": right})
        uow.commit()
    for side, file_id in files.items():
        seed_stored_rows(tenant.container, tenant.organization_id, file_id, rows[side])
    return job, files


def _status(client: TestClient, tenant: Tenant, exception_id: Any) -> str:
    return data(client.get(f"/api/exceptions/{exception_id}", headers=tenant.h("analyst")), 200)["exception"]["status"]  # type: ignore[no-any-return]


def test_http_ignoring_after_in_progress_needs_a_checker(client: TestClient, strict: Tenant) -> None:
    item = strict.exception("4671.22")
    data(client.patch(f"/api/exceptions/{item}", json={"status": "in_progress"}, headers=strict.h("analyst")), 200)
    waiting = data(client.patch(f"/api/exceptions/{item}", json={"status": "ignored", "reason": "noise"},
                                headers=strict.h("analyst")), 202)
    assert waiting["pending_approval"]["type"] == "exception_resolution"
    assert waiting["pending_approval"]["metadata"]["action"] == "ignore"
    assert _status(client, strict, item) == "in_progress"  # not closed until approved
    error(client.post(f"/api/approvals/{waiting['pending_approval']['id']}/approve", json={},
                      headers=strict.h("analyst")), 403, "PERMISSION_DENIED")
    data(client.post(f"/api/approvals/{waiting['pending_approval']['id']}/approve", json={},
                     headers=strict.h("supervisor")), 200)
    assert _status(client, strict, item) == "ignored"


def test_http_closing_from_open_at_the_threshold_waits_for_a_checker_then_records_the_start(
        client: TestClient, strict: Tenant) -> None:
    maker = str(strict.ids["analyst"])
    single, in_bulk, ignored = strict.exception("4671.22"), strict.exception("250.00"), strict.exception("300.00")
    waiting = data(client.patch(f"/api/exceptions/{single}", json={
        "status": "resolved", "resolution_code": "written_off", "resolution_note": "fee"},
        headers=strict.h("analyst")), 202)
    bulk = data(client.post("/api/exceptions/bulk/resolve", json={
        "exception_ids": [str(in_bulk)], "resolution_code": "written_off", "resolution_note": "fee"},
        headers=strict.h("analyst")), 200)
    ignoring = data(client.patch(f"/api/exceptions/{ignored}", json={"status": "ignored", "reason": "noise"},
                                 headers=strict.h("analyst")), 202)
    approvals = [waiting["pending_approval"]["id"], bulk[0]["pending_approval"]["id"],
                 ignoring["pending_approval"]["id"]]
    for item in (single, in_bulk, ignored):
        assert _status(client, strict, item) == "open"  # nothing moves until a checker approves
    for approval_id in approvals:
        data(client.post(f"/api/approvals/{approval_id}/approve", json={}, headers=strict.h("supervisor")), 200)
    for item, closing, status in ((single, "resolve", "resolved"), (in_bulk, "resolve", "resolved"),
                                  (ignored, "ignore", "ignored")):
        moves = [h for h in _history(client, strict, item) if h[0] != "approval_requested"]
        assert moves == [("start", "open", "in_progress", True, maker),
                         (closing, "in_progress", status, None, maker)]


def test_http_resolve_and_bulk_resolve_compare_the_larger_stored_amount(client: TestClient, strict: Tenant) -> None:
    # 250,050 vs 250,000: the stored break amount is the 50 of difference; its rows are at stake
    mismatch = strict.exception("50.00", amount_minor=5000, evidence={"left": {"amount_minor": 25_005_000},
                                                                      "right": {"amount_minor": 25_000_000}})
    small = strict.exception("10.00")
    for item in (mismatch, small):
        data(client.patch(f"/api/exceptions/{item}", json={"status": "in_progress"}, headers=strict.h("analyst")), 200)
    single = data(client.post(f"/api/exceptions/{mismatch}/resolve", json={
        "resolution_code": "written_off", "resolution_note": "fee"}, headers=strict.h("analyst")), 202)
    assert single["pending_approval"]["metadata"]["amount"] == "250050.00"
    data(client.post(f"/api/approvals/{single['pending_approval']['id']}/cancel", headers=strict.h("analyst")), 200)
    patched = data(client.patch(f"/api/exceptions/{mismatch}", json={
        "status": "resolved", "resolution_code": "written_off", "resolution_note": "fee"},
        headers=strict.h("analyst")), 202)  # PATCH to resolved: the same rule
    data(client.post(f"/api/approvals/{patched['pending_approval']['id']}/cancel", headers=strict.h("analyst")), 200)
    bulk = data(client.post("/api/exceptions/bulk/resolve", json={
        "exception_ids": [str(small), str(mismatch)], "resolution_code": "written_off", "resolution_note": "n"},
        headers=strict.h("analyst")), 200)
    assert [o["pending_approval"] is None for o in bulk] == [True, False]
    assert _status(client, strict, small) == "resolved" and _status(client, strict, mismatch) == "in_progress"


def test_http_manual_link_takes_amounts_from_the_stored_rows(client: TestClient, strict: Tenant) -> None:
    job, files = rows_job(strict, {"left": {1: (500_000_000, "NGN"), 2: (239_974, "NGN")},
                                   "right": {1: (500_000_000, "NGN"), 2: (239_974, "NGN")}})
    breaks = [strict.exception("5000000.00", job_id=job, left_file_id=files["left"], left_row=1),
              strict.exception("2399.74", job_id=job, right_file_id=files["right"], right_row=2)]
    for pair in (1, 2):  # the security review's body: amount_minor 100 for both rows
        rows = [{"side": "left", "row_number": pair, "amount_minor": 100},
                {"side": "right", "row_number": pair, "amount_minor": 100}]
        refused = error(client.post("/api/exceptions/matching/link", json={"job_id": str(job), "rows": rows},
                                    headers=strict.h("analyst")), 400, "VALIDATION_ERROR")
        assert {d["field"] for d in refused["details"]} == {"rows.0.amount_minor", "rows.1.amount_minor"}
        waiting = data(client.post("/api/exceptions/matching/link", json={
            "job_id": str(job), "rows": [{k: v for k, v in r.items() if k != "amount_minor"} for r in rows],
            "note": "same RRN"}, headers=strict.h("analyst")), 202)
        assert waiting["status"] == "pending_approval" and waiting["pending_approval"]["metadata"]["action"] == "link"
        assert _status(client, strict, breaks[pair - 1]) == "open"
        data(client.post(f"/api/approvals/{waiting['pending_approval']['id']}/approve", json={},
                         headers=strict.h("supervisor")), 200)
        assert _status(client, strict, breaks[pair - 1]) == "resolved"
    tiny, _ = rows_job(strict, {"left": {1: (50, "NGN")}, "right": {1: (50, "NGN")}})
    linked = data(client.post("/api/exceptions/matching/link", json={
        "job_id": str(tiny), "rows": [{"side": "left", "row_number": 1}, {"side": "right", "row_number": 1,
                                                                         "amount_minor": 50}]},
        headers=strict.h("analyst")), 201)  # NGN 0.50: below the threshold; a correct amount is tolerated
    assert linked["status"] == "manual" and linked["pending_approval"] is None
    error(client.post("/api/exceptions/matching/link", json={
        "job_id": str(tiny), "rows": [{"side": "left", "row_number": 7}, {"side": "right", "row_number": 1}]},
        headers=strict.h("analyst")), 400, "VALIDATION_ERROR")  # no stored row 7


def test_http_link_of_a_mismatch_keeps_the_note_records_the_difference_and_needs_a_reason(
        client: TestClient, strict: Tenant) -> None:
    job, files = rows_job(strict, {"left": {3: (25_005_000, "NGN")}, "right": {4: (25_000_000, "NGN")}})
    item = strict.exception("50.00", job_id=job, left_file_id=files["left"], left_row=3,
                            right_file_id=files["right"], right_row=4)
    rows = [{"side": "left", "row_number": 3}, {"side": "right", "row_number": 4}]
    note = "customer paid the NGN 50 fee separately"
    missing = error(client.post("/api/exceptions/matching/link", json={"job_id": str(job), "rows": rows, "note": note},
                                headers=strict.h("analyst")), 400, "REASON_REQUIRED")
    assert [d["field"] for d in missing["details"]] == ["reason"]
    waiting = data(client.post("/api/exceptions/matching/link", json={
        "job_id": str(job), "rows": rows, "note": note, "reason": "fee paid by transfer 2211"},
        headers=strict.h("analyst")), 202)
    assert waiting["evidence"]["difference_minor"] == 5000
    view = data(client.get(f"/api/approvals/{waiting['pending_approval']['id']}", headers=strict.h("supervisor")), 200)
    assert view["snapshot"]["subject"]["rows"][0]["amount_minor"] == 25_005_000
    assert view["snapshot"]["subject"]["exceptions"][0]["id"] == str(item) and view["changes_since_request"] == []
    assert "snapshot" not in view["approval"]["metadata"]
    data(client.post(f"/api/approvals/{waiting['pending_approval']['id']}/approve", json={},
                     headers=strict.h("supervisor")), 200)
    detail = data(client.get(f"/api/exceptions/{item}", headers=strict.h("analyst")), 200)
    assert detail["exception"]["status"] == "resolved" and detail["exception"]["resolution_note"] == note
    assert detail["exception"]["resolved_by"] == str(strict.ids["analyst"])
    match = next(m for m in detail["matches"] if m["status"] == "manual")
    assert match["evidence"]["difference_minor"] == 5000 and match["evidence"]["note"] == note
    assert match["evidence"]["reason"] == "fee paid by transfer 2211"


def test_http_confirming_a_suggestion_needs_a_checker_at_the_threshold(client: TestClient, strict: Tenant) -> None:
    job, files = rows_job(strict, {"left": {5: (100_000, "NGN")}, "right": {5: (100_000, "NGN")}}, suggestions=((5, 5),))
    item = strict.exception("1000.00", job_id=job, left_file_id=files["left"], left_row=5)
    waiting = data(client.post("/api/exceptions/matching/confirm", json={"job_id": str(job), "left_row": 5,
                                                                         "right_row": 5}, headers=strict.h("analyst")), 202)
    assert waiting["pending_approval"]["metadata"]["action"] == "confirm" and _status(client, strict, item) == "open"
    approved = data(client.post(f"/api/approvals/{waiting['pending_approval']['id']}/approve", json={},
                                headers=strict.h("supervisor")), 200)
    assert approved["effect"]["kind"] == "exceptions_matched" and _status(client, strict, item) == "resolved"


# --- issue 12, item 2: a checker sees what they approve, as it was asked ---------------------


def test_http_approving_a_changed_exception_is_refused_with_what_changed(client: TestClient, strict: Tenant) -> None:
    item = strict.exception("9000.00", ai_explanation="bank shows 9,000; GL has nothing")
    data(client.patch(f"/api/exceptions/{item}", json={"status": "in_progress"}, headers=strict.h("analyst")), 200)
    approval = data(client.post(f"/api/exceptions/{item}/resolve", json={
        "resolution_code": "written_off", "resolution_note": "n"}, headers=strict.h("analyst")), 202)["pending_approval"]
    view = data(client.get(f"/api/approvals/{approval['id']}", headers=strict.h("supervisor")), 200)
    snapshot = view["snapshot"]["subject"]["exceptions"][0]
    assert snapshot["amount"] == "9000.00" and snapshot["ai_explanation"] == "bank shows 9,000; GL has nothing"
    with strict.uow() as uow:
        uow.connection.execute(text("UPDATE exceptions SET ai_explanation = 'bank shows 90,000' WHERE id = :id"),
                               {"id": item})
        uow.commit()
    view = data(client.get(f"/api/approvals/{approval['id']}", headers=strict.h("supervisor")), 200)
    assert view["changes_since_request"] == [{"field": "exceptions.0.ai_explanation",
                                              "then": "bank shows 9,000; GL has nothing", "now": "bank shows 90,000"}]
    refused = error(client.post(f"/api/approvals/{approval['id']}/approve", json={}, headers=strict.h("supervisor")),
                    409, "APPROVAL_SUBJECT_CHANGED")
    assert [d["field"] for d in refused["details"]] == ["exceptions.0.ai_explanation"]
    assert _status(client, strict, item) == "in_progress"


def test_http_settings_rule_and_onboarding_snapshots(client: TestClient, strict: Tenant) -> None:
    current = {"resolution_approval_threshold": {"NGN": "100.00"}}
    asks = [data(client.post("/api/approvals", json={
        "type": "system_setting", "title": f"Threshold {n}", "description": "d",
        "metadata": {"key": "workflow", "value": {"resolution_approval_threshold": {"NGN": n}}}},
        headers=strict.h("admin")), 201) for n in ("200.00", "300.00")]
    view = data(client.get(f"/api/approvals/{asks[1]['id']}", headers=strict.h("supervisor")), 200)
    assert view["snapshot"]["subject"] == {"key": "workflow", "from": current,
                                           "to": {"resolution_approval_threshold": {"NGN": "300.00"}}}
    data(client.post(f"/api/approvals/{asks[0]['id']}/approve", json={}, headers=strict.h("supervisor")), 200)
    stale = error(client.post(f"/api/approvals/{asks[1]['id']}/approve", json={}, headers=strict.h("supervisor")),
                  409, "APPROVAL_SUBJECT_CHANGED")  # the "from" it was asked against is gone
    assert [d["field"] for d in stale["details"]] == ["from.resolution_approval_threshold.NGN"]
    rule = data(client.post("/api/rules", json={"name": f"Snap {uuid.uuid4().hex[:6]}", "definition": EXACT},
                            headers=strict.h("admin")), 202)
    diff = data(client.get(f"/api/approvals/{rule['approval']['id']}", headers=strict.h("supervisor")), 200)
    assert diff["snapshot"]["subject"]["from"] is None and diff["snapshot"]["subject"]["to"]["rule_type"] == "exact"
    assert "rule_type" in diff["snapshot"]["subject"]["changed_keys"]
    email = f"snap.{uuid.uuid4().hex[:6]}@example.com"
    onboarding = data(client.post("/api/approvals", json={
        "type": "user_onboarding", "title": "New analyst", "description": "d",
        "metadata": {"email": email, "name": "Sam", "role": "analyst"}}, headers=strict.h("admin")), 201)
    seen = data(client.get(f"/api/approvals/{onboarding['id']}", headers=strict.h("supervisor")), 200)
    assert seen["snapshot"]["subject"] == {"email": email, "name": "Sam", "role": "analyst"}


def test_http_approval_mail_payload_has_type_band_and_requester_only(client: TestClient, strict: Tenant) -> None:
    item = strict.exception("2500000.00")
    data(client.patch(f"/api/exceptions/{item}", json={"status": "in_progress"}, headers=strict.h("analyst")), 200)
    approval = data(client.post(f"/api/exceptions/{item}/resolve", json={
        "resolution_code": "written_off", "resolution_note": "customer 0123456789"},
        headers=strict.h("analyst")), 202)["pending_approval"]
    with strict.uow() as uow:
        payloads = [dict(r.payload) for r in uow.connection.execute(text(
            "SELECT payload FROM outbox_messages WHERE actor_name = 'notify_workflow'")).all()]
    sent = next(p for p in payloads if p["subject"].get("approval_id") == approval["id"])
    assert sent["subject"] == {"approval_id": approval["id"], "type": "exception_resolution",
                               "amount_band": "NGN 1,000,000 to 10,000,000",
                               "requested_by": str(strict.ids["analyst"])}


def test_http_settings_show_every_effective_setting_with_its_source(client: TestClient, strict: Tenant,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16 item 10: GET /api/settings lists the registry (domain/settings_registry.py), each
    setting's effective value and where it comes from; a setting added to the registry appears
    without a change to the route."""
    from reckai.domain import settings_registry as registry

    _approve_setting(client, strict, {"resolution_approval_threshold": {"NGN": "100.00"}, "sla_hours": {"low": 200}})
    effective = {e["name"]: e for e in data(client.get("/api/settings", headers=strict.h("analyst")), 200)["effective"]}
    assert set(effective) == {setting.name for setting in registry.SETTINGS}
    assert (effective["workflow.resolution_approval_threshold"]["value"],
            effective["workflow.resolution_approval_threshold"]["source"]) == ({"NGN": "100.00"}, "org")
    assert effective["workflow.sla_hours"]["value"] == {"critical": 4, "high": 24, "medium": 72, "low": 200}
    assert effective["workflow.sla_hours"]["source"] == "org"
    assert effective["workflow.sla_hours"]["default"] == {"critical": 4, "high": 24, "medium": 72, "low": 168}
    assert (effective["workflow.checker_cooling_off_days"]["value"],
            effective["workflow.checker_cooling_off_days"]["source"]) == (7, "default")
    assert (effective["rate_limits.upload"]["value"], effective["rate_limits.upload"]["source"]) == (10, "default")
    assert effective["rate_limits.auth_ip"]["org_overridable"] is False
    assert effective["rate_limits.auth_ip"]["env"] == "AUTH_IP_LIMIT_PER_MINUTE"
    # the reports' time zone and expiry (issue 14) are registered too: shown with their source
    assert (effective["timezone"]["value"], effective["timezone"]["source"]) == ("Africa/Lagos", "default")
    _approve_setting(client, strict, "Europe/London", key="timezone")
    _approve_setting(client, strict, {"expiry_days": 90}, key="reports")
    effective = {e["name"]: e for e in data(client.get("/api/settings", headers=strict.h("analyst")), 200)["effective"]}
    assert (effective["timezone"]["value"], effective["timezone"]["source"]) == ("Europe/London", "org")
    assert (effective["reports.expiry_days"]["value"], effective["reports.expiry_days"]["source"]) == (90, "org")
    assert effective["reports.expiry_days"]["org_maximum"] == 3650

    added = registry.Setting("example.added_days", "integer", 30, "A setting added to the registry later.",
                             minimum=1, maximum=365, org_overridable=True, unit="days")
    monkeypatch.setattr(registry, "SETTINGS", (*registry.SETTINGS, added))
    monkeypatch.setattr(registry, "REGISTRY", {**registry.REGISTRY, added.name: added})
    listed = {e["name"]: e for e in data(client.get("/api/settings", headers=strict.h("admin")), 200)["effective"]}
    assert listed["example.added_days"] | {"description": None} == {
        "name": "example.added_days", "value": 30, "source": "default", "type": "integer", "default": 30,
        "description": None, "org_overridable": True, "org_minimum": 1, "org_maximum": 365, "unit": "days",
        "env": None, "ignored_org_value": None}
