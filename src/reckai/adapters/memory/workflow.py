"""In-memory twins of the workflow repositories (application/ports/workflow.py), on MemoryTransaction (adapters/memory/store.py)."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import itertools
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from reckai.adapters.memory.store import MemoryTransaction
from reckai.application.ports.repositories import DuplicateEntity, EntityNotFound
from reckai.application.ports.workflow import (
    COUNT_CAP,
    REPORT_EXCEPTION_COLUMNS,
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
from reckai.domain.approvals.workflow import Approval, ApprovalStatus
from reckai.domain.exceptions.aging import earliest_transaction_date
from reckai.domain.exceptions.lifecycle import (
    ACTIVE_STATUSES,
    Comment,
    ExceptionItem,
    ExceptionStatus,
    HistoryEntry,
)
from reckai.domain.exceptions.manual_matching import DeclinedPair, MatchGroup, MatchMember, RowRef
from reckai.domain.exceptions.policy import SEVERITIES
from reckai.domain.reconciliation.rule_versions import RuleVersion

_HISTORY_SEQUENCE = itertools.count(1)


def _page(items: Sequence[Any], offset: int, limit: int) -> Page[Any]:
    return Page(items[offset:offset + limit], min(len(items), COUNT_CAP), len(items) >= COUNT_CAP)


_EPOCH_DAY = dt.date(1970, 1, 1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _micros(moment: dt.datetime | None) -> int | str:
    """Microseconds since the epoch, exactly (report_csv's form of a time)."""
    if moment is None:
        return ""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class MemoryExceptionRepository:
    def __init__(self, uow: MemoryTransaction) -> None:
        self.uow = uow

    def add(self, exception: ExceptionItem) -> None:
        self.uow.put("exceptions", exception.id, exception)

    def get(self, exception_id: uuid.UUID) -> ExceptionItem | None:
        found: ExceptionItem | None = self.uow.get("exceptions", exception_id)
        return found

    def get_for_update(self, exception_id: uuid.UUID) -> ExceptionItem | None:
        if self.get(exception_id) is None:
            return None
        self.uow.lock_row("exceptions", exception_id)
        return self.get(exception_id)

    def update(self, exception: ExceptionItem) -> None:
        if self.get(exception.id) is None:
            raise EntityNotFound("exception", exception.id)
        self.uow.put("exceptions", exception.id, exception)

    def list(self, query: ExceptionQuery) -> Page[ExceptionItem]:
        return _page(self._sorted_after(query), query.offset, query.limit)

    def list_batch(self, query: ExceptionQuery, size: int) -> Sequence[ExceptionItem]:
        if query.sort not in ("created_at", "due_at", "updated_at"):
            raise ValueError("batches are read in keyset order: sort created_at, due_at or updated_at")
        return self._sorted_after(query)[:size]

    def _sorted_after(self, query: ExceptionQuery) -> Sequence[ExceptionItem]:
        rows = [row for _, row in self.uow.rows("exceptions") if _matches(row, query)]
        rows.sort(key=_sort_key(query.sort), reverse=query.descending)
        if query.after is not None:
            value, last_id = query.after
            key = _sort_key(query.sort)
            marker = (value, str(last_id))
            rows = [r for r in rows if (key(r) < marker if query.descending else key(r) > marker)]
        return rows

    def report_csv(self, query: ExceptionQuery) -> bytes:
        rows = self._sorted_after(dataclasses.replace(query, sort="created_at", descending=False, after=None))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")  # a cell holding a bare "\r" is then quoted too
        writer.writerow(REPORT_EXCEPTION_COLUMNS)
        for r in rows:
            earliest = earliest_transaction_date(r.transaction_date, r.evidence)
            writer.writerow([
                r.id, r.job_id or "", r.type, r.severity, r.status.value, (r.currency or "NGN").upper(),
                "" if r.amount is None else str(r.amount), "" if r.amount_minor is None else r.amount_minor,
                "" if earliest is None else (earliest - _EPOCH_DAY).days,
                *(_micros(moment) for moment in (r.created_at, r.due_at, r.resolved_at, r.escalated_at)),
                r.assigned_to or "unassigned", r.description, r.ai_explanation or ""])
        return out.getvalue().encode("utf-8")

    def about_rows(self, job_id: uuid.UUID, rows: Iterable[RowRef]) -> Sequence[ExceptionItem]:
        wanted = set(rows)
        found = []
        for _, r in self.uow.rows("exceptions"):
            refs = {RowRef(f, n) for f, n in ((r.left_file_id, r.left_row), (r.right_file_id, r.right_row))
                    if f is not None and n is not None}
            if r.job_id == job_id and r.status in ACTIVE_STATUSES and refs & wanted:
                found.append(r)
        return sorted(found, key=lambda r: str(r.id))

    def overdue_ids(self, now: dt.datetime, limit: int) -> Sequence[uuid.UUID]:
        rows = [r for _, r in self.uow.rows("exceptions")
                if r.status in (ExceptionStatus.OPEN, ExceptionStatus.IN_PROGRESS) and r.due_at <= now]
        rows.sort(key=lambda r: (r.due_at, str(r.id)))
        return [r.id for r in rows[:limit]]

    def organizations_with_overdue(self, now: dt.datetime) -> Sequence[uuid.UUID]:
        found = {r.organization_id for _, r in self.uow.all_rows("exceptions")
                 if r.status in (ExceptionStatus.OPEN, ExceptionStatus.IN_PROGRESS) and r.due_at <= now}
        return sorted(found, key=str)

    def add_history(self, entry: HistoryEntry) -> None:
        sequence = next(_HISTORY_SEQUENCE)  # several entries of one transaction share `at`
        self.uow.put("exception_history", entry.id, _Owned(self._org(), (sequence, entry)))

    def history(self, exception_id: uuid.UUID) -> Sequence[HistoryEntry]:
        rows = [row.value for _, row in self.uow.rows("exception_history") if row.value[1].exception_id == exception_id]
        return [entry for _, entry in sorted(rows, key=lambda r: (r[1].at, r[0]))]

    def add_comment(self, comment: Comment) -> None:
        if self.get(comment.exception_id) is None:
            raise EntityNotFound("exception", comment.exception_id)
        self.uow.put("exception_comments", comment.id, comment)

    def comments(self, exception_id: uuid.UUID) -> Sequence[Comment]:
        found = [c for _, c in self.uow.rows("exception_comments") if c.exception_id == exception_id]
        return sorted(found, key=lambda c: (c.created_at, str(c.id)))

    def _org(self) -> uuid.UUID | None:
        return self.uow.organization_id


class _Owned:
    """A row that is not an entity with organization_id of its own (history entries)."""

    def __init__(self, organization_id: uuid.UUID | None, value: Any) -> None:
        self.organization_id = organization_id
        self.value = value


def _matches(row: ExceptionItem, q: ExceptionQuery) -> bool:
    checks = [
        not q.statuses or row.status.value in q.statuses,
        not q.severities or row.severity in q.severities,
        not q.types or row.type in q.types,
        q.job_id is None or row.job_id == q.job_id,
        q.assigned_to is None or row.assigned_to == q.assigned_to,
        not q.unassigned or row.assigned_to is None,
        q.amount_min is None or (row.amount is not None and abs(row.amount) >= q.amount_min),
        q.amount_max is None or (row.amount is not None and abs(row.amount) <= q.amount_max),
        q.date_from is None or (row.transaction_date is not None and row.transaction_date >= q.date_from),
        q.date_to is None or (row.transaction_date is not None and row.transaction_date <= q.date_to),
        q.created_from is None or row.created_at >= q.created_from,
        q.created_to is None or row.created_at < q.created_to,
        q.overdue_at is None or (row.status in ACTIVE_STATUSES and row.due_at <= q.overdue_at),
        q.reference is None or q.reference in (row.reference, row.reference_other),
        q.reference_prefix is None or _starts(q.reference_prefix, row.reference, row.reference_other),
        q.secondary_reference is None or q.secondary_reference in (row.secondary_reference,
                                                                   row.secondary_reference_other),
        q.secondary_reference_prefix is None or _starts(q.secondary_reference_prefix, row.secondary_reference,
                                                        row.secondary_reference_other),
        q.masked_account is None or row.masked_account == q.masked_account,
        not q.channels or row.channel in q.channels,
    ]
    return all(checks)


def _starts(prefix: str, *keys: str | None) -> bool:
    return any(key is not None and key.startswith(prefix) for key in keys)


def _sort_key(sort: str) -> Callable[[ExceptionItem], tuple[Any, str]]:
    def key(row: ExceptionItem) -> tuple[Any, str]:
        if sort == "severity":
            value: Any = SEVERITIES.index(row.severity)
        elif sort == "amount":
            value = (row.amount is not None, abs(row.amount) if row.amount is not None else 0)
        elif sort == "transaction_date":
            value = (row.transaction_date is not None, row.transaction_date or dt.date.min)
        else:
            value = getattr(row, sort)
        return value, str(row.id)

    return key


class MemoryApprovalRepository:
    def __init__(self, uow: MemoryTransaction) -> None:
        self.uow = uow

    def add(self, approval: Approval) -> None:
        self.uow.put("approvals", approval.id, approval)

    def get(self, approval_id: uuid.UUID) -> Approval | None:
        found: Approval | None = self.uow.get("approvals", approval_id)
        return found

    def get_for_update(self, approval_id: uuid.UUID) -> Approval | None:
        if self.get(approval_id) is None:
            return None
        self.uow.lock_row("approvals", approval_id)
        return self.get(approval_id)

    def update(self, approval: Approval) -> None:
        if self.get(approval.id) is None:
            raise EntityNotFound("approval", approval.id)
        self.uow.put("approvals", approval.id, approval)

    def list(self, query: ApprovalQuery) -> Page[Approval]:
        rows = [a for _, a in self.uow.rows("approvals")
                if (not query.statuses or a.status.value in query.statuses)
                and (not query.types or a.type.value in query.types)
                and (query.requested_by is None or a.requested_by == query.requested_by)]
        rows.sort(key=lambda a: (a.requested_at, str(a.id)), reverse=True)
        rows.sort(key=lambda a: a.status is not ApprovalStatus.PENDING)
        return _page(rows, query.offset, query.limit)

    def pending_referring_to(self, key: str, value: str) -> Sequence[Approval]:
        return [a for _, a in self.uow.rows("approvals")
                if a.status is ApprovalStatus.PENDING and _refers(a.metadata.get(key), value)]


def _refers(stored: Any, value: str) -> bool:
    if isinstance(stored, list):
        return value in [str(item) for item in stored]
    return stored is not None and str(stored) == value


class MemoryRuleRepository:
    def __init__(self, uow: MemoryTransaction) -> None:
        self.uow = uow

    def add(self, rule: MatchingRuleRow) -> None:
        if any(r.name == rule.name for _, r in self.uow.rows("matching_rules")):
            raise DuplicateEntity("matching_rule", "name", rule.name)
        self.uow.put("matching_rules", rule.id, rule)

    def get(self, rule_id: uuid.UUID) -> MatchingRuleRow | None:
        found: MatchingRuleRow | None = self.uow.get("matching_rules", rule_id)
        return found

    def get_for_update(self, rule_id: uuid.UUID) -> MatchingRuleRow | None:
        if self.get(rule_id) is None:
            return None
        self.uow.lock_row("matching_rules", rule_id)
        return self.get(rule_id)

    def update(self, rule: MatchingRuleRow) -> None:
        if self.get(rule.id) is None:
            raise EntityNotFound("matching_rule", rule.id)
        self.uow.put("matching_rules", rule.id, rule)

    def list(self, *, active_only: bool = False, limit: int = 100, offset: int = 0) -> Page[MatchingRuleRow]:
        rows = [r for _, r in self.uow.rows("matching_rules") if r.is_active or not active_only]
        rows.sort(key=lambda r: (r.priority, r.name))
        return _page(rows, offset, limit)

    def add_version(self, version: RuleVersion) -> None:
        if any(v.rule_id == version.rule_id and v.version == version.version
               for _, v in self.uow.rows("matching_rule_versions")):
            raise DuplicateEntity("matching_rule_version", "version", version.version)
        self.uow.put("matching_rule_versions", version.id, version)

    def update_version(self, version: RuleVersion) -> None:
        self.uow.put("matching_rule_versions", version.id, version)

    def versions(self, rule_id: uuid.UUID) -> Sequence[RuleVersion]:
        found = [v for _, v in self.uow.rows("matching_rule_versions") if v.rule_id == rule_id]
        return sorted(found, key=lambda v: v.version)


class MemoryMatchRepository:
    """Job files and suggestions come from the in-memory reconciliation job's own rows (as in
    PostgreSQL), or are seeded by tests (`seed_job_files`, `seed_suggestion`)."""

    def __init__(self, uow: MemoryTransaction) -> None:
        self.uow = uow

    def seed_job_files(self, job_id: uuid.UUID, left: uuid.UUID, right: uuid.UUID) -> None:
        self.uow.put("workflow_job_files", job_id, _Owned(self.uow.organization_id, {"left": left, "right": right}))

    def seed_suggestion(self, group: MatchGroup) -> None:
        lefts = [m.row.row_number for m in group.members if m.side == "left"]
        rights = [m.row.row_number for m in group.members if m.side == "right"]
        self.uow.put("workflow_suggestions", (group.job_id, lefts[0], rights[0]), group)

    def job_files(self, job_id: uuid.UUID) -> dict[str, uuid.UUID]:
        row = self.uow.get("workflow_job_files", job_id)
        if row is not None:
            return dict(row.value)
        jobs = getattr(self.uow, "reconciliation_jobs", None)
        files: dict[str, uuid.UUID] = {}
        for link in jobs.linked_files(job_id) if jobs is not None else ():
            files.setdefault(link.side, link.file_id)
        return files

    def suggestion(self, job_id: uuid.UUID, left_row: int, right_row: int) -> MatchGroup | None:
        seeded: MatchGroup | None = self.uow.get("workflow_suggestions", (job_id, left_row, right_row))
        if seeded is not None:
            return seeded
        results = getattr(self.uow, "reconciliation_results", None)
        files = self.job_files(job_id)
        if results is None or self.uow.organization_id is None or set(files) != {"left", "right"}:
            return None
        stored = results.list_matches(job_id, status="suggested", limit=10_000_000)
        found = next((m for m in stored if (m.left_row, m.right_row) == (left_row, right_row)), None)
        if found is None:
            return None
        return MatchGroup(id=uuid.uuid4(), organization_id=self.uow.organization_id, job_id=job_id, status="suggested",
                          members=[MatchMember("left", RowRef(files["left"], left_row)),
                                   MatchMember("right", RowRef(files["right"], right_row))],
                          rule_id=None, rule_version=found.rule_version, confidence=found.confidence,
                          evidence={"rule": found.rule, "rule_version": found.rule_version, **found.evidence,
                                    "suggested_confidence": str(found.confidence)})

    def get(self, group_id: uuid.UUID) -> MatchGroup | None:
        found: MatchGroup | None = self.uow.get("match_groups", group_id)
        return found

    def get_for_update(self, group_id: uuid.UUID) -> MatchGroup | None:
        if self.get(group_id) is None:
            return None
        self.uow.lock_row("match_groups", group_id)
        return self.get(group_id)

    def update_status(self, group: MatchGroup) -> None:
        stored = self.get(group.id)
        if stored is None:
            raise EntityNotFound("match_group", group.id)
        stored.status, stored.evidence = group.status, dict(group.evidence)
        self.uow.put("match_groups", group.id, stored)

    def add(self, group: MatchGroup) -> None:
        self.uow.put("match_groups", group.id, group)

    def for_job(self, job_id: uuid.UUID, statuses: tuple[str, ...] = ()) -> Sequence[MatchGroup]:
        found = [g for _, g in self.uow.rows("match_groups")
                 if g.job_id == job_id and (not statuses or g.status in statuses)]
        return sorted(found, key=lambda g: (g.created_at or dt.datetime.min.replace(tzinfo=dt.UTC), str(g.id)))

    def matched_rows(self, job_id: uuid.UUID, rows: Iterable[RowRef]) -> set[RowRef]:
        wanted = set(rows)
        taken = {m.row for g in self.for_job(job_id, ("auto", "manual")) for m in g.members if m.row in wanted}
        results = getattr(self.uow, "reconciliation_results", None)
        files = self.job_files(job_id)
        if results is not None and wanted and files:  # the engine's auto matches, as in PostgreSQL
            auto = results.list_matches(job_id, status="auto", limit=10_000_000)
            for match in auto:
                for side, number in (("left", match.left_row), ("right", match.right_row)):
                    if side in files and RowRef(files[side], number) in wanted:
                        taken.add(RowRef(files[side], number))
        return taken

    def groups_with_rows(self, job_id: uuid.UUID, rows: Iterable[RowRef]) -> Sequence[MatchGroup]:
        wanted = set(rows)
        return [g for g in self.for_job(job_id) if any(m.row in wanted for m in g.members)]


class MemoryDeclinedPairs:
    def __init__(self, uow: MemoryTransaction) -> None:
        self.uow = uow

    def add(self, pair: DeclinedPair) -> None:
        key = (pair.organization_id, pair.left, pair.right)
        if self.uow.get("declined_pairs", key) is None:
            self.uow.put("declined_pairs", key, pair)

    def declined_among(self, left_file_ids: Iterable[uuid.UUID],
                       right_file_ids: Iterable[uuid.UUID]) -> set[tuple[RowRef, RowRef]]:
        lefts, rights = set(left_file_ids), set(right_file_ids)
        return {(p.left, p.right) for _, p in self.uow.rows("declined_pairs")
                if p.left.file_id in lefts and p.right.file_id in rights}



_check_breaks: type[ExceptionRepository] = MemoryExceptionRepository
_check_approvals: type[ApprovalRepository] = MemoryApprovalRepository
_check_rules: type[RuleRepository] = MemoryRuleRepository
_check_matches: type[MatchRepository] = MemoryMatchRepository
_check_declined: type[DeclinedPairs] = MemoryDeclinedPairs
