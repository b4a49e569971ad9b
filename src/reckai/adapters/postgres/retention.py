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
from reckai.application.ports.retention import ExpiredApproval, ExpiredFile, ExpiredJob, RetentionRepository
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

# A record an approval authorised, pointing at it without a cascade (the tables with a foreign key
# to approvals). The delete function refuses those anyway (foreign_key_violation -> false); listing
# them here lets the dry run say why.
_AUTHORISED_RECORD = """(
    EXISTS (SELECT 1 FROM matching_rules r WHERE r.approval_id = a.id)
 OR EXISTS (SELECT 1 FROM matching_rule_versions v WHERE v.approval_id = a.id)
 OR EXISTS (SELECT 1 FROM reports p WHERE p.approval_id = a.id)
 OR EXISTS (SELECT 1 FROM stream_periods s WHERE s.close_approval_id = a.id OR s.reopen_approval_id = a.id)
 OR EXISTS (SELECT 1 FROM stream_period_adjustments d WHERE d.approval_id = a.id)
 OR EXISTS (SELECT 1 FROM data_exports x WHERE x.approval_id = a.id))"""
# Every UUID in the metadata (as domain.retention.referenced_ids reads it), for the open-exception check.
_NAMED_IDS = ("(SELECT m[1]::uuid FROM regexp_matches(a.metadata::text, "
              "'([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})', 'g') AS m)")

_EXPIRED_APPROVALS = text(f"""
SELECT a.id, a.reviewed_at, a.type, a.status,
       CASE
         WHEN {_AUTHORISED_RECORD} THEN 'authorises_record'
         WHEN EXISTS (SELECT 1 FROM exceptions e WHERE e.id IN {_NAMED_IDS}
                         AND e.status IN ('open', 'in_progress', 'escalated')) THEN 'open_exception'
         WHEN a.id = ANY(:refs) THEN 'pending_approval'
       END AS kept_because
  FROM approvals a
 WHERE a.status IN ('approved', 'declined', 'cancelled')
   AND a.reviewed_at < :before
   AND (CAST(:after_at AS timestamp) IS NULL OR (a.reviewed_at, a.id) > (:after_at, :after_id))
 ORDER BY a.reviewed_at, a.id
 LIMIT :limit
""").bindparams(bindparam("refs", type_=ARRAY(UUID(as_uuid=True))))

# A session ends at the earliest of its idle expiry, absolute expiry and revocation (LEAST skips NULLs).
_ENDED_SESSIONS = text("""
SELECT s.id FROM user_sessions s
 WHERE LEAST(s.expires_at, s.absolute_expires_at, s.revoked_at) < :before
   AND (CAST(:after AS uuid) IS NULL OR s.id > :after)
 ORDER BY s.id
 LIMIT :limit
""")


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

    def expired_approvals(self, decided_before: dt.datetime, references: Collection[uuid.UUID], *,
                          after: tuple[dt.datetime, uuid.UUID] | None, limit: int) -> Sequence[ExpiredApproval]:
        params = {"before": _to_db(decided_before), "refs": list(references), "limit": limit,
                  "after_at": _to_db(after[0]) if after else None, "after_id": after[1] if after else None}
        with translate_errors(self.entity_name):
            rows = self._conn.execute(_EXPIRED_APPROVALS, params).all()
        return [ExpiredApproval(approval_id=row.id, decided_at=_from_db(row.reviewed_at), type=row.type,
                                status=row.status,
                                kept_because=KeptBecause(row.kept_because) if row.kept_because else None)
                for row in rows]

    def delete_approval(self, approval_id: uuid.UUID, decided_before: dt.datetime) -> bool:
        with translate_errors(self.entity_name):
            return bool(self._conn.execute(text("SELECT retention_delete_approval(:id, :before)"),
                                           {"id": approval_id, "before": _to_db(decided_before)}).scalar_one())

    def ended_sessions(self, ended_before: dt.datetime, *, after: uuid.UUID | None,
                       limit: int) -> Sequence[uuid.UUID]:
        with translate_errors(self.entity_name):
            rows = self._conn.execute(_ENDED_SESSIONS, {"before": _to_db(ended_before), "after": after,
                                                        "limit": limit}).all()
        return [row.id for row in rows]

    def delete_sessions(self, session_ids: Collection[uuid.UUID]) -> int:
        if not session_ids:
            return 0
        statement = text("DELETE FROM user_sessions WHERE id = ANY(:ids)").bindparams(
            bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))
        with translate_errors(self.entity_name):
            return int(self._conn.execute(statement, {"ids": list(session_ids)}).rowcount)


if TYPE_CHECKING:
    _check: type[RetentionRepository] = PostgresRetentionRepository
