"""Head checkpoints as S3 objects under Object Lock in compliance mode (production; docs/audit.md).

Every checkpoint is a new object (never an overwrite) written with a compliance-mode retention
(`retain_days`, seven years by default): until then nobody, the bucket owner and the account's
root included, can delete or overwrite that object version. The bucket must have been created with
Object Lock enabled; the first write checks that it is and refuses otherwise.

Keys sort newest first: `audit-checkpoints/<10^13 - epoch milliseconds>-<time>-<random>.json`, so
the latest checkpoint is the first key of one LIST request however many there are.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import secrets

from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import MinioException
from minio.retention import Retention

from reckai.application.ports.audit import AuditAnchorFailed, AuditAnchorStore
from reckai.domain.audit.anchors import HeadCheckpoint, InvalidCheckpointDocument

PREFIX = "audit-checkpoints/"
_INVERT_MS = 10**13
DEFAULT_RETAIN_DAYS = 7 * 366


def checkpoint_key(written_at: dt.datetime) -> str:
    moment = written_at if written_at.tzinfo else written_at.replace(tzinfo=dt.UTC)
    millis = int(moment.timestamp() * 1000)
    return (f"{PREFIX}{_INVERT_MS - millis:013d}-{moment.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%S')}"
            f"-{secrets.token_hex(4)}.json")


class S3ObjectLockAnchorStore:
    def __init__(self, client: Minio, bucket: str, retain_days: int = DEFAULT_RETAIN_DAYS) -> None:
        if retain_days < 1:
            raise ValueError("retain_days must be at least 1")
        self._client = client
        self.bucket = bucket
        self.retain_days = retain_days
        self._lock_checked = False

    @property
    def description(self) -> str:
        return f"s3 bucket {self.bucket} (Object Lock, compliance mode, {self.retain_days} days)"

    def check_object_lock(self) -> None:
        """Refuse a bucket without Object Lock: checkpoints there could be deleted or replaced."""
        try:
            config = self._client.get_object_lock_config(self.bucket)
        except MinioException as exc:
            raise AuditAnchorFailed(f"bucket {self.bucket} has no Object Lock configuration "
                                    f"({type(exc).__name__}); create it with Object Lock enabled") from exc
        if config is None:
            raise AuditAnchorFailed(f"bucket {self.bucket} has no Object Lock configuration")
        self._lock_checked = True

    def write(self, checkpoint: HeadCheckpoint) -> str:
        if not self._lock_checked:
            self.check_object_lock()
        body = checkpoint.to_json().encode("ascii")
        key = checkpoint_key(checkpoint.written_at)
        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=self.retain_days)
        # S3 requires an integrity header on a write with an Object Lock retention.
        checksum = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
        try:
            self._client.put_object(self.bucket, key, io.BytesIO(body), len(body), content_type="application/json",
                                    retention=Retention(COMPLIANCE, until),
                                    metadata={"x-amz-sdk-checksum-algorithm": "SHA256",
                                              "x-amz-checksum-sha256": checksum})
        except MinioException as exc:
            raise AuditAnchorFailed(f"cannot write {key} ({type(exc).__name__})") from exc
        return f"s3://{self.bucket}/{key}"

    def latest(self) -> HeadCheckpoint | None:
        try:
            first = next(iter(self._client.list_objects(self.bucket, prefix=PREFIX)), None)
            if first is None or first.object_name is None:
                return None
            response = self._client.get_object(self.bucket, first.object_name)
            try:
                body = response.read()
            finally:
                response.close()
                response.release_conn()
        except MinioException as exc:
            raise AuditAnchorFailed(f"cannot read the latest checkpoint ({type(exc).__name__})") from exc
        try:
            return HeadCheckpoint.from_json(body)
        except InvalidCheckpointDocument as exc:
            raise AuditAnchorFailed(f"{first.object_name} is not a checkpoint: {exc}") from exc


_check: type[AuditAnchorStore] = S3ObjectLockAnchorStore
