"""`GET /api/audit-logs` at scale: one organization with N audit rows (default 10,000,000).

    .venv/bin/python benchmarks/bench_audit_list.py [--rows 10000000] [--repeat 5]

Starts an embedded PostgreSQL 16 (pgserver) with every migration, signs up two organizations,
inserts N rows for one and N/10 for the other as the superuser with the triggers off (the list
needs realistic statistics, not a valid chain: 40 actions, 200 users, 1% failures, one row a
second), ANALYZEs, then times `PostgresAuditLog.list_records` (the route's query, as the app role
under row-level security) for each filter: first page and a keyset page deep in the chain. Prints
the median of `--repeat` runs and the plan's index for each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import psycopg
    from sqlalchemy import text

    from reckai.adapters.postgres import migrations
    from reckai.adapters.postgres.audit import PostgresAuditLog, list_statement
    from reckai.adapters.postgres.embedded import start_server
    from reckai.adapters.postgres.engine import create_engine
    from reckai.adapters.postgres.roles import (
        APP_ROLE,
        OWNER_ROLE,
        _with_database,
        ensure_database,
        ensure_roles,
        libpq_url,
        role_url,
    )
    from reckai.adapters.security.personal_data import development_keys
    from reckai.application.ports.audit import AuditQuery
    from reckai.domain.audit.chain import AuditSigner

    scratch = tempfile.mkdtemp(prefix="reckai-audit-list-", dir="/tmp")
    server, admin_url = start_server(os.path.join(scratch, "data"), cleanup_mode="delete")
    try:
        ensure_roles(admin_url)
        ensure_database(admin_url, "bench_audit")
        migrations.upgrade(role_url(admin_url, OWNER_ROLE, "bench_audit"), master_keys=development_keys().master)
        engine = create_engine(role_url(admin_url, APP_ROLE, "bench_audit"), pool_size=1, max_overflow=1)
        from reckai.adapters.postgres.unit_of_work import PostgresDatabase

        orgs = []
        for _ in range(2):
            with PostgresDatabase(engine).unit_of_work(None) as uow:
                orgs.append(uow.organizations.create_with_admin(
                    name="Bench", code=uuid.uuid4().hex[:10], domain=None, admin_email="a@example.com",
                    admin_name="Admin", admin_password_hash="x").organization_id)
                uow.commit()
        org, other = orgs
        users = [uuid.uuid4() for _ in range(200)]
        resources = [uuid.uuid4() for _ in range(10_000)]
        admin_db_url = _with_database(admin_url, "bench_audit")  # the superuser, on the bench database
        started = time.perf_counter()
        with psycopg.connect(libpq_url(admin_db_url)) as conn:
            conn.execute("SET session_replication_role = replica")
            for target, count in ((other, args.rows // 10), (org, args.rows)):
                step = 1_000_000
                for first in range(1, count + 1, step):
                    conn.execute(
                        "INSERT INTO audit_logs (id, organization_id, user_id, action, resource_type, resource_id,"
                        " response_status, created_at, sequence_number, previous_hash, hash, key_id)"
                        " SELECT gen_random_uuid(), %(org)s, (%(users)s::uuid[])[1 + i %% 200], 'action.' || (i %% 40),"
                        " CASE WHEN i %% 10 = 0 THEN 'file' ELSE 'reconciliation_job' END,"
                        " (%(resources)s::uuid[])[1 + i %% 10000], CASE WHEN i %% 100 = 7 THEN 403 ELSE 200 END,"
                        " TIMESTAMP '2020-01-01' + make_interval(secs => i), i, repeat('0', 64), repeat('0', 64),"
                        " 'bulk' FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i",
                        {"org": target, "users": users, "resources": resources, "first": first,
                         "last": min(count, first + step - 1)})
                    conn.commit()
            conn.execute("ANALYZE audit_logs")
            conn.commit()
        print(f"loaded {args.rows:,} + {args.rows // 10:,} rows in {time.perf_counter() - started:.0f} s; "
              f"load {[round(x, 2) for x in os.getloadavg()]}")
        audit_log = PostgresAuditLog(engine, AuditSigner("bulk", "bench-key-0000000000000000000000000000"))
        base = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        middle = base + dt.timedelta(seconds=args.rows // 2)
        cases = {
            "newest": AuditQuery(),
            "deep keyset page": AuditQuery(before_sequence=args.rows // 2),
            "user": AuditQuery(user_id=users[3]),
            "user, deep": AuditQuery(user_id=users[3], before_sequence=args.rows // 3),
            "action": AuditQuery(action="action.7"),
            "resource": AuditQuery(resource_type="file", resource_id=resources[10]),
            "failures": AuditQuery(outcome="failure"),
            "period (1 h, mid-chain)": AuditQuery(created_from=middle, created_to=middle + dt.timedelta(hours=1)),
            "user + period (1 day)": AuditQuery(user_id=users[5], created_from=middle,
                                                created_to=middle + dt.timedelta(days=1)),
        }
        for name, query in cases.items():
            timings = []
            for _ in range(args.repeat):
                begun = time.perf_counter()
                page = audit_log.list_records(org, query)
                timings.append((time.perf_counter() - begun) * 1000)
            statement, params = list_statement(org, query, columns="id")
            params.setdefault("first", args.rows // 2)
            params.setdefault("last", args.rows // 2 + 3600)
            with engine.begin() as conn:
                conn.execute(text("SELECT set_config('app.current_org_id', :t, true)"), {"t": str(org)})
                plan = [row[0] for row in conn.execute(text("EXPLAIN " + str(statement)), params)]
            index = next((line.split(" using ")[1].split(" ")[0] for line in plan if " using " in line), "?")
            print(f"{name:28s} {len(page.records):3d} rows  median {statistics.median(timings):8.2f} ms  "
                  f"max {max(timings):8.2f} ms  index {index}")
        engine.dispose()
    finally:
        server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
