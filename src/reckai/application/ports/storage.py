"""File storage port: where uploads, normalized files, results and reports live.

Keys are built by `reckai.domain.ingestion.storage_keys` (spec §6.2) and every adapter re-checks
them with `validate_key`, so a key can never escape the storage root or bucket.

Adapters: `adapters.s3` (MinIO / AWS S3 / any S3 server, SSE-S3 verified on every object),
`adapters.filesystem` (embedded mode, AES-256-GCM at rest), `adapters.memory` (tests). The same
contract tests run over all three.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from reckai.application.ports.health import HealthReport

# What `put` accepts: a binary file object (anything with `read(n)`) or an iterable of bytes
# chunks (a request body stream, a generator). Neither is ever read whole into memory.
ByteSource = BinaryIO | Iterable[bytes]

DOWNLOAD_URL_LIFETIME = dt.timedelta(hours=1)  # spec §6.3
STREAM_CHUNK_BYTES = 1024 * 1024


class StorageError(Exception):
    """Base of every storage port error."""


class StorageUnavailable(StorageError):
    """The backend cannot be reached or refused the request for a reason other than the object."""


class StorageObjectMissing(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no stored object at {key!r}")
        self.key = key


class ObjectTooLarge(StorageError):
    """The stream went past `max_bytes`; nothing was stored (any previous object is untouched)."""

    def __init__(self, key: str, max_bytes: int) -> None:
        super().__init__(f"object {key!r} is larger than the limit of {max_bytes} bytes")
        self.key = key
        self.max_bytes = max_bytes


class StorageIntegrityError(StorageError):
    """The stored object is not what was written or not protected as required: ciphertext that
    fails authentication, a truncated file, an object the server stored unencrypted, an unknown
    encryption key id. Never retried silently: the caller must treat the object as unusable."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"stored object {key!r} failed an integrity check: {reason}")
        self.key = key
        self.reason = reason


class DownloadTokenInvalid(StorageError):
    """A signed app download URL is malformed, forged, or expired (`reason` says which)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"download link is not valid: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class StoredObject:
    key: str
    size_bytes: int
    sha256: str | None  # lowercase hex of the plaintext; None only for objects written outside the port
    # How the object is protected at rest, as verified by the adapter: "SSE-S3", "SSE-KMS",
    # "AES-256-GCM" (filesystem) or "none" (memory adapter only).
    encryption: str
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class DownloadGrant:
    """What a verified signed app download URL entitles its holder to."""

    key: str
    expires_at: dt.datetime
    download_name: str | None


class FileStorage(Protocol):
    def put(
        self,
        key: str,
        source: ByteSource,
        *,
        max_bytes: int | None = None,
        content_type: str = "application/octet-stream",
    ) -> StoredObject:
        """Stream `source` into the object `key`, replacing any previous object there.

        Size and SHA-256 are computed while streaming. When more than `max_bytes` arrive, raises
        ObjectTooLarge as soon as the limit is crossed; whatever fails (the limit, the backend, or
        the source itself raising, e.g. a client disconnect) nothing is left at `key` except the
        previous object, if there was one, unchanged. Exceptions raised by `source` propagate as
        they are. Raises StorageUnavailable or StorageIntegrityError (the stored object is not
        protected at rest as required; it has been removed).
        """
        ...

    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the object's plaintext; close it (use `with`).

        Raises StorageObjectMissing or StorageUnavailable at once. Reading may raise
        StorageIntegrityError part-way (tampered or truncated data is detected as it is read,
        at the latest before the final `read()` returns b""), so consumers must not commit work
        derived from an object before they have read it to the end.
        """
        ...

    def head(self, key: str) -> StoredObject:
        """Size, checksum and at-rest encryption of `key`, without reading the content.

        Raises StorageObjectMissing, StorageUnavailable, StorageIntegrityError.
        """
        ...

    def exists(self, key: str) -> bool:
        """True when an object is stored at `key`. Raises StorageUnavailable."""
        ...

    def delete(self, key: str) -> None:
        """Remove `key`. Deleting a missing object is not an error (cleanup jobs retry)."""
        ...

    def move(self, source_key: str, target_key: str) -> StoredObject:
        """Copy `source_key` to `target_key` (kept encrypted all the way), then delete the source.

        Used to take an infected upload out of the organization's area into quarantine. Raises
        StorageObjectMissing when the source is absent.
        """
        ...

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every key starting with `prefix` (lexicographic order), e.g. an organization's or a
        job's area for cleanup. `prefix` must be empty or a valid key, optionally ending in `/`."""
        ...

    def download_url(
        self,
        key: str,
        *,
        expires_in: dt.timedelta = DOWNLOAD_URL_LIFETIME,
        download_name: str | None = None,
    ) -> str:
        """A URL a browser can GET the object from until `expires_in` has passed.

        S3: a pre-signed URL. Filesystem and memory: a signed app URL
        `{public_base_url}/api/files/download/{token}` that `verify_download_token` accepts.
        Does not check that the object exists (the caller has already loaded its row).
        """
        ...

    def health(self) -> HealthReport:
        """Write, read back and delete a tiny probe object (S3: also verifies SSE on it).

        Never raises."""
        ...


class SignedDownloadVerifier(Protocol):
    """Implemented by the adapters whose download URLs point at the app (filesystem, memory)."""

    def verify_download_token(self, token: str, *, now: dt.datetime | None = None) -> DownloadGrant:
        """Check signature and expiry of a token from `download_url`. Raises DownloadTokenInvalid."""
        ...


def iter_chunks(source: ByteSource, chunk_bytes: int = STREAM_CHUNK_BYTES) -> Iterator[bytes]:
    """Normalize a ByteSource into non-empty bytes chunks without ever holding it whole."""
    read = getattr(source, "read", None)
    if callable(read):
        while True:
            chunk = read(chunk_bytes)
            if not chunk:
                return
            yield bytes(chunk)
    else:
        for chunk in source:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(f"a byte source yielded {type(chunk).__name__}, not bytes")
            if chunk:
                yield bytes(chunk)


class MeteredChunks:
    """Counts and hashes chunks as they pass, raising ObjectTooLarge the moment a limit is crossed.

    Shared by the adapters so the size limit and the checksum mean exactly the same everywhere.
    """

    def __init__(self, key: str, source: ByteSource, max_bytes: int | None) -> None:
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self._key = key
        self._chunks = iter_chunks(source)
        self._max_bytes = max_bytes
        self._sha256 = hashlib.sha256()
        self.size_bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.size_bytes += len(chunk)
            if self._max_bytes is not None and self.size_bytes > self._max_bytes:
                raise ObjectTooLarge(self._key, self._max_bytes)
            self._sha256.update(chunk)
            yield chunk

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()
