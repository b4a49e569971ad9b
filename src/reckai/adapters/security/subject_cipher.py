"""AES-256-GCM under per-person data keys (application/ports/subject_keys.py; docs/privacy.md, "Erasure").

A data key is 32 random bytes sealed by the service's secret box (the master key, settings
`DATA_ENCRYPTION_KEY`; in embedded mode the generated `var/secrets.json`), with the context
`subject-key:<organization>:<subject>:<key id>`, so a wrapped key moved to another row does not
open. A value is `base64url(nonce(12) || ciphertext || tag(16))` with the associated data
`subject-value:v1:<organization>:<subject>:<key id>`. Destroying the stored wrapped key leaves the
ciphertext with nothing that opens it.
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reckai.application.ports.security import SecretBox, SecretUndecryptable
from reckai.application.ports.subject_keys import PersonalDataUnreadable, SubjectCipher, SubjectKey

NONCE_BYTES = 12
KEY_BYTES = 32


def _key_context(organization_id: uuid.UUID, subject_id: uuid.UUID, key_id: uuid.UUID) -> str:
    return f"subject-key:{organization_id}:{subject_id}:{key_id}"


def _value_context(key: SubjectKey) -> bytes:
    return f"subject-value:v1:{key.organization_id}:{key.subject_id}:{key.id}".encode()


class AesGcmSubjectCipher:
    def __init__(self, master: SecretBox) -> None:
        self._master = master

    def new_wrapped_key(self, organization_id: uuid.UUID, subject_id: uuid.UUID, key_id: uuid.UUID) -> str:
        return self._master.seal(os.urandom(KEY_BYTES), _key_context(organization_id, subject_id, key_id))

    def _data_key(self, key: SubjectKey) -> AESGCM:
        try:
            raw = self._master.open(key.wrapped_key, _key_context(key.organization_id, key.subject_id, key.id))
        except SecretUndecryptable as exc:
            raise PersonalDataUnreadable(f"subject key {key.id}: {exc.reason}") from exc
        if len(raw) != KEY_BYTES:
            raise PersonalDataUnreadable(f"subject key {key.id} is not {KEY_BYTES} bytes")
        return AESGCM(raw)

    def encrypt(self, key: SubjectKey, plaintext: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        body = self._data_key(key).encrypt(nonce, plaintext.encode("utf-8"), _value_context(key))
        return base64.urlsafe_b64encode(nonce + body).rstrip(b"=").decode("ascii")

    def decrypt(self, key: SubjectKey, ciphertext: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(ciphertext + "=" * (-len(ciphertext) % 4))
        except (binascii.Error, ValueError) as exc:
            raise PersonalDataUnreadable("not base64url") from exc
        if len(raw) < NONCE_BYTES + 16:
            raise PersonalDataUnreadable("too short")
        try:
            plain = self._data_key(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _value_context(key))
        except InvalidTag as exc:
            raise PersonalDataUnreadable("authentication failed (tampered, or another key)") from exc
        return plain.decode("utf-8")


_check: type[SubjectCipher] = AesGcmSubjectCipher
