"""POST /api/users and PUT /api/settings with and without a user_onboarding / system_setting
approval required, against PostgreSQL (row-level security, the quota row lock, the audit chain):
the flows of tests/unit/test_approvals_optional_routes.py on a real container."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.bootstrap import Container, bootstrap
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.unit import test_approvals_optional_routes as flows

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def container(pg_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root = tmp_path_factory.mktemp("optional-approvals")
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


@pytest.fixture
def org(client: TestClient, container: Container) -> flows.Org:
    return flows.make_org(client, container)  # a new organization per test: settings start at defaults


def test_user_creation_is_direct_without_the_requirement(org: flows.Org) -> None:
    flows.flow_user_creation_is_direct_without_the_requirement(org)


@pytest.mark.parametrize("via", ["flag", "approval_required_for"])
def test_user_creation_becomes_a_user_onboarding_request(org: flows.Org, via: str) -> None:
    flows.flow_user_creation_becomes_a_user_onboarding_request(org, via)


def test_max_users_is_enforced_when_the_request_is_approved(org: flows.Org) -> None:
    flows.flow_max_users_is_enforced_when_the_request_is_approved(org)


def test_settings_change_directly_without_the_requirement(org: flows.Org) -> None:
    flows.flow_settings_change_directly_without_the_requirement(org)


def test_settings_change_only_when_a_checker_approves(org: flows.Org) -> None:
    flows.flow_settings_change_only_when_a_checker_approves(org)


def test_settings_requests_are_validated_declined_and_empty_ones_change_nothing(org: flows.Org) -> None:
    flows.flow_settings_requests_are_validated_declined_and_empty_ones_change_nothing(org)
