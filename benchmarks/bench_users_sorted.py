"""Listing users by name or e-mail when both are stored encrypted (issue 17 item 4).

    .venv/bin/python benchmarks/bench_users_sorted.py [--users 500,5000] [--repeat 5]

Starts an embedded PostgreSQL (pgserver) with every migration, signs up one organization per size
and adds that many users through the repository (encrypted, with the blind index), then times one
page (20) of `uow.users.list(order_by=...)` as the app role under row-level security: `created_at`
(ordered in SQL) and `name` / `email` (every user of the organization decrypted and sorted in
Python). Prints the median of `--repeat` runs, each in a new unit of work (the organization's key
is read once per unit of work; its unwrapping is cached per process, as in the service).
"""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--users", default="500,5000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from reckai.adapters.postgres import migrations
    from reckai.adapters.postgres.embedded import start_server
    from reckai.adapters.postgres.engine import create_engine
    from reckai.adapters.postgres.roles import APP_ROLE, OWNER_ROLE, ensure_database, ensure_roles, role_url
    from reckai.adapters.postgres.unit_of_work import PostgresDatabase
    from reckai.adapters.security.personal_data import development_keys
    from reckai.domain.identity.entities import User

    scratch = tempfile.mkdtemp(prefix="reckai-users-sorted-", dir="/tmp")
    server, admin_url = start_server(os.path.join(scratch, "data"), cleanup_mode="delete")
    try:
        ensure_roles(admin_url)
        ensure_database(admin_url, "bench_users")
        migrations.upgrade(role_url(admin_url, OWNER_ROLE, "bench_users"), master_keys=development_keys().master)
        database = PostgresDatabase(create_engine(role_url(admin_url, APP_ROLE, "bench_users"), pool_size=1))
        print(f"load average {[round(x, 2) for x in os.getloadavg()]}", file=sys.stderr)
        for size in (int(part) for part in args.users.split(",")):
            with database.unit_of_work(None) as uow:
                organization = uow.organizations.create_with_admin(
                    name="Bench", code=uuid.uuid4().hex[:10], domain=None, admin_email="admin@example.com",
                    admin_name="Admin", admin_password_hash="x").organization_id
                uow.commit()
            with database.unit_of_work(organization) as uow:
                for number in range(size - 1):
                    uow.users.add(User(id=uuid.uuid4(), organization_id=organization,
                                       email=f"user.{uuid.uuid4().hex[:10]}@example.com", password_hash="x",
                                       name=f"{uuid.uuid4().hex[:6]} Person {number}", role="analyst"))
                uow.commit()
            for order in ("created_at", "name", "email"):
                timings = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    with database.unit_of_work(organization) as uow:
                        page = uow.users.list(order_by=order, limit=20, offset=0)
                    timings.append(time.perf_counter() - started)
                    assert len(page) == 20
                print(f"{size} users, order by {order}: median {statistics.median(timings) * 1000:.1f} ms "
                      f"(min {min(timings) * 1000:.1f}, max {max(timings) * 1000:.1f})")
        database.close()
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
