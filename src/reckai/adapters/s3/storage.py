"""S3 FileStorage over the `minio` SDK: MinIO, AWS S3 or any S3-compatible server.

At rest: every write requests SSE-S3 (`x-amz-server-side-encryption: AES256`) and the adapter then
HEADs the stored object; an object the server reports as unencrypted is deleted and the write is
refused (StorageIntegrityError). SSE-KMS applied by a bucket default is accepted as encrypted.

Streaming: a body that fits in one part (`part_size`, 16 MiB by default) is sent in one PUT with
its SHA-256 in the object metadata (`x-amz-meta-sha256`). A larger body is streamed as a multipart
upload (one part in memory at a time; minio aborts the upload when anything fails, so no object
appears), then copied onto itself with the checksum added, since S3 metadata must be known before
the first part. Reads recompute the SHA-256 and fail the final read on a mismatch.

Incomplete multipart uploads whose abort failed (server gone mid-upload) are invisible but billed:
give the bucket an AbortIncompleteMultipartUpload lifecycle rule (docs/storage.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO, TypeVar, cast
from urllib.parse import quote

import urllib3
from minio import Minio
from minio.commonconfig import REPLACE, CopySource
from minio.error import MinioException, S3Error
from minio.sse import SseS3
from minio.sseconfig import Rule, SSEConfig

from reckai.application.ports.health import HealthReport
from reckai.application.ports.storage import (
    DOWNLOAD_URL_LIFETIME,
    ByteSource,
    MeteredChunks,
    StorageIntegrityError,
    StorageObjectMissing,
    StorageUnavailable,
    StoredObject,
)
from reckai.domain.ingestion.storage_keys import validate_key, validate_prefix

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

DEFAULT_PART_BYTES = 16 * 1024 * 1024
_MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
_SHA256_META = "x-amz-meta-sha256"
_SSE_HEADER = "x-amz-server-side-encryption"
_MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "ResourceNotFound"})
_ENCRYPTION_LABELS = {"AES256": "SSE-S3", "aws:kms": "SSE-KMS", "aws:kms:dsse": "SSE-KMS"}
T = TypeVar("T")


def make_client(endpoint: str, access_key: str, secret_key: str, *, secure: bool, region: str,
                connect_timeout: float = 5.0, read_timeout: float = 120.0, retries: int = 3) -> Minio:
    """A minio client with bounded timeouts and retries (the SDK default waits up to 5 minutes)."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        maxsize=10,
        retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    # The region is given so presigning never needs a network round trip.
    return Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                 region=region, http_client=http)


class S3FileStorage:
    # Requesting SSE is not a setting: only a test subclass turns it off, to prove that the check
    # on the stored object refuses what a server stored unencrypted.
    _request_sse = True

    def __init__(self, client: Minio, bucket: str, *, part_bytes: int = DEFAULT_PART_BYTES) -> None:
        if part_bytes < _MIN_PART_BYTES:
            raise ValueError(f"part_bytes must be at least {_MIN_PART_BYTES}")
        self._client = client
        self._bucket = bucket
        self._part_bytes = part_bytes

    def ensure_bucket(self) -> None:
        """Create the bucket with SSE-S3 as its default encryption if it does not exist."""
        def create() -> None:
            if not self._client.bucket_exists(self._bucket):
                self._client.make_bucket(self._bucket)
                self._client.set_bucket_encryption(self._bucket, SSEConfig(Rule.new_sse_s3_rule()))
        self._call(f"bucket {self._bucket!r}", create)

    # --- FileStorage ---

    def put(self, key: str, source: ByteSource, *, max_bytes: int | None = None,
            content_type: str = "application/octet-stream") -> StoredObject:
        validate_key(key)
        metered = MeteredChunks(key, source, max_bytes)
        reader = _ChunkReader(iter(metered))
        first_part = reader.read(self._part_bytes + 1)  # ObjectTooLarge / source errors propagate
        sse = SseS3() if self._request_sse else None
        try:
            if len(first_part) <= self._part_bytes:
                self._client.put_object(
                    self._bucket, key, io.BytesIO(first_part), len(first_part),
                    content_type=content_type, metadata={"sha256": metered.sha256}, sse=sse,
                )
            else:
                reader.push_back(first_part)
                self._client.put_object(
                    self._bucket, key, cast(BinaryIO, reader), -1, content_type=content_type, sse=sse,
                    part_size=self._part_bytes, num_parallel_uploads=1,
                )
                # S3 metadata is fixed before the first part; record the checksum by a server-side
                # copy onto itself.
                self._client.copy_object(
                    self._bucket, key, CopySource(self._bucket, key), sse=sse,
                    metadata={"sha256": metered.sha256, "Content-Type": content_type},
                    metadata_directive=REPLACE,
                )
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            if exc is reader.failure:
                raise  # the caller's stream failed: not a storage fault
            raise _translate(exc, f"cannot store {key!r}") from exc
        stored = self.head(key)
        problem = None
        if stored.encryption == "none":
            problem = "the server stored it without server-side encryption"
        elif stored.size_bytes != metered.size_bytes:
            problem = f"the server holds {stored.size_bytes} bytes, {metered.size_bytes} were sent"
        elif stored.sha256 != metered.sha256:
            problem = "the stored checksum differs from the one computed while streaming"
        if problem:
            self.delete(key)
            raise StorageIntegrityError(key, problem + "; the object was deleted")
        return stored

    def open(self, key: str) -> BinaryIO:
        validate_key(key)
        response = self._call(key, lambda: self._client.get_object(self._bucket, key))
        expected = response.headers.get(_SHA256_META)
        raw = _VerifyingReader(key, response, expected)
        return io.BufferedReader(raw, buffer_size=1024 * 1024)

    def head(self, key: str) -> StoredObject:
        validate_key(key)
        stat = self._call(key, lambda: self._client.stat_object(self._bucket, key))
        headers = stat.metadata or {}
        algorithm = headers.get(_SSE_HEADER)
        return StoredObject(
            key=key,
            size_bytes=int(stat.size or 0),
            sha256=headers.get(_SHA256_META),
            encryption=_ENCRYPTION_LABELS.get(algorithm, f"unknown ({algorithm})") if algorithm else "none",
            content_type=stat.content_type or "application/octet-stream",
        )

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except StorageObjectMissing:
            return False
        return True

    def delete(self, key: str) -> None:
        validate_key(key)
        self._call(key, lambda: self._client.remove_object(self._bucket, key))

    def move(self, source_key: str, target_key: str) -> StoredObject:
        validate_key(source_key)
        validate_key(target_key)
        if source_key == target_key:
            return self.head(source_key)
        sse = SseS3() if self._request_sse else None
        self._call(source_key, lambda: self._client.copy_object(
            self._bucket, target_key, CopySource(self._bucket, source_key), sse=sse))
        stored = self.head(target_key)
        if stored.encryption == "none":
            self.delete(target_key)
            raise StorageIntegrityError(target_key, "the server stored the copy without encryption")
        self.delete(source_key)
        return stored

    def list_keys(self, prefix: str) -> Iterator[str]:
        validate_prefix(prefix)
        objects = self._client.list_objects(self._bucket, prefix=prefix, recursive=True)
        while True:
            try:
                item = next(objects)
            except StopIteration:
                return
            except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise _translate(exc, f"cannot list {prefix!r}") from exc
            if item.object_name and not item.is_dir:
                yield item.object_name

    def download_url(self, key: str, *, expires_in: dt.timedelta = DOWNLOAD_URL_LIFETIME,
                     download_name: str | None = None) -> str:
        validate_key(key)
        response_headers: dict[str, str | list[str] | tuple[str]] | None = None
        if download_name:
            response_headers = {"response-content-disposition": content_disposition(download_name)}
        return self._call(key, lambda: self._client.presigned_get_object(
            self._bucket, key, expires=expires_in, response_headers=response_headers))

    def health(self) -> HealthReport:
        probe = f"health/probe-{uuid.uuid4()}"
        payload = b"reckai storage probe"
        try:
            stored = self.put(probe, [payload])
            with self.open(probe) as readback:
                if readback.read() != payload:
                    return HealthReport(ok=False, detail="S3 storage probe read back wrong data")
            self.delete(probe)
        except Exception as exc:  # noqa: BLE001 - health must report, never raise
            return HealthReport(ok=False, detail=f"S3 bucket {self._bucket!r} failed: {type(exc).__name__}: {exc}")
        return HealthReport(ok=True, detail=f"S3 bucket {self._bucket!r}, {stored.encryption} verified")

    # --- internals ---

    def _call(self, key: str, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                raise StorageObjectMissing(key) from exc
            raise _translate(exc, f"S3 refused the request for {key!r}") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _translate(exc, f"S3 request for {key!r} failed") from exc


def content_disposition(download_name: str) -> str:
    """RFC 6266: an ASCII fallback plus the exact UTF-8 name."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in download_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(download_name, safe='')}"


def _translate(exc: BaseException, context: str) -> StorageUnavailable:
    if isinstance(exc, S3Error):
        return StorageUnavailable(f"{context}: {exc.code}")
    return StorageUnavailable(f"{context}: {type(exc).__name__}")


class _ChunkReader(io.RawIOBase):
    """A file-like view of an iterator of chunks, for `put_object`'s `read(n)`; remembers whether
    a failure came from the source rather than from the S3 client."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()
        self._failure: BaseException | None = None

    def readable(self) -> bool:
        return True

    def push_back(self, data: bytes) -> None:
        self._buffer[:0] = data

    def read(self, size: int | None = -1) -> bytes:
        want = size if size is not None and size >= 0 else None
        while want is None or len(self._buffer) < want:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                break
            except BaseException as exc:
                self._failure = exc
                raise
            self._buffer += chunk
        count = len(self._buffer) if want is None else min(want, len(self._buffer))
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    @property
    def failure(self) -> BaseException | None:
        return self._failure


class _VerifyingReader(io.RawIOBase):
    def __init__(self, key: str, response: urllib3.BaseHTTPResponse, expected_sha256: str | None) -> None:
        self._key = key
        self._response = response
        self._expected = expected_sha256
        self._sha256 = hashlib.sha256()
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, target: WriteableBuffer) -> int:
        if self._done:
            return 0
        with memoryview(target) as view:  # released on the way out, so the caller may resize its buffer
            try:
                data = self._response.read(len(view))
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                reason = type(exc).__name__
                raise StorageUnavailable(f"reading {self._key!r} from S3 failed: {reason}") from exc
            if not data:
                self._done = True
                if self._expected is not None and self._sha256.hexdigest() != self._expected:
                    raise StorageIntegrityError(self._key, "content does not match its recorded SHA-256")
                return 0
            self._sha256.update(data)
            view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._response.release_conn()
        super().close()


if TYPE_CHECKING:
    from reckai.application.ports.storage import FileStorage

    _check: FileStorage = S3FileStorage(Minio("x"), "bucket")
