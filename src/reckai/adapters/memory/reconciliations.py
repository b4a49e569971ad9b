"""In-memory repositories for reconciliation jobs, results and rules (same contract as
`adapters.postgres.reconciliations`; tests/contracts/reconciliation_repositories.py runs over both)."""

from __future__ import annotations

import builtins
import csv
import dataclasses
import datetime as dt
import io
import json
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from reckai.adapters.memory.store import MemoryTransaction
from reckai.adapters.memory.workflow import MemoryExceptionRepository
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
from reckai.application.ports.workflow import MatchingRuleRow
from reckai.domain.exceptions.errors import InvalidWorkflowSettings
from reckai.domain.exceptions.inheritance import counterparts
from reckai.domain.exceptions.lifecycle import ExceptionItem, ExceptionStatus
from reckai.domain.exceptions.policy import WorkflowSettings, parse_workflow_settings
from reckai.domain.reconciliation.jobs import JobStatus, ReconciliationJob
from reckai.domain.reconciliation.rule_versions import RuleVersion as DomainRuleVersion
from reckai.domain.reconciliation.rule_versions import VersionStatus

JOBS = "reconciliation_jobs"
JOB_FILES = "reconciliation_job_files"
MATCHES = "reconciliation_matches"
EXCEPTIONS = "exceptions"
RULES = "matching_rules"
RULE_VERSIONS = "matching_rule_versions"
FILES = "reconciliation_files"

_EXCEPTION_TYPES = {"amount_mismatch", "date_mismatch", "missing_entry", "duplicate", "timing_difference",
                    "non_settlement"}
_SEVERITIES = {"low", "medium", "high", "critical"}


@dataclasses.dataclass(frozen=True)
class JobFileRow:
    job_id: uuid.UUID
    file_id: uuid.UUID
    organization_id: uuid.UUID
    side: str
    file_version: int | None = None
    created_at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class MatchRow:
    organization_id: uuid.UUID
    job_id: uuid.UUID
    attempt: int
    match: StoredMatch


class _Base:
    entity_name = "reconciliation_job"

    def __init__(self, uow: MemoryTransaction) -> None:
        self._uow = uow

    def _check_tenant(self, organization_id: uuid.UUID | None) -> None:
        if self._uow.organization_id is None or organization_id != self._uow.organization_id:
            raise TenantIsolationViolation(self.entity_name, organization_id, self._uow.organization_id)


class MemoryJobRepository(_Base):
    def add(self, job: ReconciliationJob) -> ReconciliationJob:
        self._check_tenant(job.organization_id)
        now = self._uow.now()
        stored = dataclasses.replace(job, created_at=job.created_at or now, updated_at=job.updated_at or now)
        self._uow.put(JOBS, job.id, stored)
        return stored

    def get(self, job_id: uuid.UUID) -> ReconciliationJob | None:
        row: ReconciliationJob | None = self._uow.get(JOBS, job_id)
        return row

    def get_for_update(self, job_id: uuid.UUID) -> ReconciliationJob | None:
        if self.get(job_id) is None:
            return None
        self._uow.lock_row(JOBS, job_id)
        return self.get(job_id)

    def update(self, job: ReconciliationJob) -> None:
        current = self.get(job.id)
        if current is None:
            raise EntityNotFound(self.entity_name, job.id)
        self._uow.put(JOBS, job.id, dataclasses.replace(
            job, organization_id=current.organization_id, created_by=current.created_by,
            created_at=current.created_at))

    def delete(self, job_id: uuid.UUID) -> bool:
        if self.get(job_id) is None:
            return False
        for table in (MATCHES, EXCEPTIONS, JOB_FILES):
            for key, row in list(self._uow.rows(table)):
                if row.job_id == job_id:
                    self._uow.remove(table, key)
        for key, row in list(self._uow.rows(EXCEPTIONS)):  # exceptions.inherited_from: ON DELETE SET NULL
            if row.inherited_from is not None and self._uow.get(EXCEPTIONS, row.inherited_from) is None:
                row.inherited_from = None
                self._uow.put(EXCEPTIONS, key, row)
        for key, row in list(self._uow.rows(FILES)):
            if getattr(row, "job_id", None) == job_id:
                self._uow.put(FILES, key, dataclasses.replace(row, job_id=None))
        self._uow.remove(JOBS, job_id)
        return True

    def list(self, job_filter: JobFilter, *, limit: int, offset: int) -> tuple[list[ReconciliationJob], int]:
        jobs = [job for _, job in self._uow.rows(JOBS) if _matches(job, job_filter)]
        jobs.sort(key=lambda j: (-(j.created_at or dt.datetime.min.replace(tzinfo=dt.UTC)).timestamp(), str(j.id)))
        return jobs[offset:offset + limit], len(jobs)

    def count_created_since(self, since: dt.datetime) -> int:
        return sum(1 for _, job in self._uow.rows(JOBS) if job.created_at and job.created_at >= since)

    def link_files(self, job_id: uuid.UUID, links: Sequence[JobFileLink]) -> None:
        organization_id = self._uow.organization_id
        self._check_tenant(organization_id)
        assert organization_id is not None
        for link in links:
            self._uow.put(JOB_FILES, (job_id, link.file_id), JobFileRow(job_id, link.file_id, organization_id,
                                                                        link.side, link.file_version, self._uow.now()))

    def linked_files(self, job_id: uuid.UUID) -> builtins.list[JobFileLink]:
        rows = [row for _, row in self._uow.rows(JOB_FILES) if row.job_id == job_id]
        return [JobFileLink(row.file_id, row.side, row.file_version) for row in sorted(rows, key=lambda r: r.side)]

    def record_file_version(self, job_id: uuid.UUID, file_id: uuid.UUID, version: int) -> None:
        row = self._uow.get(JOB_FILES, (job_id, file_id))
        if row is None:
            raise EntityNotFound("reconciliation_job_file", file_id)
        self._uow.put(JOB_FILES, (job_id, file_id), dataclasses.replace(row, file_version=version))

    def latest_for_files(self, left_file_id: uuid.UUID, right_file_id: uuid.UUID) -> uuid.UUID | None:
        sides: dict[uuid.UUID, set[tuple[str, uuid.UUID]]] = {}
        for _, row in self._uow.rows(JOB_FILES):
            sides.setdefault(row.job_id, set()).add((row.side, row.file_id))
        wanted = {("left", left_file_id), ("right", right_file_id)}
        jobs: builtins.list[ReconciliationJob] = [
            job for _, job in self._uow.rows(JOBS) if wanted <= sides.get(job.id, set())
        ]
        if not jobs:
            return None
        newest = max(jobs, key=lambda j: (j.created_at or dt.datetime.min.replace(tzinfo=dt.UTC)))
        return newest.id

    def find_stuck(self, limit: int, pending_after_seconds: int) -> builtins.list[StuckJob]:
        now = dt.datetime.now(dt.UTC)
        stuck = []
        for _, job in self._uow.all_rows(JOBS):
            expired = (job.status is JobStatus.PROCESSING and job.lease_expires_at is not None
                       and job.lease_expires_at < now)
            waiting = (job.status is JobStatus.PENDING and job.updated_at is not None
                       and (now - job.updated_at).total_seconds() > pending_after_seconds)
            if expired or waiting:
                stuck.append((job.updated_at, StuckJob(job.id, job.organization_id, job.status.value, job.attempt)))
        stuck.sort(key=lambda item: item[0] or now)
        return [item[1] for item in stuck[:limit]]


def _matches(job: ReconciliationJob, job_filter: JobFilter) -> bool:
    if job_filter.status is not None and job.status is not job_filter.status:
        return False
    if job_filter.created_from is not None and (job.created_at is None or job.created_at < job_filter.created_from):
        return False
    return not (job_filter.created_to is not None and job.created_at is not None
                and job.created_at >= job_filter.created_to)


def _csv_rows(chunks: Iterable[bytes], width: int) -> Iterable[list[str | None]]:
    text = b"".join(chunks).decode("utf-8")
    # Like COPY ... (FORMAT csv): an unquoted empty field is NULL, a quoted one ("") is "".
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if len(row) != width:
            raise ResultsRejected(f"line {number} has {len(row)} fields, expected {width}")
        yield [value if value != "" else None for value in row]


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ResultsRejected(f"not an integer: {value!r}") from None


class MemoryResultsRepository(_Base):
    entity_name = "reconciliation_results"

    def replace_results(self, job_id: uuid.UUID, attempt: int, matches: Iterable[bytes],
                        exceptions: Iterable[bytes]) -> tuple[int, int]:
        organization_id = self._uow.organization_id
        self._check_tenant(organization_id)
        assert organization_id is not None
        job = self._uow.get(JOBS, job_id)
        if job is None or job.status is not JobStatus.PROCESSING or job.attempt != attempt:
            # As reconciliation_store_matches: only the tenant's job being processed at this attempt.
            raise ResultsRejected(f"job {job_id} is not being processed at attempt {attempt} for this organization")
        staged: list[tuple[str, Any, Any]] = []
        now = self._uow.now()
        sla = self._workflow_settings(organization_id).sla
        for number, values in enumerate(_csv_rows(matches, len(MATCH_COLUMNS))):
            row = dict(zip(MATCH_COLUMNS, values, strict=True))
            if row["status"] not in ("auto", "suggested") or _int(row["left_row"]) is None:
                raise ResultsRejected(f"match line {number + 1} is not valid")
            try:
                confidence = Decimal(row["confidence"] or "")
            except InvalidOperation:
                raise ResultsRejected(f"match line {number + 1}: bad confidence") from None
            evidence = {name: (_int(row[name]) if name not in ("left_key", "right_key") else row[name])
                        for name in MATCH_COLUMNS[7:] if row[name] is not None}
            match = StoredMatch(row["status"], row["group_key"], int(row["left_row"] or 0), int(row["right_row"] or 0),
                                row["rule"] or "", int(row["rule_version"] or 0), confidence, evidence)
            staged.append((MATCHES, (job_id, number), MatchRow(organization_id, job_id, attempt, match)))
        for values in _csv_rows(exceptions, len(EXCEPTION_COLUMNS)):
            record: dict[str, Any] = dict(zip(EXCEPTION_COLUMNS, values, strict=True))
            if record["type"] not in _EXCEPTION_TYPES or record["severity"] not in _SEVERITIES or not record["description"]:
                raise ResultsRejected(f"exception of type {record['type']!r} is not valid")
            for name in ("left_row", "right_row", "amount_minor"):
                record[name] = _int(record[name])
            for name in ("left_file_id", "right_file_id"):
                record[name] = uuid.UUID(record[name]) if record[name] else None
            record["evidence"] = json.loads(record["evidence"]) if record["evidence"] else None
            record["transaction_date"] = dt.date.fromisoformat(record["transaction_date"]) if record["transaction_date"] else None
            for name in ("amount", "ai_confidence"):
                record[name] = Decimal(record[name]) if record[name] else None
            # The row the exception workflow reads (one `exceptions` table, as in PostgreSQL): open,
            # due by the organization's SLA from now.
            exception = ExceptionItem.new(organization_id=organization_id, job_id=job_id, created_at=now, sla=sla,
                                           **record)
            staged.append((EXCEPTIONS, exception.id, exception))
        for table in (MATCHES, EXCEPTIONS):
            for key, existing in list(self._uow.rows(table)):
                if existing.job_id == job_id:
                    self._uow.remove(table, key)
        for table, key, value in staged:
            self._uow.put(table, key, value)
        return (sum(1 for t, _, _ in staged if t == MATCHES), sum(1 for t, _, _ in staged if t == EXCEPTIONS))

    def inherit_exceptions(self, job_id: uuid.UUID, earlier_job_id: uuid.UUID, *, at: dt.datetime) -> int:
        self._check_tenant(self._uow.organization_id)
        # rows() lists a table in the order its rows were written, as ids order them in PostgreSQL
        new = [row for _, row in self._uow.rows(EXCEPTIONS) if row.job_id == job_id
               and row.status is ExceptionStatus.OPEN and row.inherited_from is None]
        earlier = {row.id: row for _, row in self._uow.rows(EXCEPTIONS) if row.job_id == earlier_job_id}
        pairs = counterparts(new, earlier.values())
        exceptions = MemoryExceptionRepository(self._uow)
        for item in new:
            if item.id not in pairs:
                continue
            source = earlier[pairs[item.id]]
            comments = exceptions.comments(source.id)
            entry = item.inherit(source, earlier_job_id=earlier_job_id, at=at, comments=len(comments))
            self._uow.put(EXCEPTIONS, item.id, item)
            exceptions.add_history(entry)
            for comment in comments:
                exceptions.add_comment(dataclasses.replace(comment, id=uuid.uuid4(), exception_id=item.id))
        return len(pairs)

    def _workflow_settings(self, organization_id: uuid.UUID) -> WorkflowSettings:
        organization = self._uow.get("organizations", organization_id)
        try:
            return parse_workflow_settings(getattr(organization, "settings", None))
        except InvalidWorkflowSettings:
            return WorkflowSettings()

    def list_matches(self, job_id: uuid.UUID, *, status: str, limit: int, offset: int = 0,
                     group_key: str | None = None, after: tuple[int, int] | None = None,
                     rows: tuple[Sequence[int], Sequence[int]] | None = None) -> list[StoredMatch]:
        found = [m for m in self._matches(job_id, status, group_key, rows)
                 if after is None or (m.left_row, m.right_row) > after]
        return found[offset:offset + limit]

    def count_matches(self, job_id: uuid.UUID, *, status: str, group_key: str | None = None,
                      rows: tuple[Sequence[int], Sequence[int]] | None = None) -> int:
        return len(self._matches(job_id, status, group_key, rows))

    def _matches(self, job_id: uuid.UUID, status: str, group_key: str | None,
                 rows: tuple[Sequence[int], Sequence[int]] | None = None) -> list[StoredMatch]:
        lefts, rights = (set(rows[0]), set(rows[1])) if rows is not None else (set(), set())
        found = [row.match for _, row in self._uow.rows(MATCHES)
                 if row.job_id == job_id and row.match.status == status
                 and (group_key is None or row.match.group_key == group_key)
                 and (rows is None or row.match.left_row in lefts or row.match.right_row in rights)]
        found.sort(key=lambda m: (m.left_row, m.right_row))
        return found

    def exception_counts(self, job_id: uuid.UUID) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, row in self._uow.rows(EXCEPTIONS):
            if row.job_id == job_id:
                counts[row.type] = counts.get(row.type, 0) + 1
        return counts

    def exception_rows(self, job_id: uuid.UUID) -> list[dict[str, Any]]:
        big = 1 << 62
        rows = [{"id": row.id, **{k: getattr(row, k) for k in ("type", "severity", "left_row", "right_row",
                                                                "amount_minor", "currency", "transaction_date",
                                                                "description")}}
                for _, row in self._uow.rows(EXCEPTIONS) if row.job_id == job_id]
        rows.sort(key=lambda r: (r["left_row"] if r["left_row"] is not None else big,
                                 r["right_row"] if r["right_row"] is not None else big, r["type"]))
        return rows


class MemoryRuleRepository(_Base):
    """Reads and writes the tables of the workflow's rule repository (`adapters.memory.workflow`):
    `matching_rules` (MatchingRuleRow) and `matching_rule_versions` (the domain's RuleVersion), as
    in PostgreSQL, so rules approved through /api/rules are the ones a job runs, and rules seeded
    here are listed and changed by /api/rules."""

    entity_name = "matching_rule"

    def active_versions(self, rule_ids: Sequence[uuid.UUID] | None = None) -> list[RuleVersion]:
        wanted = set(rule_ids) if rule_ids is not None else None
        rules = {rule.id: rule for _, rule in self._uow.rows(RULES) if rule.is_active
                 and (wanted is None or rule.id in wanted)}
        found = []
        for _, version in self._uow.rows(RULE_VERSIONS):
            rule = rules.get(version.rule_id)
            if rule is None or version.status is not VersionStatus.ACTIVE:
                continue
            definition = dict(version.definition)
            applies = definition.pop("applies_to", None)
            pair = (applies["left"], applies["right"]) if isinstance(applies, dict) else None
            found.append((rule.priority, rule.name, RuleVersion(rule.id, version.version, rule.name, definition, pair)))
        found.sort(key=lambda item: (item[0], item[1]))
        return [version for _, _, version in found]

    def add_version(self, rule: RuleVersion, *, created_by: uuid.UUID, priority: int = 0) -> None:
        organization_id = self._uow.organization_id
        self._check_tenant(organization_id)
        assert organization_id is not None
        definition = dict(rule.definition)
        if rule.applies_to is not None:
            definition["applies_to"] = {"left": rule.applies_to[0], "right": rule.applies_to[1]}
        now = self._uow.now()
        self._uow.put(RULES, rule.rule_id, MatchingRuleRow(
            id=rule.rule_id, organization_id=organization_id, name=rule.name,
            rule_type=str(definition.get("rule_type", "exact")), field_mappings=list(definition.get("field_mappings", [])),
            created_by=created_by, created_at=now, updated_at=now, is_active=True, priority=priority,
            conditions=definition.get("conditions"), approved_at=now))
        version = DomainRuleVersion(id=uuid.uuid4(), rule_id=rule.rule_id, organization_id=organization_id,
                                    version=rule.version, definition=definition, created_by=created_by, created_at=now,
                                    status=VersionStatus.ACTIVE, approved_at=now)
        self._uow.put(RULE_VERSIONS, version.id, version)



_check_jobs: type[JobRepository] = MemoryJobRepository
_check_results: type[ResultsRepository] = MemoryResultsRepository
_check_rules: type[RuleRepository] = MemoryRuleRepository
