"""The FileStorage contract over the S3 adapter, against a real S3 server (moto's ThreadedMotoServer
by default, any S3 via RECKAI_TEST_S3_*), plus what only S3 has: multipart streaming, SSE checks,
pre-signed URLs and server errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reckai.adapters.s3.storage import S3FileStorage, make_client
from reckai.application.ports.storage import ObjectTooLarge, StorageIntegrityError, StorageUnavailable
from reckai.domain.ingestion.storage_keys import upload_key
from tests.fixtures.s3 import S3Endpoint
from tests.unit.test_storage_contract import FileStorageContract, SourceBroke

pytestmark = pytest.mark.integration

PART = 5 * 1024 * 1024  # the S3 minimum, so multipart is exercised with small files


def _client(endpoint: S3Endpoint) -> Any:
    return make_client(endpoint.endpoint, endpoint.access_key, endpoint.secret_key,
                       secure=endpoint.secure, region=endpoint.region)


def _new_key() -> str:
    return upload_key(uuid.uuid4(), uuid.uuid4(), dt.date(2024, 3, 7), "csv")


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


class TestS3FileStorage(FileStorageContract):
    expected_encryption = "SSE-S3"

    @pytest.fixture
    def storage(self, s3_server: S3Endpoint) -> S3FileStorage:
        return S3FileStorage(_client(s3_server), s3_server.bucket, part_bytes=PART)

    def fetch(self, storage: Any, url: str) -> bytes:
        response = httpx.get(url, timeout=10)
        assert response.status_code == 200, response.text[:300]
        assert "filename*=UTF-8''statement%20march.csv" in response.headers.get("content-disposition", "")
        return response.content


@pytest.fixture
def s3_storage(s3_server: S3Endpoint) -> S3FileStorage:
    return S3FileStorage(_client(s3_server), s3_server.bucket, part_bytes=PART)


def test_multipart_stream_round_trips_with_checksum_recorded(s3_storage: S3FileStorage) -> None:
    data = os.urandom(2 * PART + 12_345)
    key = _new_key()
    stored = s3_storage.put(key, _chunks(data, 64 * 1024), content_type="text/csv")
    digest = hashlib.sha256(data).hexdigest()
    assert (stored.size_bytes, stored.sha256, stored.encryption) == (len(data), digest, "SSE-S3")
    assert stored.content_type == "text/csv"
    with s3_storage.open(key) as readback:
        assert hashlib.sha256(readback.read()).hexdigest() == digest


def test_server_reports_sse_on_the_stored_object(s3_server: S3Endpoint, s3_storage: S3FileStorage) -> None:
    key = _new_key()
    s3_storage.put(key, [b"amount,ref\n100,abc\n"])
    stat = _client(s3_server).stat_object(s3_server.bucket, key)
    assert stat.metadata["x-amz-server-side-encryption"] == "AES256"


def test_multipart_over_the_limit_leaves_no_object_and_no_open_upload(
    s3_server: S3Endpoint, s3_storage: S3FileStorage
) -> None:
    key = _new_key()
    with pytest.raises(ObjectTooLarge):
        s3_storage.put(key, _chunks(b"x" * (2 * PART + 1), 1024 * 1024), max_bytes=2 * PART)
    assert not s3_storage.exists(key)
    client = _client(s3_server)
    assert list(client._list_multipart_uploads(s3_server.bucket, prefix=key).uploads) == []


def test_multipart_source_failure_leaves_nothing(s3_storage: S3FileStorage) -> None:
    key = _new_key()

    def source() -> Iterator[bytes]:
        yield os.urandom(PART + 10)
        raise SourceBroke("client went away mid-upload")

    with pytest.raises(SourceBroke):
        s3_storage.put(key, source())
    assert not s3_storage.exists(key)


def test_adapter_requests_sse_itself_without_a_bucket_default(s3_server: S3Endpoint) -> None:
    # The test bucket has no default encryption: only the adapter's own request can make the
    # objects encrypted.
    client = _client(s3_server)
    plain_bucket = s3_server.bucket
    assert client.get_bucket_encryption(plain_bucket) is None
    storage = S3FileStorage(client, plain_bucket, part_bytes=PART)
    small, large = _new_key(), _new_key()
    assert storage.put(small, [b"amount\n1\n"]).encryption == "SSE-S3"
    assert storage.put(large, _chunks(os.urandom(PART + 1), 1024 * 1024)).encryption == "SSE-S3"
    for key in (small, large):
        assert client.stat_object(plain_bucket, key).metadata["x-amz-server-side-encryption"] == "AES256"
    moved = storage.move(small, _new_key())
    assert client.stat_object(plain_bucket, moved.key).metadata["x-amz-server-side-encryption"] == "AES256"


class _NoSseRequested(S3FileStorage):
    # Simulates a server, proxy or client that drops the SSE request: the object really is stored
    # unencrypted on the server, and the adapter's HEAD check has to catch it.
    _request_sse = False


def test_ensure_bucket_creates_it_with_default_encryption(s3_server: S3Endpoint) -> None:
    client = _client(s3_server)
    bucket = f"reckai-new-{uuid.uuid4().hex[:8]}"
    storage = S3FileStorage(client, bucket, part_bytes=PART)
    storage.ensure_bucket()
    storage.ensure_bucket()  # idempotent
    config = client.get_bucket_encryption(bucket)
    assert config is not None and config.rule.sse_algorithm == "AES256"


def test_object_stored_unencrypted_is_refused_and_deleted(s3_server: S3Endpoint) -> None:
    client = _client(s3_server)
    plain_bucket = f"reckai-plain-{uuid.uuid4().hex[:8]}"
    client.make_bucket(plain_bucket)  # no default encryption on this bucket
    storage = _NoSseRequested(client, plain_bucket, part_bytes=PART)
    key = _new_key()
    with pytest.raises(StorageIntegrityError) as refused:
        storage.put(key, [b"secret statement"])
    assert "without server-side encryption" in refused.value.reason
    assert not storage.exists(key)
    # And an object someone else wrote unencrypted is reported honestly.
    client.put_object(plain_bucket, "organizations/x", io.BytesIO(b"abc"), 3)
    assert storage.head("organizations/x").encryption == "none"


def test_tampered_content_fails_the_final_read(s3_server: S3Endpoint, s3_storage: S3FileStorage) -> None:
    key = _new_key()
    s3_storage.put(key, [b"original content"])
    # Overwrite the bytes but keep the recorded checksum, as a tamperer with bucket access could.
    client = _client(s3_server)
    recorded = s3_storage.head(key).sha256
    client.put_object(s3_server.bucket, key, io.BytesIO(b"forged content!!"), 16,
                      metadata={"sha256": recorded or ""})
    with pytest.raises(StorageIntegrityError), s3_storage.open(key) as readback:
        readback.read()


def test_presigned_url_expires_in_one_hour(s3_storage: S3FileStorage) -> None:
    url = s3_storage.download_url(_new_key())
    assert "X-Amz-Expires=3600" in url


def test_missing_bucket_is_unavailable_not_missing_object(s3_server: S3Endpoint) -> None:
    storage = S3FileStorage(_client(s3_server), f"no-such-bucket-{uuid.uuid4().hex[:8]}", part_bytes=PART)
    with pytest.raises(StorageUnavailable):
        storage.put(_new_key(), [b"x"])
    assert not storage.health().ok


def test_unreachable_server_is_unavailable_and_unhealthy() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(f"127.0.0.1:{port}", "a", "b", secure=False, region="us-east-1",
                         connect_timeout=1, retries=0)
    storage = S3FileStorage(client, "reckai", part_bytes=PART)
    with pytest.raises(StorageUnavailable) as down:
        storage.put(_new_key(), [b"x"])
    assert down.value.__cause__ is not None
    with pytest.raises(StorageUnavailable):
        storage.exists(_new_key())
    report = storage.health()
    assert not report.ok
    assert "StorageUnavailable" in report.detail
