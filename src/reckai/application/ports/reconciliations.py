"""Ports of reconciliation jobs: the job rows, their bulk results, and the rules a job may use.

Repository contract (PostgreSQL and in-memory adapters alike; tests/contracts/reconciliation_repositories.py
runs the same tests over both):

- Reads see only the bound organization's rows; another organization's job is absent (None),
  never forbidden. Writing a row of another organization raises TenantIsolationViolation.
- Records go in and come out as copies; datetimes are timezone-aware UTC.
- Results are written in bulk as CSV chunks (RFC 4180, no header, UTF-8, the columns of
  MATCH_COLUMNS / EXCEPTION_COLUMNS in that order, empty field = NULL). CSV is the transport
  because the fast producer (polars) writes it natively and PostgreSQL's COPY reads it natively.
  A chunk iterator may raise (a cancelled job): the whole write is then undone.
- `replace_results` deletes whatever rows the job has (from an interrupted earlier attempt) and
  writes the new ones in the caller's transaction: they appear together when it commits, or not
  at all. No duplicate can survive, whatever number of attempts ran.
"""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from reckai.application.ports.files import FilesUnitOfWork
from reckai.application.ports.periods import StreamPeriodRepository
from reckai.application.ports.stream_schedules import StreamScheduleRepository
from reckai.application.ports.streams import StreamRepository
from reckai.application.ports.workflow import DeclinedPairs, ExceptionRepository
from reckai.domain.reconciliation.jobs import JobStatus, ReconciliationJob
from reckai.domain.reconciliation.profile import ReconciliationPeriod, ReconciliationProfile

# Column order of the bulk CSV chunks.
MATCH_COLUMNS = ("status", "group_key", "left_row", "right_row", "rule", "rule_version", "confidence",
                 "amount_diff_minor", "day_delta", "similarity_bp", "left_key", "right_key", "members",
                 "fee_minor")
# The search keys of an exception's rows (domain/exceptions/search.py; 0014_exception_search).
SEARCH_KEY_COLUMNS = ("reference", "reference_other", "secondary_reference", "secondary_reference_other",
                      "masked_account", "channel")
EXCEPTION_COLUMNS = ("type", "severity", "amount", "currency", "transaction_date", "description",
                     "ai_explanation", "ai_confidence", "suggested_action", "left_row", "right_row",
                     "left_file_id", "right_file_id", "amount_minor", "evidence", *SEARCH_KEY_COLUMNS)


@dataclass(frozen=True)
class RowSearch:
    """What a source row must carry to be found (every given condition): the search keys as
    domain/exceptions/search.py makes them (the reference conditions hold for the row's reference),
    the amount's magnitude in major units, the transaction date's day."""

    reference: str | None = None
    reference_prefix: str | None = None
    secondary_reference: str | None = None
    secondary_reference_prefix: str | None = None
    masked_account: str | None = None
    channels: tuple[str, ...] = ()
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None


class RowFinder(Protocol):
    """The rows of a file's normalized form that a search finds (the results page's filters)."""

    def find_rows(self, storage_path: str, search: RowSearch) -> list[int]:
        """The row numbers of the normalized Parquet at `storage_path` meeting `search`, ascending;
        none when the file is gone."""
        ...


@dataclass(frozen=True)
class JobFilter:
    status: JobStatus | None = None
    created_from: dt.datetime | None = None  # inclusive
    created_to: dt.datetime | None = None  # exclusive


@dataclass(frozen=True)
class JobFileLink:
    file_id: uuid.UUID
    side: str  # left | right
    file_version: int | None = None  # the normalized version of the file the job reads (None: not yet known)


@dataclass(frozen=True)
class StoredMatch:
    status: str  # auto | suggested
    group_key: str | None
    left_row: int
    right_row: int
    rule: str
    rule_version: int
    confidence: Decimal
    evidence: dict[str, Any]


@dataclass(frozen=True)
class StuckJob:
    job_id: uuid.UUID
    organization_id: uuid.UUID
    status: str
    attempt: int


@dataclass(frozen=True)
class RuleVersion:
    """An approved, active version of one of the organization's matching rules."""

    rule_id: uuid.UUID
    version: int
    name: str
    definition: dict[str, Any]  # the rule JSON of docs/profile.md (without `applies_to`)
    applies_to: tuple[str, str] | None  # (left file type, right file type), None: any pair


class JobRepository(Protocol):
    def add(self, job: ReconciliationJob) -> ReconciliationJob:
        """Insert; returns the stored job (created_at/updated_at filled in)."""
        ...

    def get(self, job_id: uuid.UUID) -> ReconciliationJob | None: ...

    def get_for_update(self, job_id: uuid.UUID) -> ReconciliationJob | None:
        """Read and lock the row until the transaction ends (SELECT ... FOR UPDATE)."""
        ...

    def update(self, job: ReconciliationJob) -> None:
        """Store every field except id, organization_id, created_by and created_at.
        EntityNotFound if absent."""
        ...

    def delete(self, job_id: uuid.UUID) -> bool:
        """Remove the job with its results, exceptions and file links; False if absent."""
        ...

    def list(self, job_filter: JobFilter, *, limit: int, offset: int) -> tuple[list[ReconciliationJob], int]:
        """Newest first; returns (page, total matching the filter)."""
        ...

    def count_created_since(self, since: dt.datetime) -> int:
        """Jobs of the organization created at or after `since` (max_jobs_per_month)."""
        ...

    def link_files(self, job_id: uuid.UUID, links: Sequence[JobFileLink]) -> None:
        """Record which files the job reconciles (reconciliation_job_files)."""
        ...

    def linked_files(self, job_id: uuid.UUID) -> builtins.list[JobFileLink]: ...

    def record_file_version(self, job_id: uuid.UUID, file_id: uuid.UUID, version: int) -> None:
        """Record the normalized version of a linked file the job read (the worker, when it
        normalized the file itself). EntityNotFound when the job does not link the file."""
        ...

    def latest_for_files(self, left_file_id: uuid.UUID, right_file_id: uuid.UUID) -> uuid.UUID | None:
        """The newest job that reconciled exactly these two files on these sides (a re-run links
        to it through previous_job_id)."""
        ...

    def find_stuck(self, limit: int, pending_after_seconds: int) -> builtins.list[StuckJob]:
        """*System* (any organization; `reconciliation_find_stuck_jobs`): jobs processing with an
        expired lease, and jobs pending for longer than `pending_after_seconds`."""
        ...


class ResultsRepository(Protocol):
    def replace_results(self, job_id: uuid.UUID, attempt: int, matches: Iterable[bytes],
                        exceptions: Iterable[bytes]) -> tuple[int, int]:
        """Delete the job's match rows and exceptions, then bulk-write these (CSV chunks, see the
        module docstring); returns (match rows, exception rows) written. The job must be the bound
        organization's and `processing` at `attempt`. Raises ResultsRejected when it is not, or
        when a chunk does not parse or breaks a constraint (nothing is written)."""
        ...

    def inherit_exceptions(self, job_id: uuid.UUID, earlier_job_id: uuid.UUID, *, at: dt.datetime) -> int:
        """A forced re-run (docs/decisions/forced-job-inheritance.md), in the transaction that wrote
        the job's exceptions: each open exception of `job_id` with a counterpart among
        `earlier_job_id`'s by key (domain/exceptions/inheritance.py: same type, left file and
        row, right file and row; several with one key pair in the order each job wrote them)
        takes the counterpart's state (`ExceptionItem.inherit`: INHERITED_FIELDS), `inherited_from`
        = its id and `updated_at` = `at`; gets one `inherit` history entry (actor None, changes
        `inheritance_changes`); and gets a copy of each of its comments (same author, time and
        text). Exceptions without a counterpart stay as written; the earlier job's exceptions are
        only read. Set-based on PostgreSQL (one statement). Returns how many inherited."""
        ...

    def list_matches(self, job_id: uuid.UUID, *, status: str, limit: int, offset: int = 0,
                     group_key: str | None = None, after: tuple[int, int] | None = None,
                     rows: tuple[Sequence[int], Sequence[int]] | None = None) -> list[StoredMatch]:
        """One page of the job's pairs with this status (and group), ordered by (left_row,
        right_row). `rows` (left rows, right rows): only the pairs with one of these left rows or
        one of these right rows (a search's rows). `after` (keyset paging): only the pairs that sort after that (left_row,
        right_row); `offset` then counts from there. Keyset pages cost the same at any depth."""
        ...

    def count_matches(self, job_id: uuid.UUID, *, status: str, group_key: str | None = None,
                      rows: tuple[Sequence[int], Sequence[int]] | None = None) -> int:
        """How many pairs `list_matches` can list with these filters (it reads them all: for a
        whole job, prefer the counts its summary recorded at completion)."""
        ...

    def exception_counts(self, job_id: uuid.UUID) -> dict[str, int]:
        """Number of exceptions of the job by type."""
        ...

    def exception_rows(self, job_id: uuid.UUID) -> list[dict[str, Any]]:
        """Every exception of the job (id, type, severity, left_row, right_row, amount_minor, currency,
        transaction_date, description), ordered by (left_row, right_row): for exports and tests."""
        ...


class RuleRepository(Protocol):
    def active_versions(self, rule_ids: Sequence[uuid.UUID] | None = None) -> list[RuleVersion]:
        """The active (approved) version of each active rule of the organization; only these ids
        when given (an unknown or inactive id is simply absent)."""
        ...

    def add_version(self, rule: RuleVersion, *, created_by: uuid.UUID, priority: int = 0) -> None:
        """Store a rule with one active version (seeding and tests; the rules feature owns the
        approval workflow)."""
        ...


class ResultsRejected(Exception):
    """The bulk results could not be written (bad data or a constraint); nothing was written."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"results could not be stored: {reason}")
        self.reason = reason


class MatchRun(Protocol):
    """The outcome of matching one job's two files, ready to be persisted and exported."""

    left_rows: int
    right_rows: int
    matched_pairs: int  # clean (auto) matches
    suggested_pairs: int
    matched_rows: int  # distinct rows, both sides, in clean matches
    exception_rows: int  # distinct rows, both sides, that exceptions are about
    exceptions_by_type: dict[str, int]
    reversals_netted: dict[str, int]  # per side: reversal rows netted against their approval
    stage_seconds: dict[str, float]
    direction_rows: dict[str, int]  # per side whose profile keeps one direction: its rows with that direction

    def match_chunks(self, check: Callable[[], None]) -> Iterator[bytes]:
        """Matches then suggestions as CSV chunks in MATCH_COLUMNS order; `check()` is called
        before each chunk (it raises to stop: a cancelled job)."""
        ...

    def exception_chunks(self, left_file_id: uuid.UUID, right_file_id: uuid.UUID,
                         check: Callable[[], None]) -> Iterator[bytes]:
        """Exceptions as CSV chunks in EXCEPTION_COLUMNS order (transaction_date filled)."""
        ...

    def results_csv(self) -> bytes:
        """Every match, suggestion and exception in one table (processed/{job_id}/results.csv)."""
        ...

    def results_parquet(self) -> bytes:
        """The same table as Parquet (processed/{job_id}/results.parquet)."""
        ...


class JobMatchingEngine(Protocol):
    """The matching engine as a job runs it: the same engine and semantics as `reckai reconcile`
    (ports.matching.MatchingEngine), fed from normalized Parquet and returning bulk output."""

    def load(self, normalized_parquet: bytes) -> Any:
        """A normalized file's canonical table. Raises SourceFileError when it cannot be read."""
        ...

    def run(self, left: Any, right: Any, profile: ReconciliationProfile,
            period: ReconciliationPeriod | None, check: Callable[[], None] | None = None,
            excluded_pairs: Collection[tuple[int, int]] = ()) -> MatchRun:
        """Match and classify; raises MatchingError when the engine cannot run. `check()`, when
        given, is called between the engine's passes and stages; whatever it raises (a cancelled
        job) stops the run and propagates unchanged. `excluded_pairs` ((left_row, right_row) a
        person declined) are never matched nor suggested (ports.matching.MatchingEngine)."""
        ...


class JobsUnitOfWork(FilesUnitOfWork, Protocol):
    """The unit of work as the reconciliation-job use cases see it: the files they match, plus the
    jobs, their results and the matching rules."""

    @property
    def reconciliation_jobs(self) -> JobRepository: ...

    @property
    def reconciliation_results(self) -> ResultsRepository: ...

    @property
    def matching_rules(self) -> RuleRepository: ...

    @property
    def declined_pairs(self) -> DeclinedPairs:
        """The pairs people declined (issue 7): a job never matches nor suggests them again."""
        ...

    @property
    def streams(self) -> StreamRepository:
        """Streams (issue 15): a stream's run is a reconciliation job over its new files and open items."""
        ...

    @property
    def stream_schedules(self) -> StreamScheduleRepository:
        """Stream schedules (issue 15 item 5) and the slots they decided."""
        ...

    @property
    def exceptions(self) -> ExceptionRepository:
        """A stream run closes earlier exceptions whose rows it matched (a system action)."""
        ...

    @property
    def stream_periods(self) -> StreamPeriodRepository:
        """A run does not close an exception a closed period froze (issue 15 item 4)."""
        ...
