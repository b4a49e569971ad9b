"""Reconciliation jobs end to end against real services: the API over HTTP (uvicorn) on PostgreSQL
(row-level security, COPY), Redis (the broker) and an S3 server (moto over HTTP), with the jobs run
by real `reckai worker` subprocesses.

- the card-vs-bank-a job completes with the counts `reckai reconcile` gives on the same files and
  profile, with its rows in PostgreSQL and its outputs in S3;
- a worker killed with SIGKILL mid-job is replaced; the sweeper takes the job back and the next
  attempt completes with exactly the results of an undisturbed run, no duplicate rows;
- cancel stops a running job; a broken file fails the job with a clear message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from reckai.adapters.postgres.engine import create_engine
from reckai.application.ports.audit import AuditQuery
from reckai.application.ports.rate_limit import TIERS
from reckai.bootstrap import Container, bootstrap
from reckai.domain.ingestion.storage_keys import processed_prefix
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, Mode, RedisSettings, Settings, StorageSettings
from tests.support import reconciliation_jobs as rj
from tests.support.identity import DEVELOPMENT_SECRETS_ENV, bearer, login, onboard

pytestmark = pytest.mark.integration

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass
class Stack:
    container: Container
    base_url: str
    worker_env: dict[str, str]
    app_url: str
    workers: list[subprocess.Popen[bytes]] = dataclasses.field(default_factory=list)

    def start_worker(self) -> subprocess.Popen[bytes]:
        worker = subprocess.Popen(
            [sys.executable, "-m", "reckai.entrypoints.cli.main", "worker", "--processes", "1",
             "--threads", "critical=1,high=1,medium=1,low=1"],
            cwd=PROJECT_ROOT, env=self.worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=40)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=10)
        self.workers.clear()


@pytest.fixture(scope="module")
def stack(pg_database: Any, redis_url: str, s3_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    namespace = f"reckai-recon-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        mode=Mode.EMBEDDED,
        database=DatabaseSettings(url=pg_database.app_url, pool_size=6),
        redis=RedisSettings(url=redis_url),
        storage=StorageSettings(backend="s3", s3_endpoint=s3_server.endpoint, s3_access_key=s3_server.access_key,
                                s3_secret_key=s3_server.secret_key, s3_bucket=s3_server.bucket,
                                s3_region=s3_server.region, s3_secure=s3_server.secure),
    )
    settings = dataclasses.replace(settings, jobs=dataclasses.replace(settings.jobs, redis_namespace=namespace))
    container = bootstrap(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(container), host="127.0.0.1", port=port, log_config=None,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    scratch = tmp_path_factory.mktemp("worker")
    env = {
        **os.environ, **DEVELOPMENT_SECRETS_ENV, "RECKAI_MODE": "embedded", "DATABASE_URL": pg_database.app_url, "REDIS_URL": redis_url,
        "JOBS_REDIS_NAMESPACE": namespace, "JOBS_RELAY_INTERVAL_SECONDS": "0.1",
        "STORAGE_BACKEND": "s3", "S3_ENDPOINT": s3_server.endpoint, "S3_ACCESS_KEY": s3_server.access_key,
        "S3_SECRET_KEY": s3_server.secret_key, "S3_BUCKET": s3_server.bucket, "S3_REGION": s3_server.region,
        "S3_SECURE": "true" if s3_server.secure else "false", "MAIL_OUTBOX_DIR": str(scratch / "mail"),
        "STORAGE_ROOT": str(scratch / "storage"), "LOG_LEVEL": "WARNING",
        "RECONCILIATION_LEASE_SECONDS": str(LEASE_SECONDS), "RECONCILIATION_HEARTBEAT_SECONDS": "0.5",
        "RECONCILIATION_SWEEP_INTERVAL_SECONDS": "1",
    }
    built = Stack(container, f"http://127.0.0.1:{port}", env, pg_database.app_url)
    try:
        yield built
    finally:
        built.stop_workers()
        server.should_exit = True
        thread.join(10)
        container.close()


@dataclasses.dataclass
class Tenant:
    stack: Stack
    client: httpx.Client
    org_id: uuid.UUID
    user_id: uuid.UUID
    token: str

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # Polling is far above the 100 requests/minute of the api tier; real clients poll slower.
        self.stack.container.rate_limiter.reset(TIERS["api"], str(self.user_id))
        return self.client.request(method, path, headers=bearer(self.token), **kwargs)

    def file(self, data: bytes, name: str, file_type: str, mapping: dict[str, Any] | None) -> uuid.UUID:
        self.stack.container.rate_limiter.reset(TIERS["upload"], str(self.user_id))
        uploaded = self.client.post("/api/files/upload", data={"file_type": file_type},
                                    files={"file": (name, data, "text/csv")}, headers=bearer(self.token))
        assert uploaded.status_code == 201, uploaded.text
        file_id = uploaded.json()["data"]["id"]
        if mapping is not None:
            mapped = self.call("POST", f"/api/files/{file_id}/map", json={"transformation_rules": mapping})
            assert mapped.status_code in (200, 422), mapped.text
        return uuid.UUID(file_id)

    def start(self, left: uuid.UUID, right: uuid.UUID, name: str = "December card vs bank") -> dict[str, Any]:
        created = self.call("POST", "/api/reconciliations", json=rj.start_body(left, right, name, force=True))
        assert created.status_code == 201, created.text
        return created.json()["data"]  # type: ignore[no-any-return]

    def job(self, job_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/reconciliations/{job_id}").json()["data"]  # type: ignore[no-any-return]

    def wait(self, job_id: str, predicate: Any = None, timeout: float = 120) -> dict[str, Any]:
        predicate = predicate or (lambda j: j["status"] in ("completed", "failed", "cancelled"))
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if predicate(job):
                return job
            assert time.monotonic() < deadline, job
            time.sleep(0.05)

    def stored_rows(self, job_id: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        engine = create_engine(self.stack.app_url, pool_size=1)
        try:
            with engine.begin() as conn:
                conn.execute(text("SELECT set_config('app.current_org_id', :o, true)"), {"o": str(self.org_id)})
                matches = conn.execute(text(
                    "SELECT status, left_row, right_row, rule, confidence, group_key FROM reconciliation_matches"
                    " WHERE job_id = :j ORDER BY status, left_row, right_row"), {"j": job_id}).all()
                exceptions = conn.execute(text(
                    "SELECT type, severity, left_row, right_row, amount_minor, transaction_date, description"
                    " FROM exceptions WHERE job_id = :j ORDER BY type, left_row NULLS FIRST, right_row NULLS FIRST"),
                    {"j": job_id}).all()
        finally:
            engine.dispose()
        return [tuple(r) for r in matches], [tuple(r) for r in exceptions]


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> Iterator[Tenant]:
    with httpx.Client(base_url=stack.base_url, timeout=120) as client:
        org_id, admin = onboard(client, container=stack.container)
        token = login(client, admin.org_code, admin.email, admin.password)
        rj.seed_rules(stack.container.database, org_id, admin.user_id)
        yield Tenant(stack, client, org_id, admin.user_id, token)


@pytest.fixture(scope="module")
def worker(stack: Stack) -> Iterator[subprocess.Popen[bytes]]:
    process = stack.start_worker()
    yield process


def test_card_vs_bank_job_completes_over_http_with_the_counts_of_reckai_reconcile(
        stack: Stack, tenant: Tenant, worker: Any) -> None:
    profile = rj.profile()
    left = tenant.file(rj.bank_bytes(), "bank.csv", "bank", profile["left"]["mapping"])
    right = tenant.file(rj.switch_bytes(), "switch.csv", "switch", profile["right"]["mapping"])
    job = tenant.wait(tenant.start(left, right)["id"])
    cli = rj.cli_summary()
    assert job["status"] == "completed", job
    assert job["total_rows"] == cli["rows"]["left"] + cli["rows"]["right"]
    assert job["matched_rows"] == cli["matched_rows"]["left"] + cli["matched_rows"]["right"]
    assert job["match_rate"] == f"{cli['match_rate']:.2f}"
    assert job["summary"]["matched_pairs"] == cli["matched_pairs"]
    assert job["summary"]["suggested_pairs"] == cli["suggested_pairs"]
    assert job["summary"]["exceptions_by_type"] == {k: v for k, v in cli["exceptions_by_type"].items() if v}
    matches, exceptions = tenant.stored_rows(job["id"])
    assert sorted((m[1], m[2]) for m in matches if m[0] == "auto") == cli["match_pairs"]
    assert sorted((e[0], e[2] or 0, e[3] or 0) for e in exceptions) == cli["exception_keys"]
    assert all(e[5] is not None for e in exceptions)  # transaction_date filled
    keys = set(stack.container.storage.list_keys(processed_prefix(tenant.org_id, job["id"])))
    assert {k.rsplit("/", 1)[1] for k in keys} == {"results.csv", "results.parquet"}
    # the outputs come out through S3 pre-signed links (issue 14), exactly as listed
    outputs = tenant.call("GET", f"/api/reconciliations/{job['id']}/outputs").json()["data"]
    assert [o["name"] for o in outputs] == ["results.csv", "results.parquet", "summary.json"]
    for output in outputs:
        link = tenant.call("GET", output["download"]).json()["data"]
        assert "X-Amz-Signature=" in link["url"] and "X-Amz-Expires=3600" in link["url"], link
        content = httpx.get(link["url"], timeout=60).content
        assert len(content) == output["size_bytes"] and hashlib.sha256(content).hexdigest() == output["sha256"]
    issued = stack.container.audit_log.list_records(
        tenant.org_id, AuditQuery(action="reconciliation.output.download_link_issued")).records
    assert len(issued) == 3 and all(r.event.ip_address == "127.0.0.1" and r.event.user_id == tenant.user_id
                                    and r.event.response_status == 200 for r in issued)  # who, from where
    for file_id in (left, right):
        file = tenant.call("GET", f"/api/files/{file_id}").json()["data"]
        assert file["status"] == "processed" and file["processed_at"] is not None


@pytest.fixture(scope="module")
def big_files(tenant: Tenant, tmp_path_factory: pytest.TempPathFactory) -> tuple[uuid.UUID, uuid.UUID]:
    """Files big enough (200,000 switch rows) that a job is still running when we act on it."""
    bank_csv, switch_csv = rj.write_synthetic_files(200_000, tmp_path_factory.mktemp("synthetic"))
    profile = rj.profile()
    left = tenant.file(bank_csv.read_bytes(), "bank-200k.csv", "bank", profile["left"]["mapping"])
    right = tenant.file(switch_csv.read_bytes(), "switch-200k.csv", "switch", profile["right"]["mapping"])
    return left, right


def test_worker_killed_mid_job_is_replaced_and_the_job_completes_with_the_same_results(
        stack: Stack, tenant: Tenant, worker: Any, big_files: tuple[uuid.UUID, uuid.UUID]) -> None:
    left, right = big_files
    reference = tenant.wait(tenant.start(left, right, "undisturbed")["id"])
    assert reference["status"] == "completed", reference
    expected = tenant.stored_rows(reference["id"])

    victim = stack.workers[-1]
    started = tenant.start(left, right, "killed mid-job")
    tenant.wait(started["id"], lambda j: j["status"] == "processing" and j["progress"] >= 35)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    assert tenant.job(started["id"])["status"] == "processing"  # nobody finished it
    stack.start_worker()  # the replacement
    done = tenant.wait(started["id"], timeout=180)
    assert done["status"] == "completed", done
    assert done["attempt"] == 2
    for key in ("total_rows", "matched_rows", "exception_rows", "match_rate"):
        assert done[key] == reference[key], key
    got = tenant.stored_rows(started["id"])
    assert got == expected  # the same rows, none duplicated
    assert len(set(got[0])) == len(got[0])


def test_cancel_stops_a_running_job(stack: Stack, tenant: Tenant, worker: Any,
                                    big_files: tuple[uuid.UUID, uuid.UUID]) -> None:
    left, right = big_files
    started = tenant.start(left, right, "to cancel")
    tenant.wait(started["id"], lambda j: j["status"] == "processing")
    answer = tenant.call("POST", f"/api/reconciliations/{started['id']}/cancel")
    assert answer.status_code == 200, answer.text
    done = tenant.wait(started["id"], timeout=60)
    assert done["status"] == "cancelled", done
    matches, exceptions = tenant.stored_rows(started["id"])
    assert matches == [] and exceptions == []
    assert not list(stack.container.storage.list_keys(processed_prefix(tenant.org_id, started["id"])))


def test_broken_file_fails_the_job_with_a_clear_message(stack: Stack, tenant: Tenant, worker: Any) -> None:
    profile = rj.profile()
    broken = rj.bank_bytes().replace(b"-16704.50", b"-16,70x.50", 1)
    left = tenant.file(broken, "broken-bank.csv", "bank", profile["left"]["mapping"])  # mapping confirmed, rows fail
    right = tenant.file(rj.switch_bytes(), "switch-again.csv", "switch", profile["right"]["mapping"])
    job = tenant.wait(tenant.start(left, right, "broken")["id"], timeout=60)
    assert job["status"] == "failed", job
    message = job["error_message"]
    assert "left file 'broken-bank.csv' could not be normalized" in message, message
    assert "rows could not be normalized" in message and "start the reconciliation again" in message
