"""Local-filesystem FileStorage for embedded mode: AES-256-GCM at rest, streamed in frames.

On-disk format of one object (all integers big-endian):

    prefix   "RKAIENC" | version (1 byte) | key-id length (1) | key id (ASCII) | salt (16)
             | plaintext chunk size (4)
    meta     AES-GCM(size (8) | sha256 (32)), 56 bytes, nonce ff*12, AAD prefix | "meta" | object key
    frames   repeated: ciphertext length (4) | AES-GCM(chunk) with
             nonce = chunk index (8) | final flag (1) | 000000, AAD = prefix | object key | index | final

Each object gets its own key, HKDF-SHA256(master key, salt, "reckai/fs-object/v1"), so nonces are
simple counters and never repeat under one key. The index and the final flag are bound into every
frame, so reordered, dropped, duplicated or truncated frames fail authentication or the "final
frame seen" check; the object key in the AAD stops a file from being swapped under another key
(another organization's path). The key id in the prefix selects the master key from the key
ring, so keys can rotate: new objects use the current key, old ones stay readable while their key
is in the ring.

Writes go to `<root>/.tmp/` and are renamed into place (same filesystem, atomic), so a reader or a
crash never sees a partial object; an error removes the temporary file.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import os
import struct
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from reckai.adapters.filesystem.download_tokens import DownloadTokenSigner, derive_signing_key
from reckai.application.ports.health import HealthReport
from reckai.application.ports.storage import (
    DOWNLOAD_URL_LIFETIME,
    ByteSource,
    DownloadGrant,
    MeteredChunks,
    StorageIntegrityError,
    StorageObjectMissing,
    StorageUnavailable,
    StoredObject,
)
from reckai.domain.ingestion.storage_keys import validate_key, validate_prefix

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MAGIC = b"RKAIENC"
FORMAT_VERSION = 1
ENCRYPTION = "AES-256-GCM"
DEFAULT_CHUNK_BYTES = 1024 * 1024
_MAX_CHUNK_BYTES = 16 * 1024 * 1024
_SALT_BYTES = 16
_TAG_BYTES = 16
_META_PLAIN = struct.Struct(">Q32s")
_META_BYTES = _META_PLAIN.size + _TAG_BYTES
_META_NONCE = b"\xff" * 12  # chunk nonces end in 000000, so this one is never reused
_FRAME_LENGTH = struct.Struct(">I")
_TMP_DIR = ".tmp"


def decode_data_key(encoded: str) -> bytes:
    """The settings' DATA_ENCRYPTION_KEY: standard base64 of exactly 32 bytes."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("data encryption key must be base64") from None
    if len(raw) != 32:
        raise ValueError(f"data encryption key must decode to 32 bytes, not {len(raw)}")
    return raw


class FileSystemStorage:
    def __init__(
        self,
        root: Path,
        *,
        keys: Mapping[str, bytes],
        current_key_id: str,
        public_base_url: str,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> None:
        if current_key_id not in keys:
            raise ValueError(f"current key id {current_key_id!r} is not in the key ring")
        for key_id, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"key {key_id!r} must be 32 bytes for AES-256")
            if not key_id or len(key_id) > 64 or not key_id.isascii():
                raise ValueError(f"key id {key_id!r} must be 1-64 ASCII characters")
        if not 1 <= chunk_bytes <= _MAX_CHUNK_BYTES:
            raise ValueError("chunk_bytes out of range")
        self._root = Path(root)
        self._keys = dict(keys)
        self._current_key_id = current_key_id
        self._chunk_bytes = chunk_bytes
        self._signer = DownloadTokenSigner(derive_signing_key(keys[current_key_id]), public_base_url)

    # --- FileStorage ---

    def put(self, key: str, source: ByteSource, *, max_bytes: int | None = None,
            content_type: str = "application/octet-stream") -> StoredObject:
        target = self._path(key)
        metered = MeteredChunks(key, source, max_bytes)
        tmp_dir = self._root / _TMP_DIR
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            handle = open(tmp_dir / f"{uuid.uuid4().hex}.part", "xb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise StorageUnavailable(f"cannot write under {self._root}: {exc.strerror}") from exc
        tmp_path = Path(handle.name)
        try:
            with handle:
                prefix, aead = self._new_object_header()
                _write(handle, prefix + bytes(_META_BYTES))
                writer = _FrameWriter(handle, aead, prefix + key.encode("ascii"), self._chunk_bytes)
                for chunk in metered:  # source errors and ObjectTooLarge propagate as they are
                    writer.write(chunk)
                writer.finish()
                meta_plain = _META_PLAIN.pack(metered.size_bytes, bytes.fromhex(metered.sha256))
                meta = aead.encrypt(_META_NONCE, meta_plain, prefix + b"meta" + key.encode("ascii"))
                try:
                    handle.seek(len(prefix))
                    handle.write(meta)
                    handle.flush()
                    os.fsync(handle.fileno())
                except OSError as exc:
                    raise StorageUnavailable(f"cannot write {key!r}: {exc.strerror}") from exc
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp_path, target)
            except OSError as exc:
                raise StorageUnavailable(f"cannot store {key!r}: {exc.strerror}") from exc
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        return StoredObject(key=key, size_bytes=metered.size_bytes, sha256=metered.sha256,
                            encryption=ENCRYPTION, content_type=content_type)

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - owned by the returned reader
        except FileNotFoundError as exc:
            raise StorageObjectMissing(key) from exc
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {key!r}: {exc.strerror}") from exc
        try:
            prefix, aead, size, _ = self._read_header(key, handle)
            raw = _DecryptingReader(key, handle, aead, prefix + key.encode("ascii"), size,
                                    self._chunk_bytes_of(prefix))
        except BaseException:
            handle.close()
            raise
        return io.BufferedReader(raw, buffer_size=DEFAULT_CHUNK_BYTES)

    def head(self, key: str) -> StoredObject:
        path = self._path(key)
        try:
            with open(path, "rb") as handle:
                _, _, size, sha256 = self._read_header(key, handle)
        except FileNotFoundError as exc:
            raise StorageObjectMissing(key) from exc
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {key!r}: {exc.strerror}") from exc
        return StoredObject(key=key, size_bytes=size, sha256=sha256, encryption=ENCRYPTION)

    def exists(self, key: str) -> bool:
        path = self._path(key)
        try:
            return path.is_file()
        except OSError as exc:
            raise StorageUnavailable(f"cannot check {key!r}: {exc.strerror}") from exc

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot delete {key!r}: {exc.strerror}") from exc

    def move(self, source_key: str, target_key: str) -> StoredObject:
        # The object key is bound into the ciphertext, so a move re-encrypts (streamed).
        validate_key(target_key)
        if source_key == target_key:
            return self.head(source_key)
        with self.open(source_key) as plaintext:
            stored = self.put(target_key, plaintext)
        self.delete(source_key)
        return stored

    def list_keys(self, prefix: str) -> Iterator[str]:
        validate_prefix(prefix)
        directory = self._root / prefix.rsplit("/", 1)[0] if "/" in prefix else self._root
        keys: list[str] = []
        try:
            for folder, subfolders, files in os.walk(directory):
                subfolders[:] = [name for name in subfolders if not name.startswith(".")]
                for name in files:
                    key = Path(folder, name).relative_to(self._root).as_posix()
                    if key.startswith(prefix) and not name.startswith("."):
                        keys.append(key)
        except OSError as exc:
            raise StorageUnavailable(f"cannot list {prefix!r}: {exc.strerror}") from exc
        return iter(sorted(keys))

    def download_url(self, key: str, *, expires_in: dt.timedelta = DOWNLOAD_URL_LIFETIME,
                     download_name: str | None = None) -> str:
        return self._signer.url(key, expires_in=expires_in, download_name=download_name)

    def verify_download_token(self, token: str, *, now: dt.datetime | None = None) -> DownloadGrant:
        return self._signer.verify(token, now=now)

    def health(self) -> HealthReport:
        probe = f"health/probe-{uuid.uuid4()}"
        payload = b"reckai storage probe"
        try:
            self.put(probe, [payload])
            with self.open(probe) as readback:
                if readback.read() != payload:
                    return HealthReport(ok=False, detail="filesystem storage probe read back wrong data")
            self.delete(probe)
        except Exception as exc:  # noqa: BLE001 - health must report, never raise
            return HealthReport(ok=False, detail=f"filesystem storage failed: {type(exc).__name__}: {exc}")
        return HealthReport(ok=True, detail=f"filesystem storage, {ENCRYPTION} at rest")

    # --- internals ---

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*validate_key(key).split("/"))

    def _new_object_header(self) -> tuple[bytes, AESGCM]:
        key_id = self._current_key_id.encode("ascii")
        salt = os.urandom(_SALT_BYTES)
        prefix = (MAGIC + bytes([FORMAT_VERSION, len(key_id)]) + key_id + salt
                  + struct.pack(">I", self._chunk_bytes))
        return prefix, AESGCM(_object_key(self._keys[self._current_key_id], salt))

    @staticmethod
    def _chunk_bytes_of(prefix: bytes) -> int:
        return int(struct.unpack(">I", prefix[-4:])[0])

    def _read_header(self, key: str, handle: BinaryIO) -> tuple[bytes, AESGCM, int, str]:
        fixed = handle.read(len(MAGIC) + 2)
        if len(fixed) != len(MAGIC) + 2 or fixed[: len(MAGIC)] != MAGIC:
            raise StorageIntegrityError(key, "not an encrypted ReckAI object")
        if fixed[len(MAGIC)] != FORMAT_VERSION:
            raise StorageIntegrityError(key, f"unknown format version {fixed[len(MAGIC)]}")
        key_id_length = fixed[len(MAGIC) + 1]
        rest = handle.read(key_id_length + _SALT_BYTES + 4)
        if len(rest) != key_id_length + _SALT_BYTES + 4:
            raise StorageIntegrityError(key, "truncated header")
        prefix = fixed + rest
        key_id = rest[:key_id_length].decode("ascii", errors="replace")
        master = self._keys.get(key_id)
        if master is None:
            raise StorageIntegrityError(key, f"encrypted with key id {key_id!r}, which is not in the key ring")
        chunk_bytes = self._chunk_bytes_of(prefix)
        if not 1 <= chunk_bytes <= _MAX_CHUNK_BYTES:
            raise StorageIntegrityError(key, "corrupt header")
        salt = rest[key_id_length : key_id_length + _SALT_BYTES]
        aead = AESGCM(_object_key(master, salt))
        sealed_meta = handle.read(_META_BYTES)
        try:
            meta = aead.decrypt(_META_NONCE, sealed_meta, prefix + b"meta" + key.encode("ascii"))
        except (InvalidTag, ValueError) as exc:
            raise StorageIntegrityError(key, "header does not authenticate") from exc
        size, digest = _META_PLAIN.unpack(meta)
        return prefix, aead, int(size), digest.hex()


class _FrameWriter:
    """Buffers plaintext into fixed-size chunks; holds the last one back so it can be sealed final."""

    def __init__(self, handle: BinaryIO, aead: AESGCM, aad_base: bytes, chunk_bytes: int) -> None:
        self._handle = handle
        self._aead = aead
        self._aad_base = aad_base
        self._chunk_bytes = chunk_bytes
        self._pending = bytearray()
        self._index = 0

    def write(self, data: bytes) -> None:
        self._pending += data
        # Strictly more than one chunk: the remainder may be the end of the stream and must then
        # go out as the final frame. Sealed from a view, compacted once: no per-chunk copies.
        consumed = 0
        with memoryview(self._pending) as pending:
            while len(pending) - consumed > self._chunk_bytes:
                self._seal(pending[consumed : consumed + self._chunk_bytes], final=False)
                consumed += self._chunk_bytes
        del self._pending[:consumed]

    def finish(self) -> None:
        self._seal(bytes(self._pending), final=True)
        self._pending.clear()

    def _seal(self, plaintext: bytes | memoryview, *, final: bool) -> None:
        nonce, aad_tail = _frame_nonce(self._index, final)
        sealed = self._aead.encrypt(nonce, plaintext, self._aad_base + aad_tail)
        _write(self._handle, _FRAME_LENGTH.pack(len(sealed)))
        _write(self._handle, sealed)
        self._index += 1


class _DecryptingReader(io.RawIOBase):
    def __init__(self, key: str, handle: BinaryIO, aead: AESGCM, aad_base: bytes,
                 expected_size: int, chunk_bytes: int) -> None:
        self._key = key
        self._handle = handle
        self._aead = aead
        self._aad_base = aad_base
        self._expected_size = expected_size
        self._chunk_bytes = chunk_bytes
        self._buffer = b""
        self._offset = 0
        self._index = 0
        self._plaintext_seen = 0
        self._finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, target: WriteableBuffer) -> int:
        while self._offset >= len(self._buffer):
            if self._finished:
                return 0
            self._next_frame()
        with memoryview(target) as view:  # released on the way out, so the caller may resize its buffer
            count = min(len(view), len(self._buffer) - self._offset)
            view[:count] = self._buffer[self._offset : self._offset + count]
        self._offset += count
        return count

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()

    def _next_frame(self) -> None:
        try:
            header = self._handle.read(_FRAME_LENGTH.size)
            if len(header) != _FRAME_LENGTH.size:
                raise StorageIntegrityError(self._key, "truncated: the final frame is missing")
            (length,) = _FRAME_LENGTH.unpack(header)
            if not _TAG_BYTES <= length <= self._chunk_bytes + _TAG_BYTES:
                raise StorageIntegrityError(self._key, "corrupt frame length")
            sealed = self._handle.read(length)
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {self._key!r}: {exc.strerror}") from exc
        if len(sealed) != length:
            raise StorageIntegrityError(self._key, "truncated frame")
        plaintext = self._open_frame(sealed)
        self._plaintext_seen += len(plaintext)
        self._index += 1
        self._buffer, self._offset = plaintext, 0
        if self._finished:
            if self._handle.read(1):
                raise StorageIntegrityError(self._key, "data after the final frame")
            if self._plaintext_seen != self._expected_size:
                raise StorageIntegrityError(self._key, "size differs from the header")

    def _open_frame(self, sealed: bytes) -> bytes:
        # The writer's flag is not stored in clear: try "not final" first, then "final".
        for final in (False, True):
            nonce, aad_tail = _frame_nonce(self._index, final)
            try:
                plaintext = self._aead.decrypt(nonce, sealed, self._aad_base + aad_tail)
            except InvalidTag:
                continue
            self._finished = final
            return plaintext
        raise StorageIntegrityError(self._key, f"frame {self._index} does not authenticate")


def _frame_nonce(index: int, final: bool) -> tuple[bytes, bytes]:
    tail = struct.pack(">QB", index, 1 if final else 0)
    return tail + b"\x00\x00\x00", tail


def _object_key(master: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"reckai/fs-object/v1").derive(master)


def _write(handle: BinaryIO, data: bytes) -> None:
    try:
        handle.write(data)
    except OSError as exc:
        raise StorageUnavailable(f"cannot write: {exc.strerror}") from exc


if TYPE_CHECKING:
    from reckai.application.ports.storage import FileStorage, SignedDownloadVerifier

    _check: FileStorage = FileSystemStorage(Path(), keys={}, current_key_id="", public_base_url="")
    _check_verifier: SignedDownloadVerifier = FileSystemStorage(
        Path(), keys={}, current_key_id="", public_base_url=""
    )
