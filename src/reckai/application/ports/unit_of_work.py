"""The unit of work: one transaction, one tenant, the repositories that work inside it.

Contract (PostgreSQL and in-memory adapters alike):

- Used as a context manager. Nothing is stored unless `commit()` is called; leaving the block
  without committing (normally or by an exception) rolls back.
- Bound at construction to one organization id, or to None for pre-tenant and system work. The
  binding holds for the whole unit of work, across commits: after `commit()` the next statement
  opens a new transaction bound to the same organization.
- Repositories are read-only attributes (`uow.users`, `uow.sessions` ...). This protocol lists
  the identity ones, which every feature may read (the organization, its users); a feature's port
  extends it with its own (`FilesUnitOfWork`, `JobsUnitOfWork`, `WorkflowUnitOfWork`), and each
  use case asks for the narrowest one it needs. Each adapter's unit of work declares every
  repository as a typed attribute (adapters/postgres/unit_of_work.py, adapters/memory/...).
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Protocol, Self, TypeVar

from reckai.application.ports.repositories import (
    MfaRepository,
    OrganizationRepository,
    QuotaRepository,
    SessionRepository,
    UserRepository,
    UserTokenRepository,
)
from reckai.application.ports.subject_keys import SubjectKeyRepository


class UnitOfWork(Protocol):
    organization_id: uuid.UUID | None

    @property
    def organizations(self) -> OrganizationRepository: ...

    @property
    def quotas(self) -> QuotaRepository: ...

    @property
    def users(self) -> UserRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def user_tokens(self) -> UserTokenRepository: ...

    @property
    def mfa(self) -> MfaRepository: ...

    @property
    def subject_keys(self) -> SubjectKeyRepository:
        """Per-person keys of the personal values in audit rows (every audit write may need one)."""
        ...

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


U_co = TypeVar("U_co", bound=UnitOfWork, covariant=True)


class Database(Protocol[U_co]):
    """Where units of work come from (the container's `database`). Generic in the unit of work it
    gives: a feature's services hold a `Database[FilesUnitOfWork]`, say, and the adapters' databases
    fit every such type because their unit of work carries every repository."""

    def unit_of_work(self, organization_id: uuid.UUID | None = None) -> U_co:
        """A new, not yet entered, unit of work bound to `organization_id` (None: no tenant)."""
        ...

    def close(self) -> None:
        """Release pools and connections; the object is unusable afterwards."""
        ...

