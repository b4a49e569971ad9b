"""In-memory FileStorage for unit tests and in-process apps. Runs the same contract tests as the
S3 and filesystem adapters; it does not encrypt (it reports `encryption="none"`)."""

from __future__ import annotations

import datetime as dt
import io
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from reckai.adapters.filesystem.download_tokens import DownloadTokenSigner
from reckai.application.ports.health import HealthReport
from reckai.application.ports.storage import (
    DOWNLOAD_URL_LIFETIME,
    ByteSource,
    DownloadGrant,
    FileStorage,
    MeteredChunks,
    SignedDownloadVerifier,
    StorageObjectMissing,
    StoredObject,
)
from reckai.domain.ingestion.storage_keys import validate_key, validate_prefix

_TEST_SIGNING_KEY = b"in-memory-storage-download-signing-key-0000"


@dataclass(frozen=True)
class _Entry:
    content: bytes
    meta: StoredObject


class InMemoryFileStorage:
    def __init__(self, *, signing_key: bytes = _TEST_SIGNING_KEY,
                 public_base_url: str = "http://127.0.0.1:8000") -> None:
        self._objects: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._signer = DownloadTokenSigner(signing_key, public_base_url)

    def put(self, key: str, source: ByteSource, *, max_bytes: int | None = None,
            content_type: str = "application/octet-stream") -> StoredObject:
        validate_key(key)
        metered = MeteredChunks(key, source, max_bytes)
        buffer = io.BytesIO()
        for chunk in metered:
            buffer.write(chunk)
        meta = StoredObject(key=key, size_bytes=metered.size_bytes, sha256=metered.sha256,
                            encryption="none", content_type=content_type)
        with self._lock:
            self._objects[key] = _Entry(buffer.getvalue(), meta)
        return meta

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(self._entry(key).content)

    def head(self, key: str) -> StoredObject:
        return self._entry(key).meta

    def exists(self, key: str) -> bool:
        validate_key(key)
        with self._lock:
            return key in self._objects

    def delete(self, key: str) -> None:
        validate_key(key)
        with self._lock:
            self._objects.pop(key, None)

    def move(self, source_key: str, target_key: str) -> StoredObject:
        validate_key(target_key)
        entry = self._entry(source_key)
        meta = StoredObject(key=target_key, size_bytes=entry.meta.size_bytes, sha256=entry.meta.sha256,
                            encryption=entry.meta.encryption, content_type=entry.meta.content_type)
        with self._lock:
            self._objects[target_key] = _Entry(entry.content, meta)
            if source_key != target_key:
                self._objects.pop(source_key, None)
        return meta

    def list_keys(self, prefix: str) -> Iterator[str]:
        validate_prefix(prefix)
        with self._lock:
            keys = sorted(k for k in self._objects if k.startswith(prefix))
        return iter(keys)

    def download_url(self, key: str, *, expires_in: dt.timedelta = DOWNLOAD_URL_LIFETIME,
                     download_name: str | None = None) -> str:
        return self._signer.url(key, expires_in=expires_in, download_name=download_name)

    def verify_download_token(self, token: str, *, now: dt.datetime | None = None) -> DownloadGrant:
        return self._signer.verify(token, now=now)

    def health(self) -> HealthReport:
        probe = f"health/probe-{uuid.uuid4()}"
        self.put(probe, [b"probe"])
        self.delete(probe)
        return HealthReport(ok=True, detail="in-memory storage")

    def _entry(self, key: str) -> _Entry:
        validate_key(key)
        with self._lock:
            entry = self._objects.get(key)
        if entry is None:
            raise StorageObjectMissing(key)
        return entry


if TYPE_CHECKING:
    _check: FileStorage = InMemoryFileStorage()
    _check_verifier: SignedDownloadVerifier = InMemoryFileStorage()
