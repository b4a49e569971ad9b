"""PostgreSQL unit of work: one connection, one transaction at a time, the tenant set in each.

The tenant goes in with `SELECT set_config('app.current_org_id', :org, true)` as the first
statement of every transaction: transaction-local, so it cannot outlive the transaction and leak
to the next user of the pooled connection (a session-level SET would).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, ClassVar, Self

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from reckai.application.ports.unit_of_work import UnitOfWork

_SET_TENANT = text("SELECT set_config('app.current_org_id', :org, true)")


class UnitOfWorkClosed(RuntimeError):
    """The unit of work was used outside its `with` block."""


class PostgresUnitOfWork:
    # name -> factory(uow) for repositories that hang off every unit of work. Identity registers
    # its own below; features call `PostgresUnitOfWork.register_repository("jobs", JobRepo)`.
    repository_factories: ClassVar[dict[str, Callable[[PostgresUnitOfWork], Any]]] = {}

    def __init__(self, engine: Engine, organization_id: uuid.UUID | None = None) -> None:
        self.engine = engine
        self.organization_id = organization_id
        self._connection: Connection | None = None
        self._repositories: dict[str, Any] = {}

    @classmethod
    def register_repository(cls, name: str, factory: Callable[[PostgresUnitOfWork], Any]) -> None:
        cls.repository_factories[name] = factory

    def __getattr__(self, name: str) -> Any:
        factories = type(self).repository_factories
        if name in factories:
            repositories = self.__dict__["_repositories"]
            if name not in repositories:
                repositories[name] = factories[name](self)
            return repositories[name]
        raise AttributeError(name)

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


class PostgresDatabase:
    """`container.components["database"]` in embedded and production mode."""

    def __init__(self, engine: Engine, on_close: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self._on_close = on_close

    def unit_of_work(self, organization_id: uuid.UUID | None = None) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.engine, organization_id)

    def close(self) -> None:
        self.engine.dispose()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()


def _register_identity_repositories() -> None:
    from reckai.adapters.postgres import identity

    PostgresUnitOfWork.register_repository("organizations", identity.PostgresOrganizationRepository)
    PostgresUnitOfWork.register_repository("quotas", identity.PostgresQuotaRepository)
    PostgresUnitOfWork.register_repository("users", identity.PostgresUserRepository)
    PostgresUnitOfWork.register_repository("sessions", identity.PostgresSessionRepository)
    from reckai.adapters.postgres import account_security

    PostgresUnitOfWork.register_repository("user_tokens", account_security.PostgresUserTokenRepository)
    PostgresUnitOfWork.register_repository("mfa", account_security.PostgresMfaRepository)


_register_identity_repositories()

_check: type[UnitOfWork] = PostgresUnitOfWork  # mypy: the adapter fits the port
