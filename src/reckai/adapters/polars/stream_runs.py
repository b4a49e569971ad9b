"""A stream run's input and result in polars (StreamEngine port; docs/streams.md).

Input, per side: the rows still open after the previous run (its carry Parquet, less the rows a
person closed since) followed by the new files' rows whose key the stream does not hold yet. A
row's key is (side, fingerprint, occurrence): the fingerprint is a SHA-256 over the canonical
fields (domain/streams/streams.py:FINGERPRINT_FIELDS), the occurrence its index among the rows of
its file with the same fingerprint. Each new row gets the next stream row number (`seq`); the
matching engine reads `row_number = seq`, so a row has the same number in every run it takes part in.

Result: a break naming only carried rows, one of which the stream already has an exception about,
is "found again" (that exception carries on: no new one); the others are written, with the rows'
own file and row numbers.
The rows no clean match took are the next run's carried input.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import polars as pl

from reckai.adapters.polars.job_results import PolarsMatchRun
from reckai.adapters.polars.normalize import CANONICAL_SCHEMA
from reckai.adapters.polars.result_tables import COPY_CHUNK_ROWS
from reckai.application.ports.reconciliations import EXCEPTION_COLUMNS
from reckai.application.ports.streams import (
    KeyProbe,
    MatchedRow,
    RowKey,
    StreamEngine,
    StreamOutcome,
    StreamSideInput,
)
from reckai.domain.streams.streams import FINGERPRINT_FIELDS

ORIGIN_SCHEMA = pl.Schema({"side": pl.String, "seq": pl.Int64, "fingerprint": pl.String, "occurrence": pl.Int64,
                           "file_id": pl.String, "source_row": pl.Int64})
CARRY_SCHEMA = pl.Schema({**CANONICAL_SCHEMA, **ORIGIN_SCHEMA})
_SEPARATOR = "\x1f"
_NULL = "\x00"


def fingerprints(table: pl.DataFrame) -> pl.Series:
    """The fingerprint of each row (hex SHA-256 of its canonical fields, without row_number and raw)."""
    text = table.select(pl.concat_str(
        [pl.col(name).cast(pl.String).fill_null(_NULL) for name in FINGERPRINT_FIELDS],
        separator=_SEPARATOR).alias("text"))["text"]
    return pl.Series("fingerprint", [hashlib.sha256(value.encode()).hexdigest() for value in text.to_list()],
                     dtype=pl.String)


def keyed(table: pl.DataFrame, file_id: uuid.UUID) -> pl.DataFrame:
    """The file's rows with their key: fingerprint and occurrence (in file order) and origin."""
    ordered = table.sort("row_number")
    return ordered.with_columns(fingerprints(ordered)).with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).over("fingerprint").alias("occurrence"),
        pl.lit(str(file_id)).alias("file_id"), pl.col("row_number").alias("source_row"))


class PolarsStreamSide:
    def __init__(self, side: str, table: pl.DataFrame, new_keys: list[RowKey], carried_rows: int,
                 repeated_rows: int, settled_rows: int, first_new_seq: int) -> None:
        self.side = side
        self.table = table  # CARRY_SCHEMA, carried rows first
        self.new_keys = new_keys
        self.carried_rows = carried_rows
        self.new_rows = len(new_keys)
        self.repeated_rows = repeated_rows
        self.settled_rows = settled_rows
        self.first_new_seq = first_new_seq

    def carried_seqs(self) -> list[int]:
        return [int(seq) for seq in self.table.filter(pl.col("seq") < self.first_new_seq)["seq"].to_list()]

    def seqs_of(self, origins: Collection[tuple[uuid.UUID, int]]) -> dict[tuple[uuid.UUID, int], int]:
        if not origins:
            return {}
        wanted = pl.DataFrame({"file_id": [str(o[0]) for o in origins], "source_row": [o[1] for o in origins]},
                              schema={"file_id": pl.String, "source_row": pl.Int64})
        found = self.table.select("file_id", "source_row", "seq").join(wanted, on=["file_id", "source_row"])
        return {(uuid.UUID(file_id), int(row)): int(seq) for file_id, row, seq in found.iter_rows()}


def _carried(carried: bytes | None, side: str) -> pl.DataFrame:
    if carried is None:
        return pl.DataFrame(schema=CARRY_SCHEMA)
    frame = pl.read_parquet(io.BytesIO(carried))
    return frame.filter(pl.col("side") == side).select(CARRY_SCHEMA.names()).cast(CARRY_SCHEMA)


class PolarsStreamOutcome:
    def __init__(self, run: PolarsMatchRun, left: PolarsStreamSide, right: PolarsStreamSide,
                 known_rows: Collection[tuple[str, int]]) -> None:
        tables = run.tables
        self._sides = {"left": left, "right": right}
        known = {side: sorted(seq for which, seq in known_rows if which == side) for side in ("left", "right")}
        # A break is found again when it names only carried rows and one of them already has an
        # exception of the stream: that exception carries on. A break naming a new row is new evidence.
        carried = [pl.col(f"{side}_row").is_null() | (pl.col(f"{side}_row") < data.first_new_seq)
                   for side, data in self._sides.items()]
        named = [pl.col(f"{side}_row").is_in(pl.Series(known[side], dtype=pl.Int64).implode())
                 for side in ("left", "right")]
        found = carried[0] & carried[1] & (named[0] | named[1]).fill_null(False)
        breaks = tables.exceptions.with_columns(found.alias("__found"))
        fresh = breaks.filter(~pl.col("__found"))
        self.new_exceptions = fresh.height
        self.found_again = breaks.height - fresh.height
        self._fresh = fresh.drop("__found")
        self._tables = tables
        pairs = tables.matches.select("left_row", "right_row")
        self._pairs = pairs
        matched = {"left": set(pairs["left_row"].to_list()), "right": set(pairs["right_row"].to_list())}
        self.matched_carried = [(side, seq) for side, data in self._sides.items() for seq in data.carried_seqs()
                                if seq in matched[side]]
        self._open = {side: data.table.filter(~pl.col("seq").is_in(pairs[f"{side}_row"].implode()))
                      for side, data in self._sides.items()}
        # the clean matches' amounts per currency and side, integer minor units (a period's figures)
        amounts: dict[str, dict[str, int]] = {}
        for side, data in self._sides.items():
            taken = data.table.filter(pl.col("seq").is_in(pairs[f"{side}_row"].unique().implode()))
            totals = taken.group_by(pl.col("currency").fill_null("").str.to_uppercase()).agg(
                pl.col("amount_minor").fill_null(0).sum())
            for currency, total in totals.iter_rows():
                amounts.setdefault(currency, {"left": 0, "right": 0})[side] = int(total)
        self.matched_amounts = dict(sorted(amounts.items()))
        self.open_rows = {side: frame.height for side, frame in self._open.items()}

    def exception_chunks(self, check: Callable[[], None]) -> Iterator[bytes]:
        origin = {side: data.table.select(pl.col("seq").alias(f"{side}_row"),
                                          pl.col("file_id").alias(f"__{side}_file"),
                                          pl.col("source_row").alias(f"__{side}_source"))
                  for side, data in self._sides.items()}
        # The file ids are set per row below (a run reads several files per side).
        table = dataclasses.replace(self._tables, breaks=self._fresh, wording=None).exception_copy_table(
            uuid.UUID(int=0), uuid.UUID(int=0))
        table = (table.with_columns(pl.col("left_row").cast(pl.Int64), pl.col("right_row").cast(pl.Int64))
                 .join(origin["left"], on="left_row", how="left", maintain_order="left")
                 .join(origin["right"], on="right_row", how="left", maintain_order="left")
                 .with_columns(pl.col("__left_source").alias("left_row"), pl.col("__right_source").alias("right_row"),
                               pl.col("__left_file").alias("left_file_id"), pl.col("__right_file").alias("right_file_id"))
                 .select(list(EXCEPTION_COLUMNS)))
        for offset in range(0, table.height, COPY_CHUNK_ROWS):
            check()
            buffer = io.BytesIO()
            table.slice(offset, COPY_CHUNK_ROWS).write_csv(buffer, include_header=False, null_value="")
            yield buffer.getvalue()

    def partner(self, side: str, seq: int) -> MatchedRow | None:
        other = "right" if side == "left" else "left"
        found = self._pairs.filter(pl.col(f"{side}_row") == seq)
        if found.height == 0:
            return None
        partner_seq = int(found[f"{other}_row"][0])

        def origin(which: str, number: int) -> tuple[uuid.UUID, int]:
            row = self._sides[which].table.filter(pl.col("seq") == number).row(0, named=True)
            return uuid.UUID(row["file_id"]), int(row["source_row"])

        own_file, own_row = origin(side, seq)
        partner_file, partner_row = origin(other, partner_seq)
        return MatchedRow(side, seq, own_file, own_row, other, partner_seq, partner_file, partner_row)

    def carry_parquet(self) -> bytes:
        buffer = io.BytesIO()
        pl.concat([self._open["left"], self._open["right"]]).write_parquet(buffer, compression="zstd")
        return buffer.getvalue()


class PolarsStreamEngine:
    def side_input(self, side: str, new_tables: Sequence[tuple[uuid.UUID, Any]], carried: bytes | None,
                   first_seq: int, known_keys: Callable[[Sequence[KeyProbe]], set[tuple[str, int]]],
                   settled: Callable[[Sequence[int]], set[int]]) -> PolarsStreamSide:
        previous = _carried(carried, side)
        closed = settled([int(seq) for seq in previous["seq"].to_list()]) if previous.height else set()
        if closed:
            previous = previous.filter(~pl.col("seq").is_in(sorted(closed)))
        frames = [keyed(table, file_id) for file_id, table in new_tables]
        incoming = pl.concat(frames) if frames else keyed(pl.DataFrame(schema=CANONICAL_SCHEMA), uuid.UUID(int=0))
        # Within a run, a key met twice (the same transaction in two files of the side) is taken once.
        unique = incoming.unique(subset=["fingerprint", "occurrence"], keep="first", maintain_order=True)
        repeated = incoming.height - unique.height
        # each key is asked for under its transaction day (the repository keeps keys by day)
        known = known_keys(list(zip(unique["transaction_date"].dt.date().to_list(), unique["fingerprint"].to_list(),
                                    unique["occurrence"].to_list(), strict=True)))
        if known:
            held = pl.DataFrame({"fingerprint": [k[0] for k in known], "occurrence": [k[1] for k in known]},
                                schema={"fingerprint": pl.String, "occurrence": pl.Int64})
            fresh = unique.join(held, on=["fingerprint", "occurrence"], how="anti", maintain_order="left")
        else:
            fresh = unique
        repeated += unique.height - fresh.height
        fresh = fresh.with_columns(pl.int_range(first_seq, first_seq + fresh.height, dtype=pl.Int64).alias("seq"),
                                   pl.lit(side).alias("side")).with_columns(pl.col("seq").alias("row_number"))
        fresh = fresh.select(CARRY_SCHEMA.names())
        new_keys = [RowKey(side, fingerprint, int(occurrence), int(seq), uuid.UUID(file_id), int(row), day)
                    for fingerprint, occurrence, seq, file_id, row, day in fresh.select(
                        "fingerprint", "occurrence", "seq", "file_id", "source_row",
                        pl.col("transaction_date").dt.date()).iter_rows()]
        table = pl.concat([previous, fresh])
        return PolarsStreamSide(side, table, new_keys, previous.height, repeated, len(closed), first_seq)

    def engine_table(self, side_input: StreamSideInput) -> pl.DataFrame:
        assert isinstance(side_input, PolarsStreamSide)
        return side_input.table.select(CANONICAL_SCHEMA.names())

    def outcome(self, run: Any, left: StreamSideInput, right: StreamSideInput,
                known_rows: Collection[tuple[str, int]]) -> PolarsStreamOutcome:
        assert isinstance(run, PolarsMatchRun)
        assert isinstance(left, PolarsStreamSide) and isinstance(right, PolarsStreamSide)
        return PolarsStreamOutcome(run, left, right, known_rows)


_check: StreamEngine = PolarsStreamEngine()
_check_side: type[StreamSideInput] = PolarsStreamSide
_check_outcome: type[StreamOutcome] = PolarsStreamOutcome
