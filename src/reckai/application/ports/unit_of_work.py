"""The unit of work: one transaction, one tenant, the repositories that work inside it.

Contract (PostgreSQL and in-memory adapters alike):

- Used as a context manager. Nothing is stored unless `commit()` is called; leaving the block
  without committing (normally or by an exception) rolls back.
- Bound at construction to one organization id, or to None for pre-tenant and system work. The
  binding holds for the whole unit of work, across commits: after `commit()` the next statement
  opens a new transaction bound to the same organization.
- Repositories are attributes (`uow.users`, `uow.sessions` ...). Features add their own through
  the adapter's registry (`register_repository`), so this protocol lists only the identity ones;
  a feature port extends it: `class JobsUnitOfWork(UnitOfWork, Protocol): jobs: JobRepository`.
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Protocol, Self

from reckai.application.ports.repositories import (
    MfaRepository,
    OrganizationRepository,
    QuotaRepository,
    SessionRepository,
    UserRepository,
    UserTokenRepository,
)


class UnitOfWork(Protocol):
    organization_id: uuid.UUID | None
    organizations: OrganizationRepository
    quotas: QuotaRepository
    users: UserRepository
    sessions: SessionRepository
    user_tokens: UserTokenRepository
    mfa: MfaRepository

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed and release the connection."""
        ...

    def commit(self) -> None:
        """Make every change so far durable. The unit of work stays usable (same tenant)."""
        ...

    def rollback(self) -> None:
        """Discard every change since the last commit."""
        ...


class Database(Protocol):
    """`container.components["database"]`: where units of work come from."""

    def unit_of_work(self, organization_id: uuid.UUID | None = None) -> UnitOfWork:
        """A new, not yet entered, unit of work bound to `organization_id` (None: no tenant)."""
        ...

    def close(self) -> None:
        """Release pools and connections; the object is unusable afterwards."""
        ...

