"""Issue 12, items 5-7 over HTTP with the in-memory adapters (docs/identity.md): revoking a session
ends its access tokens at once; make run's secrets are not the published ones; password reset does
the same work for every address; sign-in lockout per account and source with an account-wide
delay; names that reach mail headers or log lines refuse line breaks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from reckai.bootstrap import Container
from reckai.domain.identity.tokens import hash_refresh_token
from reckai.entrypoints.http.app import create_app
from tests.support.identity import bearer, login_tokens, onboard
from tests.support.identity_flow import FakeClock
from tests.unit.test_identity_usecases import make_container


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def container(clock: FakeClock) -> Container:
    return make_container(clock)


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), raise_server_exceptions=False) as test_client:
        yield test_client


# --- item 6: revoking a session ends its access tokens at once ------------------------------------


def _me(client: TestClient, token: str) -> int:
    return client.get("/api/auth/me", headers=bearer(token)).status_code


def test_deleting_a_session_ends_its_access_tokens_at_once(client: TestClient) -> None:
    _, admin = onboard(client)
    first = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    second = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    assert _me(client, first["access_token"]) == 200 and _me(client, second["access_token"]) == 200

    ended = client.delete(f"/api/sessions/{first['session_id']}", headers=bearer(second["access_token"]))
    assert ended.status_code == 200, ended.text
    refused = client.get("/api/auth/me", headers=bearer(first["access_token"]))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHENTICATED"
    assert _me(client, second["access_token"]) == 200  # the other session lives on


def test_a_session_ended_by_its_owner_ends_its_own_access_token(client: TestClient) -> None:
    _, admin = onboard(client)
    tokens = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    assert client.delete(f"/api/sessions/{tokens['session_id']}",
                         headers=bearer(tokens["access_token"])).status_code == 200
    assert _me(client, tokens["access_token"]) == 401


def test_refresh_token_reuse_ends_every_access_token_of_the_family(client: TestClient, clock: FakeClock) -> None:
    _, admin = onboard(client)
    first = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    rotated = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["data"]
    assert second["session_id"] == first["session_id"]
    other = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    assert _me(client, first["access_token"]) == 200 and _me(client, second["access_token"]) == 200

    clock.advance(dt.timedelta(seconds=16))  # past the grace window: reuse means theft
    reused = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401, reused.text
    assert _me(client, first["access_token"]) == 401
    assert _me(client, second["access_token"]) == 401
    assert _me(client, other["access_token"]) == 200  # another login is another session


def test_logout_with_the_refresh_token_ends_the_sessions_other_access_tokens(client: TestClient) -> None:
    _, admin = onboard(client)
    first = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    second = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()["data"]
    out = client.post("/api/auth/logout", json={"refresh_token": second["refresh_token"]},
                      headers=bearer(second["access_token"]))
    assert out.status_code == 200, out.text
    assert _me(client, first["access_token"]) == 401  # not blacklisted itself: its session ended


def test_an_access_token_past_its_sessions_absolute_end_is_refused(client: TestClient, container: Container,
                                                                   clock: FakeClock) -> None:
    _, admin = onboard(client)
    tokens = login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]
    with container.database.unit_of_work(None) as uow:
        found = uow.sessions.find_by_token_hash(hash_refresh_token(tokens["refresh_token"]))
    assert found is not None and found.family_id is not None
    with container.database.unit_of_work(found.organization_id) as uow:
        family = uow.sessions.get_family(found.family_id)
    assert family is not None
    refresh_token = tokens["refresh_token"]
    for moment in (*(clock() + dt.timedelta(days=6 * n) for n in range(1, 5)),
                   family.absolute_expires_at - dt.timedelta(minutes=1)):
        clock.current = moment
        fresh = client.post("/api/auth/refresh", json={"refresh_token": refresh_token})
        assert fresh.status_code == 200, fresh.text
        refresh_token = fresh.json()["data"]["refresh_token"]
    access_token = fresh.json()["data"]["access_token"]
    assert _me(client, access_token) == 200
    clock.advance(dt.timedelta(minutes=1))  # the token has 14 minutes left, its session none
    assert _me(client, access_token) == 401
