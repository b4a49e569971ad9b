"""The identity repository and unit-of-work contract, run over every adapter.

Not collected by itself: tests/unit/test_repository_contracts_memory.py and
tests/integration/test_repository_contracts_postgres.py import these tests and provide the
`database` fixture (an object with `.unit_of_work(organization_id=None)`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
import uuid
from typing import Any

import pytest

from reckai.application.ports.repositories import DuplicateEntity, EntityNotFound, TenantIsolationViolation
from reckai.domain.identity.entities import NewOrganization, RefreshTokenFamily, User, UserSession

UTC = dt.UTC


def signup(database: Any, code: str | None = None, email: str = "Admin@Example.com") -> tuple[NewOrganization, str]:
    code = code or f"org-{uuid.uuid4().hex[:10]}"
    with database.unit_of_work() as uow:
        created = uow.organizations.create_with_admin(
            name=f"Org {code}", code=code, domain=None, admin_email=email, admin_name="Ada Admin",
            admin_password_hash="hash-1",
        )
        uow.commit()
    return created, code


def new_user(organization_id: uuid.UUID, email: str | None = None, role: str = "analyst") -> User:
    return User(
        id=uuid.uuid4(), organization_id=organization_id, email=email or f"u{uuid.uuid4().hex[:8]}@example.com",
        password_hash="hash", name="Some One", role=role,
    )


def new_session(organization_id: uuid.UUID, user_id: uuid.UUID, *, family_id: uuid.UUID | None = None,
                expires_in: dt.timedelta = dt.timedelta(days=7)) -> UserSession:
    return UserSession(
        id=uuid.uuid4(), organization_id=organization_id, user_id=user_id, token_hash=uuid.uuid4().hex,
        expires_at=dt.datetime.now(UTC) + expires_in, family_id=family_id, ip_address="10.0.0.1",
        user_agent="pytest",
    )


# --- sign-up and organizations ---------------------------------------------------------------

def test_signup_creates_organization_admin_quota_and_history(database: Any) -> None:
    created, code = signup(database)
    with database.unit_of_work() as uow:
        assert uow.organizations.find_id_by_code(code) == created.organization_id
        assert uow.organizations.find_id_by_code(code + "-nope") is None
    with database.unit_of_work(created.organization_id) as uow:
        organization = uow.organizations.get(created.organization_id)
        assert organization is not None and organization.code == code
        assert organization.created_by == created.admin_user_id and organization.is_active
        admin = uow.users.get(created.admin_user_id)
        assert admin is not None and admin.role == "admin" and admin.email == "Admin@Example.com"
        assert not admin.is_email_verified and admin.created_at is not None and admin.created_at.tzinfo is not None
        quota = uow.quotas.get(created.organization_id)
        assert quota is not None
        assert (quota.max_users, quota.max_storage_gb, quota.max_jobs_per_month, quota.max_file_size_mb) == (
            10, 100, 1000, 100)
        assert uow.users.recent_password_hashes(created.admin_user_id, 5) == ["hash-1"]


def test_signup_with_a_taken_code_is_refused_and_the_unit_of_work_stays_usable(database: Any) -> None:
    first, code = signup(database)
    with database.unit_of_work() as uow:
        with pytest.raises(DuplicateEntity) as caught:
            uow.organizations.create_with_admin(
                name="Other", code=code, domain=None, admin_email="x@example.com", admin_name="X",
                admin_password_hash="h",
            )
        assert (caught.value.entity, caught.value.field) == ("organization", "code")
        other = uow.organizations.create_with_admin(
            name="Other", code=code + "-2", domain=None, admin_email="x@example.com", admin_name="X",
            admin_password_hash="h",
        )
        uow.commit()
    with database.unit_of_work() as uow:
        assert uow.organizations.find_id_by_code(code) == first.organization_id
        assert uow.organizations.find_id_by_code(code + "-2") == other.organization_id


def test_organization_update_changes_fields_but_never_the_code(database: Any) -> None:
    created, code = signup(database)
    with database.unit_of_work(created.organization_id) as uow:
        organization = uow.organizations.get(created.organization_id)
        organization.name = "Renamed"
        organization.code = "hijacked-code"
        organization.settings = {"password_min_length": 12}
        organization.is_active = False
        uow.organizations.update(organization)
        uow.commit()
    with database.unit_of_work(created.organization_id) as uow:
        stored = uow.organizations.get(created.organization_id)
        assert (stored.name, stored.code, stored.settings, stored.is_active) == (
            "Renamed", code, {"password_min_length": 12}, False)


# --- tenant isolation ------------------------------------------------------------------------

def test_a_unit_of_work_sees_only_its_own_organization(database: Any) -> None:
    a, _ = signup(database)
    b, _ = signup(database)
    with database.unit_of_work(a.organization_id) as uow:
        assert uow.organizations.get(b.organization_id) is None
        assert uow.users.get(b.admin_user_id) is None
        assert uow.quotas.get(b.organization_id) is None
        assert [u.id for u in uow.users.list()] == [a.admin_user_id]
        assert uow.users.count() == 1
        assert uow.users.get_by_email("admin@example.com").id == a.admin_user_id


def test_without_an_organization_no_tenant_row_is_visible(database: Any) -> None:
    a, _ = signup(database)
    with database.unit_of_work() as uow:
        assert uow.organizations.get(a.organization_id) is None
        assert uow.users.get(a.admin_user_id) is None
        assert uow.users.count() == 0 and list(uow.users.list()) == []
        assert uow.quotas.get(a.organization_id) is None


def test_writing_another_organizations_rows_is_refused_and_writes_nothing(database: Any) -> None:
    a, _ = signup(database)
    b, _ = signup(database)
    intruder = new_user(b.organization_id)
    with database.unit_of_work(a.organization_id) as uow:
        with pytest.raises(TenantIsolationViolation):
            uow.users.add(intruder)
        b_admin = new_user(b.organization_id)
        b_admin.id = b.admin_user_id
        with pytest.raises(TenantIsolationViolation):
            uow.users.update(b_admin)
        with pytest.raises(TenantIsolationViolation):
            uow.sessions.add(new_session(b.organization_id, b.admin_user_id))
        quota = uow.quotas.get(a.organization_id)
        quota.organization_id = b.organization_id
        with pytest.raises(TenantIsolationViolation):
            uow.quotas.update(quota)
        uow.commit()
    with database.unit_of_work() as uow, pytest.raises(TenantIsolationViolation):
        uow.users.add(new_user(a.organization_id))
    with database.unit_of_work(b.organization_id) as uow:
        assert uow.users.get(intruder.id) is None and uow.users.count() == 1
        assert uow.users.get(b.admin_user_id).name == "Ada Admin"


# --- transactions ----------------------------------------------------------------------------

def test_nothing_is_stored_without_commit(database: Any) -> None:
    a, _ = signup(database)
    user = new_user(a.organization_id)
    with database.unit_of_work(a.organization_id) as uow:
        uow.users.add(user)
        assert uow.users.get(user.id) is not None  # visible inside its own unit of work
    with database.unit_of_work(a.organization_id) as uow:
        assert uow.users.get(user.id) is None
    with pytest.raises(RuntimeError, match="boom"), database.unit_of_work(a.organization_id) as uow:
        uow.users.add(user)
        raise RuntimeError("boom")
    with database.unit_of_work(a.organization_id) as uow:
        assert uow.users.get(user.id) is None
        uow.users.add(user)
        uow.rollback()
        assert uow.users.get(user.id) is None


def test_the_tenant_holds_across_commits_of_one_unit_of_work(database: Any) -> None:
    a, _ = signup(database)
    b, _ = signup(database)
    first, second = new_user(a.organization_id), new_user(a.organization_id)
    with database.unit_of_work(a.organization_id) as uow:
        uow.users.add(first)
        uow.commit()
        # A new transaction starts here; it must be bound to the same organization again.
        assert uow.users.get(first.id) is not None
        assert uow.users.get(b.admin_user_id) is None
        uow.users.add(second)
        uow.commit()
    with database.unit_of_work(a.organization_id) as uow:
        assert {u.id for u in uow.users.list()} >= {first.id, second.id}


# --- users -----------------------------------------------------------------------------------

def test_user_add_get_update_and_copies(database: Any) -> None:
    a, _ = signup(database)
    user = new_user(a.organization_id, email="Grace@Example.com", role="auditor")
    with database.unit_of_work(a.organization_id) as uow:
        stored = uow.users.add(user)
        assert stored.created_at is not None and stored.password_changed_at is not None
        user.name = "changed after add"  # not stored: entities are copied in
        uow.commit()
    with database.unit_of_work(a.organization_id) as uow:
        loaded = uow.users.get(user.id)
        assert loaded.name == "Some One" and loaded.role == "auditor"
        assert uow.users.get_by_email("grace@EXAMPLE.com").id == user.id
        loaded.role = "supervisor"
        loaded.failed_login_attempts = 3
        loaded.locked_until = dt.datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
        loaded.mfa_enabled = True
        loaded.token_version = 2
        loaded.changed_by(a.admin_user_id, dt.datetime(2029, 6, 1, 8, 30, tzinfo=UTC))  # segregation of duties
        loaded.name = "not saved yet"
        assert uow.users.get(user.id).name == "Some One"
        uow.users.update(loaded)
        uow.commit()
    with database.unit_of_work(a.organization_id) as uow:
        again = uow.users.get(user.id)
        assert (again.role, again.failed_login_attempts, again.locked_until, again.mfa_enabled, again.token_version) == (
            "supervisor", 3, dt.datetime(2030, 1, 1, 12, 0, tzinfo=UTC), True, 2)
        assert (again.last_changed_by, again.last_changed_at) == (a.admin_user_id,
                                                                  dt.datetime(2029, 6, 1, 8, 30, tzinfo=UTC))
        missing = new_user(a.organization_id)
        with pytest.raises(EntityNotFound):
            uow.users.update(missing)


def test_user_email_is_unique_per_organization_ignoring_case(database: Any) -> None:
    a, _ = signup(database)
    b, _ = signup(database)
    with database.unit_of_work(a.organization_id) as uow:
        uow.users.add(new_user(a.organization_id, email="Sam@Example.com"))
        with pytest.raises(DuplicateEntity) as caught:
            uow.users.add(new_user(a.organization_id, email="sam@example.COM"))
        assert caught.value.field == "email"
        uow.users.add(new_user(a.organization_id, email="sam2@example.com"))  # still usable
        uow.commit()
    with database.unit_of_work(b.organization_id) as uow:
        uow.users.add(new_user(b.organization_id, email="sam@example.com"))  # other org: fine
        uow.commit()
    with database.unit_of_work(a.organization_id) as uow:
        assert uow.users.count() == 3


def test_user_email_is_compared_trimmed_and_case_insensitively_on_add_update_and_lookup(database: Any) -> None:
    # issue 17 item 4: on PostgreSQL the address is ciphertext and these comparisons go through the
    # blind index of the normalized address; the in-memory adapter compares the same normal form.
    a, code = signup(database)
    with database.unit_of_work(a.organization_id) as uow:
        kim = uow.users.add(new_user(a.organization_id, email="Kim.Ode@Example.com"))
        with pytest.raises(DuplicateEntity) as caught:
            uow.users.add(new_user(a.organization_id, email="  kim.ode@example.com "))
        assert (caught.value.entity, caught.value.field) == ("user", "email")
        other = uow.users.add(new_user(a.organization_id, email="other@example.com"))
        other.email = "KIM.ODE@example.com"
        with pytest.raises(DuplicateEntity):
            uow.users.update(other)
        assert uow.users.get_by_email(" KIM.ode@EXAMPLE.com").id == kim.id
        assert uow.users.get_by_email("kim.ode@example.org") is None
        uow.commit()
    with database.unit_of_work() as uow:
        found = uow.users.find_login_candidate(code, "kim.ode@example.COM ")
        assert found is not None and found.user.id == kim.id
        assert found.user.email == "Kim.Ode@Example.com"  # kept as written, found as normalized
        assert uow.users.get_by_email("kim.ode@example.com") is None  # no tenant bound: nothing
    with database.unit_of_work(a.organization_id) as uow:
        kim_again = uow.users.get(kim.id)
        kim_again.email = "kim@example.com"
        uow.users.update(kim_again)  # a changed address is found by its new form only
        uow.commit()
    with database.unit_of_work(a.organization_id) as uow:
        assert uow.users.get_by_email("KIM@example.com").id == kim.id
        assert uow.users.get_by_email("kim.ode@example.com") is None


def test_users_are_listed_by_name_or_email_in_either_direction(database: Any) -> None:
    a, _ = signup(database, email="zed@example.com")  # the admin is "Ada Admin"
    people = [("bea@example.com", "bob Brown"), ("Carl@example.com", "Ann Arbor"), ("abe@example.com", "Cid Crow")]
    with database.unit_of_work(a.organization_id) as uow:
        for email, name in people:
            user = new_user(a.organization_id, email=email)
            user.name = name
            uow.users.add(user)
        uow.commit()
    with database.unit_of_work(a.organization_id) as uow:
        by_name = [u.name for u in uow.users.list(order_by="name")]
        assert by_name == ["Ada Admin", "Ann Arbor", "bob Brown", "Cid Crow"]  # case-insensitive
        assert [u.name for u in uow.users.list(order_by="name", descending=True)] == by_name[::-1]
        assert [u.email for u in uow.users.list(order_by="email")] == [
            "abe@example.com", "bea@example.com", "Carl@example.com", "zed@example.com"]
        assert [u.email for u in uow.users.list(order_by="email", limit=2, offset=1)] == [
            "bea@example.com", "Carl@example.com"]
        assert [u.email for u in uow.users.list(order_by="email", descending=True, limit=1)] == ["zed@example.com"]
        created = uow.users.list()
        assert [u.id for u in uow.users.list(order_by="created_at", descending=True)] == [u.id for u in created[::-1]]
        assert [u.name for u in uow.users.list(order_by="name", is_active=True, limit=2)] == ["Ada Admin", "Ann Arbor"]
        with pytest.raises(ValueError):
            uow.users.list(order_by="password_hash")


def test_user_list_and_count_filter_on_active(database: Any) -> None:
    a, _ = signup(database)
    with database.unit_of_work(a.organization_id) as uow:
        inactive = new_user(a.organization_id)
        inactive.is_active = False
        uow.users.add(inactive)
        for _ in range(3):
            uow.users.add(new_user(a.organization_id))
        uow.commit()
    with database.unit_of_work(a.organization_id) as uow:
        assert uow.users.count() == 5
        assert uow.users.count(is_active=True) == 4
        assert [u.id for u in uow.users.list(is_active=False)] == [inactive.id]
        everyone = uow.users.list()
        assert [u.id for u in uow.users.list(limit=2, offset=1)] == [u.id for u in everyone[1:3]]


def test_login_candidate_is_found_by_code_and_email_before_the_tenant_is_known(database: Any) -> None:
    a, code = signup(database, email="Lin@Example.com")
    other, _ = signup(database)
    with database.unit_of_work() as uow:
        candidate = uow.users.find_login_candidate(code, "lin@example.com")
        assert candidate is not None and candidate.organization_is_active
        assert (candidate.user.id, candidate.user.organization_id, candidate.user.password_hash) == (
            a.admin_user_id, a.organization_id, "hash-1")
        assert candidate.user.password_changed_at.tzinfo is not None
        assert uow.users.find_login_candidate(code, "nobody@example.com") is None
        assert uow.users.find_login_candidate("no-such-code", "lin@example.com") is None
    with database.unit_of_work(other.organization_id) as uow:  # bound elsewhere: still found
        assert uow.users.find_login_candidate(code, "LIN@example.com").user.id == a.admin_user_id


def test_password_history_newest_first(database: Any) -> None:
    a, _ = signup(database)
    b, _ = signup(database)
    base = dt.datetime.now(UTC) + dt.timedelta(days=1)  # after the sign-up entry
    with database.unit_of_work(a.organization_id) as uow:
        for day in range(1, 7):
            uow.users.add_password_history(a.admin_user_id, f"hash-d{day}", base + dt.timedelta(days=day))
        with pytest.raises(EntityNotFound):
            uow.users.add_password_history(b.admin_user_id, "x", base)
        uow.commit()
    with database.unit_of_work(a.organization_id) as uow:
        assert uow.users.recent_password_hashes(a.admin_user_id, 5) == [f"hash-d{d}" for d in (6, 5, 4, 3, 2)]
    with database.unit_of_work(b.organization_id) as uow:
        assert uow.users.recent_password_hashes(a.admin_user_id, 5) == []


# --- sessions --------------------------------------------------------------------------------

def test_sessions_rotation_lookup_and_family_revocation(database: Any) -> None:
    a, _ = signup(database)
    now = dt.datetime.now(UTC)
    family = RefreshTokenFamily(id=uuid.uuid4(), organization_id=a.organization_id, user_id=a.admin_user_id,
                                absolute_expires_at=now + dt.timedelta(days=30))
    with database.unit_of_work(a.organization_id) as uow:
        uow.sessions.add_family(family)
        first = uow.sessions.add(new_session(a.organization_id, a.admin_user_id, family_id=family.id))
        second = uow.sessions.add(new_session(a.organization_id, a.admin_user_id, family_id=family.id))
        first.rotated_at, first.replaced_by = now, second.id
        uow.sessions.update(first)
        with pytest.raises(DuplicateEntity):
            duplicate = new_session(a.organization_id, a.admin_user_id)
            duplicate.token_hash = second.token_hash
            uow.sessions.add(duplicate)
        uow.commit()
    with database.unit_of_work() as uow:  # refresh: the tenant is not known yet
        found = uow.sessions.find_by_token_hash(first.token_hash)
        assert found is not None and (found.id, found.organization_id, found.replaced_by) == (
            first.id, a.organization_id, second.id)
        assert found.ip_address == "10.0.0.1" and found.expires_at.tzinfo is not None
        assert uow.sessions.find_by_token_hash("unknown") is None
        assert uow.sessions.get(first.id) is None  # normal reads still need the tenant
    with database.unit_of_work(a.organization_id) as uow:
        assert uow.sessions.revoke_family(family.id, now, "reuse_detected") == 2
        assert uow.sessions.revoke_family(family.id, now, "again") == 0
        with pytest.raises(EntityNotFound):
            uow.sessions.revoke_family(uuid.uuid4(), now, "x")
        uow.commit()
    with database.unit_of_work(a.organization_id) as uow:
        assert uow.sessions.list_for_user(a.admin_user_id) == []
        revoked = uow.sessions.list_for_user(a.admin_user_id, include_revoked=True)
        assert {s.id for s in revoked} == {first.id, second.id}
        assert all(s.revoked_reason == "reuse_detected" for s in revoked)
        assert uow.sessions.get_family(family.id).revoked_reason == "reuse_detected"
        assert uow.sessions.delete(first.id) is True
        assert uow.sessions.delete(first.id) is False
        uow.commit()


def test_expired_sessions_are_swept_across_organizations(database: Any) -> None:
    a, _ = signup(database)
    b, _ = signup(database)
    live, dead = {}, {}
    for org in (a, b):
        with database.unit_of_work(org.organization_id) as uow:
            live[org] = uow.sessions.add(new_session(org.organization_id, org.admin_user_id))
            dead[org] = uow.sessions.add(
                new_session(org.organization_id, org.admin_user_id, expires_in=-dt.timedelta(minutes=1)))
            uow.commit()
    with database.unit_of_work() as uow:
        assert uow.sessions.delete_expired() >= 2
        uow.commit()
    with database.unit_of_work() as uow:
        for org in (a, b):
            assert uow.sessions.find_by_token_hash(dead[org].token_hash) is None
            assert uow.sessions.find_by_token_hash(live[org].token_hash) is not None


# --- quotas ----------------------------------------------------------------------------------

def test_quota_update_and_serialised_read_modify_write(database: Any) -> None:
    a, _ = signup(database)
    with database.unit_of_work(a.organization_id) as uow:
        quota = uow.quotas.get(a.organization_id)
        quota.features = {"fuzzy_matching": True}
        quota.max_jobs_per_month = 10
        uow.quotas.update(quota)
        uow.commit()

    errors: list[BaseException] = []

    def take_one_job_slot(hold_seconds: float) -> None:
        try:
            with database.unit_of_work(a.organization_id) as uow:
                locked = uow.quotas.get_for_update(a.organization_id)
                time.sleep(hold_seconds)
                locked.max_jobs_per_month -= 1
                uow.quotas.update(locked)
                uow.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=take_one_job_slot, args=(0.2,)),
               threading.Thread(target=take_one_job_slot, args=(0.0,))]
    threads[0].start()
    time.sleep(0.05)
    threads[1].start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    with database.unit_of_work(a.organization_id) as uow:
        final = uow.quotas.get(a.organization_id)
        # Without the row lock one decrement would be lost (both read 10).
        assert final.max_jobs_per_month == 8
        assert final.features == {"fuzzy_matching": True}
        assert final.updated_at is not None


def test_entities_are_returned_as_independent_copies(database: Any) -> None:
    a, _ = signup(database)
    with database.unit_of_work(a.organization_id) as uow:
        one = uow.organizations.get(a.organization_id)
        one.settings["mutated"] = True
        two = uow.organizations.get(a.organization_id)
        assert "mutated" not in two.settings
        assert dataclasses.asdict(two) != dataclasses.asdict(one)
