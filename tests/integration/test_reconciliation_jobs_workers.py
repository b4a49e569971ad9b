"""Reconciliation jobs across worker processes, against real PostgreSQL, Redis, S3 (moto) and SMTP
(aiosmtpd), with real `reckai worker` subprocesses:

- two jobs run in parallel on two workers sharing one Redis (each worker has one critical thread,
  so overlapping jobs can only be on two processes);
- completion and failure notify the job's creator by mail: an outbox message on the high queue,
  sent through the SMTP server by a worker;
- a job left `pending` (its message lost) is re-sent by the sweeper and then runs once.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from reckai.adapters.postgres.engine import create_engine
from reckai.application.context import Caller
from reckai.application.reconciliations.commands import StartRequest, start_reconciliation
from reckai.application.reconciliations.worker import sweep_stuck_jobs
from tests.integration import test_reconciliation_jobs_services as _services
from tests.integration.test_reconciliation_jobs_services import PROJECT_ROOT, Stack, Tenant
from tests.support import reconciliation_jobs as rj
from tests.support.identity import login, onboard

pytestmark = pytest.mark.integration
stack = _services.stack  # the module-scoped fixture: the API, PostgreSQL, Redis, S3 and SMTP of those tests


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Iterator[tuple[Tenant, str]]:
    """A tenant (and its admin's e-mail address) with the card-vs-bank rules."""
    with httpx.Client(base_url=stack.base_url, timeout=120) as client:
        org_id, credentials = onboard(client, container=stack.container)
        token = login(client, credentials.org_code, credentials.email, credentials.password)
        rj.seed_rules(stack.container.database, org_id, credentials.user_id)
        yield Tenant(stack, client, org_id, credentials.user_id, token), credentials.email


WORKER_BOOT_SECONDS = 8


def _worker(stack: Stack, **env: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "reckai.entrypoints.cli.main", "worker", "--processes", "1",
         "--threads", "critical=1,high=1,medium=1,low=1"],
        cwd=PROJECT_ROOT, env={**stack.worker_env, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stack.workers.append(process)
    return process


def _owner_sql(stack: Stack, owner_url: str, organization_id: uuid.UUID, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(owner_url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT set_config('app.current_org_id', :o, true)"), {"o": str(organization_id)})
            result = conn.execute(text(sql), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def _parse(moment: str) -> dt.datetime:
    return dt.datetime.fromisoformat(moment)


def test_two_jobs_run_in_parallel_on_two_workers(stack: Stack, admin: tuple[Tenant, str],
                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    tenant, _ = admin
    bank_csv, switch_csv = rj.write_synthetic_files(150_000, tmp_path_factory.mktemp("parallel"))
    profile = rj.profile()
    left = tenant.file(bank_csv.read_bytes(), "bank-150k.csv", "bank", profile["left"]["mapping"])
    right = tenant.file(switch_csv.read_bytes(), "switch-150k.csv", "switch", profile["right"]["mapping"])
    stack.stop_workers()
    workers = [_worker(stack), _worker(stack)]
    # Both processes must be up before the jobs exist, or the first one could run both in turn.
    time.sleep(WORKER_BOOT_SECONDS)
    assert all(w.poll() is None for w in workers), "a worker exited at start"
    try:
        jobs = [tenant.start(left, right, f"parallel {n}")["id"] for n in (1, 2)]
        done = [tenant.wait(job_id, timeout=180) for job_id in jobs]
    finally:
        stack.stop_workers()
    assert [job["status"] for job in done] == ["completed", "completed"], done
    # The server's clock decides (polling over HTTP can miss a short overlap on a loaded machine):
    # each job started before the other completed, so they ran at the same time on the two workers.
    (a, b) = done
    assert _parse(a["started_at"]) < _parse(b["completed_at"]) and _parse(b["started_at"]) < _parse(a["completed_at"])
    assert a["matched_rows"] == b["matched_rows"] and a["exception_rows"] == b["exception_rows"]


def _mails(smtp: Any, subject: str, timeout: float = 60) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in smtp.messages if subject in str(m["Subject"])]
        if found:
            return found
        time.sleep(0.1)
    return []


def test_completion_and_failure_mail_the_creator_through_smtp(stack: Stack, admin: tuple[Tenant, str], smtp_server: Any,
                                                              pg_database: Any) -> None:
    tenant, email = admin
    profile = rj.profile()
    left = tenant.file(rj.bank_bytes(), "bank-mail.csv", "bank", profile["left"]["mapping"])
    right = tenant.file(rj.switch_bytes(), "switch-mail.csv", "switch", profile["right"]["mapping"])
    broken = rj.bank_bytes().replace(b"-16704.50", b"-16,70x.50", 1)
    broken_left = tenant.file(broken, "broken-mail.csv", "bank", profile["left"]["mapping"])
    stack.stop_workers()
    _worker(stack, MAILER_BACKEND="smtp", SMTP_HOST=smtp_server.host, SMTP_PORT=str(smtp_server.port),
            MAIL_SENDER="reckai@example.com")
    try:
        completed = tenant.wait(tenant.start(left, right, "mailed on completion")["id"], timeout=120)
        failed = tenant.wait(tenant.start(broken_left, right, "mailed on failure")["id"], timeout=120)
        assert completed["status"] == "completed" and failed["status"] == "failed"
        done_mail = _mails(smtp_server, "Reconciliation 'mailed on completion' completed")
        failed_mail = _mails(smtp_server, "Reconciliation 'mailed on failure' failed")
    finally:
        stack.stop_workers()
    assert len(done_mail) == 1 and len(failed_mail) == 1
    assert done_mail[0]["To"] == email and failed_mail[0]["To"] == email
    body = done_mail[0].get_content()
    assert f"({completed['match_rate']}%)" in body and f"/api/reconciliations/{completed['id']}/results" in body
    assert "could not be normalized" in failed_mail[0].get_content()
    assert {envelope.rcpt_tos for envelope in smtp_server.envelopes} >= {(email,)}
    # Both went through the outbox on the high-priority queue, and are done.
    rows = _owner_sql(stack, pg_database.owner_url, tenant.org_id,
                      "SELECT payload->>'job_id' AS job, queue, status FROM outbox_messages"
                      " WHERE actor_name = 'notify_reconciliation_job' AND payload->>'job_id' IN (:a, :b)",
                      a=completed["id"], b=failed["id"])
    assert sorted((r.job, r.queue, r.status) for r in rows) == sorted(
        [(completed["id"], "high", "done"), (failed["id"], "high", "done")])


def test_a_job_pending_too_long_is_sent_again_by_the_sweeper_and_runs_once(
        stack: Stack, admin: tuple[Tenant, str], pg_database: Any) -> None:
    tenant, _ = admin
    stack.stop_workers()  # nobody consumes: the first message is "lost" below
    profile = rj.profile()
    left = tenant.file(rj.bank_bytes(), "bank-resend.csv", "bank", profile["left"]["mapping"])
    right = tenant.file(rj.switch_bytes(), "switch-resend.csv", "switch", profile["right"]["mapping"])
    services = stack.container.reconciliations
    body = rj.start_body(left, right, "resent")
    caller = Caller(tenant.org_id, tenant.user_id, ip_address="10.0.0.9")
    job = start_reconciliation(services, caller, StartRequest(
        name=body["name"], left_file_id=left, right_file_id=right, leading_side=body["leading_side"],
        period_start=rj.PERIOD[0], period_end=rj.PERIOD[1], options=body["options"], force=True))
    # The message was dispatched and lost (Redis flushed): its outbox row is done, the job pending,
    # and nothing has happened to it for 20 minutes (beyond RECONCILIATION_PENDING_RESEND_SECONDS).
    _owner_sql(stack, pg_database.owner_url, tenant.org_id,
               "UPDATE outbox_messages SET status = 'done' WHERE actor_name = 'run_reconciliation'"
               " AND payload->>'job_id' = :j", j=str(job.id))
    _owner_sql(stack, pg_database.owner_url, tenant.org_id,
               "UPDATE reconciliation_jobs SET updated_at = updated_at - interval '20 minutes' WHERE id = :j",
               j=job.id)
    swept = sweep_stuck_jobs(services)
    assert swept["resend"] >= 1, swept
    sweep_stuck_jobs(services)  # just re-sent: not sent again
    assert tenant.job(str(job.id))["status"] == "pending"
    messages = _owner_sql(stack, pg_database.owner_url, tenant.org_id,
                          "SELECT status, (payload->>'attempt')::int AS attempt, queue FROM outbox_messages"
                          " WHERE actor_name = 'run_reconciliation' AND payload->>'job_id' = :j ORDER BY created_at",
                          j=str(job.id))
    assert [(m.status, m.attempt, m.queue) for m in messages] == [("done", 1, "critical"), ("pending", 1, "critical")]
    _worker(stack)
    try:
        done = tenant.wait(str(job.id), timeout=120)
    finally:
        stack.stop_workers()
    assert done["status"] == "completed" and done["attempt"] == 1, done
    matches, exceptions = tenant.stored_rows(str(job.id))
    cli = rj.cli_summary()
    assert sorted((m[1], m[2]) for m in matches if m[0] == "auto") == cli["match_pairs"]
    assert len(exceptions) == len(cli["exception_keys"])
