"""PostgreSQL repositories for mailed single-use tokens (`user_tokens`) and MFA state
(`mfa_recovery_codes`, `users.mfa_last_used_step` from migration 0004_identity).

`users.mfa_last_used_step` is not in `tables.users` (that module mirrors 0001_schema); it is
reached with its own statements here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, insert, select, text, update
from sqlalchemy.engine import Row

from reckai.adapters.postgres import tables as t
from reckai.adapters.postgres.identity import _to_entity, _values
from reckai.adapters.postgres.repository import PostgresRepository, translate_errors
from reckai.application.ports.repositories import (
    EntityNotFound,
    MfaRepository,
    TenantIsolationViolation,
    UserTokenRepository,
)
from reckai.domain.identity.entities import RecoveryCode, UserToken

if TYPE_CHECKING:
    from reckai.adapters.postgres.transaction import PostgresTransaction

class PostgresUserTokenRepository(PostgresRepository):
    entity_name = "user_token"

    def add(self, token: UserToken) -> UserToken:
        if self._uow.organization_id is None or token.organization_id != self._uow.organization_id:
            raise TenantIsolationViolation("user_token", token.organization_id, self._uow.organization_id)
        if self._conn.execute(select(t.users.c.id).where(t.users.c.id == token.user_id)).first() is None:
            raise EntityNotFound("user", token.user_id)
        with self._write():
            row = self._conn.execute(
                insert(t.user_tokens).values(**_values(token, t.user_tokens)).returning(t.user_tokens)
            ).one()
        return _to_entity(UserToken, row)

    def find_by_hash(self, purpose: str, token_hash: str) -> UserToken | None:
        with translate_errors(self.entity_name):
            row = self._conn.execute(
                text("SELECT * FROM auth_find_user_token(:purpose, :token_hash)").columns(
                    **{c.name: c.type for c in t.user_tokens.columns}
                ),
                {"purpose": purpose, "token_hash": token_hash},
            ).first()
        return _to_entity(UserToken, row) if row else None

    def mark_used(self, token_id: uuid.UUID, at: dt.datetime) -> bool:
        with self._write():
            result = self._conn.execute(
                update(t.user_tokens)
                .where(t.user_tokens.c.id == token_id, t.user_tokens.c.used_at.is_(None))
                .values(used_at=at)
            )
        return bool(result.rowcount)

    def invalidate_for_user(self, user_id: uuid.UUID, purpose: str, at: dt.datetime) -> int:
        table = t.user_tokens
        with self._write():
            result = self._conn.execute(
                update(table)
                .where(table.c.user_id == user_id, table.c.purpose == purpose, table.c.used_at.is_(None))
                .values(used_at=at)
            )
        return int(result.rowcount)


class PostgresMfaRepository(PostgresRepository):
    entity_name = "mfa"

    def _require_user(self, user_id: uuid.UUID) -> Row[Any]:
        row = self._conn.execute(
            text("SELECT organization_id, mfa_last_used_step FROM users WHERE id = :id"), {"id": user_id}
        ).first()
        if row is None:
            raise EntityNotFound("user", user_id)
        return row

    def last_totp_step(self, user_id: uuid.UUID) -> int | None:
        row = self._conn.execute(text("SELECT mfa_last_used_step FROM users WHERE id = :id"), {"id": user_id}).first()
        return None if row is None or row[0] is None else int(row[0])

    def advance_totp_step(self, user_id: uuid.UUID, step: int) -> bool:
        self._require_user(user_id)
        with self._write():
            result = self._conn.execute(
                text(
                    "UPDATE users SET mfa_last_used_step = :step WHERE id = :id "
                    "AND (mfa_last_used_step IS NULL OR mfa_last_used_step < :step)"
                ),
                {"id": user_id, "step": step},
            )
        return bool(result.rowcount)

    def reset_totp_step(self, user_id: uuid.UUID) -> None:
        self._require_user(user_id)
        with self._write():
            self._conn.execute(text("UPDATE users SET mfa_last_used_step = NULL WHERE id = :id"), {"id": user_id})

    def replace_recovery_codes(self, user_id: uuid.UUID, code_hashes: Sequence[str], at: dt.datetime) -> None:
        organization_id = self._require_user(user_id).organization_id
        table = t.mfa_recovery_codes
        with self._write():
            self._conn.execute(delete(table).where(table.c.user_id == user_id))
            if code_hashes:
                self._conn.execute(
                    insert(table),
                    [
                        {"organization_id": organization_id, "user_id": user_id, "code_hash": h, "created_at": at}
                        for h in code_hashes
                    ],
                )

    def unused_recovery_codes(self, user_id: uuid.UUID) -> Sequence[RecoveryCode]:
        table = t.mfa_recovery_codes
        rows = self._conn.execute(
            select(table.c.id, table.c.code_hash)
            .where(and_(table.c.user_id == user_id, table.c.used_at.is_(None)))
            .order_by(table.c.created_at, table.c.id)
        )
        return [RecoveryCode(id=row.id, code_hash=row.code_hash) for row in rows]

    def use_recovery_code(self, code_id: uuid.UUID, at: dt.datetime) -> bool:
        table = t.mfa_recovery_codes
        with self._write():
            result = self._conn.execute(
                update(table).where(table.c.id == code_id, table.c.used_at.is_(None)).values(used_at=at)
            )
        return bool(result.rowcount)


def _factory_check(uow: PostgresTransaction) -> None:  # pragma: no cover - typing only
    _: UserTokenRepository = PostgresUserTokenRepository(uow)
    __: MfaRepository = PostgresMfaRepository(uow)
