"""Persisting one job's results: the COPY of 1M x 1M matches and exceptions, alone.

    .venv/bin/python benchmarks/bench_persist.py [--rows 1000000] [--explain]

Runs `reckai reconcile`'s engine on the bench-e2e files (benchmarks/data/e2e_<rows>/, generated
when missing) into the job's frames (adapters/polars/job_results.py), starts an embedded
PostgreSQL 16 (pgserver) with every migration, signs up one organization, claims a job, then
times `replace_results` (the worker's persist transaction, committed) and prints match rows/s and
exception rows/s. `--explain` also prints what one exceptions write costs per index and trigger:
`EXPLAIN (ANALYZE, BUFFERS, WAL)` of the staged insert, rolled back.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))


def _marking(chunks, marks):  # type: ignore[no-untyped-def]
    first = True
    for chunk in chunks:
        if first:
            marks.append(time.perf_counter())
            first = False
        yield chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--per-index", action="store_true",
                        help="as the superuser, time the same exceptions insert without each index and foreign key "
                             "in turn (each in a transaction rolled back)")
    args = parser.parse_args()

    from tests.contracts.reconciliation_repositories import _processing
    from tests.support import reconciliation_jobs as rj

    import reckai.adapters.postgres.files
    import reckai.adapters.postgres.reconciliations  # noqa: F401  registers the repositories
    from reckai.adapters.polars.job_results import PolarsJobMatchingEngine
    from reckai.adapters.polars.matcher_input import PolarsCanonicalSource
    from reckai.adapters.postgres import migrations
    from reckai.adapters.postgres.embedded import start_server
    from reckai.adapters.postgres.engine import create_engine
    from reckai.adapters.postgres.roles import APP_ROLE, OWNER_ROLE, ensure_database, ensure_roles, role_url
    from reckai.adapters.postgres.unit_of_work import PostgresDatabase
    from reckai.adapters.security.personal_data import development_keys
    from reckai.application.reconcile import load_profile
    from reckai.domain.reconciliation.profile import ReconciliationPeriod

    folder = ROOT / "benchmarks" / "data" / f"e2e_{args.rows}"
    if not (folder / "bank.csv").exists():
        rj.write_synthetic_files(args.rows, folder)
    profile = load_profile(rj.PROFILE_PATH)
    source = PolarsCanonicalSource()
    left, _ = source.read(str(folder / "bank.csv"), profile.left.mapping or {})
    right, _ = source.read(str(folder / "switch.csv"), profile.right.mapping or {})
    run = PolarsJobMatchingEngine().run(left, right, profile, ReconciliationPeriod(*rj.PERIOD))
    del left, right
    print(f"engine: {run.matched_pairs + run.suggested_pairs:,} match rows, "
          f"{sum(run.exceptions_by_type.values()):,} exceptions", file=sys.stderr)

    scratch = tempfile.mkdtemp(prefix="reckai-persist-", dir="/tmp")
    server, admin_url = start_server(os.path.join(scratch, "data"), cleanup_mode="delete")
    try:
        ensure_roles(admin_url)
        ensure_database(admin_url, "bench_persist")
        migrations.upgrade(role_url(admin_url, OWNER_ROLE, "bench_persist"), master_keys=development_keys().master)
        engine = create_engine(role_url(admin_url, APP_ROLE, "bench_persist"), pool_size=1, max_overflow=1)
        database = PostgresDatabase(engine)
        with database.unit_of_work(None) as uow:
            tenant = uow.organizations.create_with_admin(
                name="Bench", code=uuid.uuid4().hex[:10], domain=None, admin_email="a@example.com",
                admin_name="Admin", admin_password_hash="x")
            uow.commit()
        org, user = tenant.organization_id, tenant.admin_user_id
        left_id, right_id = uuid.uuid4(), uuid.uuid4()
        print(f"load average {[round(x, 2) for x in os.getloadavg()]}", file=sys.stderr)
        for attempt in range(1, args.repeat + 1):
            job = _processing(database, org, user)
            marks: list[float] = []
            with database.unit_of_work(org) as uow:
                started = time.perf_counter()
                matches, exceptions = uow.reconciliation_results.replace_results(
                    job.id, 1, run.match_chunks(lambda: None),
                    _marking(run.exception_chunks(left_id, right_id, lambda: None), marks))
                written = time.perf_counter()
                uow.commit()
            committed = time.perf_counter()
            match_seconds, exception_seconds = marks[0] - started, written - marks[0]
            print(f"run {attempt}: {matches:,} matches in {match_seconds:.2f} s ({matches / match_seconds:,.0f}/s), "
                  f"{exceptions:,} exceptions in {exception_seconds:.2f} s ({exceptions / exception_seconds:,.0f}/s),"
                  f" commit {committed - written:.2f} s; load {[round(x, 2) for x in os.getloadavg()]}")
        if args.explain:
            _explain(database, org, user, run, left_id, right_id)
        if args.per_index:
            _per_index(admin_url, _processing(database, org, user), run, left_id, right_id)
        engine.dispose()
    finally:
        server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)


def _explain(database, org, user, run, left_id, right_id) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text
    from tests.contracts.reconciliation_repositories import _processing

    job = _processing(database, org, user)
    with database.unit_of_work(org) as uow:
        connection = uow.connection
        for row in connection.execute(text(
                "SELECT indexrelid::regclass AS name, pg_size_pretty(pg_relation_size(indexrelid)) AS size"
                " FROM pg_index WHERE indrelid = 'exceptions'::regclass")).all():
            print(f"index {row.name} {row.size}")
        for row in connection.execute(text(
                "SELECT tgname, tgenabled, pg_get_triggerdef(oid) AS definition FROM pg_trigger"
                " WHERE tgrelid = 'exceptions'::regclass")).all():
            print(f"trigger {row.tgname}: {row.definition}")
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor:
            # replace_results, with EXPLAIN around the exceptions' INSERT ... SELECT
            from reckai.adapters.postgres import reconciliations as r

            statements: list[str] = []

            class Explaining:
                """The cursor, with EXPLAIN put before the INSERT that moves the staged exceptions."""

                def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
                    return getattr(cursor, name)

                def execute(self, query, params=None):  # type: ignore[no-untyped-def]
                    if isinstance(query, str) and query.startswith("INSERT INTO exceptions"):
                        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, WAL, VERBOSE) " + query, params)
                        statements.extend(row[0] for row in cursor.fetchall())
                        return cursor
                    return cursor.execute(query, params)

            r.PostgresResultsRepository._copy_exceptions(Explaining(), job.id, org,
                                                         run.exception_chunks(left_id, right_id, lambda: None))
            print("\n".join(statements))
        # rolled back: the unit of work is not committed


def _per_index(admin_url, job, run, left_id, right_id) -> None:  # type: ignore[no-untyped-def]
    """What each index and foreign key of `exceptions` adds to one write (superuser: no row-level
    security; the bulk INSERT's own expressions, without the SLA lookup)."""
    import psycopg
    from sqlalchemy.engine import make_url

    from reckai.adapters.postgres.roles import sqlalchemy_url
    from reckai.application.ports.reconciliations import EXCEPTION_COLUMNS

    url = make_url(sqlalchemy_url(admin_url)).set(database="bench_persist", drivername="postgresql")
    url = url.render_as_string(hide_password=False)
    columns = ", ".join(EXCEPTION_COLUMNS)
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE UNLOGGED TABLE IF NOT EXISTS bench_stage AS SELECT {columns} FROM exceptions WITH NO DATA")
        cursor.execute("TRUNCATE bench_stage")
        with cursor.copy(f"COPY bench_stage ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
            for chunk in run.exception_chunks(left_id, right_id, lambda: None):
                copy.write(chunk)
        cursor.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'exceptions'::regclass"
                       " AND NOT indisprimary ORDER BY 1")
        indexes = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = 'exceptions'::regclass AND contype = 'f'"
                       " ORDER BY 1")
        keys = [row[0] for row in cursor.fetchall()]
        insert = (f"INSERT INTO exceptions (id, organization_id, job_id, status, created_at, due_at, {columns})"
                  f" SELECT gen_random_uuid(), '{job.organization_id}', '{job.id}', 'open', now(), now(), {columns}"
                  " FROM bench_stage")

        def timed(drop: str | None) -> float:
            conn.execute("BEGIN")
            if drop:
                conn.execute(drop)
            started = time.perf_counter()
            conn.execute(insert)
            seconds = time.perf_counter() - started
            conn.execute("ROLLBACK")
            return seconds

        baseline = min(timed(None) for _ in range(2))
        print(f"exceptions insert, every index and key: {baseline:.2f} s")
        for index in indexes:
            print(f"  without index {index}: {timed(f'DROP INDEX {index}'):.2f} s")
        for key in keys:
            print(f"  without foreign key {key}: {timed(f'ALTER TABLE exceptions DROP CONSTRAINT {key}'):.2f} s")
        drop_all = "; ".join([*(f"DROP INDEX {i}" for i in indexes),
                              *(f"ALTER TABLE exceptions DROP CONSTRAINT {k}" for k in keys)])
        print(f"  without all of them (primary key kept): {timed(drop_all):.2f} s")


if __name__ == "__main__":
    main()
