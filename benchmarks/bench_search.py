"""`make bench-search`: exception search at 1M exceptions in one organization (issue 16 item 3).

    .venv/bin/python benchmarks/bench_search.py [--rows 1000000] [--samples 40] [--admin-url URL]

Measured **over the HTTP API**: `GET /api/exceptions?...` through the whole app in process
(Litestar's TestClient: the guards, token check, parameter parsing, the use case, the PostgreSQL
repository and the JSON answer), one request at a time, as an analyst's screen asks: the first page
(20 rows, newest first) and its bounded count. PostgreSQL is an embedded server of its own (or the
superuser URL given), migrated to head; the organization holds `--rows` exceptions with realistic
keys (tests/support/exception_search.py: a 12-digit RRN each, 6-digit STANs, 10,000 masked
cards, four common channels and a rare one, amounts to 100,000.00, 90 days), ANALYZEd. Each kind of search runs
`--samples` times with different values; printed: p50 and p95 per kind and over all searches,
the rows each found (median), and the load average (the machine may be shared: read the times
next to it). Rate limiting is off (it would refuse the samples). Goal (issue 16): p95 <= 100 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

Search = Callable[[random.Random], str]

def _amount_range(low: int) -> str:
    return f"amount_min={low}.00&amount_max={low}.99"


def _week(day: int) -> str:
    return f"date_from=2026-01-{day:02d}&date_to=2026-01-{day + 6:02d}"


class _Unlimited:
    """No rate limit: the figures are the search's, not the limiter's (it would refuse the samples)."""

    def hit(self, tier: Any, subject: str) -> Any:
        from reckai.application.ports.rate_limit import RateLimitDecision

        return RateLimitDecision(allowed=True, limit=10**9, remaining=10**9, retry_after_seconds=0)

    def reset(self, tier: Any, subject: str) -> None:
        return None


SEARCHES: dict[str, Search] = {
    "reference (exact)": lambda r: f"reference={(r.randint(1, 900_000) * 104729) % 10**12:012d}",
    "reference (8-digit prefix)": lambda r: f"reference_prefix={(r.randint(1, 900_000) * 104729) % 10**12:012d}"[:-4],
    "secondary reference (exact)": lambda r: f"secondary_reference={r.randint(1, 999_999):06d}",
    "secondary reference (prefix)": lambda r: f"secondary_reference_prefix={r.randint(1, 99_999):05d}",
    "masked account": lambda r: f"account=539983******{r.randint(0, 9999):04d}",
    "full PAN (masked first)": lambda r: f"account=539983{r.randint(0, 999_999):06d}{r.randint(0, 9999):04d}",
    "channel (common)": lambda r: "channel=" + r.choice(["POS", "ATM", "WEB", "NIP", "pos,nip"]),
    "channel (rare: 0.1 %)": lambda r: "channel=" + r.choice(["USSD", "ussd"]),
    "amount range": lambda r: _amount_range(r.randint(1, 99_000)),
    "date range (one week)": lambda r: _week(r.randint(1, 24)),
    "reference prefix + channel + dates": lambda r: (
        f"reference_prefix={(r.randint(1, 900_000) * 104729) % 10**12:012d}"[:-5]
        + "&channel=POS,ATM&date_from=2026-01-10"),
    "no filter": lambda r: "",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--admin-url", help="a superuser URL of a running server (default: an embedded one)")
    args = parser.parse_args()

    from litestar.testing import TestClient
    from sqlalchemy import text
    from tests.support.exception_search import load_exceptions
    from tests.support.identity import bearer, login, onboard

    from reckai.adapters.postgres import migrations
    from reckai.adapters.postgres.embedded import start_server
    from reckai.adapters.postgres.engine import create_engine
    from reckai.adapters.postgres.roles import APP_ROLE, OWNER_ROLE, ensure_database, ensure_roles, role_url
    from reckai.adapters.security.personal_data import development_keys
    from reckai.bootstrap import bootstrap
    from reckai.entrypoints.http.app import create_app
    from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings

    scratch = tempfile.mkdtemp(prefix="reckai-search-", dir="/tmp")
    server = None
    admin_url = args.admin_url
    if admin_url is None:
        server, admin_url = start_server(os.path.join(scratch, "data"), cleanup_mode="delete")
    name = f"bench_search_{os.getpid()}"
    try:
        ensure_roles(admin_url)
        ensure_database(admin_url, name)
        migrations.upgrade(role_url(admin_url, OWNER_ROLE, name), master_keys=development_keys().master)
        settings = Settings(mode=Mode.EMBEDDED,
                            database=DatabaseSettings(url=role_url(admin_url, APP_ROLE, name), pool_size=2),
                            storage=StorageSettings(backend="filesystem", filesystem_root=Path(scratch) / "storage"),
                            mailer=MailerSettings(backend="file", outbox_dir=Path(scratch) / "mail"))
        container = bootstrap(settings, rate_limiter=_Unlimited())  # type: ignore[arg-type]
        with TestClient(create_app(container), raise_server_exceptions=True) as client:
            organization_id, admin = onboard(client)
            headers = bearer(login(client, admin.org_code, admin.email, admin.password))
            started = time.perf_counter()
            with container.database.unit_of_work(organization_id) as uow:
                job = uow.connection.execute(text(
                    "INSERT INTO reconciliation_jobs (organization_id, name, status, created_by)"
                    " VALUES (:org, 'bench', 'completed', :by) RETURNING id"),
                    {"org": organization_id, "by": admin.user_id}).scalar_one()
                load_exceptions(uow.connection, organization_id, job, args.rows)
                uow.commit()
            loaded = time.perf_counter() - started
            superuser = create_engine(_on(admin_url, name), pool_size=1)
            with superuser.begin() as conn:
                conn.execute(text("ANALYZE exceptions"))
            superuser.dispose()
            print(f"{args.rows:,} exceptions loaded in {loaded:.1f} s; load average {_load()}")
            rng = random.Random(16)
            everything: list[float] = []
            print(f"{'search':38} {'p50 ms':>8} {'p95 ms':>8} {'rows':>6}")
            for label, make in SEARCHES.items():
                client.get(f"/api/exceptions?{make(rng)}", headers=headers)  # warm the statement
                timings, found = [], []
                for _ in range(args.samples):
                    query = make(rng)
                    began = time.perf_counter()
                    answer = client.get(f"/api/exceptions?{query}", headers=headers)
                    timings.append((time.perf_counter() - began) * 1000)
                    assert answer.status_code == 200, answer.text
                    found.append(answer.json()["meta"]["total"])
                everything += timings
                print(f"{label:38} {_pct(timings, 50):8.1f} {_pct(timings, 95):8.1f} {statistics.median(found):6.0f}")
            print(f"{'all searches':38} {_pct(everything, 50):8.1f} {_pct(everything, 95):8.1f}")
            print(f"load average {_load()}")
        container.close()
    finally:
        if args.admin_url is not None:
            from reckai.adapters.postgres.roles import drop_database

            drop_database(admin_url, name)
        if server is not None:
            server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)


def _on(admin_url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    from reckai.adapters.postgres.roles import sqlalchemy_url

    return make_url(sqlalchemy_url(admin_url)).set(database=database).render_as_string(hide_password=False)


def _pct(values: list[float], percentile: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percentile / 100 * (len(ordered) - 1)))]


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


if __name__ == "__main__":
    main()
