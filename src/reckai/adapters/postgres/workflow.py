"""PostgreSQL workflow repositories (application/ports/workflow.py) over the tenant-bound connection.

Row-level security does the tenant filtering; the statements still name `organization_id` where
an index leads with it, so the planner can use it. TIMESTAMP columns hold naive UTC (docs/schema.md):
values go in aware and come back made aware here. Lists are bounded: OFFSET at most MAX_OFFSET,
keyset (`after`) beyond, and counts stop at COUNT_CAP, so a list screen over millions of
exceptions reads one index range, never the whole table.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR
from typing import Any, overload

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import Row

from reckai.adapters.postgres.personal_data import organization_key, translate_personal_data_errors
from reckai.adapters.postgres.repository import PostgresRepository
from reckai.adapters.security.personal_data import PERSONAL_METADATA, open_metadata, seal_metadata
from reckai.application.ports.reconciliations import SEARCH_KEY_COLUMNS
from reckai.application.ports.repositories import DuplicateEntity, EntityNotFound
from reckai.application.ports.workflow import (
    COUNT_CAP,
    ApprovalQuery,
    ApprovalRepository,
    DeclinedPairs,
    ExceptionQuery,
    ExceptionRepository,
    MatchingRuleRow,
    MatchRepository,
    Page,
    RuleRepository,
)
from reckai.domain.approvals.workflow import Approval, ApprovalStatus, ApprovalType
from reckai.domain.exceptions.lifecycle import Comment, ExceptionItem, ExceptionStatus, HistoryEntry
from reckai.domain.exceptions.manual_matching import DeclinedPair, MatchGroup, MatchMember, RowRef
from reckai.domain.exceptions.search import prefix_upper_bound
from reckai.domain.reconciliation.rule_versions import RuleVersion, VersionStatus


@overload
def _aware(value: dt.datetime) -> dt.datetime: ...
@overload
def _aware(value: None) -> None: ...
def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


class _Base(PostgresRepository):
    entity_name = "workflow"

    def _page(self, sql: str, params: dict[str, Any], order: str, limit: int,
              offset: int) -> tuple[Sequence[Row[Any]], int, bool]:
        rows = self._conn.execute(text(f"{sql} ORDER BY {order} LIMIT :limit OFFSET :offset"),
                                  {**params, "limit": limit, "offset": offset}).all()
        total = self._conn.execute(text(f"SELECT count(*) FROM ({sql} LIMIT {COUNT_CAP}) AS bounded"),
                                   params).scalar_one()
        return rows, int(total), int(total) >= COUNT_CAP


# --- exceptions --------------------------------------------------------------------------------

_EXC_COLUMNS = ("id", "organization_id", "job_id", "type", "severity", "status", "amount", "currency",
                "transaction_date", "description", "ai_explanation", "ai_confidence", "suggested_action",
                "assigned_to", "resolved_by", "resolved_at", "created_at", "updated_at", "due_at", "resolution_code",
                "resolution_note", "severity_reason", "escalated_at", "left_file_id", "left_row", "right_file_id",
                "right_row", "amount_minor", "evidence", *SEARCH_KEY_COLUMNS, "inherited_from")
_EXC_UPDATABLE = ("severity", "status", "assigned_to", "resolved_by", "resolved_at", "updated_at", "due_at",
                  "resolution_code", "resolution_note", "severity_reason", "escalated_at")
_SELECT_EXC = f"SELECT {', '.join(_EXC_COLUMNS)} FROM exceptions"
_SEVERITY_RANK = "array_position(ARRAY['low','medium','high','critical']::varchar[], severity)"
_SORTS = {"created_at": "created_at", "due_at": "due_at", "updated_at": "updated_at", "amount": "abs(amount)",
          "severity": _SEVERITY_RANK, "transaction_date": "transaction_date"}
_KEYSET_SORTS = ("created_at", "due_at", "updated_at")


# ExceptionRepository.report_csv: REPORT_EXCEPTION_COLUMNS (times in microseconds since the epoch,
# dates in days since 1970-01-01)
_MICROS = "(extract(epoch FROM {0}) * 1000000)::bigint AS {1}"
_REPORT_SELECT = (
    "SELECT id, job_id, type, severity, status, upper(coalesce(currency, 'NGN')) AS currency, amount, amount_minor,"
    " exceptions_earliest_date(transaction_date, evidence) - DATE '1970-01-01' AS earliest_day, "
    + ", ".join(_MICROS.format(f"{c}_at", f"{c}_us") for c in ("created", "due", "resolved", "escalated"))
    + ", coalesce(assigned_to::text, 'unassigned') AS assigned_to, description,"
    " coalesce(ai_explanation, '') AS explanation FROM exceptions")
_PARAMETER = re.compile(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)")


def _with_literals(clause: str, params: dict[str, Any]) -> sql.Composed:
    """`clause` with each `:name` replaced by its value as a literal (psycopg quotes it)."""
    parts: list[sql.Composable] = []
    position = 0
    for found in _PARAMETER.finditer(clause):
        parts += [sql.SQL(clause[position:found.start()]), sql.Literal(params[found[1]])]
        position = found.end()
    parts.append(sql.SQL(clause[position:]))
    return sql.Composed(parts)


def _exception(row: Row[Any]) -> ExceptionItem:
    m = dict(row._mapping)
    m["status"] = ExceptionStatus(m["status"])
    for key in ("resolved_at", "created_at", "updated_at", "due_at", "escalated_at"):
        m[key] = _aware(m[key])
    return ExceptionItem(**m)


def _exception_params(item: ExceptionItem, columns: Iterable[str]) -> dict[str, Any]:
    params = {}
    for column in columns:
        value = getattr(item, column)
        if column == "status":
            value = value.value
        elif column == "evidence":
            value = _json(value)
        params[column] = value
    return params


class PostgresExceptionRepository(_Base):
    entity_name = "exception"

    def add(self, exception: ExceptionItem) -> None:
        self._check_tenant(exception.organization_id)
        columns = [c for c in _EXC_COLUMNS if getattr(exception, c) is not None]
        values = ", ".join("CAST(:evidence AS jsonb)" if c == "evidence" else f":{c}" for c in columns)
        with self._write():
            self._conn.execute(text(f"INSERT INTO exceptions ({', '.join(columns)}) VALUES ({values})"),
                               _exception_params(exception, columns))

    def get(self, exception_id: uuid.UUID) -> ExceptionItem | None:
        row = self._conn.execute(text(f"{_SELECT_EXC} WHERE id = :id"), {"id": exception_id}).first()
        return _exception(row) if row else None

    def get_for_update(self, exception_id: uuid.UUID) -> ExceptionItem | None:
        row = self._conn.execute(text(f"{_SELECT_EXC} WHERE id = :id FOR UPDATE"), {"id": exception_id}).first()
        return _exception(row) if row else None

    def update(self, exception: ExceptionItem) -> None:
        sets = ", ".join(f"{c} = :{c}" for c in _EXC_UPDATABLE)
        with self._write():
            result = self._conn.execute(text(f"UPDATE exceptions SET {sets} WHERE id = :id"),
                                        {**_exception_params(exception, _EXC_UPDATABLE), "id": exception.id})
        if result.rowcount == 0:
            raise EntityNotFound("exception", exception.id)

    def _filters(self, query: ExceptionQuery) -> tuple[list[str], dict[str, Any]]:
        where: list[str] = ["organization_id = :org"]
        params: dict[str, Any] = {"org": self._uow.organization_id}
        if query.statuses:
            where.append("status = ANY(:statuses)")
            params["statuses"] = list(query.statuses)
        if query.severities:
            where.append("severity = ANY(:severities)")
            params["severities"] = list(query.severities)
        if query.types:
            where.append("type = ANY(:types)")
            params["types"] = list(query.types)
        simple = {"job_id = :job_id": query.job_id, "assigned_to = :assigned_to": query.assigned_to,
                  # |amount| in hundredths (0014: a BIGINT the index serves under row-level security)
                  "amount_cents >= :cents_min": None if query.amount_min is None else
                  int((query.amount_min * 100).to_integral_value(ROUND_CEILING)),
                  "amount_cents <= :cents_max": None if query.amount_max is None else
                  int((query.amount_max * 100).to_integral_value(ROUND_FLOOR)),
                  "transaction_date >= :date_from": query.date_from, "transaction_date <= :date_to": query.date_to,
                  "created_at >= :created_from": query.created_from, "created_at < :created_to": query.created_to}
        for clause, value in simple.items():
            if value is not None:
                where.append(clause)
                params[clause.split(":")[1]] = value
        if query.unassigned:
            where.append("assigned_to IS NULL")
        # Search keys: each side's column has a partial index (organization_id, key) WHERE key IS
        # NOT NULL; the columns are COLLATE "C", so a prefix is the index range [prefix, bound).
        for name in ("reference", "secondary_reference"):
            exact, prefix = getattr(query, name), getattr(query, f"{name}_prefix")
            if exact is not None:
                where.append(f"({name} = :{name}_eq OR ({name}_other IS NOT NULL AND {name}_other = :{name}_eq))")
                params[f"{name}_eq"] = exact
            if prefix is not None:
                bound = prefix_upper_bound(prefix)
                ranges = []
                for column in (name, f"{name}_other"):
                    upper = f" AND {column} < :{name}_below" if bound is not None else ""
                    ranges.append(f"({column} IS NOT NULL AND {column} >= :{name}_from{upper})")
                where.append(f"({' OR '.join(ranges)})")
                params[f"{name}_from"] = prefix
                if bound is not None:
                    params[f"{name}_below"] = bound
        if query.masked_account is not None:
            where.append("masked_account = :masked_account")
            params["masked_account"] = query.masked_account
        if query.channels:
            where.append("channel IS NOT NULL AND channel = ANY(:channels)")
            params["channels"] = list(query.channels)
        if query.overdue_at is not None:
            where.append("status IN ('open', 'in_progress', 'escalated') AND due_at <= :overdue_at")
            params["overdue_at"] = query.overdue_at
        return where, params

    def _keyset(self, query: ExceptionQuery, where: list[str], params: dict[str, Any]) -> None:
        if query.after is not None:
            if query.sort not in _KEYSET_SORTS:
                raise ValueError(f"a cursor works with sort {_KEYSET_SORTS}")
            where.append(f"({_SORTS[query.sort]}, id) {'<' if query.descending else '>'} (:after_value, :after_id)")
            params["after_value"], params["after_id"] = query.after

    def _plan_for_the_values(self) -> None:
        """Plan this transaction's statements for their values (issue 16). psycopg prepares a
        statement run five times, and PostgreSQL may then keep one generic plan for every value:
        for a search, the plan of an average value, i.e. walk the newest rows and filter, which for
        a rare channel or a narrow amount range reads the whole organization (1 s at 1M rows).
        Planning a list statement costs a fraction of a millisecond."""
        self._conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))

    def list(self, query: ExceptionQuery) -> Page[ExceptionItem]:
        self._plan_for_the_values()
        where, params = self._filters(query)
        base_where = list(where)
        direction = "DESC" if query.descending else "ASC"
        expression = _SORTS[query.sort]
        self._keyset(query, where, params)
        nulls = " NULLS LAST" if query.sort in ("amount", "transaction_date") else ""
        order = f"{expression} {direction}{nulls}, id {direction}"
        rows = self._conn.execute(text(f"{_SELECT_EXC} WHERE {' AND '.join(where)} ORDER BY {order}"
                                       " LIMIT :limit OFFSET :offset"),
                                  {**params, "limit": query.limit, "offset": query.offset}).all()
        total = self._conn.execute(text(f"SELECT count(*) FROM (SELECT 1 FROM exceptions WHERE {' AND '.join(base_where)}"
                                        f" LIMIT {COUNT_CAP}) AS bounded"), params).scalar_one()
        return Page([_exception(r) for r in rows], int(total), int(total) >= COUNT_CAP)

    def list_batch(self, query: ExceptionQuery, size: int) -> Sequence[ExceptionItem]:
        if query.sort not in _KEYSET_SORTS:
            raise ValueError(f"batches are read in keyset order: sort {_KEYSET_SORTS}")
        self._plan_for_the_values()
        where, params = self._filters(query)
        self._keyset(query, where, params)
        direction = "DESC" if query.descending else "ASC"
        rows = self._conn.execute(text(f"{_SELECT_EXC} WHERE {' AND '.join(where)}"
                                       f" ORDER BY {_SORTS[query.sort]} {direction}, id {direction} LIMIT :size"),
                                  {**params, "size": size})
        return [_exception(r) for r in rows]  # row by row: a batch is not held twice (rows and items)

    def report_csv(self, query: ExceptionQuery) -> bytes:
        """One COPY of the selected columns (the tenant's transaction: row-level security applies);
        COPY takes no bind parameters, so the filters' values are rendered as literals by psycopg."""
        where, params = self._filters(query)
        condition = sql.SQL(" AND ").join(_with_literals(clause, params) for clause in where)
        statement = sql.SQL("COPY ({} WHERE {} ORDER BY created_at, id) TO STDOUT WITH (FORMAT csv, HEADER)").format(
            sql.SQL(_REPORT_SELECT), condition)
        raw = self._conn.connection.driver_connection
        assert raw is not None
        out = bytearray()
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for chunk in copy:
                out += chunk
        return bytes(out)

    def about_rows(self, job_id: uuid.UUID, rows: Iterable[RowRef]) -> Sequence[ExceptionItem]:
        refs = list(rows)
        if not refs:
            return []
        found = self._conn.execute(text(
            f"{_SELECT_EXC} WHERE job_id = :job AND status IN ('open', 'in_progress', 'escalated') AND ("
            " (left_file_id, left_row) IN (SELECT * FROM unnest(CAST(:files AS uuid[]), CAST(:rows AS integer[])))"
            " OR (right_file_id, right_row) IN (SELECT * FROM unnest(CAST(:files AS uuid[]), CAST(:rows AS integer[]))))"
            " ORDER BY id"),
            {"job": job_id, "files": [r.file_id for r in refs], "rows": [r.row_number for r in refs]}).all()
        return [_exception(r) for r in found]

    def overdue_ids(self, now: dt.datetime, limit: int) -> Sequence[uuid.UUID]:
        rows = self._conn.execute(text(
            "SELECT id FROM exceptions WHERE organization_id = :org AND status IN ('open', 'in_progress')"
            " AND due_at <= :now ORDER BY due_at, id LIMIT :limit"),
            {"org": self._uow.organization_id, "now": now, "limit": limit}).all()
        return [r.id for r in rows]

    def organizations_with_overdue(self, now: dt.datetime) -> Sequence[uuid.UUID]:
        rows = self._conn.execute(text("SELECT * FROM workflow_overdue_organizations(:now)"),
                                  {"now": now.astimezone(dt.UTC).replace(tzinfo=None)}).all()
        return sorted((r[0] for r in rows), key=str)

    def add_history(self, entry: HistoryEntry) -> None:
        with self._write():
            self._conn.execute(text(
                "INSERT INTO exception_history (id, organization_id, exception_id, action, actor_id, from_status,"
                " to_status, reason, changes, created_at) VALUES (:id, :org, :exception_id, :action, :actor,"
                " :from_status, :to_status, :reason, CAST(:changes AS jsonb), :at)"),
                {"id": entry.id, "org": self._uow.organization_id, "exception_id": entry.exception_id,
                 "action": entry.action, "actor": entry.actor_id, "from_status": entry.from_status,
                 "to_status": entry.to_status, "reason": entry.reason, "changes": _json(entry.changes), "at": entry.at})

    def history(self, exception_id: uuid.UUID) -> Sequence[HistoryEntry]:
        rows = self._conn.execute(text(
            "SELECT * FROM exception_history WHERE exception_id = :id ORDER BY created_at, seq"),
            {"id": exception_id}).all()
        return [HistoryEntry(r.exception_id, r.action, r.actor_id, _aware(r.created_at), r.from_status,
                             r.to_status, r.reason, dict(r.changes or {}), r.id) for r in rows]

    def add_comment(self, comment: Comment) -> None:
        self._check_tenant(comment.organization_id)
        with self._write():
            self._conn.execute(text(
                "INSERT INTO exception_comments (id, organization_id, exception_id, user_id, content, created_at)"
                " VALUES (:id, :org, :exception_id, :user_id, :content, :at)"),
                {"id": comment.id, "org": comment.organization_id, "exception_id": comment.exception_id,
                 "user_id": comment.user_id, "content": comment.content, "at": comment.created_at})

    def comments(self, exception_id: uuid.UUID) -> Sequence[Comment]:
        rows = self._conn.execute(text(
            "SELECT * FROM exception_comments WHERE exception_id = :id ORDER BY created_at, id"),
            {"id": exception_id}).all()
        return [Comment(r.id, r.organization_id, r.exception_id, r.user_id, r.content, _aware(r.created_at))
                for r in rows]


# --- approvals ---------------------------------------------------------------------------------

_APPROVAL_COLUMNS = ("id", "organization_id", "type", "status", "title", "description", "metadata", "requested_by",
                     "requested_at", "reviewed_by", "reviewed_at", "review_comments", "created_at", "updated_at")
_SELECT_APPROVAL = f"SELECT {', '.join(_APPROVAL_COLUMNS)} FROM approvals"


def _approval(row: Row[Any]) -> Approval:
    m = dict(row._mapping)
    m["type"], m["status"] = ApprovalType(m["type"]), ApprovalStatus(m["status"])
    m["metadata"] = dict(m["metadata"] or {})
    for key in ("requested_at", "reviewed_at", "created_at", "updated_at"):
        m[key] = _aware(m[key])
    return Approval(**m)


def _approval_params(approval: Approval) -> dict[str, Any]:
    params = {c: getattr(approval, c) for c in _APPROVAL_COLUMNS}
    params["type"], params["status"] = approval.type.value, approval.status.value
    params["metadata"] = _json(approval.metadata)
    return params


class PostgresApprovalRepository(_Base):
    """Approvals; the personal fields of a `user_onboarding` request's metadata (the address and
    name of the account to create) are stored encrypted under the organization's data key
    (adapters/security/personal_data.py, PERSONAL_METADATA) and decrypted on read."""

    entity_name = "approval"

    def _approval(self, row: Row[Any]) -> Approval:
        approval = _approval(row)
        if approval.type.value in PERSONAL_METADATA:
            with translate_personal_data_errors():
                approval.metadata = open_metadata(organization_key(self._uow, approval.organization_id),
                                                  approval.type.value, approval.metadata)
        return approval

    def _params(self, approval: Approval) -> dict[str, Any]:
        params = _approval_params(approval)
        if approval.type.value in PERSONAL_METADATA:
            key = organization_key(self._uow, approval.organization_id)
            params["metadata"] = _json(seal_metadata(key, approval.type.value, approval.metadata))
        return params

    def add(self, approval: Approval) -> None:
        self._check_tenant(approval.organization_id)
        values = ", ".join("CAST(:metadata AS jsonb)" if c == "metadata" else f":{c}" for c in _APPROVAL_COLUMNS)
        with self._write():
            self._conn.execute(text(f"INSERT INTO approvals ({', '.join(_APPROVAL_COLUMNS)}) VALUES ({values})"),
                               self._params(approval))

    def get(self, approval_id: uuid.UUID) -> Approval | None:
        row = self._conn.execute(text(f"{_SELECT_APPROVAL} WHERE id = :id"), {"id": approval_id}).first()
        return self._approval(row) if row else None

    def get_for_update(self, approval_id: uuid.UUID) -> Approval | None:
        row = self._conn.execute(text(f"{_SELECT_APPROVAL} WHERE id = :id FOR UPDATE"), {"id": approval_id}).first()
        return self._approval(row) if row else None

    def update(self, approval: Approval) -> None:
        with self._write():
            result = self._conn.execute(text(
                "UPDATE approvals SET status = :status, reviewed_by = :reviewed_by, reviewed_at = :reviewed_at,"
                " review_comments = :review_comments, metadata = CAST(:metadata AS jsonb), updated_at = :updated_at"
                " WHERE id = :id"), self._params(approval))
        if result.rowcount == 0:
            raise EntityNotFound("approval", approval.id)

    def list(self, query: ApprovalQuery) -> Page[Approval]:
        where: list[str] = ["organization_id = :org"]
        params: dict[str, Any] = {"org": self._uow.organization_id}
        if query.statuses:
            where.append("status = ANY(:statuses)")
            params["statuses"] = list(query.statuses)
        if query.types:
            where.append("type = ANY(:types)")
            params["types"] = list(query.types)
        if query.requested_by is not None:
            where.append("requested_by = :requested_by")
            params["requested_by"] = query.requested_by
        rows, total, capped = self._page(f"{_SELECT_APPROVAL} WHERE {' AND '.join(where)}", params,
                                         "(status = 'pending') DESC, requested_at DESC, id DESC",
                                         query.limit, query.offset)
        return Page([self._approval(r) for r in rows], total, capped)

    def pending_referring_to(self, key: str, value: str) -> Sequence[Approval]:
        rows = self._conn.execute(text(
            f"{_SELECT_APPROVAL} WHERE status = 'pending' AND organization_id = :org"
            " AND metadata -> :key @> to_jsonb(CAST(:value AS text))"),
            {"org": self._uow.organization_id, "key": key, "value": value}).all()
        return [self._approval(r) for r in rows]


# --- rules -------------------------------------------------------------------------------------

_RULE_COLUMNS = ("id", "organization_id", "name", "rule_type", "is_active", "priority", "tolerance_percentage",
                 "tolerance_amount", "date_tolerance_days", "field_mappings", "conditions", "approval_id",
                 "created_by", "created_at", "updated_at", "approved_at")
_SELECT_RULE = f"SELECT {', '.join(_RULE_COLUMNS)} FROM matching_rules"
_RULE_JSON = ("field_mappings", "conditions")


def _rule(row: Row[Any]) -> MatchingRuleRow:
    m = dict(row._mapping)
    for key in ("created_at", "updated_at", "approved_at"):
        m[key] = _aware(m[key])
    m["is_active"] = bool(m["is_active"])
    m["field_mappings"] = list(m["field_mappings"] or [])
    return MatchingRuleRow(**m)


def _rule_params(rule: MatchingRuleRow) -> dict[str, Any]:
    params = {c: getattr(rule, c) for c in _RULE_COLUMNS}
    for key in _RULE_JSON:
        params[key] = _json(params[key])
    return params


def _version(row: Row[Any]) -> RuleVersion:
    return RuleVersion(id=row.id, rule_id=row.rule_id, organization_id=row.organization_id, version=row.version,
                       definition=dict(row.definition), created_by=row.created_by,
                       created_at=_aware(row.created_at),
                       status=VersionStatus(row.status), approval_id=row.approval_id,
                       approved_at=_aware(row.approved_at))


class PostgresRuleRepository(_Base):
    entity_name = "matching_rule"

    def add(self, rule: MatchingRuleRow) -> None:
        self._check_tenant(rule.organization_id)
        values = ", ".join(f"CAST(:{c} AS jsonb)" if c in _RULE_JSON else f":{c}" for c in _RULE_COLUMNS)
        try:
            with self._write():
                self._conn.execute(text(f"INSERT INTO matching_rules ({', '.join(_RULE_COLUMNS)}) VALUES ({values})"),
                                   _rule_params(rule))
        except DuplicateEntity as exc:
            raise DuplicateEntity("matching_rule", "name", rule.name) from exc

    def get(self, rule_id: uuid.UUID) -> MatchingRuleRow | None:
        row = self._conn.execute(text(f"{_SELECT_RULE} WHERE id = :id"), {"id": rule_id}).first()
        return _rule(row) if row else None

    def get_for_update(self, rule_id: uuid.UUID) -> MatchingRuleRow | None:
        row = self._conn.execute(text(f"{_SELECT_RULE} WHERE id = :id FOR UPDATE"), {"id": rule_id}).first()
        return _rule(row) if row else None

    def update(self, rule: MatchingRuleRow) -> None:
        columns = [c for c in _RULE_COLUMNS if c not in ("id", "organization_id", "name", "created_by", "created_at")]
        sets = ", ".join(f"{c} = CAST(:{c} AS jsonb)" if c in _RULE_JSON else f"{c} = :{c}" for c in columns)
        with self._write():
            result = self._conn.execute(text(f"UPDATE matching_rules SET {sets} WHERE id = :id"), _rule_params(rule))
        if result.rowcount == 0:
            raise EntityNotFound("matching_rule", rule.id)

    def list(self, *, active_only: bool = False, limit: int = 100, offset: int = 0) -> Page[MatchingRuleRow]:
        where = "organization_id = :org" + (" AND is_active" if active_only else "")
        rows, total, capped = self._page(f"{_SELECT_RULE} WHERE {where}", {"org": self._uow.organization_id},
                                         "priority, name, id", limit, offset)
        return Page([_rule(r) for r in rows], total, capped)

    def add_version(self, version: RuleVersion) -> None:
        self._check_tenant(version.organization_id)
        with self._write():
            self._conn.execute(text(
                "INSERT INTO matching_rule_versions (id, rule_id, organization_id, version, status, definition,"
                " approval_id, created_by, created_at, approved_at) VALUES (:id, :rule_id, :org, :version, :status,"
                " CAST(:definition AS jsonb), :approval_id, :created_by, :created_at, :approved_at)"),
                {"id": version.id, "rule_id": version.rule_id, "org": version.organization_id,
                 "version": version.version, "status": version.status.value, "definition": _json(version.definition),
                 "approval_id": version.approval_id, "created_by": version.created_by,
                 "created_at": version.created_at, "approved_at": version.approved_at})

    def update_version(self, version: RuleVersion) -> None:
        with self._write():
            self._conn.execute(text(
                "UPDATE matching_rule_versions SET status = :status, approval_id = :approval_id,"
                " approved_at = :approved_at WHERE id = :id"),
                {"id": version.id, "status": version.status.value, "approval_id": version.approval_id,
                 "approved_at": version.approved_at})

    def versions(self, rule_id: uuid.UUID) -> Sequence[RuleVersion]:
        rows = self._conn.execute(text("SELECT * FROM matching_rule_versions WHERE rule_id = :id ORDER BY version"),
                                  {"id": rule_id}).all()
        return [_version(r) for r in rows]


# --- manual matching ---------------------------------------------------------------------------


class PostgresMatchRepository(_Base):
    entity_name = "match_group"

    def job_files(self, job_id: uuid.UUID) -> dict[str, uuid.UUID]:
        rows = self._conn.execute(text(
            "SELECT side, file_id FROM reconciliation_job_files WHERE job_id = :job ORDER BY created_at, file_id"),
            {"job": job_id}).all()
        files: dict[str, uuid.UUID] = {}
        for row in rows:
            files.setdefault(row.side, row.file_id)
        return files

    def suggestion(self, job_id: uuid.UUID, left_row: int, right_row: int) -> MatchGroup | None:
        row = self._conn.execute(text(
            "SELECT m.*, j.organization_id AS org FROM reconciliation_matches m"
            " JOIN reconciliation_jobs j ON j.id = m.job_id AND j.attempt = m.attempt"
            " WHERE m.job_id = :job AND m.status = 'suggested' AND m.left_row = :l AND m.right_row = :r LIMIT 1"),
            {"job": job_id, "l": left_row, "r": right_row}).first()
        files = self.job_files(job_id)
        if row is None or set(files) != {"left", "right"}:
            return None
        evidence = {"rule": row.rule, "rule_version": row.rule_version, "amount_diff_minor": row.amount_diff_minor,
                    "day_delta": row.day_delta, "similarity_bp": row.similarity_bp, "left_key": row.left_key,
                    "right_key": row.right_key, "suggested_confidence": str(row.confidence)}
        rule_id = self._conn.execute(text("SELECT id FROM matching_rules WHERE name = :name"),
                                     {"name": row.rule}).scalar()
        return MatchGroup(id=uuid.uuid4(), organization_id=row.org, job_id=job_id, status="suggested",
                          members=[MatchMember("left", RowRef(files["left"], left_row)),
                                   MatchMember("right", RowRef(files["right"], right_row))],
                          rule_id=rule_id, rule_version=row.rule_version, confidence=row.confidence,
                          evidence=evidence)

    def _members(self, group_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[MatchMember]]:
        members: dict[uuid.UUID, list[MatchMember]] = {g: [] for g in group_ids}
        if not group_ids:
            return members
        rows = self._conn.execute(text(
            "SELECT group_id, side, file_id, row_number, amount_minor FROM match_members"
            " WHERE group_id = ANY(:ids) ORDER BY side, file_id, row_number"), {"ids": group_ids}).all()
        for r in rows:
            members[r.group_id].append(MatchMember(r.side, RowRef(r.file_id, r.row_number), r.amount_minor))
        return members

    def _groups(self, rows: Sequence[Row[Any]]) -> list[MatchGroup]:
        members = self._members([r.id for r in rows])
        return [MatchGroup(id=r.id, organization_id=r.organization_id, job_id=r.job_id, status=r.status,
                           members=members[r.id], rule_id=r.rule_id, rule_version=r.rule_version,
                           confidence=r.confidence, evidence=dict(r.evidence or {}), created_by=r.created_by,
                           created_at=_aware(r.created_at)) for r in rows]

    def get(self, group_id: uuid.UUID) -> MatchGroup | None:
        rows = self._conn.execute(text("SELECT * FROM match_groups WHERE id = :id"), {"id": group_id}).all()
        return self._groups(rows)[0] if rows else None

    def get_for_update(self, group_id: uuid.UUID) -> MatchGroup | None:
        rows = self._conn.execute(text("SELECT * FROM match_groups WHERE id = :id FOR UPDATE"), {"id": group_id}).all()
        return self._groups(rows)[0] if rows else None

    def update_status(self, group: MatchGroup) -> None:
        with self._write():
            self._conn.execute(text("UPDATE match_groups SET status = :status, evidence = CAST(:evidence AS jsonb)"
                                    " WHERE id = :id"),
                               {"id": group.id, "status": group.status, "evidence": _json(group.evidence)})

    def add(self, group: MatchGroup) -> None:
        self._check_tenant(group.organization_id)
        with self._write():
            self._conn.execute(text(
                "INSERT INTO match_groups (id, organization_id, job_id, rule_id, rule_version, status, confidence,"
                " evidence, created_by, created_at) VALUES (:id, :org, :job, :rule_id, :rule_version, :status,"
                " :confidence, CAST(:evidence AS jsonb), :created_by, :created_at)"),
                {"id": group.id, "org": group.organization_id, "job": group.job_id, "rule_id": group.rule_id,
                 "rule_version": group.rule_version, "status": group.status, "confidence": group.confidence,
                 "evidence": _json(group.evidence), "created_by": group.created_by, "created_at": group.created_at})
            for member in group.members:
                self._conn.execute(text(
                    "INSERT INTO match_members (group_id, organization_id, job_id, side, file_id, row_number,"
                    " amount_minor) VALUES (:g, :org, :job, :side, :file, :row, :amount)"),
                    {"g": group.id, "org": group.organization_id, "job": group.job_id, "side": member.side,
                     "file": member.row.file_id, "row": member.row.row_number, "amount": member.amount_minor})

    def for_job(self, job_id: uuid.UUID, statuses: tuple[str, ...] = ()) -> Sequence[MatchGroup]:
        sql = "SELECT * FROM match_groups WHERE job_id = :job"
        params: dict[str, Any] = {"job": job_id}
        if statuses:
            sql += " AND status = ANY(:statuses)"
            params["statuses"] = list(statuses)
        return self._groups(self._conn.execute(text(sql + " ORDER BY created_at, id"), params).all())

    def matched_rows(self, job_id: uuid.UUID, rows: Iterable[RowRef]) -> set[RowRef]:
        refs = list(rows)
        if not refs:
            return set()
        params = {"job": job_id, "files": [r.file_id for r in refs], "rows": [r.row_number for r in refs]}
        wanted = "(SELECT * FROM unnest(CAST(:files AS uuid[]), CAST(:rows AS integer[])))"
        manual = self._conn.execute(text(
            "SELECT mm.file_id, mm.row_number FROM match_members mm JOIN match_groups g ON g.id = mm.group_id"
            f" WHERE mm.job_id = :job AND g.status IN ('auto', 'manual') AND (mm.file_id, mm.row_number) IN {wanted}"),
            params).all()
        taken = {RowRef(r.file_id, r.row_number) for r in manual}
        files = self.job_files(job_id)
        for side, column in (("left", "left_row"), ("right", "right_row")):
            numbers = [r.row_number for r in refs if r.file_id == files.get(side)]
            if not numbers:
                continue
            auto = self._conn.execute(text(
                f"SELECT DISTINCT m.{column} AS n FROM reconciliation_matches m"
                " JOIN reconciliation_jobs j ON j.id = m.job_id AND j.attempt = m.attempt"
                f" WHERE m.job_id = :job AND m.status = 'auto' AND m.{column} = ANY(:numbers)"),
                {"job": job_id, "numbers": numbers}).all()
            taken |= {RowRef(files[side], r.n) for r in auto}
        return taken

    def groups_with_rows(self, job_id: uuid.UUID, rows: Iterable[RowRef]) -> Sequence[MatchGroup]:
        refs = list(rows)
        if not refs:
            return []
        found = self._conn.execute(text(
            "SELECT DISTINCT g.* FROM match_groups g JOIN match_members mm ON mm.group_id = g.id"
            " WHERE g.job_id = :job AND (mm.file_id, mm.row_number) IN"
            " (SELECT * FROM unnest(CAST(:files AS uuid[]), CAST(:rows AS integer[])))"),
            {"job": job_id, "files": [r.file_id for r in refs], "rows": [r.row_number for r in refs]}).all()
        return sorted(self._groups(found), key=lambda g: (g.created_at or dt.datetime.min.replace(tzinfo=dt.UTC),
                                                           str(g.id)))


class PostgresDeclinedPairs(_Base):
    entity_name = "declined_pair"

    def add(self, pair: DeclinedPair) -> None:
        self._check_tenant(pair.organization_id)
        with self._write():
            self._conn.execute(text(
                "INSERT INTO declined_pairs (organization_id, left_file_id, left_row, right_file_id, right_row,"
                " job_id, reason, declined_by, created_at) VALUES (:org, :lf, :lr, :rf, :rr, :job, :reason, :by, :at)"
                " ON CONFLICT (organization_id, left_file_id, left_row, right_file_id, right_row) DO NOTHING"),
                {"org": pair.organization_id, "lf": pair.left.file_id, "lr": pair.left.row_number,
                 "rf": pair.right.file_id, "rr": pair.right.row_number, "job": pair.job_id, "reason": pair.reason,
                 "by": pair.declined_by, "at": pair.declined_at})

    def declined_among(self, left_file_ids: Iterable[uuid.UUID],
                       right_file_ids: Iterable[uuid.UUID]) -> set[tuple[RowRef, RowRef]]:
        rows = self._conn.execute(text(
            "SELECT left_file_id, left_row, right_file_id, right_row FROM declined_pairs"
            " WHERE organization_id = :org AND left_file_id = ANY(:lefts) AND right_file_id = ANY(:rights)"),
            {"org": self._uow.organization_id, "lefts": list(left_file_ids), "rights": list(right_file_ids)}).all()
        return {(RowRef(r.left_file_id, r.left_row), RowRef(r.right_file_id, r.right_row)) for r in rows}



_check_breaks: type[ExceptionRepository] = PostgresExceptionRepository
_check_approvals: type[ApprovalRepository] = PostgresApprovalRepository
_check_rules: type[RuleRepository] = PostgresRuleRepository
_check_matches: type[MatchRepository] = PostgresMatchRepository
_check_declined: type[DeclinedPairs] = PostgresDeclinedPairs
