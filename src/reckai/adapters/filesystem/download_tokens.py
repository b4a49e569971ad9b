"""Signed app download URLs for storage backends that cannot pre-sign (filesystem, memory).

A token is `base64url(payload) "." base64url(HMAC-SHA256(payload))`; the payload is compact JSON
`{"k": key, "e": expiry (unix seconds), "n": download name or null}`. The HMAC key is derived
from the data-encryption key with HKDF (its own `info`), so the encryption key itself is never
used for two purposes. Tokens are bearer credentials for one object for at most their lifetime,
like an S3 pre-signed URL; revocation before expiry is not supported (same as S3).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from reckai.application.ports.storage import DownloadGrant, DownloadTokenInvalid
from reckai.domain.ingestion.storage_keys import InvalidStorageKey, validate_key

DOWNLOAD_PATH = "/api/files/download/"
_MAX_TOKEN_CHARS = 4096


def derive_signing_key(data_encryption_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"reckai/download-url/v1").derive(
        data_encryption_key
    )


class DownloadTokenSigner:
    def __init__(self, signing_key: bytes, public_base_url: str) -> None:
        if len(signing_key) < 32:
            raise ValueError("download signing key must be at least 32 bytes")
        self._signing_key = signing_key
        self._base_url = public_base_url.rstrip("/")

    def url(self, key: str, *, expires_in: dt.timedelta, download_name: str | None,
            now: dt.datetime | None = None) -> str:
        return self._base_url + DOWNLOAD_PATH + self.token(
            key, expires_in=expires_in, download_name=download_name, now=now
        )

    def token(self, key: str, *, expires_in: dt.timedelta, download_name: str | None,
              now: dt.datetime | None = None) -> str:
        validate_key(key)
        if expires_in.total_seconds() < 1:
            raise ValueError("expires_in must be at least one second")
        issued = now or dt.datetime.now(dt.UTC)
        expires_at = int((issued + expires_in).timestamp())
        payload = json.dumps({"k": key, "e": expires_at, "n": download_name},
                             separators=(",", ":"), sort_keys=True).encode()
        return _b64(payload) + "." + _b64(self._mac(payload))

    def verify(self, token: str, *, now: dt.datetime | None = None) -> DownloadGrant:
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS or token.count(".") != 1:
            raise DownloadTokenInvalid("malformed")
        encoded_payload, encoded_mac = token.split(".")
        try:
            payload = _unb64(encoded_payload)
            mac = _unb64(encoded_mac)
        except (binascii.Error, ValueError):
            raise DownloadTokenInvalid("malformed") from None
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise DownloadTokenInvalid("bad signature")
        try:
            fields = json.loads(payload)
            key = validate_key(fields["k"])
            expires_at = dt.datetime.fromtimestamp(int(fields["e"]), dt.UTC)
            download_name = fields["n"]
        except (ValueError, KeyError, TypeError, InvalidStorageKey):
            # Only reachable with a valid signature over bad content: a signer bug, not an attacker.
            raise DownloadTokenInvalid("malformed") from None
        if (now or dt.datetime.now(dt.UTC)) >= expires_at:
            raise DownloadTokenInvalid("expired")
        return DownloadGrant(key=key, expires_at=expires_at, download_name=download_name)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._signing_key, payload, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
