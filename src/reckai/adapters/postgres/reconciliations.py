"""PostgreSQL repositories for reconciliation jobs, their bulk results and the rules they use.

Bulk results go through psycopg 3's COPY: COPY FROM cannot target a table under row-level
security, so each write COPYs the CSV chunks into a temporary table (dropped at commit) and moves
them with one INSERT ... SELECT (exceptions: checked by row-level security like any insert;
matches: through `reconciliation_store_matches`, which checks the job once instead of every row). Everything is in
the caller's transaction: the earlier rows of the job are deleted first, the new ones appear at
commit or not at all (docs/reconciliation-jobs.md).
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import text
from sqlalchemy.engine import Row, RowMapping
from sqlalchemy.exc import DBAPIError

from reckai.adapters.postgres.repository import PostgresRepository
from reckai.application.ports.reconciliations import (
    EXCEPTION_COLUMNS,
    MATCH_COLUMNS,
    JobFileLink,
    JobFilter,
    JobRepository,
    ResultsRejected,
    ResultsRepository,
    RuleRepository,
    RuleVersion,
    StoredMatch,
    StuckJob,
)
from reckai.application.ports.repositories import EntityNotFound, TenantIsolationViolation
from reckai.domain.exceptions.lifecycle import INHERIT_ACTION, INHERITED_FIELDS
from reckai.domain.reconciliation.jobs import JobStatus, ReconciliationJob

_JOB_COLUMNS = (
    "id", "organization_id", "name", "status", "progress", "total_rows", "processed_rows", "matched_rows",
    "exception_rows", "match_rate", "processing_time_seconds", "error_message", "created_by", "started_at",
    "completed_at", "created_at", "updated_at", "attempt", "max_attempts", "lease_owner", "lease_expires_at",
    "cancel_requested", "snapshot", "previous_job_id", "period_start", "period_end", "leading_side", "stage",
    "stage_seconds", "summary",
)
_TIMESTAMPS = ("started_at", "completed_at", "created_at", "updated_at", "lease_expires_at")
_JSON = ("snapshot", "stage_seconds", "summary")
_UPDATABLE = tuple(c for c in _JOB_COLUMNS if c not in ("id", "organization_id", "created_by", "created_at"))
_SELECT_JOB = f"SELECT {', '.join(_JOB_COLUMNS)} FROM reconciliation_jobs"


def _to_db_time(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given for a UTC timestamp column; use an aware datetime")
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _from_db_time(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.replace(tzinfo=dt.UTC)


def _job(row: Row[Any]) -> ReconciliationJob:
    values = dict(row._mapping)
    for name in _TIMESTAMPS:
        values[name] = _from_db_time(values[name])
    values["status"] = JobStatus(values["status"])
    values["snapshot"] = values["snapshot"] or {}
    values["stage_seconds"] = values["stage_seconds"] or {}
    values["progress"] = values["progress"] or 0
    for name in ("total_rows", "processed_rows", "matched_rows", "exception_rows"):
        values[name] = values[name] or 0
    return ReconciliationJob(**values)


def _job_params(job: ReconciliationJob, columns: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in columns:
        value = getattr(job, name)
        if name in _TIMESTAMPS:
            value = _to_db_time(value)
        elif name in _JSON:
            value = None if value is None else json.dumps(value)
        elif name == "status":
            value = value.value
        params[name] = value
    return params


def _placeholder(name: str) -> str:
    return f"CAST(:{name} AS jsonb)" if name in _JSON else f":{name}"


class PostgresJobRepository(PostgresRepository):
    entity_name = "reconciliation_job"

    def add(self, job: ReconciliationJob) -> ReconciliationJob:
        self._check_tenant(job.organization_id)
        columns = [c for c in _JOB_COLUMNS if not (c in ("created_at", "updated_at") and getattr(job, c) is None)]
        sql = (f"INSERT INTO reconciliation_jobs ({', '.join(columns)}) VALUES "
               f"({', '.join(_placeholder(c) for c in columns)}) RETURNING {', '.join(_JOB_COLUMNS)}")
        with self._write():
            row = self._conn.execute(text(sql), _job_params(job, columns)).one()
        return _job(row)

    def get(self, job_id: uuid.UUID) -> ReconciliationJob | None:
        row = self._conn.execute(text(f"{_SELECT_JOB} WHERE id = :id"), {"id": job_id}).first()
        return _job(row) if row else None

    def get_for_update(self, job_id: uuid.UUID) -> ReconciliationJob | None:
        row = self._conn.execute(text(f"{_SELECT_JOB} WHERE id = :id FOR UPDATE"), {"id": job_id}).first()
        return _job(row) if row else None

    def update(self, job: ReconciliationJob) -> None:
        sets = ", ".join(f"{c} = {_placeholder(c)}" for c in _UPDATABLE)
        params = _job_params(job, _UPDATABLE)
        params["id"] = job.id
        with self._write():
            result = self._conn.execute(text(f"UPDATE reconciliation_jobs SET {sets} WHERE id = :id"), params)
        if result.rowcount == 0:
            raise EntityNotFound(self.entity_name, job.id)

    def delete(self, job_id: uuid.UUID) -> bool:
        with self._write():
            # No foreign key on the bulk table (docs/reconciliation-jobs.md): its rows go explicitly.
            self._conn.execute(text("DELETE FROM reconciliation_matches WHERE job_id = :id"), {"id": job_id})
            self._conn.execute(text("UPDATE reconciliation_files SET job_id = NULL WHERE job_id = :id"),
                               {"id": job_id})
            result = self._conn.execute(text("DELETE FROM reconciliation_jobs WHERE id = :id"), {"id": job_id})
        return bool(result.rowcount)

    def list(self, job_filter: JobFilter, *, limit: int, offset: int) -> tuple[list[ReconciliationJob], int]:
        where: builtins.list[str] = ["TRUE"]
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if job_filter.status is not None:
            where.append("status = :status")
            params["status"] = job_filter.status.value
        if job_filter.created_from is not None:
            where.append("created_at >= :created_from")
            params["created_from"] = _to_db_time(job_filter.created_from)
        if job_filter.created_to is not None:
            where.append("created_at < :created_to")
            params["created_to"] = _to_db_time(job_filter.created_to)
        condition = " AND ".join(where)
        total = self._conn.execute(text(f"SELECT count(*) FROM reconciliation_jobs WHERE {condition}"),
                                   params).scalar_one()
        rows = self._conn.execute(text(f"{_SELECT_JOB} WHERE {condition} ORDER BY created_at DESC, id"
                                       " LIMIT :limit OFFSET :offset"), params).all()
        return [_job(row) for row in rows], int(total)

    def count_created_since(self, since: dt.datetime) -> int:
        return int(self._conn.execute(text("SELECT count(*) FROM reconciliation_jobs WHERE created_at >= :since"),
                                      {"since": _to_db_time(since)}).scalar_one())

    def link_files(self, job_id: uuid.UUID, links: Sequence[JobFileLink]) -> None:
        with self._write():
            for link in links:
                self._conn.execute(text(
                    "INSERT INTO reconciliation_job_files (job_id, file_id, organization_id, side, file_version)"
                    " VALUES (:job, :file, :org, :side, :version)"),
                    {"job": job_id, "file": link.file_id, "org": self._uow.organization_id, "side": link.side,
                     "version": link.file_version})

    def linked_files(self, job_id: uuid.UUID) -> builtins.list[JobFileLink]:
        rows = self._conn.execute(text(
            "SELECT file_id, side, file_version FROM reconciliation_job_files WHERE job_id = :job ORDER BY side"),
            {"job": job_id}).all()
        return [JobFileLink(row.file_id, row.side, row.file_version) for row in rows]

    def record_file_version(self, job_id: uuid.UUID, file_id: uuid.UUID, version: int) -> None:
        with self._write():
            result = self._conn.execute(text(
                "UPDATE reconciliation_job_files SET file_version = :version WHERE job_id = :job AND file_id = :file"),
                {"job": job_id, "file": file_id, "version": version})
        if result.rowcount == 0:
            raise EntityNotFound("reconciliation_job_file", file_id)

    def latest_for_files(self, left_file_id: uuid.UUID, right_file_id: uuid.UUID) -> uuid.UUID | None:
        row = self._conn.execute(text(
            "SELECT j.id FROM reconciliation_jobs j"
            " JOIN reconciliation_job_files l ON l.job_id = j.id AND l.side = 'left' AND l.file_id = :left"
            " JOIN reconciliation_job_files r ON r.job_id = j.id AND r.side = 'right' AND r.file_id = :right"
            " ORDER BY j.created_at DESC, j.id LIMIT 1"), {"left": left_file_id, "right": right_file_id}).first()
        return row.id if row else None

    def find_stuck(self, limit: int, pending_after_seconds: int) -> builtins.list[StuckJob]:
        rows = self._conn.execute(text("SELECT * FROM reconciliation_find_stuck_jobs(:limit, :pending)"),
                                  {"limit": limit, "pending": pending_after_seconds}).all()
        return [StuckJob(row.job_id, row.organization_id, row.status, row.attempt) for row in rows]


class PostgresResultsRepository(PostgresRepository):
    entity_name = "reconciliation_results"

    def replace_results(self, job_id: uuid.UUID, attempt: int, matches: Iterable[bytes],
                        exceptions: Iterable[bytes]) -> tuple[int, int]:
        organization_id = self._uow.organization_id
        if organization_id is None:
            raise TenantIsolationViolation(self.entity_name, None, None)
        connection = self._conn  # opens the transaction and sets the tenant
        raw = connection.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)  # the engine's driver is psycopg 3
        try:
            with connection.begin_nested():
                connection.execute(text("DELETE FROM reconciliation_matches WHERE job_id = :job"), {"job": job_id})
                connection.execute(text("DELETE FROM exceptions WHERE job_id = :job"), {"job": job_id})
                with raw.cursor() as cursor:
                    match_count = self._copy_matches(cursor, job_id, attempt, organization_id, matches)
                    exception_count = self._copy_exceptions(cursor, job_id, organization_id, exceptions)
                # the dashboard's rollups (migration 0019): fold the rows appended since the last job
                connection.execute(text("SELECT exception_rollups_compact()"))
        except DBAPIError as exc:
            raise ResultsRejected(f"{type(exc.orig).__name__}: {_first_line(exc.orig or exc)}") from exc
        except psycopg.Error as exc:
            raise ResultsRejected(f"{type(exc).__name__}: {_first_line(exc)}") from exc
        return match_count, exception_count

    @staticmethod
    def _copy_matches(cursor: psycopg.Cursor[Any], job_id: uuid.UUID, attempt: int,
                      organization_id: uuid.UUID, chunks: Iterable[bytes]) -> int:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS reckai_match_stage (status text, group_key text, left_row integer,"
            " right_row integer, rule text, rule_version integer, confidence numeric, amount_diff_minor bigint,"
            " day_delta integer, similarity_bp integer, left_key text, right_key text, members integer,"
            " fee_minor bigint) ON COMMIT DROP")
        cursor.execute("TRUNCATE reckai_match_stage")
        columns = ", ".join(MATCH_COLUMNS)
        _copy(cursor, f"COPY reckai_match_stage ({columns}) FROM STDIN WITH (FORMAT csv)", chunks)
        # The SECURITY DEFINER function checks once that the job is this tenant's and is being
        # processed at this attempt, then moves the rows without a per-row policy check.
        cursor.execute("GRANT SELECT ON reckai_match_stage TO reckai_system")
        cursor.execute("SELECT reconciliation_store_matches(%s, %s)", (job_id, attempt))
        row = cursor.fetchone()
        count = int(row[0]) if row else 0
        cursor.execute("TRUNCATE reckai_match_stage")
        return count

    @staticmethod
    def _copy_exceptions(cursor: psycopg.Cursor[Any], job_id: uuid.UUID, organization_id: uuid.UUID,
                         chunks: Iterable[bytes]) -> int:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS reckai_exception_stage (n bigint GENERATED ALWAYS AS IDENTITY,"
            " type text, severity text, amount numeric,"
            " currency text, transaction_date date, description text, ai_explanation text, ai_confidence numeric,"
            " suggested_action text, left_row integer, right_row integer, left_file_id uuid, right_file_id uuid,"
            " amount_minor bigint, evidence jsonb, reference text, reference_other text, secondary_reference text,"
            " secondary_reference_other text, masked_account text, channel text) ON COMMIT DROP")
        cursor.execute("TRUNCATE reckai_exception_stage RESTART IDENTITY")
        columns = ", ".join(EXCEPTION_COLUMNS)
        _copy(cursor, f"COPY reckai_exception_stage ({columns}) FROM STDIN WITH (FORMAT csv)", chunks)
        staged = ", ".join(f"s.{name}" for name in EXCEPTION_COLUMNS)
        # created_at and due_at are set here, for every row at once, with the formula of the trigger
        # exceptions_set_due_at (which then does not fire: 0009_bulk_persist); the organization's
        # settings are read once. Ids are time-ordered (UUID version 7: milliseconds, 40 random bits
        # drawn once per write, then the staged row's number `n`, in the order the chunks list the
        # rows: left row, right row), so the primary key and the indexes ordered by id take the new
        # rows side by side instead of at random places. No sort: the rows are moved as staged.
        cursor.execute(
            f"INSERT INTO exceptions (id, organization_id, job_id, status, created_at, due_at, {columns})"
            " SELECT (v.id_prefix || lpad(to_hex(s.n), 8, '0'))::uuid, %(org)s, %(job)s, 'open', v.now,"
            " v.now + make_interval(hours => exceptions_sla_hours(v.settings, s.severity)), " + staged +
            " FROM reckai_exception_stage s"
            " CROSS JOIN (SELECT now() AT TIME ZONE 'UTC' AS now,"
            "                    (SELECT o.settings FROM organizations o WHERE o.id = %(org)s) AS settings,"
            "                    lpad(to_hex(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')"
            "                    || '7' || substr(r.hex, 1, 3) || '8' || substr(r.hex, 4, 7) AS id_prefix"
            "               FROM (SELECT replace(gen_random_uuid()::text, '-', '') AS hex) r) v",
            {"org": organization_id, "job": job_id})
        count = int(cursor.rowcount)
        cursor.execute("TRUNCATE reckai_exception_stage RESTART IDENTITY")
        return count

    def inherit_exceptions(self, job_id: uuid.UUID, earlier_job_id: uuid.UUID, *, at: dt.datetime) -> int:
        if self._uow.organization_id is None:
            raise TenantIsolationViolation(self.entity_name, None, None)
        try:
            with self._conn.begin_nested():
                count = int(self._conn.execute(text(_INHERIT), {
                    "job": job_id, "earlier": earlier_job_id, "earlier_text": str(earlier_job_id),
                    "at": _to_db_time(at)}).scalar_one())
                if count:  # the rollups' delta rows of the UPDATE, folded as after the COPY
                    self._conn.execute(text("SELECT exception_rollups_compact()"))
        except DBAPIError as exc:
            raise ResultsRejected(f"{type(exc.orig).__name__}: {_first_line(exc.orig or exc)}") from exc
        return count

    def list_matches(self, job_id: uuid.UUID, *, status: str, limit: int, offset: int = 0,
                     group_key: str | None = None, after: tuple[int, int] | None = None,
                     rows: tuple[Sequence[int], Sequence[int]] | None = None) -> list[StoredMatch]:
        condition, params = self._match_filter(job_id, status, group_key, rows)
        if after is not None:  # a row comparison the paging index (job_id, status, left_row, right_row) serves
            condition += " AND (left_row, right_row) > (:after_left, :after_right)"
            params.update(after_left=after[0], after_right=after[1])
        found = self._conn.execute(text(
            f"SELECT {', '.join(MATCH_COLUMNS)} FROM reconciliation_matches WHERE {condition}"
            " ORDER BY left_row, right_row LIMIT :limit OFFSET :offset"),
            {**params, "limit": limit, "offset": offset}).all()
        return [_stored_match(row._mapping) for row in found]

    def count_matches(self, job_id: uuid.UUID, *, status: str, group_key: str | None = None,
                      rows: tuple[Sequence[int], Sequence[int]] | None = None) -> int:
        condition, params = self._match_filter(job_id, status, group_key, rows)
        return int(self._conn.execute(text(f"SELECT count(*) FROM reconciliation_matches WHERE {condition}"),
                                      params).scalar_one())

    @staticmethod
    def _match_filter(job_id: uuid.UUID, status: str, group_key: str | None,
                      rows: tuple[Sequence[int], Sequence[int]] | None = None) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"job": job_id, "status": status}
        condition = "job_id = :job AND status = :status"
        if group_key is not None:
            condition += " AND group_key = :group"
            params["group"] = group_key
        if rows is not None:
            condition += (" AND (left_row = ANY(CAST(:lefts AS integer[]))"
                          " OR right_row = ANY(CAST(:rights AS integer[])))")
            params.update(lefts=list(rows[0]), rights=list(rows[1]))
        return condition, params

    def exception_counts(self, job_id: uuid.UUID) -> dict[str, int]:
        rows = self._conn.execute(text("SELECT type, count(*) AS n FROM exceptions WHERE job_id = :job GROUP BY type"),
                                  {"job": job_id}).all()
        return {row.type: int(row.n) for row in rows}

    def exception_rows(self, job_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = self._conn.execute(text(
            "SELECT id, type, severity, left_row, right_row, amount_minor, currency, transaction_date, description"
            " FROM exceptions WHERE job_id = :job ORDER BY left_row NULLS LAST, right_row NULLS LAST, type"),
            {"job": job_id}).all()
        return [dict(row._mapping) for row in rows]


# ResultsRepository.inherit_exceptions in one statement: pair the job's open exceptions with the
# earlier job's by key (the n-th of a key with the n-th, in id order: the order the COPY wrote them),
# copy the state (lifecycle.INHERITED_FIELDS) with one UPDATE ... FROM, then from its RETURNING write
# one history entry each (the JSON of lifecycle.inheritance_changes) and copy the comments.
# The pairs come from one GROUP BY over both jobs' rows (key, ordinal), never from a join of the two
# sets: the rows were written in this transaction, so the planner has no statistics for them and
# would join two "one-row" sets with a nested loop, quadratic in the number of exceptions (a 200k-row
# job stalled). GROUP BY keeps NULL keys together, like the domain's tuple key.
_INHERITED = ", ".join(f"{name} = e.{name}" for name in INHERITED_FIELDS)
_INHERIT = f"""
WITH keyed AS (
    SELECT id, job_id, type, left_file_id, left_row, right_file_id, right_row,
           row_number() OVER (PARTITION BY job_id, type, left_file_id, left_row, right_file_id, right_row
                              ORDER BY id) AS k
      FROM exceptions
     WHERE (job_id = :job AND status = 'open' AND inherited_from IS NULL) OR job_id = :earlier
), grouped AS (
    SELECT (array_agg(id) FILTER (WHERE job_id = :job))[1] AS new_id,
           (array_agg(id) FILTER (WHERE job_id = :earlier))[1] AS old_id
      FROM keyed GROUP BY type, left_file_id, left_row, right_file_id, right_row, k
), pairs AS (
    SELECT new_id, old_id FROM grouped WHERE new_id IS NOT NULL AND old_id IS NOT NULL
), inherited AS (
    UPDATE exceptions n SET {_INHERITED}, inherited_from = e.id, updated_at = CAST(:at AS timestamp)
      FROM pairs p JOIN exceptions e ON e.id = p.old_id
     WHERE n.id = p.new_id
    RETURNING n.id, n.organization_id, n.status, n.inherited_from
), comments AS (
    INSERT INTO exception_comments (id, organization_id, exception_id, user_id, content, created_at)
    SELECT gen_random_uuid(), c.organization_id, i.id, c.user_id, c.content, c.created_at
      FROM inherited i JOIN exception_comments c ON c.exception_id = i.inherited_from
), history AS (
    INSERT INTO exception_history (organization_id, exception_id, action, actor_id, from_status, to_status,
                                   changes, created_at)
    SELECT i.organization_id, i.id, '{INHERIT_ACTION}', NULL, 'open', i.status,
           jsonb_build_object('inherited_from', i.inherited_from::text, 'earlier_job_id', CAST(:earlier_text AS text),
                              'status', i.status,
                              'comments_copied', (SELECT count(*) FROM exception_comments c
                                                   WHERE c.exception_id = i.inherited_from),
                              'by', 'system',
                              'note', 'inherited from exception ' || i.inherited_from::text || ' of job '
                                      || CAST(:earlier_text AS text)),
           CAST(:at AS timestamp)
      FROM inherited i
)
SELECT count(*) FROM inherited
"""


def _copy(cursor: psycopg.Cursor[Any], statement: str, chunks: Iterable[bytes]) -> None:
    # A writer thread sends each chunk while the next one is produced (polars releases the GIL),
    # so the server is not idle while the worker builds CSV text.
    with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
        for chunk in chunks:
            copy.write(chunk)


_EVIDENCE_FIELDS = ("amount_diff_minor", "day_delta", "similarity_bp", "left_key", "right_key", "members",
                    "fee_minor")


def _stored_match(values: RowMapping) -> StoredMatch:
    evidence = {name: values[name] for name in _EVIDENCE_FIELDS if values[name] is not None}
    return StoredMatch(status=values["status"], group_key=values["group_key"], left_row=values["left_row"],
                       right_row=values["right_row"], rule=values["rule"], rule_version=values["rule_version"],
                       confidence=Decimal(values["confidence"]), evidence=evidence)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


class PostgresRuleRepository(PostgresRepository):
    entity_name = "matching_rule"

    def active_versions(self, rule_ids: Sequence[uuid.UUID] | None = None) -> list[RuleVersion]:
        sql = ("SELECT r.id AS rule_id, v.version, r.name, v.definition FROM matching_rules r"
               " JOIN matching_rule_versions v ON v.rule_id = r.id AND v.status = 'active'"
               " WHERE r.is_active")
        params: dict[str, Any] = {}
        if rule_ids is not None:
            sql += " AND r.id = ANY(:ids)"
            params["ids"] = list(rule_ids)
        rows = self._conn.execute(text(sql + " ORDER BY r.priority, r.name"), params).all()
        versions = []
        for row in rows:
            definition = dict(row.definition)
            applies = definition.pop("applies_to", None)
            pair = (applies["left"], applies["right"]) if isinstance(applies, dict) else None
            versions.append(RuleVersion(row.rule_id, row.version, row.name, definition, pair))
        return versions

    def add_version(self, rule: RuleVersion, *, created_by: uuid.UUID, priority: int = 0) -> None:
        definition = dict(rule.definition)
        if rule.applies_to is not None:
            definition["applies_to"] = {"left": rule.applies_to[0], "right": rule.applies_to[1]}
        with self._write():
            self._conn.execute(text(
                "INSERT INTO matching_rules (id, organization_id, name, rule_type, is_active, priority,"
                " field_mappings, conditions, created_by, approved_at)"
                " VALUES (:id, :org, :name, :type, true, :priority, CAST(:fields AS jsonb), CAST(:conditions AS jsonb),"
                " :by, now())"),
                {"id": rule.rule_id, "org": self._uow.organization_id, "name": rule.name,
                 "type": definition.get("rule_type", "exact"), "priority": priority,
                 "fields": json.dumps(definition.get("field_mappings", [])),
                 "conditions": json.dumps(definition.get("conditions")), "by": created_by})
            self._conn.execute(text(
                "INSERT INTO matching_rule_versions (rule_id, organization_id, version, status, definition,"
                " created_by, approved_at) VALUES (:id, :org, :version, 'active', CAST(:definition AS jsonb), :by, now())"),
                {"id": rule.rule_id, "org": self._uow.organization_id, "version": rule.version,
                 "definition": json.dumps(definition), "by": created_by})



_check_jobs: type[JobRepository] = PostgresJobRepository
_check_results: type[ResultsRepository] = PostgresResultsRepository
_check_rules: type[RuleRepository] = PostgresRuleRepository
