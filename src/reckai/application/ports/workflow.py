"""Repository ports of the workflow: exceptions (with comments and history), approvals, matching
rules and their versions, match groups for manual matching, and declined pairs.

They hang off the unit of work (`uow.exceptions`, `uow.approvals`, `uow.rules`, `uow.matches`,
`uow.declined_pairs`) and share the identity repositories' contract (repositories.py): reads see
only the bound organization's rows (another tenant's id is simply absent), writes for another
organization raise TenantIsolationViolation, entities go in and come out as copies, datetimes are
aware UTC. PostgreSQL adapter: adapters/postgres/workflow.py; in-memory twin:
adapters/memory/workflow.py; both pass tests/contracts/workflow_repositories.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, Protocol, TypeVar

from reckai.application.ports.periods import StreamPeriodRepository
from reckai.application.ports.unit_of_work import UnitOfWork
from reckai.domain.approvals.workflow import Approval
from reckai.domain.exceptions.lifecycle import Comment, ExceptionItem, HistoryEntry
from reckai.domain.exceptions.manual_matching import DeclinedPair, MatchGroup, RowRef
from reckai.domain.reconciliation.rule_versions import RuleVersion

T = TypeVar("T")

MAX_OFFSET = 10_000  # deeper pages use the cursor (keyset) instead of OFFSET
COUNT_CAP = 10_000  # totals are exact up to this, then reported as "at least"

EXCEPTION_SORTS = ("created_at", "due_at", "amount", "severity", "transaction_date", "updated_at")


@dataclass(frozen=True)
class ExceptionQuery:
    statuses: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    job_id: uuid.UUID | None = None
    assigned_to: uuid.UUID | None = None
    unassigned: bool = False
    amount_min: Decimal | None = None  # on abs(amount), major units
    amount_max: Decimal | None = None
    date_from: dt.date | None = None  # transaction_date, inclusive
    date_to: dt.date | None = None
    created_from: dt.datetime | None = None  # age filters become created_at bounds
    created_to: dt.datetime | None = None
    overdue_at: dt.datetime | None = None  # only active exceptions whose due_at <= this
    # search keys (domain/exceptions/search.py), given already made comparable: either row's key
    # equals `reference` / starts with `reference_prefix` (the same for secondary_reference)
    reference: str | None = None
    reference_prefix: str | None = None
    secondary_reference: str | None = None
    secondary_reference_prefix: str | None = None
    masked_account: str | None = None
    channels: tuple[str, ...] = ()
    sort: str = "created_at"
    descending: bool = True
    limit: int = 20
    offset: int = 0
    # keyset cursor for created_at/due_at/updated_at sorts: (sort value, id) of the previous page's last row
    after: tuple[dt.datetime, uuid.UUID] | None = None

    def __post_init__(self) -> None:
        if self.sort not in EXCEPTION_SORTS:
            raise ValueError(f"sort must be one of {EXCEPTION_SORTS}")
        if not 1 <= self.limit <= 100 or not 0 <= self.offset <= MAX_OFFSET:
            raise ValueError("limit 1..100, offset 0..10000")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int  # exact when < COUNT_CAP, else COUNT_CAP ("at least")
    total_capped: bool


@dataclass(frozen=True)
class ApprovalQuery:
    statuses: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    requested_by: uuid.UUID | None = None
    limit: int = 20
    offset: int = 0


@dataclass
class MatchingRuleRow:
    """A `matching_rules` row: the spec's columns mirror the *active* version's definition."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    rule_type: str
    field_mappings: list[dict[str, object]]
    created_by: uuid.UUID
    created_at: dt.datetime
    updated_at: dt.datetime
    is_active: bool = False
    priority: int = 0
    tolerance_percentage: Decimal | None = None
    tolerance_amount: Decimal | None = None
    date_tolerance_days: int | None = None
    conditions: dict[str, object] | None = None
    approval_id: uuid.UUID | None = None
    approved_at: dt.datetime | None = None


# ExceptionRepository.report_csv's columns, in order.
REPORT_EXCEPTION_COLUMNS = ("id", "job_id", "type", "severity", "status", "currency", "amount", "amount_minor",
                            "earliest_day", "created_us", "due_us", "resolved_us", "escalated_us", "assigned_to",
                            "description", "explanation")


class ExceptionRepository(Protocol):
    def add(self, exception: ExceptionItem) -> None:
        """Insert a new exception (the reconciliation job and tests)."""
        ...

    def get(self, exception_id: uuid.UUID) -> ExceptionItem | None: ...

    def get_for_update(self, exception_id: uuid.UUID) -> ExceptionItem | None:
        """As get, and lock the row until the unit of work ends: concurrent transitions of one
        exception serialise, so the second sees the first's result."""
        ...

    def update(self, exception: ExceptionItem) -> None:
        """Store status, severity, assignment, resolution, SLA fields and updated_at."""
        ...

    def list(self, query: ExceptionQuery) -> Page[ExceptionItem]:
        """Filtered, sorted (ties broken by id), bounded page; total counted up to COUNT_CAP."""
        ...

    def list_batch(self, query: ExceptionQuery, size: int) -> Sequence[ExceptionItem]:
        """Up to `size` exceptions matching the query's filters, in its keyset order (sort
        created_at, due_at or updated_at, ties by id) after `query.after`; `limit`, `offset` and
        the count are ignored. Reading every row of a large filter is a loop of these (exports)."""
        ...

    def report_csv(self, query: ExceptionQuery) -> bytes:
        """Every exception matching the query's filters (no paging, no cursor), ordered by
        (created_at, id), as one CSV document with a header: REPORT_EXCEPTION_COLUMNS, for the
        reports' figures, which read it column-wise (no row becomes an object). Times are
        microseconds since the epoch (UTC) and dates days since 1970-01-01, so no text form of a
        date is parsed; `earliest_day` is the earliest date of the exception's rows
        (domain/exceptions/aging.py); `currency` is upper-cased, NGN when absent; `assigned_to`
        is `unassigned` when none."""
        ...

    def about_rows(self, job_id: uuid.UUID, rows: Iterable[RowRef]) -> Sequence[ExceptionItem]:
        """Open, in-progress or escalated exceptions of the job whose left or right row is one of `rows`."""
        ...

    def overdue_ids(self, now: dt.datetime, limit: int) -> Sequence[uuid.UUID]:
        """Open or in-progress exceptions with due_at <= now, oldest due first."""
        ...

    def add_history(self, entry: HistoryEntry) -> None: ...

    def history(self, exception_id: uuid.UUID) -> Sequence[HistoryEntry]:
        """Oldest first."""
        ...

    def add_comment(self, comment: Comment) -> None: ...

    def comments(self, exception_id: uuid.UUID) -> Sequence[Comment]:
        """Oldest first."""
        ...

    def organizations_with_overdue(self, now: dt.datetime) -> Sequence[uuid.UUID]:
        """*System* (the SLA job, no tenant bound): ids of organizations that have an open or
        in-progress exception due at or before `now`. Ids only, no row content."""
        ...


class ApprovalRepository(Protocol):
    def add(self, approval: Approval) -> None: ...

    def get(self, approval_id: uuid.UUID) -> Approval | None: ...

    def get_for_update(self, approval_id: uuid.UUID) -> Approval | None:
        """As get, and lock the row until the unit of work ends: two checkers deciding at once
        serialise here; the second then sees the decided status."""
        ...

    def update(self, approval: Approval) -> None:
        """Store status, review fields, metadata and updated_at."""
        ...

    def list(self, query: ApprovalQuery) -> Page[Approval]:
        """Pending first, then newest requested first."""
        ...

    def pending_referring_to(self, key: str, value: str) -> Sequence[Approval]:
        """Pending approvals whose metadata[key] == value, or is a list holding value (what a
        checker may read; `exception_ids` of a closing that settles several exceptions)."""
        ...


class RuleRepository(Protocol):
    def add(self, rule: MatchingRuleRow) -> None:
        """DuplicateEntity("matching_rule", "name") when the organization has a rule of that name."""
        ...

    def get(self, rule_id: uuid.UUID) -> MatchingRuleRow | None: ...

    def get_for_update(self, rule_id: uuid.UUID) -> MatchingRuleRow | None: ...

    def update(self, rule: MatchingRuleRow) -> None: ...

    def list(self, *, active_only: bool = False, limit: int = 100, offset: int = 0) -> Page[MatchingRuleRow]:
        """Ordered by priority, then name."""
        ...

    def add_version(self, version: RuleVersion) -> None: ...

    def update_version(self, version: RuleVersion) -> None:
        """Store status, approval_id, approved_at (the database allows one active per rule)."""
        ...

    def versions(self, rule_id: uuid.UUID) -> Sequence[RuleVersion]:
        """Oldest first."""
        ...


class MatchRepository(Protocol):
    """People's matching decisions (`match_groups`/`match_members`: manual and declined groups),
    and read access to the engine's suggestions (`reconciliation_matches`, written by the job)."""

    def job_files(self, job_id: uuid.UUID) -> dict[str, uuid.UUID]:
        """side ("left"/"right") -> the file the job reconciles on that side; {} for an unknown job."""
        ...

    def suggestion(self, job_id: uuid.UUID, left_row: int, right_row: int) -> MatchGroup | None:
        """The engine's suggested pair (status suggested) as an unsaved group, or None."""
        ...

    def get(self, group_id: uuid.UUID) -> MatchGroup | None: ...

    def get_for_update(self, group_id: uuid.UUID) -> MatchGroup | None: ...

    def update_status(self, group: MatchGroup) -> None:
        """Store status and evidence."""
        ...

    def add(self, group: MatchGroup) -> None:
        """Insert a group and its members."""
        ...

    def for_job(self, job_id: uuid.UUID, statuses: tuple[str, ...] = ()) -> Sequence[MatchGroup]: ...

    def matched_rows(self, job_id: uuid.UUID, rows: Iterable[RowRef]) -> set[RowRef]:
        """Which of `rows` are already matched in the job: an engine auto match or a manual group."""
        ...

    def groups_with_rows(self, job_id: uuid.UUID, rows: Iterable[RowRef]) -> Sequence[MatchGroup]:
        """Groups of the job (any status) that contain any of `rows`: evidence and near misses."""
        ...


class DeclinedPairs(Protocol):
    """The memory of pairs a person declined. The matching job consults it before suggesting."""

    def add(self, pair: DeclinedPair) -> None:
        """Remember the pair (idempotent: declining the same pair twice stores it once)."""
        ...

    def declined_among(self, left_file_ids: Iterable[uuid.UUID],
                       right_file_ids: Iterable[uuid.UUID]) -> set[tuple[RowRef, RowRef]]:
        """Every declined (left, right) pair between these files, for a job about to match them."""
        ...


class SourceRows(Protocol):
    """The content of one source row, for an exception's detail screen."""

    def row(self, organization_id: uuid.UUID, file_id: uuid.UUID, row_number: int,
            job_id: uuid.UUID | None = None) -> dict[str, object] | None:
        """The canonical fields and raw columns of the file's data row `row_number` (1-based), as
        JSON-ready values, read from the normalized version of the file job `job_id` read (a later
        re-map does not change it; None: the current version); None when the file (or that
        version, or the row) is gone."""
        ...


@dataclass(frozen=True)
class StoredRowAmount:
    amount_minor: int
    currency: str


class RowAmounts(Protocol):
    """The stored amounts of source rows (the file's normalized form), for the closing rule and the
    difference of a manual link: never an amount a client sent."""

    def amounts(self, storage_path: str, row_numbers: Iterable[int]) -> dict[int, StoredRowAmount]:
        """Amount (minor units) and currency of each of `row_numbers` found in the normalized Parquet
        at `storage_path`; rows (or a file) that are not there are simply absent."""
        ...


class WorkflowUnitOfWork(UnitOfWork, Protocol):
    """The unit of work as the workflow use cases see it (UnitOfWork plus these repositories)."""

    @property
    def exceptions(self) -> ExceptionRepository: ...

    @property
    def approvals(self) -> ApprovalRepository: ...

    @property
    def rules(self) -> RuleRepository: ...

    @property
    def matches(self) -> MatchRepository: ...

    @property
    def declined_pairs(self) -> DeclinedPairs: ...

    @property
    def stream_periods(self) -> StreamPeriodRepository:
        """Closed periods of streams: which exceptions they froze (issue 15 item 4)."""
        ...
