"""`/health/storage`'s check built by bootstrap against the real S3 server and the real clamd."""

from __future__ import annotations

import pytest

from reckai.adapters.s3.storage import S3FileStorage
from reckai.bootstrap import build_storage, storage_health
from reckai.settings import Mode, ScannerSettings, Settings, StorageSettings
from tests.fixtures.clamd import ClamdEndpoint
from tests.fixtures.s3 import S3Endpoint

pytestmark = pytest.mark.integration


def test_s3_storage_with_clamd_is_healthy(s3_server: S3Endpoint, clamd_server: ClamdEndpoint) -> None:
    settings = Settings(
        mode=Mode.EMBEDDED,
        storage=StorageSettings(backend="s3", s3_endpoint=s3_server.endpoint, s3_access_key=s3_server.access_key,
                                s3_secret_key=s3_server.secret_key, s3_bucket=s3_server.bucket,
                                s3_region=s3_server.region, s3_secure=s3_server.secure),
        scanner=ScannerSettings(enabled=True, clamd_socket=clamd_server.socket_path),
    )
    storage, scanner = build_storage(settings)
    assert isinstance(storage, S3FileStorage)
    before = list(storage.list_keys("health/"))  # the session's bucket, shared with other tests
    report = storage_health(storage, scanner)
    assert report.ok, report.detail
    assert "SSE-S3 verified" in report.detail
    assert "clamd" in report.detail
    assert list(storage.list_keys("health/")) == before  # its probe is gone
