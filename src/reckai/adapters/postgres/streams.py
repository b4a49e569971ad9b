"""PostgreSQL repository of streams (application/ports/streams.py; migrations 0021_streams, 0032_stream_row_days)."""

from __future__ import annotations

import builtins
import datetime as dt
import json
import uuid
from collections.abc import Collection, Sequence
from typing import Any

import polars as pl
import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Connection, Row

from reckai.adapters.postgres.repository import PostgresRepository, translate_errors
from reckai.application.ports.repositories import DuplicateEntity, EntityNotFound
from reckai.application.ports.streams import (
    ACTIVE_EXCEPTION_STATUSES,
    ExceptionOrigin,
    KeyProbe,
    RowKey,
    StoredRow,
    StreamBreak,
    StreamRepository,
)
from reckai.domain.streams.streams import PinnedRule, Stream, StreamFile, StreamRun, StreamSide

_STREAM_COLUMNS = ("id, organization_id, name, left_file_type, right_file_type, left_mapping, right_mapping, rules,"
                   " leading_side, currency, options, owner_id, created_by, created_at, updated_at")


# stream_rows.transaction_day of a row whose day is not known (0032_stream_row_days)
UNKNOWN_DAY = "-infinity"


def _day_text(day: dt.date | None) -> str:
    """The day as PostgreSQL reads it; ISO text sorts as the dates do, '-infinity' first."""
    return UNKNOWN_DAY if day is None else day.isoformat()


_PROBE_SCHEMA = pl.Schema({"transaction_day": pl.String, "fingerprint": pl.String, "occurrence": pl.Int64})
_ROW_SCHEMA = pl.Schema({"side": pl.String, "transaction_day": pl.String, "fingerprint": pl.String,
                         "occurrence": pl.Int64, "seq": pl.Int64, "file_id": pl.String, "row_number": pl.Int64})


def _day_column(days: Sequence[dt.date | None]) -> pl.Series:
    """The days as PostgreSQL reads them; ISO text sorts as the dates do, '-infinity' first.
    (A run's rows have a few distinct days: each is formatted once.)"""
    texts = {day: _day_text(day) for day in set(days)}
    return pl.Series([texts[day] for day in days], dtype=pl.String)


def _stage(connection: Connection, create: str, table: str, frame: pl.DataFrame) -> None:
    """COPY the frame, in its order, into a temporary table of this transaction, emptied first."""
    raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)  # the engine's driver is psycopg 3
    with raw.cursor() as cursor:
        cursor.execute(create)
        cursor.execute(f"TRUNCATE {table}")
        with cursor.copy(f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv)") as copy:
            for offset in range(0, frame.height, 50_000):
                copy.write(frame.slice(offset, 50_000).write_csv(include_header=False))


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.replace(tzinfo=dt.UTC)


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.astimezone(dt.UTC).replace(tzinfo=None)


def _stream(row: Row[Any]) -> Stream:
    return Stream(id=row.id, organization_id=row.organization_id, name=row.name,
                  left=StreamSide(row.left_file_type, dict(row.left_mapping)),
                  right=StreamSide(row.right_file_type, dict(row.right_mapping)),
                  rules=tuple(PinnedRule.from_json(rule) for rule in row.rules), leading_side=row.leading_side,
                  currency=row.currency, owner_id=row.owner_id, created_by=row.created_by,
                  options=dict(row.options or {}), created_at=_aware(row.created_at),
                  updated_at=_aware(row.updated_at))


def _file(row: Row[Any]) -> StreamFile:
    return StreamFile(stream_id=row.stream_id, file_id=row.file_id, side=row.side, checksum=row.checksum,
                      added_by=row.added_by, added_at=_aware(row.added_at), job_id=row.job_id)


def _run(row: Row[Any]) -> StreamRun:
    return StreamRun(stream_id=row.stream_id, run_number=row.run_number, job_id=row.job_id,
                     created_by=row.created_by, created_at=_aware(row.created_at), carry_key=row.carry_key,
                     figures=row.figures)


class PostgresStreamRepository(PostgresRepository):
    entity_name = "stream"

    def add(self, stream: Stream) -> Stream:
        self._check_tenant(stream.organization_id)
        try:
            with self._write():
                row = self._conn.execute(text(
                    f"INSERT INTO streams ({_STREAM_COLUMNS}) VALUES (:id, :org, :name, :left_type, :right_type,"
                    " CAST(:left_mapping AS jsonb), CAST(:right_mapping AS jsonb), CAST(:rules AS jsonb), :leading,"
                    " :currency, CAST(:options AS jsonb), :owner, :created_by,"
                    " coalesce(:created_at, now() AT TIME ZONE 'UTC'), coalesce(:created_at, now() AT TIME ZONE 'UTC'))"
                    f" RETURNING {_STREAM_COLUMNS}"), self._params(stream)).one()
        except DuplicateEntity as exc:
            raise DuplicateEntity("stream", "name") from exc
        return _stream(row)

    @staticmethod
    def _params(stream: Stream) -> dict[str, Any]:
        return {"id": stream.id, "org": stream.organization_id, "name": stream.name,
                "left_type": stream.left.file_type, "right_type": stream.right.file_type,
                "left_mapping": json.dumps(stream.left.mapping), "right_mapping": json.dumps(stream.right.mapping),
                "rules": json.dumps([rule.as_json() for rule in stream.rules]), "leading": stream.leading_side,
                "currency": stream.currency, "options": json.dumps(stream.options), "owner": stream.owner_id,
                "created_by": stream.created_by, "created_at": _naive(stream.created_at),
                "updated_at": _naive(stream.updated_at)}

    def get(self, stream_id: uuid.UUID) -> Stream | None:
        row = self._conn.execute(text(f"SELECT {_STREAM_COLUMNS} FROM streams WHERE id = :id"),
                                 {"id": stream_id}).first()
        return _stream(row) if row else None

    def get_for_update(self, stream_id: uuid.UUID) -> Stream | None:
        row = self._conn.execute(text(f"SELECT {_STREAM_COLUMNS} FROM streams WHERE id = :id FOR UPDATE"),
                                 {"id": stream_id}).first()
        return _stream(row) if row else None

    def list(self, *, limit: int, offset: int) -> tuple[builtins.list[Stream], int]:
        total = self._conn.execute(text("SELECT count(*) FROM streams")).scalar_one()
        rows = self._conn.execute(text(f"SELECT {_STREAM_COLUMNS} FROM streams ORDER BY created_at DESC, id"
                                       " LIMIT :limit OFFSET :offset"), {"limit": limit, "offset": offset}).all()
        return [_stream(row) for row in rows], int(total)

    def update(self, stream: Stream) -> None:
        try:
            with self._write():
                result = self._conn.execute(text(
                    "UPDATE streams SET name = :name, owner_id = :owner, rules = CAST(:rules AS jsonb),"
                    " leading_side = :leading, currency = :currency, options = CAST(:options AS jsonb),"
                    " updated_at = coalesce(:updated_at, now() AT TIME ZONE 'UTC') WHERE id = :id"),
                    self._params(stream))
        except DuplicateEntity as exc:
            raise DuplicateEntity("stream", "name") from exc
        if result.rowcount == 0:
            raise EntityNotFound(self.entity_name, stream.id)

    # --- files ---

    def add_file(self, stream_file: StreamFile) -> None:
        with self._write():
            self._conn.execute(text(
                "INSERT INTO stream_files (organization_id, stream_id, file_id, side, checksum, added_by, added_at)"
                " VALUES (:org, :stream, :file, :side, :checksum, :by, coalesce(:at, now() AT TIME ZONE 'UTC'))"),
                {"org": self._uow.organization_id, "stream": stream_file.stream_id, "file": stream_file.file_id,
                 "side": stream_file.side, "checksum": stream_file.checksum, "by": stream_file.added_by,
                 "at": _naive(stream_file.added_at)})

    def files(self, stream_id: uuid.UUID) -> builtins.list[StreamFile]:
        rows = self._conn.execute(text("SELECT * FROM stream_files WHERE stream_id = :s ORDER BY added_at, file_id"),
                                  {"s": stream_id}).all()
        return [_file(row) for row in rows]

    def file_taken_by_checksum(self, stream_id: uuid.UUID, checksum: str) -> uuid.UUID | None:
        row = self._conn.execute(text("SELECT file_id FROM stream_files WHERE stream_id = :s AND checksum = :c"),
                                 {"s": stream_id, "c": checksum}).first()
        return row.file_id if row else None

    def stream_of_file(self, file_id: uuid.UUID) -> uuid.UUID | None:
        row = self._conn.execute(text("SELECT stream_id FROM stream_files WHERE file_id = :f"),
                                 {"f": file_id}).first()
        return row.stream_id if row else None

    def job_using_file(self, file_id: uuid.UUID) -> uuid.UUID | None:
        row = self._conn.execute(text(
            "SELECT j.id FROM reconciliation_job_files f JOIN reconciliation_jobs j ON j.id = f.job_id"
            " WHERE f.file_id = :f ORDER BY j.created_at DESC LIMIT 1"), {"f": file_id}).first()
        return row.id if row else None

    def waiting_files(self, stream_id: uuid.UUID) -> builtins.list[StreamFile]:
        rows = self._conn.execute(text(
            "SELECT f.* FROM stream_files f LEFT JOIN reconciliation_jobs j ON j.id = f.job_id"
            " WHERE f.stream_id = :s AND (f.job_id IS NULL OR j.status IN ('failed', 'cancelled'))"
            " ORDER BY f.added_at, f.file_id"), {"s": stream_id}).all()
        return [_file(row) for row in rows]

    def assign_files(self, stream_id: uuid.UUID, file_ids: Collection[uuid.UUID], job_id: uuid.UUID) -> None:
        with self._write():
            self._conn.execute(text("UPDATE stream_files SET job_id = :job WHERE stream_id = :s AND file_id = ANY(:ids)"),
                               {"job": job_id, "s": stream_id, "ids": list(file_ids)})

    # --- runs ---

    def add_run(self, run: StreamRun) -> None:
        with self._write():
            self._conn.execute(text(
                "INSERT INTO stream_runs (organization_id, stream_id, run_number, job_id, created_by, created_at)"
                " VALUES (:org, :s, :n, :job, :by, coalesce(:at, now() AT TIME ZONE 'UTC'))"),
                {"org": self._uow.organization_id, "s": run.stream_id, "n": run.run_number, "job": run.job_id,
                 "by": run.created_by, "at": _naive(run.created_at)})

    def runs(self, stream_id: uuid.UUID) -> builtins.list[StreamRun]:
        rows = self._conn.execute(text("SELECT * FROM stream_runs WHERE stream_id = :s ORDER BY run_number"),
                                  {"s": stream_id}).all()
        return [_run(row) for row in rows]

    def run_of_job(self, job_id: uuid.UUID) -> StreamRun | None:
        row = self._conn.execute(text("SELECT * FROM stream_runs WHERE job_id = :j"), {"j": job_id}).first()
        return _run(row) if row else None

    def update_run(self, run: StreamRun) -> None:
        with self._write():
            self._conn.execute(text(
                "UPDATE stream_runs SET carry_key = :key, figures = CAST(:figures AS jsonb)"
                " WHERE stream_id = :s AND run_number = :n"),
                {"key": run.carry_key, "figures": None if run.figures is None else json.dumps(run.figures),
                 "s": run.stream_id, "n": run.run_number})

    # --- rows and breaks ---

    def known_keys(self, stream_id: uuid.UUID, side: str, keys: Sequence[KeyProbe]) -> set[tuple[str, int]]:
        if not keys:
            return set()
        probes = pl.DataFrame({"transaction_day": _day_column([key[0] for key in keys]),
                               "fingerprint": [key[1] for key in keys], "occurrence": [key[2] for key in keys]},
                              schema=_PROBE_SCHEMA).unique().sort(pl.all())
        _stage(self._conn, "CREATE TEMP TABLE IF NOT EXISTS reckai_stream_key_probe (transaction_day date,"
               " fingerprint varchar(64), occurrence integer) ON COMMIT DROP", "reckai_stream_key_probe", probes)
        # Only the probes' days are read (the primary key leads with the day, 0032): a run's keys are
        # of a few recent days, so the rows it reads stay as many as those days hold, whatever the
        # stream's history. Rows of unknown day ('-infinity': taken before 0032, or dateless) may
        # hold any key, so their part is read too; it no longer grows.
        days = sorted({*probes["transaction_day"].unique().to_list(), UNKNOWN_DAY})
        rows = self._conn.execute(text(
            "SELECT r.fingerprint, r.occurrence FROM stream_rows r JOIN reckai_stream_key_probe k"
            "   ON r.fingerprint = k.fingerprint AND r.occurrence = k.occurrence"
            "  AND (r.transaction_day = k.transaction_day OR r.transaction_day = '-infinity')"
            " WHERE r.stream_id = :s AND r.side = :side AND r.transaction_day = ANY(CAST(:days AS date[]))"),
            {"s": stream_id, "side": side, "days": days}).all()
        return {(row.fingerprint, row.occurrence) for row in rows}

    def row(self, stream_id: uuid.UUID, side: str, seq: int) -> StoredRow | None:
        found = self._conn.execute(text(
            "SELECT side, fingerprint, occurrence, seq, file_id, row_number, run_number,"
            " NULLIF(transaction_day, '-infinity') AS transaction_day FROM stream_rows"
            " WHERE stream_id = :s AND side = :side AND seq = :seq"), {"s": stream_id, "side": side, "seq": seq}).first()
        if found is None:
            return None
        return StoredRow(RowKey(found.side, found.fingerprint, found.occurrence, found.seq, found.file_id,
                                found.row_number, found.transaction_day), found.run_number)

    def last_seq(self, stream_id: uuid.UUID, side: str) -> int:
        value = self._conn.execute(text("SELECT max(seq) FROM stream_rows WHERE stream_id = :s AND side = :side"),
                                   {"s": stream_id, "side": side}).scalar_one()
        return int(value or 0)

    def add_rows(self, stream_id: uuid.UUID, run_number: int, rows: Sequence[RowKey]) -> int:
        if not rows:
            return 0
        # Staged in primary-key order and moved as staged: the index pages of the run's days fill one
        # after the other. COPY of polars' CSV, because binding 200,000-element arrays (or formatting
        # and sorting 200,000 Python tuples) cost seconds of client time.
        names = {file_id: str(file_id) for file_id in {r.file_id for r in rows}}
        staged = pl.DataFrame({
            "side": [r.side for r in rows], "transaction_day": _day_column([r.transaction_day for r in rows]),
            "fingerprint": [r.fingerprint for r in rows], "occurrence": [r.occurrence for r in rows],
            "seq": [r.seq for r in rows], "file_id": [names[r.file_id] for r in rows],
            "row_number": [r.row_number for r in rows]},
            schema=_ROW_SCHEMA).sort("side", "transaction_day", "fingerprint", "occurrence")
        _stage(self._conn, "CREATE TEMP TABLE IF NOT EXISTS reckai_stream_row_stage (side varchar(10),"
               " transaction_day date, fingerprint varchar(64), occurrence integer, seq bigint, file_id uuid,"
               " row_number integer) ON COMMIT DROP", "reckai_stream_row_stage", staged)
        with translate_errors(self.entity_name):
            result = self._conn.execute(text(
                "INSERT INTO stream_rows (organization_id, stream_id, side, transaction_day, fingerprint, occurrence,"
                " seq, file_id, row_number, run_number)"
                " SELECT :org, :s, side, transaction_day, fingerprint, occurrence, seq, file_id, row_number, :run"
                " FROM reckai_stream_row_stage"),
                {"org": self._uow.organization_id, "s": stream_id, "run": run_number})
        return int(result.rowcount)

    def job_exception_origins(self, job_id: uuid.UUID) -> builtins.list[ExceptionOrigin]:
        rows = self._conn.execute(text(
            "SELECT id, left_file_id, left_row, right_file_id, right_row FROM exceptions WHERE job_id = :job"),
            {"job": job_id}).all()
        return [ExceptionOrigin(row.id, row.left_file_id, row.left_row, row.right_file_id, row.right_row)
                for row in rows]

    def link_exceptions(self, stream_id: uuid.UUID, run_number: int,
                        links: Sequence[tuple[uuid.UUID, int | None, int | None]]) -> int:
        if not links:
            return 0
        with translate_errors(self.entity_name):
            result = self._conn.execute(text(
                "INSERT INTO stream_exceptions (organization_id, stream_id, exception_id, left_seq, right_seq,"
                " first_run) SELECT :org, :s, k.id, k.l, k.r, :run"
                " FROM unnest(CAST(:ids AS uuid[]), CAST(:lefts AS bigint[]), CAST(:rights AS bigint[])) AS k(id, l, r)"),
                {"org": self._uow.organization_id, "s": stream_id, "run": run_number,
                 "ids": [link[0] for link in links], "lefts": [link[1] for link in links],
                 "rights": [link[2] for link in links]})
        return int(result.rowcount)

    def breaks(self, stream_id: uuid.UUID, *, active_only: bool,
               seqs: Sequence[tuple[str, int]] | None = None) -> builtins.list[StreamBreak]:
        sql = ("SELECT s.exception_id, s.left_seq, s.right_seq, e.status, e.resolution_code, s.first_run"
               " FROM stream_exceptions s"
               " JOIN exceptions e ON e.id = s.exception_id WHERE s.stream_id = :s")
        params: dict[str, Any] = {"s": stream_id}
        if active_only:
            sql += " AND e.status = ANY(:active)"
            params["active"] = list(ACTIVE_EXCEPTION_STATUSES)
        if seqs is not None:
            params["lefts"] = [seq for side, seq in seqs if side == "left"]
            params["rights"] = [seq for side, seq in seqs if side == "right"]
            sql += " AND (s.left_seq = ANY(:lefts) OR s.right_seq = ANY(:rights))"
        rows = self._conn.execute(text(sql + " ORDER BY s.exception_id"), params).all()
        return [StreamBreak(row.exception_id, row.left_seq, row.right_seq, row.status, row.resolution_code, row.first_run)
                for row in rows]


_check: type[StreamRepository] = PostgresStreamRepository
