"""Contract of the subject key repository (application/ports/subject_keys.py), run over the
in-memory adapter (tests/unit/test_subject_keys.py) and PostgreSQL
(tests/integration/test_subject_keys_postgres.py), so the fake cannot drift."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from reckai.application.ports.repositories import TenantIsolationViolation
from reckai.application.ports.subject_keys import SubjectKey

Tenants = tuple[Any, tuple[uuid.UUID, uuid.UUID], tuple[uuid.UUID, uuid.UUID]]
NOW = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)


def _key(organization_id: uuid.UUID, subject_id: uuid.UUID, wrapped: str = "v1:k:wrapped") -> SubjectKey:
    return SubjectKey(uuid.uuid4(), organization_id, subject_id, wrapped, NOW)


def check_a_subject_has_one_key_until_it_is_destroyed(tenants: Tenants) -> None:
    database, (org_a, user_a), _ = tenants
    first = _key(org_a, user_a)
    with database.unit_of_work(org_a) as uow:
        assert uow.subject_keys.add_if_absent(first) == first
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.subject_keys.add_if_absent(_key(org_a, user_a, "v1:k:other")) == first  # the first one stays
        assert uow.subject_keys.get(user_a) == first
        assert uow.subject_keys.get_many([user_a, uuid.uuid4()]) == {user_a: first}
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.subject_keys.destroy(user_a) is True
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.subject_keys.get(user_a) is None and uow.subject_keys.destroy(user_a) is False
        replacement = uow.subject_keys.add_if_absent(_key(org_a, user_a, "v1:k:new"))
        assert replacement.id != first.id  # a later key never opens what the destroyed one sealed


def check_a_destroy_rolled_back_keeps_the_key(tenants: Tenants) -> None:
    database, (org_a, user_a), _ = tenants
    key = _key(org_a, user_a)
    with database.unit_of_work(org_a) as uow:
        uow.subject_keys.add_if_absent(key)
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.subject_keys.destroy(user_a)
    with database.unit_of_work(org_a) as uow:
        assert uow.subject_keys.get(user_a) == key


def check_another_organization_sees_and_destroys_nothing(tenants: Tenants) -> None:
    database, (org_a, user_a), (org_b, user_b) = tenants
    key = _key(org_a, user_a)
    with database.unit_of_work(org_a) as uow:
        uow.subject_keys.add_if_absent(key)
        uow.commit()
    with database.unit_of_work(org_b) as uow:
        assert uow.subject_keys.get(user_a) is None and uow.subject_keys.get_many([user_a]) == {}
        assert uow.subject_keys.destroy(user_a) is False
        with pytest.raises(TenantIsolationViolation):
            uow.subject_keys.add_if_absent(_key(org_a, user_b))
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert uow.subject_keys.get(user_a) == key


CHECKS = [check_a_subject_has_one_key_until_it_is_destroyed, check_a_destroy_rolled_back_keeps_the_key,
          check_another_organization_sees_and_destroys_nothing]
