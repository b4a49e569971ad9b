"""Per-person data keys for personal data in audit rows (issue 17 item 5; docs/privacy.md, "Erasure").

Two ports, kept apart so storage and cryptography can change independently:

- `SubjectKeyRepository` (`uow.subject_keys`): the `subject_keys` rows of the unit of work's
  organization (row-level security): one wrapped data key per person. Destroying the row is what
  erasure means for the audit rows sealed under it.
- `SubjectCipher`: makes a data key (wrapped under the service's master key, so a database dump
  alone opens nothing), and encrypts or decrypts one value under a stored key.

Adapters: `adapters/postgres/subject_keys.py`, `adapters/memory/subject_keys.py`,
`adapters/security/subject_cipher.py` (AES-256-GCM through `cryptography`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SubjectKey:
    id: uuid.UUID  # the key id an envelope names (a new key after erasure has another id)
    organization_id: uuid.UUID
    subject_id: uuid.UUID  # the user whose personal values it seals
    wrapped_key: str  # the data key, sealed under the master key (never stored in the clear)
    created_at: dt.datetime


class PersonalDataUnreadable(Exception):
    """A sealed value does not open under its key (tampered, or another key): a fault, not erasure."""


class SubjectKeyRepository(Protocol):
    def get(self, subject_id: uuid.UUID) -> SubjectKey | None:
        """The subject's key in this organization; None when there is none (never made, or destroyed)."""
        ...

    def get_many(self, subject_ids: Iterable[uuid.UUID]) -> Mapping[uuid.UUID, SubjectKey]:
        """The keys that exist among `subject_ids`, by subject."""
        ...

    def add_if_absent(self, key: SubjectKey) -> SubjectKey:
        """Store `key` unless the subject has one already; returns the subject's key either way
        (two writers racing on one subject end with the same key). The key's organization must be
        the unit of work's (TenantIsolationViolation otherwise)."""
        ...

    def destroy(self, subject_id: uuid.UUID) -> bool:
        """Delete the subject's key; True when there was one. What was sealed under it cannot be
        read any more, by anyone."""
        ...


class SubjectCipher(Protocol):
    def new_wrapped_key(self, organization_id: uuid.UUID, subject_id: uuid.UUID, key_id: uuid.UUID) -> str:
        """A fresh random data key, sealed under the master key and bound to its organization,
        subject and id (a wrapped key copied to another row does not open)."""
        ...

    def encrypt(self, key: SubjectKey, plaintext: str) -> str:
        """The value encrypted under the key (authenticated, bound to the key's subject and id):
        ASCII text without ':' (base64url)."""
        ...

    def decrypt(self, key: SubjectKey, ciphertext: str) -> str:
        """The value back; raises PersonalDataUnreadable when it does not open under this key."""
        ...
