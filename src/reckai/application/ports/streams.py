"""Ports of streams (issue 15; docs/streams.md).

Repository contract (PostgreSQL and in-memory adapters alike; tests/contracts/stream_repositories.py
runs the same tests over both): reads see only the bound organization's rows; another
organization's stream is absent (None), never forbidden; a write for another organization raises
TenantIsolationViolation. Datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, NamedTuple, Protocol

from reckai.domain.streams.streams import Stream, StreamFile, StreamRun

ACTIVE_EXCEPTION_STATUSES = ("open", "in_progress", "escalated")
CLOSED_EXCEPTION_STATUSES = ("resolved", "ignored")


class RowKey(NamedTuple):
    """A row a stream took: its key (side, fingerprint, occurrence), its stream number and origin.

    `transaction_day` is the date of the row's transaction date (None: the row has none, or it was
    taken before the stream kept days). The fingerprint covers the transaction date, so the day adds
    nothing to the row's identity; it says where a repository keeps and looks for the key (a
    run's keys are all of a few recent days: docs/streams.md "Cost stays flat")."""

    side: str
    fingerprint: str
    occurrence: int
    seq: int
    file_id: uuid.UUID
    row_number: int
    transaction_day: dt.date | None


# (transaction day, fingerprint, occurrence): a key as a run asks for it
KeyProbe = tuple[dt.date | None, str, int]


class StoredRow(NamedTuple):
    key: RowKey
    run_number: int  # the run that took it


class StreamBreak(NamedTuple):
    """An exception of the stream and the stream rows it is about (by seq)."""

    exception_id: uuid.UUID
    left_seq: int | None
    right_seq: int | None
    status: str
    resolution_code: str | None = None
    first_run: int | None = None  # the run that found the break first


class ExceptionOrigin(NamedTuple):
    exception_id: uuid.UUID
    left_file_id: uuid.UUID | None
    left_row: int | None
    right_file_id: uuid.UUID | None
    right_row: int | None


class StreamRepository(Protocol):
    def add(self, stream: Stream) -> Stream:
        """Insert; DuplicateEntity("stream", "name") when the organization has a stream of that name."""
        ...

    def get(self, stream_id: uuid.UUID) -> Stream | None: ...

    def get_for_update(self, stream_id: uuid.UUID) -> Stream | None:
        """Read and lock the stream until the transaction ends: runs and file additions of one
        stream are serialised on it."""
        ...

    def list(self, *, limit: int, offset: int) -> tuple[builtins.list[Stream], int]:
        """Newest first; (page, total)."""
        ...

    def update(self, stream: Stream) -> None:
        """Store name, owner, rules, leading side, currency, options and updated_at."""
        ...

    # --- files ---

    def add_file(self, stream_file: StreamFile) -> None: ...

    def files(self, stream_id: uuid.UUID) -> builtins.list[StreamFile]:
        """Every file the stream took, in the order it took them."""
        ...

    def file_taken_by_checksum(self, stream_id: uuid.UUID, checksum: str) -> uuid.UUID | None:
        """The file of this stream with this SHA-256, if any."""
        ...

    def stream_of_file(self, file_id: uuid.UUID) -> uuid.UUID | None:
        """The stream that took this file, if any."""
        ...

    def job_using_file(self, file_id: uuid.UUID) -> uuid.UUID | None:
        """A reconciliation job (one-off or run) that reconciles this file, if any."""
        ...

    def waiting_files(self, stream_id: uuid.UUID) -> builtins.list[StreamFile]:
        """Files no completed or running run used: not yet given to a run, or given to a run that
        failed or was cancelled (they join the next run)."""
        ...

    def assign_files(self, stream_id: uuid.UUID, file_ids: Collection[uuid.UUID], job_id: uuid.UUID) -> None: ...

    # --- runs ---

    def add_run(self, run: StreamRun) -> None: ...

    def runs(self, stream_id: uuid.UUID) -> builtins.list[StreamRun]:
        """Oldest first."""
        ...

    def run_of_job(self, job_id: uuid.UUID) -> StreamRun | None: ...

    def update_run(self, run: StreamRun) -> None:
        """Store carry_key and figures."""
        ...

    # --- rows and their breaks ---

    def known_keys(self, stream_id: uuid.UUID, side: str, keys: Sequence[KeyProbe]) -> set[tuple[str, int]]:
        """The (fingerprint, occurrence) of those of these keys the stream already took on this side.
        A key is looked for under its day, and among the rows whose day is not known (None), never
        under another day: equal fingerprints have equal transaction dates."""
        ...

    def row(self, stream_id: uuid.UUID, side: str, seq: int) -> StoredRow | None:
        """The stream row with this number on this side: its key and where it came from."""
        ...

    def last_seq(self, stream_id: uuid.UUID, side: str) -> int:
        """The highest stream row number on this side (0 when none)."""
        ...

    def add_rows(self, stream_id: uuid.UUID, run_number: int, rows: Sequence[RowKey]) -> int:
        """Record the rows a run took (bulk); returns how many."""
        ...

    def job_exception_origins(self, job_id: uuid.UUID) -> builtins.list[ExceptionOrigin]:
        """The job's exceptions with the (file, row number) of each side's row."""
        ...

    def link_exceptions(self, stream_id: uuid.UUID, run_number: int,
                        links: Sequence[tuple[uuid.UUID, int | None, int | None]]) -> int:
        """Tie exceptions to the stream rows they are about: (exception id, left seq, right seq)."""
        ...

    def breaks(self, stream_id: uuid.UUID, *, active_only: bool,
               seqs: Sequence[tuple[str, int]] | None = None) -> builtins.list[StreamBreak]:
        """The stream's exceptions (only those still open, in progress or escalated when
        `active_only`), or only those about one of these (side, seq) rows."""
        ...


class StreamUnitOfWork(Protocol):
    @property
    def streams(self) -> StreamRepository: ...


class StreamSideInput(Protocol):
    """One side of a stream run's input: the open rows carried from earlier runs, then the new
    files' rows the stream did not hold yet, each numbered by its stream row number (`seq`)."""

    side: str
    new_keys: list[RowKey]  # the new rows, to record in stream_rows
    carried_rows: int
    new_rows: int
    repeated_rows: int  # rows of the new files whose key the stream already held (not taken again)
    settled_rows: int  # carried rows a person closed since the last run (left out)
    first_new_seq: int  # rows numbered below this were carried

    def carried_seqs(self) -> list[int]: ...

    def seqs_of(self, origins: Collection[tuple[uuid.UUID, int]]) -> dict[tuple[uuid.UUID, int], int]:
        """The stream row numbers of these (file id, row number) rows of this input, where present."""
        ...


class StreamOutcome(Protocol):
    """A run's result in stream terms, computed column-wise from the engine's MatchRun."""

    new_exceptions: int  # breaks no exception of the stream was about yet
    found_again: int  # breaks the stream already had an exception for (that exception carries on)
    matched_carried: list[tuple[str, int]]  # carried rows (side, seq) a clean match took in this run
    open_rows: dict[str, int]  # rows per side still open after the run
    matched_amounts: dict[str, dict[str, int]]  # currency -> side -> clean matches' amounts, minor units

    def exception_chunks(self, check: Callable[[], None]) -> Iterator[bytes]:
        """The new breaks only, as EXCEPTION_COLUMNS CSV chunks: rows and file ids are the rows' own."""
        ...

    def partner(self, side: str, seq: int) -> MatchedRow | None:
        """The row a clean match of this run paired with this row."""
        ...

    def carry_parquet(self) -> bytes:
        """The rows still open after this run (both sides), the next run's carried input."""
        ...


class MatchedRow(NamedTuple):
    side: str
    seq: int
    file_id: uuid.UUID
    row_number: int
    partner_side: str
    partner_seq: int
    partner_file_id: uuid.UUID
    partner_row_number: int


class StreamEngine(Protocol):
    """Builds a stream run's input and reads its result (adapters/polars/stream_runs.py)."""

    def side_input(self, side: str, new_tables: Sequence[tuple[uuid.UUID, Any]], carried: bytes | None,
                   first_seq: int, known_keys: Callable[[Sequence[KeyProbe]], set[tuple[str, int]]],
                   settled: Callable[[Sequence[int]], set[int]]) -> StreamSideInput:
        """`new_tables`: (file id, canonical table) of the side's new files; `carried`: the previous
        run's carry_parquet (None for the first run); `known_keys` answers which keys the stream
        already holds; `settled` which carried rows a person closed meanwhile."""
        ...

    def engine_table(self, side_input: StreamSideInput) -> Any:
        """The canonical table the matching engine reads (row_number = the stream row number)."""
        ...

    def outcome(self, run: Any, left: StreamSideInput, right: StreamSideInput,
                known_rows: Collection[tuple[str, int]]) -> StreamOutcome:
        """`run`: the engine's MatchRun; `known_rows`: the carried rows (side, seq) an exception of
        the stream is already about, whatever its status. A break naming only carried rows, one of
        them known, is found again (its exception carries on); any other break is new."""
        ...
