"""Password reset with inputs no account can have: a clear 400, never a 500 (the API fuzzer found a
long address making the job's payload too large to enqueue)."""

from __future__ import annotations

from litestar.testing import TestClient

from reckai.bootstrap import bootstrap_in_memory
from reckai.entrypoints.http.app import create_app


def test_an_address_or_code_longer_than_any_account_has_is_a_validation_error() -> None:
    with TestClient(create_app(bootstrap_in_memory())) as client:
        response = client.post("/api/auth/password/reset",
                               json={"organization_code": "bank", "email": "\u03a9" * 20_000})
        assert response.status_code == 400, response.text
        assert [d["field"] for d in response.json()["error"]["details"]] == ["email"]
        response = client.post("/api/auth/password/reset", json={"organization_code": "b" * 51, "email": "a@b.c"})
        assert response.status_code == 400, response.text
        assert [d["field"] for d in response.json()["error"]["details"]] == ["organization_code"]


def test_a_huge_user_agent_still_queues_the_reset() -> None:
    with TestClient(create_app(bootstrap_in_memory())) as client:
        response = client.post("/api/auth/password/reset", json={"organization_code": "bank", "email": "a@b.c"},
                               headers={"User-Agent": "x" * 70_000})
        assert response.status_code == 202, response.text
