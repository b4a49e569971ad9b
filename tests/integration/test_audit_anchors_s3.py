"""Head checkpoints in an S3 bucket with Object Lock in compliance mode (issue 17 item 2), on moto
(or the S3 server of RECKAI_TEST_S3_ENDPOINT): every checkpoint a new object under a compliance
retention that refuses deletion, the newest found with one LIST, a bucket without Object Lock
refused. The file store and the shared verification rule run in tests/unit/test_audit_anchors.py."""

from __future__ import annotations

import datetime as dt
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from minio import Minio
from minio.commonconfig import COMPLIANCE

from reckai.adapters.s3.audit_anchors import PREFIX, S3ObjectLockAnchorStore
from reckai.adapters.s3.storage import make_client
from reckai.application.ports.audit import AuditAnchorFailed
from reckai.domain.audit.anchors import AnchoredHead
from reckai.domain.audit.chain import AuditSigner
from tests.fixtures.s3 import S3Endpoint

pytestmark = pytest.mark.integration


def _client(endpoint: S3Endpoint) -> Minio:
    return make_client(endpoint.endpoint, endpoint.access_key, endpoint.secret_key, secure=endpoint.secure,
                       region=endpoint.region)


def _bucket(client: Minio, object_lock: bool) -> str:
    name = f"reckai-anchors-{uuid.uuid4().hex[:8]}"
    client.make_bucket(name, object_lock=object_lock)
    return name


def test_checkpoints_are_locked_in_compliance_mode_and_the_newest_is_read_back(s3_server: S3Endpoint) -> None:
    client = _client(s3_server)
    store = S3ObjectLockAnchorStore(client, _bucket(client, object_lock=True), retain_days=30)
    signer = AuditSigner("s3-1", "s3-anchor-test-key-000000000000000000000000")
    org = uuid.uuid4()
    assert store.latest() is None
    start = dt.datetime(2026, 12, 7, 6, 0, tzinfo=dt.UTC)
    for minute in range(3):
        store.write(signer.sign_head_checkpoint(start + dt.timedelta(minutes=minute),
                                                [AnchoredHead(org, 10 + minute, f"{minute:064d}")]))
    latest = store.latest()
    assert latest is not None and latest.head_of(org) == AnchoredHead(org, 12, f"{2:064d}")
    assert signer.head_checkpoint_is_valid(latest)
    # read back with a second, independent client (boto3)
    s3 = boto3.client("s3", endpoint_url=f"{'https' if s3_server.secure else 'http'}://{s3_server.endpoint}",
                      aws_access_key_id=s3_server.access_key, aws_secret_access_key=s3_server.secret_key,
                      region_name=s3_server.region)
    versions = s3.list_object_versions(Bucket=store.bucket, Prefix=PREFIX)["Versions"]
    assert len(versions) == 3
    for version in versions:
        head = s3.head_object(Bucket=store.bucket, Key=version["Key"], VersionId=version["VersionId"])
        assert head["ObjectLockMode"] == COMPLIANCE
        assert head["ObjectLockRetainUntilDate"] > dt.datetime.now(dt.UTC) + dt.timedelta(days=29)
        # compliance mode: nobody deletes the version before the date, the application included
        with pytest.raises(ClientError):
            s3.delete_object(Bucket=store.bucket, Key=version["Key"], VersionId=version["VersionId"])
        # (AWS also refuses shortening a compliance retention; moto does not implement that refusal)
    assert len(s3.list_object_versions(Bucket=store.bucket, Prefix=PREFIX)["Versions"]) == 3


def test_a_bucket_without_object_lock_is_refused(s3_server: S3Endpoint) -> None:
    client = _client(s3_server)
    store = S3ObjectLockAnchorStore(client, _bucket(client, object_lock=False))
    signer = AuditSigner("s3-1", "s3-anchor-test-key-000000000000000000000000")
    with pytest.raises(AuditAnchorFailed, match="Object Lock"):
        store.write(signer.sign_head_checkpoint(dt.datetime.now(dt.UTC), []))
    assert list(client.list_objects(store.bucket, prefix=PREFIX)) == []
