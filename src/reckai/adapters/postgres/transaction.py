"""The PostgreSQL transaction under every unit of work: one connection, one transaction at a time,
the tenant set in each.

The tenant goes in with `SELECT set_config('app.current_org_id', :org, true)` as the first
statement of every transaction: transaction-local, so it cannot outlive the transaction and leak
to the next user of the pooled connection (a session-level SET would).
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Self

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    from reckai.adapters.security.personal_data import OrganizationKey, PersonalDataKeys

_SET_TENANT = text("SELECT set_config('app.current_org_id', :org, true)")


class UnitOfWorkClosed(RuntimeError):
    """The unit of work was used outside its `with` block."""


class PostgresTransaction:
    """One connection, one transaction at a time, the tenant set in each. Repositories take this
    (not the unit of work that lists them), so repository modules never import the unit of work."""

    def __init__(self, engine: Engine, organization_id: uuid.UUID | None = None,
                 personal_data: PersonalDataKeys | None = None) -> None:
        from reckai.adapters.security.personal_data import development_keys

        self.engine = engine
        self.organization_id = organization_id
        # The keys that encrypt personal data (adapters/postgres/personal_data.py); settings built
        # in code (tests) use the development key, as their other secrets do.
        self.personal_data = personal_data or development_keys()
        # Organization keys this unit of work has read, by organization (one read per transaction).
        self.organization_keys: dict[uuid.UUID, OrganizationKey] = {}
        self._connection: Connection | None = None

    def __enter__(self) -> Self:
        if self._connection is not None:
            raise RuntimeError("a unit of work cannot be entered twice")
        self._connection = self.engine.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if connection.in_transaction():
                connection.rollback()
        finally:
            connection.close()

    @property
    def connection(self) -> Connection:
        """The connection inside a transaction whose tenant is set; for repository adapters only."""
        connection = self._connection
        if connection is None:
            raise UnitOfWorkClosed("use the unit of work inside its `with` block")
        if not connection.in_transaction():
            connection.begin()
            connection.execute(_SET_TENANT, {"org": str(self.organization_id) if self.organization_id else ""})
        return connection

    def commit(self) -> None:
        connection = self._connection
        if connection is None:
            raise UnitOfWorkClosed("use the unit of work inside its `with` block")
        if connection.in_transaction():
            connection.commit()

    def rollback(self) -> None:
        connection = self._connection
        if connection is not None and connection.in_transaction():
            connection.rollback()
