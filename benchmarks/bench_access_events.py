"""The results page with and without access tracking (issue 17 item 3: p50 may rise by at most 2 ms).

    .venv/bin/python benchmarks/bench_access_events.py [--requests 200] [--rounds 3]

Builds the in-memory app with a completed card-vs-bank-a job (as tests/unit/test_downloads_http.py
does), then times `GET /api/reconciliations/{id}/results?per_page=50` `--requests` times with the
container's batching recorder, and as many times with a recorder that drops everything (the app as
it was before access events), alternating the two in `--rounds` rounds so load drift hits both.
Prints p50/p90 of each and the p50 difference. The recorder's writes run on its own thread (one
batch a second), so what the request pays is building the event and appending it to the buffer.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))


class DroppingRecorder:
    """No access tracking: what the read path cost before."""

    def record(self, event: object) -> None:
        pass

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from litestar.testing import TestClient
    from tests.support import reconciliation_jobs as rj
    from tests.support.identity import bearer, login, onboard

    from reckai.adapters.memory.scanner import InMemoryScanner
    from reckai.application.ports.rate_limit import TIERS
    from reckai.bootstrap import bootstrap_in_memory
    from reckai.entrypoints.http.app import create_app

    container = bootstrap_in_memory(scanner=InMemoryScanner())
    container.worker_runner.start()
    tracked = create_app(container)
    untracked = create_app(dataclasses.replace(container, access_recorder=DroppingRecorder()))
    with TestClient(tracked) as client, TestClient(untracked) as plain:
        org, admin = onboard(client)
        token = login(client, admin.org_code, admin.email, admin.password)
        files = []
        for data, name, kind, side in ((rj.bank_bytes(), "bank.csv", "bank", "left"),
                                       (rj.switch_bytes(), "switch.csv", "switch", "right")):
            uploaded = client.post("/api/files/upload", data={"file_type": kind},
                                   files={"file": (name, data, "text/csv")}, headers=bearer(token))
            file_id = uploaded.json()["data"]["id"]
            client.post(f"/api/files/{file_id}/map", json={"transformation_rules": rj.profile()[side]["mapping"]},
                        headers=bearer(token))
            files.append(uuid.UUID(file_id))
        rj.seed_rules(container.database, org, admin.user_id)
        job_id = client.post("/api/reconciliations", json=rj.start_body(files[0], files[1]),
                             headers=bearer(token)).json()["data"]["id"]
        container.worker_runner.wake_relay()
        for _ in range(600):
            if client.get(f"/api/reconciliations/{job_id}", headers=bearer(token)).json()["data"]["status"] in (
                    "completed", "failed"):
                break
            time.sleep(0.1)
        path = f"/api/reconciliations/{job_id}/results?per_page=50"
        headers = bearer(token)
        api_tier = TIERS["api"]

        def unlimited() -> None:  # the api tier allows 100 requests a minute per user; not what is measured
            container.rate_limiter.reset(api_tier, str(admin.user_id))

        for app_client in (client, plain):  # warm up
            for _ in range(20):
                unlimited()
                assert app_client.get(path, headers=headers).status_code == 200
        timings: dict[str, list[float]] = {"with access events": [], "without": []}
        per_round = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):
            for index in range(2 * per_round):  # alternate request by request: load drift hits both alike
                label, app_client = (("with access events", client), ("without", plain))[index % 2]
                unlimited()
                began = time.perf_counter()
                response = app_client.get(path, headers=headers)
                timings[label].append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200
        container.access_recorder.flush()
        # what the request path itself pays: build the event, append it to the buffer
        from reckai.application.access import BatchingAccessRecorder, access_event
        from reckai.application.context import RequestInfo
        from reckai.domain.identity.principal import Principal

        principal = Principal(user_id=admin.user_id, organization_id=org, role="admin", permissions=frozenset(),
                              session_id=None, token_id="bench", email=admin.email)
        info = RequestInfo(ip_address="10.0.0.1", user_agent="bench", method="GET", path=path.split("?")[0],
                           request_id=str(uuid.uuid4()))
        sink = BatchingAccessRecorder(container.audit_log, batch_size=10**6, flush_seconds=1, max_buffered=10**6,
                                      background=False)
        began = time.perf_counter()
        for _ in range(10_000):
            sink.record(access_event("access.reconciliation.results", principal, info,
                                     resource_type="reconciliation_job", resource_id=uuid.UUID(job_id),
                                     metadata={"kind": "matches", "page": 1, "per_page": 50, "rows": 50}))
        per_call_us = (time.perf_counter() - began) / 10_000 * 1e6
        print(f"access_event + record on the request path: {per_call_us:.1f} us per read")
        print(f"load average {[round(x, 2) for x in os.getloadavg()]}; {per_round * args.rounds} requests each")
        for label, values in timings.items():
            values.sort()
            print(f"{label:20s} p50 {statistics.median(values):7.2f} ms  p90 {values[int(len(values) * 0.9)]:7.2f} ms")
        rise = statistics.median(timings["with access events"]) - statistics.median(timings["without"])
        print(f"p50 rise {rise:+.2f} ms (limit 2 ms); access events written {container.access_recorder.written} in "
              f"{container.access_recorder.batches} batches")  # type: ignore[attr-defined]
    container.worker_runner.stop()
    container.close()


if __name__ == "__main__":
    main()
