"""AES-256-GCM secret box for small secrets at rest (MFA secrets, API keys).

Format: `v1:<key id>:<base64url(nonce(12) || ciphertext || tag(16))>`, no padding. The associated
data is `v1:<key id>:<context>`, so neither the key id nor the context can be swapped without the
tag failing. Nonces are random (96 bits); with at most millions of seals per key this stays far
below GCM's 2^32 random-nonce bound. Rotation: make the new key active, keep old ones as retired
until `needs_reseal` finds nothing sealed with them.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reckai.application.ports.security import SecretBox, SecretUndecryptable

VERSION = "v1"
NONCE_BYTES = 12
KEY_BYTES = 32


def decode_key(encoded: str) -> bytes:
    """A settings key: base64 (standard or url-safe) of exactly 32 bytes."""
    text = encoded.strip()
    padded = text + "=" * (-len(text) % 4)
    for altchars in (None, b"-_"):
        try:
            raw = base64.b64decode(padded, altchars=altchars, validate=True)
            break
        except (binascii.Error, ValueError):
            continue
    else:
        raise ValueError("data encryption key must be base64")
    if len(raw) != KEY_BYTES:
        raise ValueError(f"data encryption key must be {KEY_BYTES} bytes (AES-256), got {len(raw)}")
    return raw


class AesGcmSecretBox:
    def __init__(self, keys: Mapping[str, bytes], active_kid: str) -> None:
        if active_kid not in keys:
            raise ValueError(f"active data encryption key id {active_kid!r} is not among the keys")
        for kid, key in keys.items():
            if not kid or ":" in kid:
                raise ValueError(f"data encryption key id {kid!r} must be non-empty and contain no ':'")
            if len(key) != KEY_BYTES:
                raise ValueError(f"data encryption key {kid!r} must be {KEY_BYTES} bytes")
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}
        self._active = active_kid

    def seal(self, plaintext: bytes, context: str = "") -> str:
        nonce = os.urandom(NONCE_BYTES)
        body = self._ciphers[self._active].encrypt(nonce, plaintext, _aad(self._active, context))
        encoded = base64.urlsafe_b64encode(nonce + body).rstrip(b"=").decode("ascii")
        return f"{VERSION}:{self._active}:{encoded}"

    def open(self, sealed: str, context: str = "") -> bytes:
        _, kid, encoded = _split(sealed)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise SecretUndecryptable(f"unknown key id {kid!r}")
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError) as exc:
            raise SecretUndecryptable("not base64") from exc
        if len(raw) < NONCE_BYTES + 16:
            raise SecretUndecryptable("too short")
        try:
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(kid, context))
        except InvalidTag as exc:
            raise SecretUndecryptable("authentication failed (tampered, or another context)") from exc

    def needs_reseal(self, sealed: str) -> bool:
        _, kid, _ = _split(sealed)
        return kid != self._active


def _aad(kid: str, context: str) -> bytes:
    return f"{VERSION}:{kid}:{context}".encode()


def _split(sealed: str) -> tuple[str, str, str]:
    parts = sealed.split(":")
    if len(parts) != 3 or parts[0] != VERSION or not parts[1] or not parts[2]:
        raise SecretUndecryptable("not a v1 sealed secret")
    return parts[0], parts[1], parts[2]


_check: type[SecretBox] = AesGcmSecretBox
