"""The dashboard at 1M exceptions in one organization (issue 14 §3): p50/p95 server-side over 200
requests, and what the rollup triggers cost the job's bulk persist.

    .venv/bin/python benchmarks/bench_dashboard.py [--exceptions 1000000] [--requests 200]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Starts an embedded PostgreSQL 16 (pgserver; or uses the server of `--admin-url`), migrates a new
database, signs an organization up over HTTP (the in-process app, as the tests build it), then
loads the exceptions through the job's own persist path (`replace_results`: COPY into a stage,
one INSERT ... SELECT; the rollup triggers fire as in production), in jobs of `--per-job` rows
with transaction dates over 400 days, 4 severities, 6 types, 3 currencies. Then, each one
statement through the triggers: 55 % of the rows are closed (resolved or ignored), 10 % started,
5 % escalated, and 20 % of the rest made overdue. Adds 400 job rows over the past year and 60
pending approvals.

Dashboard: `--requests` GET /api/dashboard (default period: the last 30 days) as the admin (every
section, approvals included), after 10 unmeasured warm-up requests. "Server-side" is the
`duration_ms` the API's own request log (`reckai.http`, the request-edge middleware) records for
each request: from the request's arrival at the app to the last byte of the response, so
authentication, the use case, every query and the JSON encoding are in it; the client and the
transport are not.

Persist: `--persist-rows` exceptions (default 80,000) written by `replace_results` with the rollup
triggers enabled and disabled (the owner disables them in between), alternately, 3 times each,
each in a transaction that is rolled back (so the rollup stays right), at the 1M rows loaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

TYPES = ["amount_mismatch", "date_mismatch", "missing_entry", "duplicate", "timing_difference", "non_settlement"]
SEVERITIES = ["low", "medium", "high", "critical"]
DATABASE = "bench_dashboard"
_LOGGED = re.compile(r"^GET (/api/dashboard|/api/auth/me) (\d{3}) ([0-9.]+)ms$")


class _Durations(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.samples: list[tuple[str, int, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = _LOGGED.match(record.getMessage())
        if found:
            self.samples.append((found[1], int(found[2]), float(found[3])))


def exception_chunks(rows: int, seed: int, chunk_rows: int = 50_000) -> list[bytes]:
    """EXCEPTION_COLUMNS as the job writes them (CSV, no header), random but reproducible."""
    import io

    import polars as pl

    from reckai.application.ports.reconciliations import EXCEPTION_COLUMNS

    def draw(salt: int, modulo: int) -> pl.Expr:  # a reproducible pseudo-random integer in [0, modulo)
        return (pl.int_range(0, rows, dtype=pl.UInt64).hash(seed * 1000 + salt) % modulo).cast(pl.Int64)

    today = dt.date.today()
    frame = pl.select(
        pl.lit(pl.Series(TYPES)).gather(draw(1, len(TYPES))).alias("type"),
        # low 40 %, medium 30 %, high 20 %, critical 10 %
        pl.lit(pl.Series(["low"] * 4 + ["medium"] * 3 + ["high"] * 2 + ["critical"])).gather(draw(2, 10))
        .alias("severity"),
        (draw(3, 55_000_000) - 5_000_000).alias("amount_minor"),
        pl.lit(pl.Series(["NGN"] * 45 + ["USD"] * 4 + ["EUR"])).gather(draw(4, 50)).alias("currency"),
        (pl.lit(today) - pl.duration(days=draw(5, 400))).alias("transaction_date"),
        draw(6, 6).alias("right_earlier"),
        (draw(7, 5) == 0).alias("with_evidence"),
    )
    frame = frame.with_columns(
        (pl.col("amount_minor").cast(pl.Decimal(20, 0)) / 100).cast(pl.Decimal(20, 2)).cast(pl.String).alias("amount"),
        pl.lit("bench break").alias("description"),
        # one row in five has a right-hand row dated up to 5 days earlier: it ages from that date
        pl.when(pl.col("with_evidence")).then(
            pl.lit('{"right": {"date": "')
            + (pl.col("transaction_date") - pl.duration(days=pl.col("right_earlier"))).dt.strftime("%Y-%m-%dT10:00:00")
            + pl.lit('"}}')).alias("evidence"),
    )
    for column in EXCEPTION_COLUMNS:
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(column))
    table = frame.select([pl.col(c).cast(pl.String) for c in EXCEPTION_COLUMNS])
    chunks = []
    for offset in range(0, table.height, chunk_rows):
        buffer = io.BytesIO()
        table.slice(offset, chunk_rows).write_csv(buffer, include_header=False, null_value="")
        chunks.append(buffer.getvalue())
    return chunks


def _processing_job(database: Any, organization_id: uuid.UUID, user_id: uuid.UUID) -> uuid.UUID:
    from tests.contracts.reconciliation_repositories import _processing

    return _processing(database, organization_id, user_id).id  # type: ignore[no-any-return]


def load(container: Any, organization_id: uuid.UUID, user_id: uuid.UUID, total: int, per_job: int) -> None:
    from sqlalchemy import text

    database = container.database
    started = time.perf_counter()
    written = 0
    seed = 0
    while written < total:
        rows = min(per_job, total - written)
        job_id = _processing_job(database, organization_id, user_id)
        chunks = exception_chunks(rows, seed)
        seed += 1
        with database.unit_of_work(organization_id) as uow:
            uow.reconciliation_results.replace_results(job_id, 1, [], chunks)
            uow.connection.execute(text(
                "UPDATE reconciliation_jobs SET status = 'completed', total_rows = :total, matched_rows = :matched,"
                " exception_rows = :rows, completed_at = now(),"
                " created_at = now() - make_interval(days => :ago) WHERE id = :id"),
                {"total": rows * 10, "matched": rows * 9, "rows": rows, "ago": seed % 30, "id": job_id})
            uow.commit()
        written += rows
        print(f"  loaded {written:,} exceptions ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    with database.unit_of_work(organization_id) as uow:
        conn = uow.connection
        # the workflow's mix, each one statement through the triggers
        steps = [
            ("closed", ("UPDATE exceptions SET status = CASE WHEN random() < 0.85 THEN 'resolved' ELSE 'ignored' END,"
                       " resolved_at = now() WHERE random() < 0.55")),
            ("started", "UPDATE exceptions SET status = 'in_progress' WHERE status = 'open' AND random() < 0.22"),
            ("escalated", "UPDATE exceptions SET status = 'escalated' WHERE status = 'open' AND random() < 0.15"),
            ("overdue", ("UPDATE exceptions SET due_at = due_at - make_interval(days => 10 + (random() * 60)::int)"
                        " WHERE status IN ('open', 'in_progress', 'escalated') AND random() < 0.2")),
        ]
        for name, statement in steps:
            began = time.perf_counter()
            count = conn.execute(text(statement)).rowcount
            print(f"  {name}: {count:,} rows in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        conn.execute(text(
            "INSERT INTO reconciliation_jobs (organization_id, name, status, created_by, total_rows, matched_rows,"
            " created_at) SELECT :org, 'history', CASE WHEN g % 9 = 0 THEN 'failed' ELSE 'completed' END, :user,"
            " 1000, 900 + g % 100, now() - make_interval(hours => g * 21) FROM generate_series(1, 400) g"),
            {"org": organization_id, "user": user_id})
        conn.execute(text(
            "INSERT INTO approvals (organization_id, type, status, title, description, metadata, requested_by,"
            " requested_at) SELECT :org, (ARRAY['exception_resolution', 'rule_configuration', 'ledger_posting'])"
            "[1 + g % 3], 'pending', 't', 'd', '{}'::jsonb, :user, now() FROM generate_series(1, 60) g"),
            {"org": organization_id, "user": user_id})
        uow.commit()
    with database.unit_of_work(organization_id) as uow:
        conn = uow.connection
        sizes = {}
        for table in ("exceptions", "exception_backlog_rollup", "exception_type_rollup", "exception_due_rollup"):
            conn.execute(text(f"ANALYZE {table}"))
            sizes[table] = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        uow.commit()
    print(f"organization holds {sizes.pop('exceptions'):,} exceptions; rollup rows: "
          + ", ".join(f"{table} {count:,}" for table, count in sizes.items()))


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = statistics.quantiles(ordered, n=100, method="inclusive")[94]
    return f"p50 {statistics.median(ordered):.1f}  p95 {p95:.1f}  max {ordered[-1]:.1f}  (mean {statistics.fmean(ordered):.1f})"


def measure_dashboard(client: Any, container: Any, token: str, user_id: uuid.UUID, requests: int) -> None:
    from reckai.application.ports.rate_limit import TIERS

    handler = _Durations()
    http_log = logging.getLogger("reckai.http")
    http_log.addHandler(handler)
    http_log.setLevel(logging.INFO)
    headers = {"Authorization": f"Bearer {token}"}
    client_ms: list[float] = []
    try:
        # the dashboard, and an authenticated request doing almost nothing (the floor the app's
        # edge, authentication and encoding set on this machine at this moment), alternately
        for number in range(10 + requests):
            if number == 10:
                handler.samples.clear()
            for path in ("/api/dashboard", "/api/auth/me"):
                container.rate_limiter.reset(TIERS["api"], str(user_id))  # 400 requests > the 100/min tier
                began = time.perf_counter()
                response = client.get(path, headers=headers)
                if number >= 10 and path == "/api/dashboard":
                    client_ms.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, response.text
                if path == "/api/dashboard":
                    data = response.json()["data"]
    finally:
        http_log.removeHandler(handler)
    server_ms = [ms for path, status, ms in handler.samples if path == "/api/dashboard" and status == 200]
    floor_ms = [ms for path, status, ms in handler.samples if path == "/api/auth/me" and status == 200]
    assert len(server_ms) == requests, (len(server_ms), requests)
    print(f"dashboard: {requests} requests; open {data['open_exceptions']['total']:,}, overdue {data['overdue']:,},"
          f" currencies {len(data['amount_at_risk'])}, pending approvals {sum(data['pending_approvals'].values())}")
    print(f"server-side ms, GET /api/dashboard: {_percentiles(server_ms)}")
    print(f"server-side ms, GET /api/auth/me (floor, for reference): {_percentiles(floor_ms)}")
    print(f"client-side ms, GET /api/dashboard (in-process client, for reference): {_percentiles(client_ms)}")


def measure_persist(container: Any, owner_url: str, organization_id: uuid.UUID, user_id: uuid.UUID,
                    rows: int) -> None:
    from sqlalchemy import create_engine as sa_engine
    from sqlalchemy import text

    database = container.database
    chunks = exception_chunks(rows, seed=999)
    owner = sa_engine(owner_url)
    triggers = ("exceptions_rollup_insert", "exceptions_rollup_update", "exceptions_rollup_delete")

    def toggle(enabled: bool) -> None:
        with owner.begin() as conn:
            for trigger in triggers:
                conn.execute(text(f"ALTER TABLE exceptions {'ENABLE' if enabled else 'DISABLE'} TRIGGER {trigger}"))

    def once() -> float:
        job_id = _processing_job(database, organization_id, user_id)
        with database.unit_of_work(organization_id) as uow:
            began = time.perf_counter()
            uow.reconciliation_results.replace_results(job_id, 1, [], chunks)
            seconds = time.perf_counter() - began
            # not committed: rolled back, the rollup and the table stay as loaded
        return seconds

    timings: dict[bool, list[float]] = {True: [], False: []}
    try:
        for _ in range(3):
            for enabled in (True, False):
                toggle(enabled)
                timings[enabled].append(once())
    finally:
        toggle(True)
        owner.dispose()
    for enabled in (True, False):
        runs = timings[enabled]
        print(f"persist {rows:,} exceptions, rollup triggers {'on ' if enabled else 'off'}: "
              f"median {statistics.median(runs):.2f} s ({rows / statistics.median(runs):,.0f} rows/s), "
              f"runs {', '.join(f'{s:.2f}' for s in runs)}")
    on, off = statistics.median(timings[True]), statistics.median(timings[False])
    print(f"trigger cost: {100 * (on - off) / off:+.1f} % of the persist ({on - off:+.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exceptions", type=int, default=1_000_000)
    parser.add_argument("--per-job", type=int, default=80_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--persist-rows", type=int, default=80_000)
    parser.add_argument("--admin-url", default=None,
                        help="a PostgreSQL superuser URL to use instead of an embedded server")
    args = parser.parse_args()

    from litestar.testing import TestClient
    from tests.support.identity import login, onboard

    from reckai.adapters.postgres import migrations
    from reckai.adapters.postgres.embedded import start_server
    from reckai.adapters.postgres.roles import APP_ROLE, OWNER_ROLE, ensure_database, ensure_roles, role_url
    from reckai.adapters.security.personal_data import development_keys
    from reckai.bootstrap import bootstrap
    from reckai.entrypoints.http.app import create_app
    from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings

    scratch = tempfile.mkdtemp(prefix="reckai-dashboard-", dir="/tmp")
    server = None
    try:
        if args.admin_url:
            admin_url = args.admin_url
        else:
            server, admin_url = start_server(os.path.join(scratch, "data"), cleanup_mode="delete")
        name = f"{DATABASE}_{uuid.uuid4().hex[:8]}"
        ensure_roles(admin_url)
        ensure_database(admin_url, name)
        migrations.upgrade(role_url(admin_url, OWNER_ROLE, name), master_keys=development_keys().master)
        settings = Settings(mode=Mode.EMBEDDED,
                            database=DatabaseSettings(url=role_url(admin_url, APP_ROLE, name), pool_size=4),
                            storage=StorageSettings(backend="filesystem", filesystem_root=Path(scratch) / "storage"),
                            mailer=MailerSettings(backend="file", outbox_dir=Path(scratch) / "mail"))
        container = bootstrap(settings)
        try:
            with TestClient(create_app(container), raise_server_exceptions=True) as client:
                organization_id, admin = onboard(client)
                token = login(client, admin.org_code, admin.email, admin.password)
                print(f"load average {[round(x, 2) for x in os.getloadavg()]}", file=sys.stderr)
                load(container, organization_id, admin.user_id, args.exceptions, args.per_job)
                measure_dashboard(client, container, token, admin.user_id, args.requests)
                measure_persist(container, role_url(admin_url, OWNER_ROLE, name), organization_id, admin.user_id,
                                args.persist_rows)
                print(f"load average {[round(x, 2) for x in os.getloadavg()]}")
        finally:
            container.close()
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
