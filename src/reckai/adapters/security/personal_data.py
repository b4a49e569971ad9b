"""Field-level encryption of personal data (issue 17 item 4; docs/privacy.md, "Personal data at rest").

Key hierarchy:

- **Master keys** come from the settings: each data encryption key (`DATA_ENCRYPTION_KEY`, in
  embedded mode the generated one in `var/secrets.json`, and the `DATA_ENCRYPTION_RETIRED_KEYS`)
  gives one master key, derived with HKDF-SHA256 (so the bytes that encrypt stored objects never
  wrap keys themselves), under the same key id. The active one wraps; retired ones only unwrap.
- **A data key per organization** (32 random bytes, id `dk-<8 hex>`), stored only wrapped
  (AES-256-GCM under a master key, the master key id beside it) in `organization_data_keys`. The
  associated data binds the organization, the data key id and the master key id: a wrapped key
  copied to another organization's row does not open.
- From the data key, two sub-keys (HKDF): one encrypts fields, one computes the **blind index**
  (HMAC-SHA256 of the normalized e-mail) that login and uniqueness compare.

A field is stored as `pii1:<data key id>:<base64url(nonce(12) || ciphertext || tag(16))>`, the
associated data naming the organization, the key id and the column, so a value copied to another
column or organization does not open. Rotating the master key re-wraps data keys
(`reckai keys rotate`); the data keys, and so every field and index, stay as they are.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import secrets
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from reckai.adapters.security.secret_box import AesGcmSecretBox, decode_key
from reckai.domain.identity.entities import normalized_email as normalize_email

if TYPE_CHECKING:
    from reckai.settings import SecuritySettings

FIELD_PREFIX = "pii1"
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
_MASTER_INFO = b"reckai/pii/master-key/v1"
_FIELD_INFO = b"reckai/pii/fields/v1"
_INDEX_INFO = b"reckai/pii/blind-index/v1"
_CACHE_LIMIT = 10_000


class PersonalDataError(Exception):
    """Personal data cannot be encrypted or decrypted; the message names no value."""


class UnknownMasterKey(PersonalDataError):
    """A data key is wrapped by a master key the settings do not hold."""

    def __init__(self, master_key_id: str) -> None:
        super().__init__(
            f"an organization's data key is wrapped by master key {master_key_id!r}, which the settings do not "
            "hold: keep it in DATA_ENCRYPTION_RETIRED_KEYS until `reckai keys rotate` has re-wrapped every data key")
        self.master_key_id = master_key_id


class FieldUndecryptable(PersonalDataError):
    """A stored field is malformed, tampered with, or belongs to another column or organization."""


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(key)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class WrappedDataKey:
    """An organization's data key as stored: wrapped by the master key `master_key_id`."""

    organization_id: uuid.UUID
    key_id: str
    wrapped_key: bytes
    master_key_id: str


class OrganizationKey:
    """One organization's unwrapped data key: encrypts and decrypts its fields, computes its blind
    index. Never stored, never logged."""

    def __init__(self, organization_id: uuid.UUID, key_id: str, data_key: bytes) -> None:
        if len(data_key) != KEY_BYTES:
            raise PersonalDataError("a data key must be 32 bytes")
        self.organization_id = organization_id
        self.key_id = key_id
        self._cipher = AESGCM(_derive(data_key, _FIELD_INFO))
        self._index_key = _derive(data_key, _INDEX_INFO)

    def _aad(self, key_id: str, column: str) -> bytes:
        return f"{FIELD_PREFIX}|{self.organization_id}|{key_id}|{column}".encode()

    def encrypt(self, column: str, value: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        body = self._cipher.encrypt(nonce, value.encode("utf-8"), self._aad(self.key_id, column))
        return f"{FIELD_PREFIX}:{self.key_id}:{_b64(nonce + body)}"

    def decrypt(self, column: str, stored: str) -> str:
        prefix, _, rest = stored.partition(":")
        key_id, _, encoded = rest.partition(":")
        if prefix != FIELD_PREFIX or not key_id or not encoded:
            raise FieldUndecryptable(f"{column}: not an encrypted field")
        if key_id != self.key_id:
            raise FieldUndecryptable(f"{column}: encrypted under data key {key_id!r}, not {self.key_id!r}")
        try:
            raw = _unb64(encoded)
        except (binascii.Error, ValueError) as exc:
            raise FieldUndecryptable(f"{column}: not base64") from exc
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise FieldUndecryptable(f"{column}: too short")
        try:
            plain = self._cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._aad(key_id, column))
        except InvalidTag as exc:
            raise FieldUndecryptable(f"{column}: authentication failed (tampered, or another column or "
                                     "organization)") from exc
        return plain.decode("utf-8")

    def blind_index(self, email: str) -> str:
        """HMAC-SHA256 of the normalized address under the organization's index key: equal for
        the same address in any case, unrelated across organizations, useless without the key."""
        mac = crypto_hmac.HMAC(self._index_key, hashes.SHA256())
        mac.update(normalize_email(email).encode("utf-8"))
        return _b64(mac.finalize())


# Approval types whose metadata names a person who is not a user yet: a `user_onboarding` request
# holds the address and name of the account to create (the invitation goes to that address once
# a checker approves), and its snapshot (application/approvals/snapshots.py) the same subject as
# requested. Those fields are stored encrypted like the users' own, each path bound as its column.
PERSONAL_METADATA: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "user_onboarding": (("email",), ("name",), ("snapshot", "subject", "email"), ("snapshot", "subject", "name")),
}


def _transform(key: OrganizationKey, approval_type: str, metadata: Mapping[str, object], seal: bool) -> dict[str, object]:
    result: dict[str, object] = dict(metadata)
    for path in PERSONAL_METADATA.get(approval_type, ()):
        parent: dict[str, object] = result
        for step in path[:-1]:  # copy each level on the way down: the caller's dictionaries stay as they were
            child = parent.get(step)
            if not isinstance(child, Mapping):
                break
            parent[step] = dict(child)
            parent = parent[step]  # type: ignore[assignment]
        else:
            name, column = path[-1], "approvals.metadata." + ".".join(path)
            value = parent.get(name)
            if isinstance(value, str) and seal:
                parent[name] = key.encrypt(column, value)
            elif isinstance(value, str) and value.startswith(f"{FIELD_PREFIX}:"):
                parent[name] = key.decrypt(column, value)
    return result


def seal_metadata(key: OrganizationKey, approval_type: str, metadata: Mapping[str, object]) -> dict[str, object]:
    """The metadata as stored: the personal fields of this approval type encrypted."""
    return _transform(key, approval_type, metadata, seal=True)


def open_metadata(key: OrganizationKey, approval_type: str, metadata: Mapping[str, object]) -> dict[str, object]:
    """The metadata as the application sees it: the personal fields decrypted."""
    return _transform(key, approval_type, metadata, seal=False)


class MasterKeys:
    """The master keys from the settings: the active one wraps, every one unwraps."""

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise ValueError(f"active master key id {active_key_id!r} is not among the keys")
        for key_id, key in keys.items():
            if not key_id or len(key) != KEY_BYTES:
                raise ValueError(f"master key {key_id!r} must have an id and 32 bytes")
        self._ciphers = {key_id: AESGCM(_derive(key, _MASTER_INFO)) for key_id, key in keys.items()}
        self.active_key_id = active_key_id
        # The secret box over the same data encryption keys, as bootstrap builds it: what seals the
        # address of a password-reset outbox row (the migration seals rows queued before it).
        self.secret_box = AesGcmSecretBox(dict(keys), active_key_id)

    @classmethod
    def from_settings(cls, active: tuple[str, str], retired: tuple[tuple[str, str], ...] = ()) -> MasterKeys:
        """(key id, base64 key) of the active data encryption key, and the retired ones."""
        keys = {key_id: decode_key(secret) for key_id, secret in retired}
        keys[active[0]] = decode_key(active[1])
        return cls(keys, active[0])

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._ciphers)

    @staticmethod
    def _aad(organization_id: uuid.UUID, key_id: str, master_key_id: str) -> bytes:
        return f"reckai-pii-data-key|v1|{organization_id}|{key_id}|{master_key_id}".encode()

    def new_data_key(self, organization_id: uuid.UUID) -> tuple[WrappedDataKey, OrganizationKey]:
        data_key = secrets.token_bytes(KEY_BYTES)
        key_id = f"dk-{secrets.token_hex(4)}"
        return self.wrap(organization_id, key_id, data_key), OrganizationKey(organization_id, key_id, data_key)

    def wrap(self, organization_id: uuid.UUID, key_id: str, data_key: bytes) -> WrappedDataKey:
        nonce = os.urandom(NONCE_BYTES)
        master = self.active_key_id
        body = self._ciphers[master].encrypt(nonce, data_key, self._aad(organization_id, key_id, master))
        return WrappedDataKey(organization_id, key_id, nonce + body, master)

    def unwrap_raw(self, wrapped: WrappedDataKey) -> bytes:
        cipher = self._ciphers.get(wrapped.master_key_id)
        if cipher is None:
            raise UnknownMasterKey(wrapped.master_key_id)
        raw = bytes(wrapped.wrapped_key)
        try:
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                  self._aad(wrapped.organization_id, wrapped.key_id, wrapped.master_key_id))
        except InvalidTag as exc:
            raise PersonalDataError(f"the data key of organization {wrapped.organization_id} does not unwrap "
                                    "(tampered, or another organization's)") from exc

    def rewrap(self, wrapped: WrappedDataKey) -> WrappedDataKey:
        """The same data key wrapped by the active master key."""
        return self.wrap(wrapped.organization_id, wrapped.key_id, self.unwrap_raw(wrapped))


class PersonalDataKeys:
    """The master keys and a process-wide cache of unwrapped organization keys (keyed by the
    wrapped bytes, so a re-wrapped key is simply a new entry). Thread-safe; shared by every unit
    of work of a database."""

    def __init__(self, master: MasterKeys) -> None:
        self.master = master
        self._cache: dict[tuple[uuid.UUID, str, str, bytes], OrganizationKey] = {}
        self._lock = threading.Lock()

    def organization_key(self, wrapped: WrappedDataKey) -> OrganizationKey:
        cache_key = (wrapped.organization_id, wrapped.key_id, wrapped.master_key_id, bytes(wrapped.wrapped_key))
        with self._lock:
            found = self._cache.get(cache_key)
        if found is not None:
            return found
        key = OrganizationKey(wrapped.organization_id, wrapped.key_id, self.master.unwrap_raw(wrapped))
        with self._lock:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[cache_key] = key
        return key


def master_keys(security: SecuritySettings) -> MasterKeys:
    """The master keys of these settings: the data encryption key and the retired ones."""
    return MasterKeys.from_settings((security.data_encryption_key_id, security.data_encryption_key),
                                    security.data_encryption_retired_keys)


@functools.cache
def development_keys() -> PersonalDataKeys:
    """The keys of settings built in code (`Settings()`: tests), from the public development key."""
    from reckai.settings import SecuritySettings

    return PersonalDataKeys(master_keys(SecuritySettings()))
