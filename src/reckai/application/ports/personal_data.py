"""Organization data keys (issue 17 item 4; docs/privacy.md, "Personal data at rest").

Personal data (users' e-mail addresses and names) is encrypted by the storage adapter under a data
key per organization, itself stored wrapped by a master key from the settings. Use cases never see
a key; this port is what `reckai keys rotate` needs to re-wrap every data key under the active
master key while the service runs. The in-memory adapter stores nothing encrypted and has no such
keys: only the PostgreSQL unit of work implements it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from reckai.application.ports.repositories import RepositoryError
from reckai.application.ports.unit_of_work import UnitOfWork


class DataKeyUnavailable(RepositoryError):
    """An organization's data key cannot be unwrapped: the master key that wraps it is not in the
    settings (a rotation finished too early, a key dropped), or the stored key was altered. The
    message names the master key id, never a key or a value."""


class PersonalDataUnreadable(RepositoryError):
    """A stored encrypted value does not open under its organization's key: altered, or copied from
    another row, column or organization. The message names the column, never a value."""


class DataKeyRepository(Protocol):
    def stale_organizations(self, limit: int) -> Sequence[uuid.UUID]:
        """*System*: up to `limit` organizations (ids only, in id order) whose data key is wrapped by
        a master key other than the active one."""
        ...

    def rewrap(self) -> bool:
        """Wrap the bound organization's data key again under the active master key, the row locked
        until the unit of work ends (two rotations do not both write it). The data key itself is
        unchanged, so every stored ciphertext and blind index stays valid and readers holding
        either wrapping get the same key. False when it is already wrapped by the active key (or
        the organization has none)."""
        ...

    def shred(self) -> int:
        """Delete the bound organization's data key (offboarding): every value encrypted under it,
        and every blind index made with it, can no longer be read or matched, by anyone. The
        number of keys deleted (0 or 1)."""
        ...


class KeyRotationUnitOfWork(UnitOfWork, Protocol):
    @property
    def data_keys(self) -> DataKeyRepository: ...
