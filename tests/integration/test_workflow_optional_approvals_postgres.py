"""POST /api/users and PUT /api/settings with and without a user_onboarding / system_setting
approval required, against PostgreSQL (row-level security, the quota row lock, the audit chain):
the flows of tests/unit/test_approvals_optional_routes.py on a real container; and the
segregation-of-duties flows of tests/unit/test_approvals_segregation.py (issue 12 item 4)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.bootstrap import Container, bootstrap
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.unit import test_approvals_optional_routes as flows
from tests.unit import test_approvals_segregation as segregation

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


# --- segregation of duties (issue 12 item 4): tests/unit/test_approvals_segregation.py's flows ------


def _last_mail_to(container: Container) -> Any:
    """The newest .eml of the file mailer's outbox addressed to `address` (its text body)."""
    import email
    from email import policy

    def last_mail_to(address: str) -> str:
        outbox = container.settings.mailer.outbox_dir
        for path in sorted(outbox.glob("*.eml"), reverse=True):
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if str(message["To"]).lower() == address.lower():
                body = message.get_body(preferencelist=("plain",))
                assert body is not None
                return str(body.get_content())
        raise AssertionError(f"no mail to {address}")
    return last_mail_to


@pytest.fixture
def sod(client: TestClient, container: Container) -> segregation.Org:
    return segregation.make_org(client, container)


def test_one_admin_cannot_be_their_own_checker(sod: segregation.Org, container: Container) -> None:
    segregation.flow_one_admin_cannot_be_their_own_checker(sod, _last_mail_to(container))
    with container.database.unit_of_work(sod.organization_id) as uow:  # what the columns hold
        supervisor = uow.users.get(sod.supervisor_id)
    assert supervisor is not None and supervisor.created_by is None and supervisor.last_changed_by is None


def test_a_lone_admin_is_told_at_once_that_nobody_can_approve(client: TestClient) -> None:
    segregation.flow_a_lone_admin_is_told_at_once_that_nobody_can_approve(client)


def test_a_raise_to_a_checker_role_needs_another_checker(sod: segregation.Org) -> None:
    segregation.flow_a_raise_to_a_checker_role_needs_another_checker(sod)


def test_nobody_approves_a_request_about_themselves(sod: segregation.Org) -> None:
    segregation.flow_nobody_approves_a_request_about_themselves(sod)


def test_an_org_whose_only_checker_is_blocked_is_told_when_it_asks(sod: segregation.Org,
                                                                   container: Container) -> None:
    segregation.flow_an_org_whose_only_checker_is_blocked_is_told_when_it_asks(sod)
    with container.database.unit_of_work(sod.organization_id) as uow:
        supervisor = uow.users.get(sod.supervisor_id)
    assert supervisor is not None and supervisor.last_changed_by == sod.admin.user_id
    assert supervisor.last_changed_at is not None and supervisor.last_changed_at.tzinfo is not None
