"""Identity over HTTP with the in-memory adapters: the whole flow, and the state rules one by one
(lockout, expiry, rotation, reuse, fingerprint, MFA replay, quotas, settings, tenant isolation,
rate limits, instant revocation). The clock is injected (`container.components["clock"]`)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.adapters.memory.token_blacklist import MemoryTokenBlacklist
from reckai.adapters.security.jwt_tokens import JwtKeyRing, JwtTokenService
from reckai.adapters.security.passwords import ConfiguredPasswordHasher
from reckai.application.ports.audit import AuditQuery
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from reckai.entrypoints.http.auth import identity_services
from reckai.settings import SecuritySettings, Settings
from tests.support.identity import (
    DEFAULT_PASSWORD,
    SECOND_PASSWORD,
    bearer,
    create_user_with_role,
    login,
    login_tokens,
    onboard,
    relax_auth_limits,
)
from tests.support.identity_flow import FakeClock, login_body, run_whole_flow


def make_container(clock: FakeClock, settings: Settings | None = None) -> Container:
    container = bootstrap_in_memory(settings)
    container.components["clock"] = clock
    security = container.settings.security
    ring = JwtKeyRing({security.jwt_key_id: security.jwt_secret}, security.jwt_key_id)
    container.components["token_service"] = JwtTokenService(ring, clock=clock.timestamp)
    container.components["token_blacklist"] = MemoryTokenBlacklist(clock)
    return container


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


def audit_actions(container: Container, org_id: Any) -> list[str]:
    return [record.event.action for record in audit_records(container, org_id)]


def audit_records(container: Container, org_id: Any) -> list[Any]:
    records: list[Any] = []
    before = None
    while True:
        page = container.audit_log.list_records(org_id, AuditQuery(limit=500, before_sequence=before))
        records.extend(page.records)
        if page.next_before_sequence is None:
            return records
        before = page.next_before_sequence


def mails_to(container: Container, address: str) -> list[Any]:
    return [m for m in container.mailer.sent if m.to.lower() == address.lower()]


def test_whole_flow_in_memory(client: TestClient, container: Container, clock: FakeClock) -> None:
    run_whole_flow(client, clock, lambda to: mails_to(container, to)[-1].text_body,
                   lambda org: audit_actions(container, org))
