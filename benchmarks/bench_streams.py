"""Benchmark of a stream over many daily runs (issue 15 item 7: cost stays flat).

    .venv/bin/python benchmarks/bench_streams.py [--rows 100000] [--days 30] [--late-every 500]

One organization, one stream (bank vs switch in the card-vs-bank-a layouts, an exact-reference
rule), on PostgreSQL (RECKAI_TEST_ADMIN_DATABASE_URL, else an embedded server) with filesystem
storage, in process: each day uploads and normalizes a bank file and a switch file of `--rows`
rows each, adds them to the stream and runs it through the worker step (run_reconciliation_attempt,
what `reckai worker` calls). One row in `--late-every` of each side has its counterpart in the next
day's file of the other side, so every run carries about 2 x rows / late-every open items into the
next. Prints per run: rows read by the run (carried + new), matches, open items after, the run's
seconds (start to completed), the machine's load average (1 minute) after it, and its stage seconds (`load.known_keys`: the duplicate probes of
the stream's row keys; `persist.results`, `.row_keys`, `.links`, `.closings`: the parts of the one
persisting transaction); then the median of runs 1-3 next to runs
(days-2)-days and their ratio (goal: within 20 %). Not a timed test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

import polars as pl


def day_files(day: int, rows: int, late_every: int) -> tuple[bytes, bytes]:
    """Bank and switch CSV bytes of one day: row i of day d has reference DDDIIIIIIIII; rows with
    i % late_every == 0 reach the switch side a day late, rows with i % late_every == 1 the bank side."""
    index = pl.int_range(0, rows, eager=True, dtype=pl.Int64).alias("i")
    today = pl.DataFrame(index).with_columns(pl.lit(day).alias("d"))
    yesterday = pl.DataFrame(index).with_columns(pl.lit(day - 1).alias("d"))
    bank_rows = pl.concat([today.filter(pl.col("i") % late_every != 1),
                           yesterday.filter(pl.col("i") % late_every == 1)]) if day > 1 else \
        today.filter(pl.col("i") % late_every != 1)
    switch_rows = pl.concat([today.filter(pl.col("i") % late_every != 0),
                             yesterday.filter(pl.col("i") % late_every == 0)]) if day > 1 else \
        today.filter(pl.col("i") % late_every != 0)
    start = pl.date(2026, 1, 1)

    def common(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            (pl.col("d").cast(pl.String).str.zfill(3) + pl.col("i").cast(pl.String).str.zfill(9)).alias("ref"),
            pl.format("{}.{}", 100 + pl.col("i") % 9000, (pl.col("i") % 100).cast(pl.String).str.zfill(2))
            .alias("amount"),
            pl.lit(day).alias("day_of_file"))

    bank = common(bank_rows).select(
        (start + pl.duration(days=pl.col("day_of_file") - 1)).dt.strftime("%Y-%m-%d").alias("trans_date"),
        (start + pl.duration(days=pl.col("day_of_file") - 1)).dt.strftime("%Y-%m-%d").alias("value_date"),
        pl.col("ref").alias("reference"), pl.format("POS PURCHASE RRN:{}", pl.col("ref")).alias("narration"),
        ("-" + pl.col("amount")).alias("amount"), pl.lit("NGN").alias("currency"), pl.lit("0.00").alias("balance"))
    switch = common(switch_rows).select(
        (start + pl.duration(days=pl.col("day_of_file") - 1)).dt.strftime("%Y-%m-%d 09:00:00").alias("tran_datetime"),
        pl.col("ref").alias("rrn"), pl.col("ref").str.slice(6).alias("stan"), pl.lit("539983******0001").alias("pan"),
        pl.col("amount"), pl.lit("NGN").alias("currency"), pl.lit("20570464").alias("terminal_id"),
        pl.lit("MID1").alias("merchant_id"), pl.lit("SHOP").alias("merchant_name"), pl.lit("POS").alias("channel"),
        pl.lit("00").alias("response_code"))
    return bank.write_csv().encode(), switch.write_csv().encode()


def _admin_url(scratch: Path) -> tuple[str, Any]:
    external = os.environ.get("RECKAI_TEST_ADMIN_DATABASE_URL")
    if external:
        return external, None
    from reckai.adapters.postgres.embedded import start_server

    server, url = start_server(str(scratch / "pgdata"), cleanup_mode="delete")
    return url, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows per side per day")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--late-every", type=int, default=500)
    args = parser.parse_args()

    from tests.fixtures.postgres import _new_database
    from tests.support.streams import stream_world

    from reckai.adapters.postgres.roles import drop_database
    from reckai.application.reconciliations.worker import run_reconciliation_attempt
    from reckai.application.streams.commands import start_stream_run
    from reckai.bootstrap import bootstrap
    from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings

    scratch = Path(tempfile.mkdtemp(prefix="reckai-bench-streams-", dir="/tmp"))
    admin_url, server = _admin_url(scratch)
    database = _new_database(admin_url, migrate=True)
    container = bootstrap(Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=database.app_url, pool_size=4),
                                   storage=StorageSettings(backend="filesystem", filesystem_root=scratch / "storage"),
                                   mailer=MailerSettings(backend="file", outbox_dir=scratch / "mail")))
    try:
        world = stream_world(container)
        print(f"stream of {args.days} daily runs, {args.rows:,} x {args.rows:,} rows per day, "
              f"1 row in {args.late_every} per side a day late", flush=True)
        print(f"{'run':>4} {'read':>9} {'carried':>8} {'matched':>9} {'new exc':>8} {'closed':>7} {'open':>7}"
              f" {'ingest s':>9} {'run s':>7} {'load':>5}  stages", flush=True)
        stream = None
        seconds: list[float] = []
        for day in range(1, args.days + 1):
            bank, switch = day_files(day, args.rows, args.late_every)
            started = time.perf_counter()
            left = world.upload(bank, f"bank-{day:02d}.csv", "bank")
            right = world.upload(switch, f"switch-{day:02d}.csv", "switch")
            if stream is None:
                stream = world.create(left, right, name="bench stream")
            world.add(stream, left)
            world.add(stream, right)
            ingested = time.perf_counter() - started
            started = time.perf_counter()
            run = start_stream_run(world.services, world.caller, stream.id)
            outcome = run_reconciliation_attempt(world.services, world.organization_id, run.job_id, 1, "bench")
            elapsed = time.perf_counter() - started
            with container.database.unit_of_work(world.organization_id) as uow:
                job = uow.reconciliation_jobs.get(run.job_id)
                stored = uow.streams.run_of_job(run.job_id)
            assert outcome == "completed" and job is not None and stored is not None, (outcome, job)
            figures = stored.figures or {}
            carried = sum(figures["carried_rows"].values())
            read = carried + sum(figures["new_rows"].values())
            stages = {k: round(v, 2) for k, v in job.stage_seconds.items()
                      if ("." not in k or k.startswith(("load.", "persist."))) and k != "total"}
            seconds.append(elapsed)
            print(f"{day:>4} {read:>9,} {carried:>8,} {figures['matched_pairs']:>9,} {figures['new_exceptions']:>8,}"
                  f" {figures['closed_by_later_match']:>7,} {sum(figures['open_rows_after'].values()):>7,}"
                  f" {ingested:>9.2f} {elapsed:>7.2f} {os.getloadavg()[0]:>5.1f}  {stages}", flush=True)
        first, last = statistics.median(seconds[:3]), statistics.median(seconds[-3:])
        print(f"median of runs 1-3: {first:.2f} s; runs {args.days - 2}-{args.days}: {last:.2f} s; "
              f"ratio {last / first:.2f} (goal: within 20 %)", flush=True)
    finally:
        container.close()
        drop_database(admin_url, database.name)
        if server is not None:
            server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
