"""The FileStorage contract, run over every adapter.

`FileStorageContract` is the contract; each adapter's test class subclasses it and provides the
`storage` fixture, the encryption it must report and how to fetch a download URL. The memory and
filesystem adapters run here (no service); the S3 adapter runs the same class against a real S3
server in tests/integration/test_storage_s3.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reckai.adapters.filesystem.storage import FileSystemStorage
from reckai.adapters.memory.storage import InMemoryFileStorage
from reckai.application.ports.storage import (
    FileStorage,
    ObjectTooLarge,
    StorageObjectMissing,
)
from reckai.domain.ingestion.storage_keys import (
    InvalidStorageKey,
    organization_prefix,
    quarantine_key,
    upload_key,
)

SIZES = [0, 1, 4095, 4096, 4097, 3 * 4096 + 5, 100_003]
BAD_KEYS = ["../etc/passwd", "/abs/key", "a//b", "a/./b", "a/../b", "", ".hidden", "a/b/", "a\\b", "a b"]


class SourceBroke(Exception):
    """What a client disconnect looks like to `put`: the source itself raises."""



def _new_key() -> str:
    return upload_key(uuid.uuid4(), uuid.uuid4(), dt.date(2024, 3, 7), "csv")


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _broken_source(good: bytes) -> Iterator[bytes]:
    yield good
    raise SourceBroke("client went away")


class FileStorageContract:
    expected_encryption: str = "none"

    @pytest.fixture
    def storage(self) -> Any:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def fetch(self, storage: Any, url: str) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError

    # --- put / open / head ---

    @pytest.mark.parametrize("size", SIZES)
    def test_file_object_round_trips_with_size_and_checksum(self, storage: FileStorage, size: int) -> None:
        data = os.urandom(size)
        key = _new_key()
        stored = storage.put(key, io.BytesIO(data), content_type="text/csv")
        assert stored.key == key
        assert stored.size_bytes == size
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        assert stored.encryption == self.expected_encryption
        with storage.open(key) as readback:
            assert readback.read() == data
        head = storage.head(key)
        assert (head.size_bytes, head.sha256, head.encryption) == (size, stored.sha256, self.expected_encryption)

    def test_iterable_of_chunks_is_accepted_and_read_back_in_small_reads(self, storage: FileStorage) -> None:
        data = os.urandom(50_000)
        key = _new_key()
        storage.put(key, _chunks(data, 777))
        pieces = []
        with storage.open(key) as readback:
            while piece := readback.read(1000):
                pieces.append(piece)
        assert b"".join(pieces) == data

    def test_put_replaces_previous_object(self, storage: FileStorage) -> None:
        key = _new_key()
        storage.put(key, [b"first version"])
        storage.put(key, [b"second"])
        with storage.open(key) as readback:
            assert readback.read() == b"second"
        assert storage.head(key).size_bytes == 6

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors])
    @given(chunks=st.lists(st.binary(max_size=9000), max_size=6))
    def test_any_chunking_round_trips(self, storage: FileStorage, chunks: list[bytes]) -> None:
        key = _new_key()
        data = b"".join(chunks)
        stored = storage.put(key, iter(chunks))
        assert stored.size_bytes == len(data)
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        with storage.open(key) as readback:
            assert readback.read() == data
        storage.delete(key)

    # --- limits and failures leave nothing behind ---

    def test_exactly_max_bytes_is_accepted(self, storage: FileStorage) -> None:
        key = _new_key()
        assert storage.put(key, _chunks(b"x" * 10_000, 999), max_bytes=10_000).size_bytes == 10_000

    def test_over_max_bytes_is_refused_and_nothing_is_stored(self, storage: FileStorage) -> None:
        key = _new_key()
        with pytest.raises(ObjectTooLarge) as refused:
            storage.put(key, _chunks(b"x" * 10_001, 999), max_bytes=10_000)
        assert refused.value.max_bytes == 10_000
        assert not storage.exists(key)
        assert list(storage.list_keys(key.rsplit("/", 1)[0] + "/")) == []

    def test_refused_put_leaves_previous_object_unchanged(self, storage: FileStorage) -> None:
        key = _new_key()
        storage.put(key, [b"kept"])
        with pytest.raises(ObjectTooLarge):
            storage.put(key, [b"y" * 100], max_bytes=10)
        with storage.open(key) as readback:
            assert readback.read() == b"kept"

    def test_source_error_propagates_unchanged_and_nothing_is_stored(self, storage: FileStorage) -> None:
        key = _new_key()
        with pytest.raises(SourceBroke):
            storage.put(key, _broken_source(b"z" * 20_000))
        assert not storage.exists(key)

    # --- missing objects, delete, exists, list ---

    def test_missing_object(self, storage: FileStorage) -> None:
        key = _new_key()
        assert not storage.exists(key)
        with pytest.raises(StorageObjectMissing) as missing:
            storage.open(key)
        assert missing.value.key == key
        with pytest.raises(StorageObjectMissing):
            storage.head(key)
        storage.delete(key)  # deleting what is not there is not an error

    def test_delete_removes(self, storage: FileStorage) -> None:
        key = _new_key()
        storage.put(key, [b"data"])
        assert storage.exists(key)
        storage.delete(key)
        assert not storage.exists(key)
        with pytest.raises(StorageObjectMissing):
            storage.open(key)

    def test_list_keys_returns_only_the_prefix_in_order(self, storage: FileStorage) -> None:
        organization, other = uuid.uuid4(), uuid.uuid4()
        mine = sorted(upload_key(organization, uuid.uuid4(), dt.date(2024, m, 1), "csv") for m in (1, 2, 2))
        for key in mine:
            storage.put(key, [b"a"])
        storage.put(upload_key(other, uuid.uuid4(), dt.date(2024, 1, 1), "csv"), [b"b"])
        storage.put(quarantine_key(organization, uuid.uuid4(), dt.date(2024, 1, 1), "csv"), [b"c"])
        assert list(storage.list_keys(organization_prefix(organization))) == mine
        assert list(storage.list_keys(organization_prefix(organization) + "uploads/2024/02/")) == mine[1:]

    def test_move_takes_the_object_out_of_the_organization_area(self, storage: FileStorage) -> None:
        organization, file_id = uuid.uuid4(), uuid.uuid4()
        source = upload_key(organization, file_id, dt.date(2024, 5, 1), "xlsx")
        target = quarantine_key(organization, file_id, dt.date(2024, 5, 1), "xlsx")
        data = os.urandom(30_000)
        storage.put(source, io.BytesIO(data))
        moved = storage.move(source, target)
        assert moved.key == target
        assert moved.size_bytes == len(data)
        assert moved.encryption == self.expected_encryption
        assert not storage.exists(source)
        assert list(storage.list_keys(organization_prefix(organization))) == []
        with storage.open(target) as readback:
            assert readback.read() == data
        with pytest.raises(StorageObjectMissing):
            storage.move(source, target)

    # --- keys are validated everywhere ---

    @pytest.mark.parametrize("bad_key", BAD_KEYS)
    def test_unsafe_keys_are_rejected_before_any_write(self, storage: FileStorage, bad_key: str) -> None:
        with pytest.raises(InvalidStorageKey):
            storage.put(bad_key, [b"data"])
        for operation in (storage.open, storage.head, storage.exists, storage.delete):
            with pytest.raises(InvalidStorageKey):
                operation(bad_key)

    # --- download URLs ---

    def test_download_url_serves_the_object(self, storage: FileStorage) -> None:
        key = _new_key()
        data = os.urandom(2048)
        storage.put(key, io.BytesIO(data))
        url = storage.download_url(key, download_name="statement march.csv")
        assert self.fetch(storage, url) == data

    # --- health ---

    def test_health_probe_succeeds_and_leaves_no_probe_behind(self, storage: FileStorage) -> None:
        before = list(storage.list_keys("health/"))  # S3: the session's bucket, shared with other tests
        report = storage.health()
        assert report.ok, report.detail
        assert list(storage.list_keys("health/")) == before


class SignedAppUrlFetch:
    """Filesystem and memory: the URL is the app's; the route verifies the token then opens."""

    def fetch(self, storage: Any, url: str) -> bytes:
        assert url.startswith("http://testserver/api/files/download/")
        grant = storage.verify_download_token(url.rsplit("/", 1)[1])
        assert grant.download_name == "statement march.csv"
        assert dt.timedelta(minutes=59) < grant.expires_at - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=1)
        with storage.open(grant.key) as readback:
            return bytes(readback.read())


class TestInMemoryFileStorage(SignedAppUrlFetch, FileStorageContract):
    expected_encryption = "none"

    @pytest.fixture
    def storage(self) -> InMemoryFileStorage:
        return InMemoryFileStorage(public_base_url="http://testserver")


class TestFileSystemStorage(SignedAppUrlFetch, FileStorageContract):
    expected_encryption = "AES-256-GCM"

    @pytest.fixture
    def storage(self, tmp_path: Path) -> FileSystemStorage:
        # Small frames so the test sizes cross many frame boundaries.
        return FileSystemStorage(tmp_path, keys={"k1": b"\x01" * 32}, current_key_id="k1",
                                 public_base_url="http://testserver", chunk_bytes=4096)

    def test_no_temporary_file_survives_a_failed_put(self, storage: FileSystemStorage, tmp_path: Path) -> None:
        with pytest.raises(ObjectTooLarge):
            storage.put(_new_key(), _chunks(b"x" * 50_000, 1000), max_bytes=10_000)
        with pytest.raises(SourceBroke):
            storage.put(_new_key(), _broken_source(b"y" * 9000))
        leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert leftovers == []
