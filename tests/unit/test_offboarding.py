"""`reckai org offboard` on the in-memory container (issue 17 item 7): the scenario of
tests/support/offboarding.py. The same on PostgreSQL: tests/integration/test_offboarding_postgres.py."""

from __future__ import annotations

import pytest

from reckai.bootstrap import bootstrap_in_memory
from reckai.domain.privacy.offboarding import clean_override_reason, offboarded_code
from tests.support.offboarding import check_offboarding


def test_offboarding_in_memory() -> None:
    check_offboarding(bootstrap_in_memory(), encrypted=False)


def test_the_pseudonymised_code_fits_the_column_and_hides_the_code() -> None:
    code = offboarded_code("  Acme-Bank ")
    assert code == offboarded_code("acme-bank") and len(code) <= 50 and "acme" not in code
    assert code != offboarded_code("acme-bank2")


@pytest.mark.parametrize("reason", ["", "   ", "two\nlines", "x" * 201])
def test_an_override_needs_a_one_line_reason(reason: str) -> None:
    with pytest.raises(ValueError):
        clean_override_reason(reason)


def test_sign_in_over_http_to_an_offboarded_organization_is_the_generic_refusal() -> None:
    """POST /api/auth/login answers the generic 401 INVALID_CREDENTIALS in the error envelope to the
    old credentials of an offboarded organization, right or wrong (its data key is shredded: no user
    of it can be found or proved), and the admin's token stops working."""
    from litestar.testing import TestClient

    from reckai.entrypoints.http.app import create_app
    from tests.support.identity import bearer, login, onboard
    from tests.support.offboarding import run_offboard

    container = bootstrap_in_memory()
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        _, admin = onboard(client)
        token = login(client, admin.org_code, admin.email, admin.password)
        assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
        assert run_offboard(container, admin.org_code, "--without-export", "test")[0] == 0
        right = client.post("/api/auth/login", json={"organization_code": admin.org_code, "email": admin.email,
                                                      "password": admin.password})
        assert right.status_code == 401 and right.json()["error"]["code"] == "INVALID_CREDENTIALS"
        wrong = client.post("/api/auth/login", json={"organization_code": admin.org_code, "email": admin.email,
                                                      "password": admin.password + "x"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "INVALID_CREDENTIALS"
        assert client.get("/api/auth/me", headers=bearer(token)).status_code == 401
