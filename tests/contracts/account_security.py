"""Contract of the user-token and MFA repositories, run over both adapters
(tests/unit/test_identity_usecases_repositories.py and
tests/integration/test_identity_flow_repositories.py provide the `database` fixture)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from reckai.application.ports.repositories import DuplicateEntity, EntityNotFound, TenantIsolationViolation
from reckai.domain.identity.entities import UserToken
from tests.contracts.identity_repositories import signup

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def token(org: uuid.UUID, user: uuid.UUID, purpose: str = "invitation", token_hash: str | None = None) -> UserToken:
    return UserToken(id=uuid.uuid4(), organization_id=org, user_id=user, purpose=purpose,
                     token_hash=token_hash or uuid.uuid4().hex, expires_at=NOW + dt.timedelta(hours=1), created_at=NOW)


def test_user_token_found_pre_tenant_and_used_once(database: Any) -> None:
    created, _ = signup(database)
    org, admin = created.organization_id, created.admin_user_id
    stored = token(org, admin, "password_reset")
    with database.unit_of_work(org) as uow:
        uow.user_tokens.add(stored)
        uow.commit()
    with database.unit_of_work(None) as uow:
        found = uow.user_tokens.find_by_hash("password_reset", stored.token_hash)
        assert uow.user_tokens.find_by_hash("invitation", stored.token_hash) is None
    assert found is not None and found.id == stored.id and found.usable(NOW)
    with database.unit_of_work(org) as uow:
        assert uow.user_tokens.mark_used(stored.id, NOW) is True
        assert uow.user_tokens.mark_used(stored.id, NOW) is False
        uow.commit()
    with database.unit_of_work(None) as uow:
        assert uow.user_tokens.find_by_hash("password_reset", stored.token_hash).used_at == NOW


def test_user_tokens_are_isolated_and_unique(database: Any) -> None:
    a, _ = signup(database)
    b, _ = signup(database)
    first = token(a.organization_id, a.admin_user_id)
    with database.unit_of_work(a.organization_id) as uow:
        uow.user_tokens.add(first)
        uow.commit()
    with database.unit_of_work(b.organization_id) as uow:
        with pytest.raises(TenantIsolationViolation):
            uow.user_tokens.add(token(a.organization_id, a.admin_user_id))
        with pytest.raises(EntityNotFound):
            uow.user_tokens.add(token(b.organization_id, a.admin_user_id))  # a user of another tenant
        assert uow.user_tokens.mark_used(first.id, NOW) is False
    with database.unit_of_work(a.organization_id) as uow, pytest.raises(DuplicateEntity):
        uow.user_tokens.add(token(a.organization_id, a.admin_user_id, token_hash=first.token_hash))


def test_invalidate_marks_only_that_purpose(database: Any) -> None:
    created, _ = signup(database)
    org, admin = created.organization_id, created.admin_user_id
    with database.unit_of_work(org) as uow:
        for purpose in ("invitation", "invitation", "password_reset"):
            uow.user_tokens.add(token(org, admin, purpose))
        assert uow.user_tokens.invalidate_for_user(admin, "invitation", NOW) == 2
        assert uow.user_tokens.invalidate_for_user(admin, "invitation", NOW) == 0
        uow.commit()


def test_totp_step_only_moves_forward(database: Any) -> None:
    created, _ = signup(database)
    org, admin = created.organization_id, created.admin_user_id
    with database.unit_of_work(org) as uow:
        assert uow.mfa.last_totp_step(admin) is None
        assert uow.mfa.advance_totp_step(admin, 100) is True
        assert uow.mfa.advance_totp_step(admin, 100) is False
        assert uow.mfa.advance_totp_step(admin, 99) is False
        assert uow.mfa.advance_totp_step(admin, 101) is True
        uow.commit()
    with database.unit_of_work(org) as uow:
        assert uow.mfa.last_totp_step(admin) == 101
        uow.mfa.reset_totp_step(admin)
        assert uow.mfa.last_totp_step(admin) is None
    other, _ = signup(database)
    with database.unit_of_work(other.organization_id) as uow, pytest.raises(EntityNotFound):
        uow.mfa.advance_totp_step(admin, 500)


def test_recovery_codes_replace_and_work_once(database: Any) -> None:
    created, _ = signup(database)
    org, admin = created.organization_id, created.admin_user_id
    with database.unit_of_work(org) as uow:
        uow.mfa.replace_recovery_codes(admin, ["h1", "h2"], NOW)
        uow.mfa.replace_recovery_codes(admin, ["h3", "h4", "h5"], NOW)
        uow.commit()
    with database.unit_of_work(org) as uow:
        codes = uow.mfa.unused_recovery_codes(admin)
        assert sorted(c.code_hash for c in codes) == ["h3", "h4", "h5"]
        assert uow.mfa.use_recovery_code(codes[0].id, NOW) is True
        assert uow.mfa.use_recovery_code(codes[0].id, NOW) is False
        uow.commit()
    with database.unit_of_work(org) as uow:
        assert len(uow.mfa.unused_recovery_codes(admin)) == 2
    other, _ = signup(database)
    with database.unit_of_work(other.organization_id) as uow:
        assert uow.mfa.unused_recovery_codes(admin) == []
