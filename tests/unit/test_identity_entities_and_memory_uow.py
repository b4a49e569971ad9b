"""Identity entity invariants and the in-memory unit of work as a model of a transaction."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reckai.adapters.memory.unit_of_work import MemoryDatabase
from reckai.domain.identity.entities import InvalidEntity, Organization, User, UserSession


def _user(**overrides: object) -> User:
    values: dict[str, object] = {
        "id": uuid.uuid4(), "organization_id": uuid.uuid4(), "email": "a@b.c", "password_hash": "h", "name": "A",
        "role": "admin",
    }
    values.update(overrides)
    return User(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"role": "root"}, "role"),
        ({"email": ""}, "email"),
        ({"email": "x" * 256}, "email"),
        ({"failed_login_attempts": -1}, "failed_login_attempts"),
        ({"locked_until": dt.datetime(2030, 1, 1)}, "locked_until"),  # naive
    ],
)
def test_user_refuses_what_the_schema_refuses(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidEntity) as caught:
        _user(**overrides)
    assert caught.value.field == field


def test_organization_and_session_invariants() -> None:
    with pytest.raises(InvalidEntity):
        Organization(id=uuid.uuid4(), name="N", code="c" * 51)
    with pytest.raises(InvalidEntity):
        UserSession(id=uuid.uuid4(), organization_id=uuid.uuid4(), user_id=uuid.uuid4(), token_hash="t",
                    expires_at=dt.datetime(2030, 1, 1))


def test_in_memory_container_has_a_database_and_a_db_health_check() -> None:
    from reckai.bootstrap import bootstrap_in_memory

    container = bootstrap_in_memory()
    try:
        assert container.health_checks["db"]().ok
        with container.database.unit_of_work() as uow:
            assert uow.users.count() == 0
    finally:
        container.close()


# Operations: ("add", email) | ("commit",) | ("rollback",)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(["a@x.io", "A@x.io", "b@x.io", "c@x.io", "B@X.IO"])),
        st.tuples(st.just("commit")),
        st.tuples(st.just("rollback")),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_memory_unit_of_work_matches_a_transaction_model(ops: list[tuple[str, ...]]) -> None:
    """Committed state = emails added before a commit and not rolled back, unique ignoring case."""
    database = MemoryDatabase()
    with database.unit_of_work() as uow:
        created = uow.organizations.create_with_admin(
            name="M", code="model", domain=None, admin_email="admin@x.io", admin_name="A", admin_password_hash="h")
        uow.commit()
    org = created.organization_id
    committed, pending = {"admin@x.io"}, set()
    from reckai.application.ports.repositories import DuplicateEntity

    with database.unit_of_work(org) as uow:
        for op in ops:
            if op[0] == "add":
                email = op[1]
                if email.lower() in committed | pending:
                    with pytest.raises(DuplicateEntity):
                        uow.users.add(_user(organization_id=org, email=email))
                else:
                    uow.users.add(_user(organization_id=org, email=email))
                    pending.add(email.lower())
            elif op[0] == "commit":
                uow.commit()
                committed |= pending
                pending = set()
            else:
                uow.rollback()
                pending = set()
            assert {u.email.lower() for u in uow.users.list()} == committed | pending
    with database.unit_of_work(org) as uow:
        assert {u.email.lower() for u in uow.users.list()} == committed
