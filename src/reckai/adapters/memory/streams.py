"""In-memory repository of streams (same contract as adapters/postgres/streams.py;
tests/contracts/stream_repositories.py runs over both)."""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from reckai.adapters.memory.store import MemoryTransaction
from reckai.application.ports.repositories import DuplicateEntity, EntityNotFound, TenantIsolationViolation
from reckai.application.ports.streams import (
    ACTIVE_EXCEPTION_STATUSES,
    ExceptionOrigin,
    KeyProbe,
    RowKey,
    StoredRow,
    StreamBreak,
    StreamRepository,
)
from reckai.domain.streams.streams import Stream, StreamFile, StreamRun

STREAMS = "streams"
STREAM_FILES = "stream_files"
STREAM_RUNS = "stream_runs"
STREAM_ROWS = "stream_rows"
STREAM_EXCEPTIONS = "stream_exceptions"


@dataclasses.dataclass(frozen=True)
class _Owned:
    organization_id: uuid.UUID
    value: Any


@dataclasses.dataclass(frozen=True)
class _RowRecord:
    organization_id: uuid.UUID
    value_stream: uuid.UUID
    value: RowKey
    run_number: int


@dataclasses.dataclass(frozen=True)
class _Link:
    organization_id: uuid.UUID
    stream_id: uuid.UUID
    exception_id: uuid.UUID
    left_seq: int | None
    right_seq: int | None
    first_run: int


class MemoryStreamRepository:
    entity_name = "stream"

    def __init__(self, uow: MemoryTransaction) -> None:
        self._uow = uow

    @property
    def _org(self) -> uuid.UUID:
        if self._uow.organization_id is None:
            raise TenantIsolationViolation(self.entity_name, None, None)
        return self._uow.organization_id

    def _owned(self, table: str) -> list[Any]:
        return [row.value for _, row in self._uow.rows(table)]

    def add(self, stream: Stream) -> Stream:
        if stream.organization_id != self._uow.organization_id:
            raise TenantIsolationViolation(self.entity_name, stream.organization_id, self._uow.organization_id)
        if any(s.name == stream.name for _, s in self._uow.rows(STREAMS)):
            raise DuplicateEntity("stream", "name")
        now = self._uow.now()
        stored = dataclasses.replace(stream, created_at=stream.created_at or now, updated_at=stream.updated_at or now)
        self._uow.put(STREAMS, stream.id, stored)
        return stored

    def get(self, stream_id: uuid.UUID) -> Stream | None:
        found: Stream | None = self._uow.get(STREAMS, stream_id)
        return found

    def get_for_update(self, stream_id: uuid.UUID) -> Stream | None:
        if self.get(stream_id) is None:
            return None
        self._uow.lock_row(STREAMS, stream_id)
        return self.get(stream_id)

    def list(self, *, limit: int, offset: int) -> tuple[builtins.list[Stream], int]:
        streams = [s for _, s in self._uow.rows(STREAMS)]
        streams.sort(key=lambda s: (-(s.created_at or dt.datetime.min.replace(tzinfo=dt.UTC)).timestamp(), str(s.id)))
        return streams[offset:offset + limit], len(streams)

    def update(self, stream: Stream) -> None:
        current = self.get(stream.id)
        if current is None:
            raise EntityNotFound(self.entity_name, stream.id)
        if any(s.name == stream.name and s.id != stream.id for _, s in self._uow.rows(STREAMS)):
            raise DuplicateEntity("stream", "name")
        self._uow.put(STREAMS, stream.id, dataclasses.replace(
            current, name=stream.name, owner_id=stream.owner_id, rules=stream.rules, leading_side=stream.leading_side,
            currency=stream.currency, options=stream.options, updated_at=stream.updated_at or self._uow.now()))

    # --- files ---

    def add_file(self, stream_file: StreamFile) -> None:
        if any(f.checksum == stream_file.checksum and f.stream_id == stream_file.stream_id
               for f in self._owned(STREAM_FILES)):
            raise DuplicateEntity("stream_file", "checksum")
        if any(f.file_id == stream_file.file_id for f in self._owned(STREAM_FILES)):
            raise DuplicateEntity("stream_file", "file_id")
        stored = dataclasses.replace(stream_file, added_at=stream_file.added_at or self._uow.now())
        self._uow.put(STREAM_FILES, stream_file.file_id, _Owned(self._org, stored))

    def files(self, stream_id: uuid.UUID) -> builtins.list[StreamFile]:
        found = [f for f in self._owned(STREAM_FILES) if f.stream_id == stream_id]
        return sorted(found, key=lambda f: (f.added_at, str(f.file_id)))

    def file_taken_by_checksum(self, stream_id: uuid.UUID, checksum: str) -> uuid.UUID | None:
        return next((f.file_id for f in self.files(stream_id) if f.checksum == checksum), None)

    def stream_of_file(self, file_id: uuid.UUID) -> uuid.UUID | None:
        return next((f.stream_id for f in self._owned(STREAM_FILES) if f.file_id == file_id), None)

    def job_using_file(self, file_id: uuid.UUID) -> uuid.UUID | None:
        return next((row.job_id for _, row in self._uow.rows("reconciliation_job_files") if row.file_id == file_id),
                    None)

    def waiting_files(self, stream_id: uuid.UUID) -> builtins.list[StreamFile]:
        def waiting(f: StreamFile) -> bool:
            if f.job_id is None:
                return True
            job = self._uow.get("reconciliation_jobs", f.job_id)
            return job is None or job.status.value in ("failed", "cancelled")
        return [f for f in self.files(stream_id) if waiting(f)]

    def assign_files(self, stream_id: uuid.UUID, file_ids: Collection[uuid.UUID], job_id: uuid.UUID) -> None:
        for f in self.files(stream_id):
            if f.file_id in file_ids:
                self._uow.put(STREAM_FILES, f.file_id, _Owned(self._org, dataclasses.replace(f, job_id=job_id)))

    # --- runs ---

    def add_run(self, run: StreamRun) -> None:
        key = (run.stream_id, run.run_number)
        if self._uow.get(STREAM_RUNS, key) is not None:
            raise DuplicateEntity("stream_run", "run_number")
        self._uow.put(STREAM_RUNS, key, _Owned(self._org, dataclasses.replace(
            run, created_at=run.created_at or self._uow.now())))

    def runs(self, stream_id: uuid.UUID) -> builtins.list[StreamRun]:
        return sorted((r for r in self._owned(STREAM_RUNS) if r.stream_id == stream_id), key=lambda r: r.run_number)

    def run_of_job(self, job_id: uuid.UUID) -> StreamRun | None:
        return next((r for r in self._owned(STREAM_RUNS) if r.job_id == job_id), None)

    def update_run(self, run: StreamRun) -> None:
        key = (run.stream_id, run.run_number)
        current = self._uow.get(STREAM_RUNS, key)
        if current is None:
            raise EntityNotFound("stream_run", run.run_number)
        self._uow.put(STREAM_RUNS, key, _Owned(self._org, dataclasses.replace(
            current.value, carry_key=run.carry_key, figures=run.figures)))

    # --- rows and breaks ---

    def _rows(self, stream_id: uuid.UUID) -> builtins.list[tuple[Any, RowKey]]:
        return [(key, row.value) for key, row in self._uow.rows(STREAM_ROWS) if row.value_stream == stream_id]

    def known_keys(self, stream_id: uuid.UUID, side: str, keys: Sequence[KeyProbe]) -> set[tuple[str, int]]:
        # as PostgreSQL's: a key is found under its own day or among the rows of unknown day
        wanted = set(keys)
        any_day = {(fingerprint, occurrence) for _, fingerprint, occurrence in keys}
        return {(r.fingerprint, r.occurrence) for _, r in self._rows(stream_id)
                if r.side == side and ((r.transaction_day, r.fingerprint, r.occurrence) in wanted
                                       or (r.transaction_day is None and (r.fingerprint, r.occurrence) in any_day))}

    def row(self, stream_id: uuid.UUID, side: str, seq: int) -> StoredRow | None:
        for _, record in self._uow.rows(STREAM_ROWS):
            if record.value_stream == stream_id and record.value.side == side and record.value.seq == seq:
                return StoredRow(record.value, record.run_number)
        return None

    def last_seq(self, stream_id: uuid.UUID, side: str) -> int:
        return max((r.seq for _, r in self._rows(stream_id) if r.side == side), default=0)

    def add_rows(self, stream_id: uuid.UUID, run_number: int, rows: Sequence[RowKey]) -> int:
        # the primary key of PostgreSQL's stream_rows (0032): side, day, fingerprint, occurrence
        taken = {(r.side, r.transaction_day, r.fingerprint, r.occurrence) for _, r in self._rows(stream_id)}
        seqs = {(r.side, r.seq) for _, r in self._rows(stream_id)}
        for row in rows:
            key = (row.side, row.transaction_day, row.fingerprint, row.occurrence)
            if key in taken or (row.side, row.seq) in seqs:
                raise DuplicateEntity("stream_row", "key")
            taken.add(key)
            seqs.add((row.side, row.seq))
            self._uow.put(STREAM_ROWS, (stream_id, *key),
                          _RowRecord(self._org, stream_id, row, run_number))
        return len(rows)

    def job_exception_origins(self, job_id: uuid.UUID) -> builtins.list[ExceptionOrigin]:
        return [ExceptionOrigin(item.id, item.left_file_id, item.left_row, item.right_file_id, item.right_row)
                for _, item in self._uow.rows("exceptions") if item.job_id == job_id]

    def link_exceptions(self, stream_id: uuid.UUID, run_number: int,
                        links: Sequence[tuple[uuid.UUID, int | None, int | None]]) -> int:
        for exception_id, left, right in links:
            if self._uow.get("exceptions", exception_id) is None or (left is None and right is None):
                raise EntityNotFound("exception", exception_id)
            self._uow.put(STREAM_EXCEPTIONS, exception_id,
                          _Link(self._org, stream_id, exception_id, left, right, run_number))
        return len(links)

    def breaks(self, stream_id: uuid.UUID, *, active_only: bool,
               seqs: Sequence[tuple[str, int]] | None = None) -> builtins.list[StreamBreak]:
        wanted = None if seqs is None else set(seqs)
        found = []
        for _, link in self._uow.rows(STREAM_EXCEPTIONS):
            if link.stream_id != stream_id:
                continue
            item = self._uow.get("exceptions", link.exception_id)
            if item is None:
                continue
            status = item.status.value
            if active_only and status not in ACTIVE_EXCEPTION_STATUSES:
                continue
            if wanted is not None and ("left", link.left_seq) not in wanted and ("right", link.right_seq) not in wanted:
                continue
            found.append(StreamBreak(link.exception_id, link.left_seq, link.right_seq, status, item.resolution_code,
                                     link.first_run))
        return sorted(found, key=lambda b: str(b.exception_id))


_check: type[StreamRepository] = MemoryStreamRepository
