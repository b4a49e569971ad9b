"""Issue 12 item 3: nobody self-assigns the top tier. Public sign-up is off by default in production;
a sign-up lands on standard (tests/unit/test_identity_usecases.py); only an operator changes a tier
(`reckai org tier`), quotas change at once, and a downgrade below current usage is refused."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from reckai.application.ports.audit import AuditQuery
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.entrypoints.cli.org import tier_command
from reckai.entrypoints.http.app import create_app
from reckai.settings import Settings
from tests.support.identity import bearer, login, onboard

PRODUCTION_ENV = {
    "RECKAI_MODE": "production", "DATABASE_URL": "postgresql://app@db/reckai",
    "MIGRATION_DATABASE_URL": "postgresql://owner@db/reckai", "REDIS_URL": "redis://redis:6379/0",
    "STORAGE_BACKEND": "s3", "S3_ENDPOINT": "s3:9000", "S3_ACCESS_KEY": "key", "S3_SECRET_KEY": "secret",
    "JWT_SECRET": "j" * 40, "AUDIT_HMAC_KEY": "a" * 40, "DATA_ENCRYPTION_KEY": "ZGF0YS1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcy1sb25nIQ==",
    "SCANNER_ALLOW_DISABLED": "true", "AUDIT_ANCHOR_BUCKET": "reckai-audit-anchors",
}


def test_public_signup_is_off_by_default_in_production_and_on_in_embedded_mode() -> None:
    assert Settings.from_env(PRODUCTION_ENV).security.allow_public_signup is False
    assert Settings.from_env({**PRODUCTION_ENV, "ALLOW_PUBLIC_SIGNUP": "true"}).security.allow_public_signup is True
    assert Settings.from_env({}).security.allow_public_signup is True
    assert Settings.from_env({"ALLOW_PUBLIC_SIGNUP": "false"}).security.allow_public_signup is False


@pytest.fixture
def container() -> Container:
    return bootstrap_in_memory()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), raise_server_exceptions=False) as test_client:
        yield test_client


def _tier(container: Container, code: str, tier: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = tier_command(container, argparse.Namespace(code=code, tier=tier), out, err)
    return status, out.getvalue(), err.getvalue()


def test_an_operator_changes_the_tier_and_the_quotas_change_at_once(client: TestClient, container: Container) -> None:
    org_id, admin = onboard(client)
    token = login(client, admin.org_code, admin.email, admin.password)
    status, out, err = _tier(container, admin.org_code.upper(), "enterprise")
    assert status == 0, err
    assert "standard -> enterprise" in out
    settings = client.get("/api/settings", headers=bearer(token)).json()["data"]
    assert settings["subscription_tier"] == "enterprise"
    assert settings["quotas"]["max_users"] == 500 and settings["quotas"]["max_jobs_per_month"] == 100_000
    assert settings["quotas"]["features"]["sso"] is True
    records = container.audit_log.list_records(org_id, AuditQuery(limit=50)).records
    changed = [r.event for r in records if r.event.action == "organization.tier_changed"]
    assert len(changed) == 1 and changed[0].user_id is None  # a system event: no user did it
    assert changed[0].metadata is not None
    assert changed[0].metadata["by"] == "operator" and changed[0].metadata["to"] == "enterprise"


def test_a_downgrade_below_current_usage_is_refused_naming_what_exceeds(client: TestClient,
                                                                       container: Container) -> None:
    _, admin = onboard(client)
    token = login(client, admin.org_code, admin.email, admin.password)
    assert _tier(container, admin.org_code, "professional")[0] == 0
    for n in range(10):  # 11 active users: more than standard's 10
        created = client.post("/api/users", json={"email": f"a{n}@example.com", "name": f"Analyst {n}",
                                                  "role": "analyst"}, headers=bearer(token))
        assert created.status_code == 201, created.text
    status, _, err = _tier(container, admin.org_code, "standard")
    assert status == 2
    assert "max_users: 11 active users; the tier allows 10" in err
    settings = client.get("/api/settings", headers=bearer(token)).json()["data"]
    assert settings["subscription_tier"] == "professional" and settings["quotas"]["max_users"] == 50  # unchanged
    deactivated = client.delete(f"/api/users/{client.get('/api/users', headers=bearer(token)).json()['data'][-1]['id']}",
                                headers=bearer(token))
    assert deactivated.status_code == 200
    assert _tier(container, admin.org_code, "standard")[0] == 0  # 10 active users fit


def test_an_unknown_organization_or_tier_is_refused(container: Container) -> None:
    assert _tier(container, "nobody", "enterprise")[0] == 2
    status, _, err = _tier(container, "nobody", "platinum")
    assert status == 2 and "tier" in err
