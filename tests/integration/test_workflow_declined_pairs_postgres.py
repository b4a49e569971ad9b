"""Declined pairs on PostgreSQL, over HTTP: a rule approved through the API, a job on the bank and
switch files, a suggestion declined through POST /api/exceptions/matching/decline, then the same
files reconciled again: the declined pair is neither suggested nor matched (issue 7,
docs/workflow.md). The job runs in process (the worker step the `reckai worker` handler calls)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.application.ports.rate_limit import TIERS
from reckai.application.reconciliations.worker import run_reconciliation_attempt
from reckai.bootstrap import Container, bootstrap
from reckai.domain.exceptions.manual_matching import DeclinedPair, RowRef
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.support import reconciliation_jobs as rj
from tests.support.identity import bearer, create_user_with_role, login, onboard
from tests.unit.test_reconciliation_jobs_declined_pairs import STRICT_RULE

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def container(pg_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root = tmp_path_factory.mktemp("declined-pairs")
    settings = Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=pg_database.app_url, pool_size=4),
                        storage=StorageSettings(backend="filesystem", filesystem_root=root / "storage"),
                        mailer=MailerSettings(backend="file", outbox_dir=root / "mail"))
    built = bootstrap(settings)
    try:
        yield built
    finally:
        built.close()


@dataclasses.dataclass
class Tenant:
    client: TestClient
    container: Container
    organization_id: uuid.UUID
    admin_id: uuid.UUID
    admin: str
    supervisor: str

    def call(self, method: str, path: str, token: str | None = None, status: int = 200, **kwargs: Any) -> Any:
        self.container.rate_limiter.reset(TIERS["api"], str(self.admin_id))  # paging is many requests
        response = self.client.request(method, path, headers=bearer(token or self.admin), **kwargs)
        assert response.status_code == status, response.text
        return response.json()["data"]

    def upload(self, data: bytes, name: str, file_type: str, mapping: dict[str, Any]) -> str:
        self.container.rate_limiter.reset(TIERS["upload"], str(self.admin_id))
        uploaded = self.client.post("/api/files/upload", data={"file_type": file_type},
                                    files={"file": (name, data, "text/csv")}, headers=bearer(self.admin))
        assert uploaded.status_code == 201, uploaded.text
        file_id = uploaded.json()["data"]["id"]
        self.call("POST", f"/api/files/{file_id}/map", json={"transformation_rules": mapping})
        return str(file_id)

    def run_job(self, left: str, right: str, rule_id: str, name: str) -> str:
        body = {**rj.start_body(uuid.UUID(left), uuid.UUID(right), name, force=True), "rule_ids": [rule_id]}
        job = self.call("POST", "/api/reconciliations", json=body, status=201)
        services = self.container.reconciliations
        outcome = run_reconciliation_attempt(services, self.organization_id, uuid.UUID(job["id"]), 1, "pytest")
        assert outcome == "completed", self.call("GET", f"/api/reconciliations/{job['id']}")
        return str(job["id"])

    def pairs(self, job_id: str, kind: str) -> set[tuple[int, int]]:
        found: set[tuple[int, int]] = set()
        page = 1
        while True:
            items = self.call("GET", f"/api/reconciliations/{job_id}/results?kind={kind}&per_page=100&page={page}"
                              )["items"]
            found |= {(item["left_row"], item["right_row"]) for item in items}
            if len(items) < 100:
                return found
            page += 1


@pytest.fixture(scope="module")
def tenant(container: Container) -> Iterator[Tenant]:
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        organization_id, admin = onboard(client)
        admin_token = login(client, admin.org_code, admin.email, admin.password)
        _, supervisor = create_user_with_role(client, admin_token, "supervisor")
        yield Tenant(client, container, organization_id, admin.user_id, admin_token, supervisor)


def test_a_suggestion_declined_over_http_is_not_suggested_or_matched_by_the_next_job(tenant: Tenant) -> None:
    profile = rj.profile()
    left = tenant.upload(rj.bank_bytes(), "bank.csv", "bank", profile["left"]["mapping"])
    right = tenant.upload(rj.switch_bytes(), "switch.csv", "switch", profile["right"]["mapping"])
    proposal = tenant.call("POST", "/api/rules", status=202, json={
        "name": "rrn-strict", "definition": {**STRICT_RULE, "applies_to": {"left": "bank", "right": "switch"}}})
    tenant.call("POST", f"/api/approvals/{proposal['approval']['id']}/approve", token=tenant.supervisor, json={})
    rule_id = proposal["rule"]["id"]

    first = tenant.run_job(left, right, rule_id, "first")
    suggested, matched = tenant.pairs(first, "suggestions"), tenant.pairs(first, "matches")
    assert suggested and matched
    declined = min(suggested)
    group = tenant.call("POST", "/api/exceptions/matching/decline", status=201, json={
        "job_id": first, "left_row": declined[0], "right_row": declined[1], "reason": "different cardholders"})
    assert group["status"] == "declined"
    # A clean match a person declined earlier (when another job suggested it) is remembered the same way.
    declined_match = min(matched)
    with tenant.container.database.unit_of_work(tenant.organization_id) as uow:
        uow.declined_pairs.add(DeclinedPair(tenant.organization_id, RowRef(uuid.UUID(left), declined_match[0]),
                                            RowRef(uuid.UUID(right), declined_match[1]), tenant.admin_id,
                                            dt.datetime.now(dt.UTC), uuid.UUID(first), "not the same payment"))
        uow.commit()

    second = tenant.run_job(left, right, rule_id, "second")
    again = tenant.pairs(second, "suggestions") | tenant.pairs(second, "matches")
    assert declined not in again and declined_match not in again
    affected_left, affected_right = {declined[0], declined_match[0]}, {declined[1], declined_match[1]}
    assert ({p for p in again if p[0] not in affected_left and p[1] not in affected_right}
            == {p for p in suggested | matched if p[0] not in affected_left and p[1] not in affected_right})
    job = tenant.call("GET", f"/api/reconciliations/{second}")
    assert job["summary"]["declined_pairs_excluded"] == 2
    # Declining is per organization: another organization reconciling its own files is unaffected,
    # and this organization's declined pairs are not readable from another tenant.
    other_org, _ = onboard(tenant.client)
    with tenant.container.database.unit_of_work(other_org) as uow:
        assert uow.declined_pairs.declined_among([uuid.UUID(left)], [uuid.UUID(right)]) == set()
