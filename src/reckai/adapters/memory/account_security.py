"""In-memory repositories for mailed single-use tokens and MFA state (same contract as
reckai.adapters.postgres.account_security; tests/contracts/ run over both)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from reckai.adapters.memory.store import MemoryTransaction
from reckai.application.ports.repositories import (
    DuplicateEntity,
    EntityNotFound,
    MfaRepository,
    TenantIsolationViolation,
    UserTokenRepository,
)
from reckai.domain.identity.entities import RecoveryCode, User, UserToken


@dataclass
class RecoveryCodeRow:
    id: uuid.UUID
    organization_id: uuid.UUID
    user_id: uuid.UUID
    code_hash: str
    created_at: dt.datetime
    used_at: dt.datetime | None = None


@dataclass
class TotpStepRow:
    organization_id: uuid.UUID
    user_id: uuid.UUID
    step: int | None


class MemoryUserTokenRepository:
    def __init__(self, uow: MemoryTransaction) -> None:
        self._uow = uow

    def add(self, token: UserToken) -> UserToken:
        if self._uow.organization_id is None or token.organization_id != self._uow.organization_id:
            raise TenantIsolationViolation("user_token", token.organization_id, self._uow.organization_id)
        if self._uow.get("users", token.user_id) is None:
            raise EntityNotFound("user", token.user_id)
        for _, other in self._uow.all_rows("user_tokens"):
            if other.token_hash == token.token_hash:
                raise DuplicateEntity("user_token", "token_hash")
        stored = dataclasses.replace(token, created_at=token.created_at or self._uow.now())
        self._uow.put("user_tokens", token.id, stored)
        return dataclasses.replace(stored)

    def find_by_hash(self, purpose: str, token_hash: str) -> UserToken | None:
        for _, row in self._uow.all_rows("user_tokens"):
            token: UserToken = row
            if token.purpose == purpose and token.token_hash == token_hash:
                return token
        return None

    def mark_used(self, token_id: uuid.UUID, at: dt.datetime) -> bool:
        token: UserToken | None = self._uow.get("user_tokens", token_id)
        if token is None or token.used_at is not None:
            return False
        self._uow.lock_row("user_tokens", token_id)
        token = self._uow.get("user_tokens", token_id)
        if token is None or token.used_at is not None:
            return False
        self._uow.put("user_tokens", token_id, dataclasses.replace(token, used_at=at))
        return True

    def invalidate_for_user(self, user_id: uuid.UUID, purpose: str, at: dt.datetime) -> int:
        count = 0
        for key, token in list(self._uow.rows("user_tokens")):
            if token.user_id == user_id and token.purpose == purpose and token.used_at is None:
                self._uow.put("user_tokens", key, dataclasses.replace(token, used_at=at))
                count += 1
        return count


class MemoryMfaRepository:
    def __init__(self, uow: MemoryTransaction) -> None:
        self._uow = uow

    def _user_org(self, user_id: uuid.UUID) -> uuid.UUID:
        user: User | None = self._uow.get("users", user_id)
        if user is None:
            raise EntityNotFound("user", user_id)
        return user.organization_id

    def last_totp_step(self, user_id: uuid.UUID) -> int | None:
        row: TotpStepRow | None = self._uow.get("mfa_totp_steps", user_id)
        return row.step if row else None

    def advance_totp_step(self, user_id: uuid.UUID, step: int) -> bool:
        organization_id = self._user_org(user_id)
        self._uow.lock_row("mfa_totp_steps", user_id)  # as UPDATE ... WHERE step < :step locks the row
        last = self.last_totp_step(user_id)
        if last is not None and step <= last:
            return False
        self._uow.put("mfa_totp_steps", user_id, TotpStepRow(organization_id, user_id, step))
        return True

    def reset_totp_step(self, user_id: uuid.UUID) -> None:
        organization_id = self._user_org(user_id)
        self._uow.put("mfa_totp_steps", user_id, TotpStepRow(organization_id, user_id, None))

    def replace_recovery_codes(self, user_id: uuid.UUID, code_hashes: Sequence[str], at: dt.datetime) -> None:
        organization_id = self._user_org(user_id)
        for key, row in list(self._uow.rows("mfa_recovery_codes")):
            if row.user_id == user_id:
                self._uow.remove("mfa_recovery_codes", key)
        for code_hash in code_hashes:
            row = RecoveryCodeRow(uuid.uuid4(), organization_id, user_id, code_hash, at)
            self._uow.put("mfa_recovery_codes", row.id, row)

    def unused_recovery_codes(self, user_id: uuid.UUID) -> Sequence[RecoveryCode]:
        rows = sorted(
            (r for _, r in self._uow.rows("mfa_recovery_codes") if r.user_id == user_id and r.used_at is None),
            key=lambda r: (r.created_at, str(r.id)),
        )
        return [RecoveryCode(id=r.id, code_hash=r.code_hash) for r in rows]

    def use_recovery_code(self, code_id: uuid.UUID, at: dt.datetime) -> bool:
        self._uow.lock_row("mfa_recovery_codes", code_id)
        row: RecoveryCodeRow | None = self._uow.get("mfa_recovery_codes", code_id)
        if row is None or row.used_at is not None:
            return False
        self._uow.put("mfa_recovery_codes", code_id, dataclasses.replace(row, used_at=at))
        return True


_checks: tuple[type[UserTokenRepository], type[MfaRepository]] = (MemoryUserTokenRepository, MemoryMfaRepository)
