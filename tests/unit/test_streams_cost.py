"""Cost stays flat (issue 15 item 7): a stream's run reads only its new files and the rows still open
after the previous run, never the stream's matched history. Deterministic: the storage objects a run
opens, the rows the matching engine receives and the keys the run asks the stream's row keys about
(only its new rows', each under its own transaction day: PostgreSQL then reads only those days of
stream_rows' primary key, 0032) are recorded, run after run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.bootstrap import bootstrap_in_memory
from tests.support.streams import bank_csv, stream_world, switch_csv

DAYS = 6


class RecordingStorage:
    """The container's storage, noting every object a run opens."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.opened: list[str] = []

    def open(self, key: str) -> BinaryIO:
        self.opened.append(key)
        return self.inner.open(key)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class RecordingEngine:
    """The job's matching engine, noting the row numbers (stream row numbers) it is given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.loaded: list[tuple[list[int], list[int]]] = []

    def load(self, data: bytes) -> Any:
        return self.inner.load(data)

    def run(self, left: Any, right: Any, *args: Any, **kwargs: Any) -> Any:
        self.loaded.append((sorted(left["row_number"].to_list()), sorted(right["row_number"].to_list())))
        return self.inner.run(left, right, *args, **kwargs)


class RecordingStreamEngine:
    """The stream engine, noting the keys each side's input asks the stream about."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.probed: dict[str, list[tuple[dt.date | None, str, int]]] = {}

    def side_input(self, side: str, new_tables: Any, carried: Any, first_seq: int,
                   known_keys: Callable[[Sequence[Any]], set[tuple[str, int]]], settled: Any) -> Any:
        def recording(keys: Sequence[Any]) -> set[tuple[str, int]]:
            self.probed[side] = list(keys)
            return known_keys(keys)

        return self.inner.side_input(side, new_tables, carried, first_seq, recording, settled)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _day(day: int) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """Each day: 17 pairs of the day, two bank rows whose switch row comes the next day, one switch
    row whose bank row comes the next day (and yesterday's late halves)."""
    date = f"2026-01-{day:02d}"
    ref = lambda d, i: f"{d:04d}{i:08d}"
    bank = [(date, ref(day, i), f"{i + 1}.00") for i in range(17)] + \
           [(date, ref(day, i), f"{i + 1}.00") for i in (17, 18)]
    switch = [(f"{date} 09:00:00", ref(day, i), f"{i + 1}.00") for i in range(17)] + \
             [(f"{date} 09:00:00", ref(day, 19), "20.00")]
    if day > 1:
        bank.append((date, ref(day - 1, 19), "20.00"))
        switch += [(f"{date} 08:00:00", ref(day - 1, i), f"{i + 1}.00") for i in (17, 18)]
    return bank, switch


def test_a_run_reads_only_its_new_files_and_the_open_items() -> None:
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    world = stream_world(container)
    storage = RecordingStorage(container.reconciliations.storage)
    engine = RecordingEngine(container.reconciliations.engine)
    streams = RecordingStreamEngine(container.reconciliations.stream_engine)
    world.replaced = {"storage": storage, "engine": engine, "stream_engine": streams}
    bank, switch = _day(1)
    left = world.upload(bank_csv(bank), "bank-01.csv", "bank")
    right = world.upload(switch_csv(switch), "switch-01.csv", "switch")
    stream = world.create(left, right)
    world.add(stream, left)
    world.add(stream, right)
    files = {1: (left, right)}
    previous_carry: str | None = None
    open_after: tuple[set[int], set[int]] = (set(), set())
    matched_ever: tuple[set[int], set[int]] = (set(), set())
    loaded_sizes = []
    for day in range(1, DAYS + 1):
        if day > 1:
            bank, switch = _day(day)
            files[day] = world.day(stream, bank, switch, f"{day:02d}")
        storage.opened.clear()
        streams.probed.clear()
        run = world.run(stream)
        figures = run.figures
        assert figures is not None
        # The duplicate check asks about the day's rows only (19-20 per side), each under its day.
        bank, switch = _day(day)
        assert {side: len(keys) for side, keys in streams.probed.items()} == {"left": len(bank), "right": len(switch)}
        assert {key[0] for keys in streams.probed.values() for key in keys} == {dt.date(2026, 1, day)}
        with container.database.unit_of_work(world.organization_id) as uow:
            normalized = {uow.normalized_files.get_for_file(file_id).storage_path for file_id in files[day]}
        # The objects read: the day's two normalized files and the previous run's open items, nothing else.
        assert set(storage.opened) == normalized | ({previous_carry} if previous_carry else set())
        left_rows, right_rows = engine.loaded[-1]
        new_left = set(range(max(open_after[0] | matched_ever[0] | {0}) + 1,
                             max(open_after[0] | matched_ever[0] | {0}) + 1 + figures["new_rows"]["left"]))
        new_right = set(range(max(open_after[1] | matched_ever[1] | {0}) + 1,
                              max(open_after[1] | matched_ever[1] | {0}) + 1 + figures["new_rows"]["right"]))
        # The rows matched: exactly the open items plus the new rows; no row matched in an earlier run.
        assert set(left_rows) == open_after[0] | new_left and set(right_rows) == open_after[1] | new_right
        assert not set(left_rows) & matched_ever[0] and not set(right_rows) & matched_ever[1]
        loaded_sizes.append(len(left_rows) + len(right_rows))
        with container.database.unit_of_work(world.organization_id) as uow:
            pairs = uow.reconciliation_results.list_matches(run.job_id, status="auto", limit=10_000)
        matched_ever = (matched_ever[0] | {p.left_row for p in pairs}, matched_ever[1] | {p.right_row for p in pairs})
        open_after = ((set(left_rows) | new_left) - matched_ever[0], (set(right_rows) | new_right) - matched_ever[1])
        assert (len(open_after[0]), len(open_after[1])) == (figures["open_rows_after"]["left"],
                                                            figures["open_rows_after"]["right"]) == (2, 1)
        previous_carry = run.carry_key
    # Flat: day 1 reads its 19 + 18 rows; every later run its 20 + 20 new rows and the 3 open items,
    # however long the matched history grows.
    assert loaded_sizes == [37] + [43] * (DAYS - 1)
