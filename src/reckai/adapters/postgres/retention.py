"""The retention port on PostgreSQL: which files are past their period, and which of those
something still in use refers to (one query, row-level security scoping it to the tenant)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from reckai.adapters.postgres.repository import PostgresRepository, translate_errors
from reckai.application.ports.retention import ExpiredFile, ExpiredJob, RetentionRepository
from reckai.domain.retention import KeptBecause

# The jobs over a file: the links of reconciliation_job_files, and the file's own job_id.
_JOBS_OF_FILE = """(SELECT jf.job_id FROM reconciliation_job_files jf WHERE jf.file_id = f.id
                    UNION SELECT f.job_id WHERE f.job_id IS NOT NULL)"""
# An exception about a file: of a job over it, or naming one of its rows.
_EXCEPTION_OF_FILE = f"(e.job_id IN {_JOBS_OF_FILE} OR e.left_file_id = f.id OR e.right_file_id = f.id)"

_EXPIRED = text(f"""
SELECT f.id, f.uploaded_at, f.storage_path, f.size_bytes, f.checksum,
       ARRAY(SELECT n.storage_path FROM normalized_files n WHERE n.file_id = f.id ORDER BY n.schema_version)
           AS normalized_paths,
       CASE
         WHEN EXISTS (SELECT 1 FROM stream_files s WHERE s.file_id = f.id) THEN 'stream'
         WHEN EXISTS (SELECT 1 FROM reconciliation_jobs j WHERE j.id IN {_JOBS_OF_FILE}
                         AND j.status IN ('pending', 'processing')) THEN 'running_job'
         WHEN EXISTS (SELECT 1 FROM exceptions e WHERE {_EXCEPTION_OF_FILE}
                         AND e.status IN ('open', 'in_progress', 'escalated')) THEN 'open_exception'
         WHEN f.id = ANY(:refs)
           OR EXISTS (SELECT 1 FROM reconciliation_jobs j WHERE j.id IN {_JOBS_OF_FILE} AND j.id = ANY(:refs))
           OR EXISTS (SELECT 1 FROM exceptions e WHERE {_EXCEPTION_OF_FILE} AND e.id = ANY(:refs))
           THEN 'pending_approval'
       END AS kept_because
  FROM reconciliation_files f
 WHERE f.uploaded_at < :before
   AND (CAST(:after_at AS timestamp) IS NULL OR (f.uploaded_at, f.id) > (:after_at, :after_id))
 ORDER BY f.uploaded_at, f.id
 LIMIT :limit
""").bindparams(bindparam("refs", type_=ARRAY(UUID(as_uuid=True))))


_EXPIRED_JOBS = text("""
SELECT j.id, j.created_at, j.name, j.status,
       CASE
         WHEN EXISTS (SELECT 1 FROM stream_runs r WHERE r.job_id = j.id) THEN 'stream'
         WHEN j.status IN ('pending', 'processing') THEN 'running_job'
         WHEN EXISTS (SELECT 1 FROM exceptions e WHERE e.job_id = j.id
                         AND e.status IN ('open', 'in_progress', 'escalated')) THEN 'open_exception'
         WHEN j.id = ANY(:refs)
           OR EXISTS (SELECT 1 FROM exceptions e WHERE e.job_id = j.id AND e.id = ANY(:refs)) THEN 'pending_approval'
       END AS kept_because
  FROM reconciliation_jobs j
 WHERE j.created_at < :before
   AND (CAST(:after_at AS timestamp) IS NULL OR (j.created_at, j.id) > (:after_at, :after_id))
 ORDER BY j.created_at, j.id
 LIMIT :limit
""").bindparams(bindparam("refs", type_=ARRAY(UUID(as_uuid=True))))


def _to_db(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _from_db(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


class PostgresRetentionRepository(PostgresRepository):
    entity_name = "retention"

    def organization_ids(self) -> Sequence[uuid.UUID]:
        with translate_errors(self.entity_name):
            rows = self._conn.execute(text("SELECT * FROM retention_organizations()")).all()
        return sorted((row[0] for row in rows), key=str)

    def pending_approval_metadata(self) -> Sequence[Mapping[str, Any]]:
        with translate_errors(self.entity_name):
            rows = self._conn.execute(text("SELECT metadata FROM approvals WHERE status = 'pending'")).all()
        return [dict(row[0] or {}) for row in rows]

    def expired_files(self, uploaded_before: dt.datetime, references: Collection[uuid.UUID], *,
                      after: tuple[dt.datetime, uuid.UUID] | None, limit: int) -> Sequence[ExpiredFile]:
        params = {"before": _to_db(uploaded_before), "refs": list(references), "limit": limit,
                  "after_at": _to_db(after[0]) if after else None, "after_id": after[1] if after else None}
        with translate_errors(self.entity_name):
            rows = self._conn.execute(_EXPIRED, params).all()
        return [ExpiredFile(file_id=row.id, uploaded_at=_from_db(row.uploaded_at), storage_path=row.storage_path,
                            normalized_paths=tuple(row.normalized_paths or ()), size_bytes=int(row.size_bytes),
                            checksum=row.checksum,
                            kept_because=KeptBecause(row.kept_because) if row.kept_because else None)
                for row in rows]

    def expired_jobs(self, created_before: dt.datetime, references: Collection[uuid.UUID], *,
                     after: tuple[dt.datetime, uuid.UUID] | None, limit: int) -> Sequence[ExpiredJob]:
        params = {"before": _to_db(created_before), "refs": list(references), "limit": limit,
                  "after_at": _to_db(after[0]) if after else None, "after_id": after[1] if after else None}
        with translate_errors(self.entity_name):
            rows = self._conn.execute(_EXPIRED_JOBS, params).all()
        return [ExpiredJob(job_id=row.id, created_at=_from_db(row.created_at), name=row.name, status=row.status,
                           kept_because=KeptBecause(row.kept_because) if row.kept_because else None)
                for row in rows]


if TYPE_CHECKING:
    _check: type[RetentionRepository] = PostgresRetentionRepository
