"""Issue 17 items 1-3 on PostgreSQL: the audit-log list's index plan with realistic statistics,
truncation by the superuser caught by `reckai audit verify` and `GET /api/audit-logs/verify`
through the signed head checkpoint, access events batched into the chain and isolated per
organization."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from reckai.adapters.filesystem.audit_anchors import AppendOnlyFileAnchorStore
from reckai.adapters.postgres.audit import PostgresAuditLog, list_statement
from reckai.adapters.postgres.engine import create_engine
from reckai.adapters.postgres.roles import libpq_url
from reckai.application.access import BatchingAccessRecorder, access_event
from reckai.application.audit import anchor_chain_heads, verify_audit_trail
from reckai.application.ports.audit import AuditQuery
from reckai.bootstrap import Container, bootstrap
from reckai.domain.audit.chain import AuditSigner, BreakReason
from reckai.domain.audit.events import AuditEvent
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.fixtures.postgres import PgDatabase, create_tenant
from tests.support.identity import bearer, create_user_with_role, login, onboard

pytestmark = pytest.mark.integration

KEY = "audit-trail-test-key-0123456789abcdef0123456789"


@pytest.fixture(scope="module")
def engine(pg_database: PgDatabase) -> Iterator[Engine]:
    built = create_engine(pg_database.app_url, pool_size=4, max_overflow=2)
    yield built
    built.dispose()


@pytest.fixture
def signer() -> AuditSigner:
    return AuditSigner("trail-1", KEY)


def _chain(audit_log: PostgresAuditLog, org: uuid.UUID, count: int) -> None:
    for index in range(count):
        audit_log.record_independently(AuditEvent(action="test.event", organization_id=org, metadata={"i": index}))


def _truncate_as_superuser(database: PgDatabase, org: uuid.UUID, rows: int) -> None:
    """What the security review did: delete the chain's last rows and move its head back, so the
    chain and its head agree again."""
    with psycopg.connect(libpq_url(database.admin_url)) as conn:
        conn.execute("SET session_replication_role = replica")  # the append-only triggers do not fire
        last = conn.execute("SELECT last_sequence FROM audit_chain_heads WHERE chain_key = %s", (org,)).fetchone()
        assert last is not None
        keep = last[0] - rows
        conn.execute("DELETE FROM audit_logs WHERE chain_key = %s AND sequence_number > %s", (org, keep))
        conn.execute(
            "UPDATE audit_chain_heads h SET last_sequence = a.sequence_number, last_hash = a.hash,"
            " last_created_at = a.created_at FROM audit_logs a"
            " WHERE h.chain_key = %s AND a.chain_key = h.chain_key AND a.sequence_number = %s", (org, keep))
        conn.commit()


def test_truncation_with_the_head_moved_back_is_caught_by_the_checkpoint_naming_the_range(
    pg_database: PgDatabase, engine: Engine, signer: AuditSigner, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from reckai.entrypoints.cli import audit as audit_cli
    from reckai.entrypoints.cli.main import main

    audit_log = PostgresAuditLog(engine, signer)
    anchors = AppendOnlyFileAnchorStore(tmp_path / "anchors.jsonl")
    org = create_tenant(engine).organization_id
    _chain(audit_log, org, 8)

    @dataclasses.dataclass
    class Tools:
        audit_log: PostgresAuditLog
        audit_signer: AuditSigner
        audit_anchors: AppendOnlyFileAnchorStore

        def close(self) -> None:
            pass

    monkeypatch.setattr(audit_cli, "container_factory", lambda: Tools(audit_log, signer, anchors))
    assert main(["audit", "checkpoint"]) == 0
    assert main(["audit", "verify", "--organization", str(org)]) == 0
    capsys.readouterr()
    last = audit_log.chain_head(org)
    assert last is not None and last.last_sequence == 8

    _truncate_as_superuser(pg_database, org, 3)
    # the chain and its head agree: without the checkpoint nothing would show
    assert verify_audit_trail(audit_log, signer, None, org).ok
    assert main(["audit", "verify", "--organization", str(org)]) == 1
    out = capsys.readouterr().out
    assert f"BROKEN organization {org}" in out and "truncated" in out and "sequences 6..8 are missing" in out
    result = verify_audit_trail(audit_log, signer, anchors, org)
    assert result.first_break is not None and result.first_break.reason is BreakReason.TRUNCATED
    assert (result.first_break.missing_from, result.first_break.missing_through) == (6, 8)
    # verifying every chain finds it too
    assert main(["audit", "verify"]) == 1


def test_a_checkpoint_forged_or_a_rewritten_anchored_row_is_caught(
    pg_database: PgDatabase, engine: Engine, signer: AuditSigner, tmp_path: Path,
) -> None:
    audit_log = PostgresAuditLog(engine, signer)
    anchors = AppendOnlyFileAnchorStore(tmp_path / "anchors.jsonl")
    org = create_tenant(engine).organization_id
    _chain(audit_log, org, 4)
    checkpoint, _ = anchor_chain_heads(audit_log, signer, anchors, dt.datetime.now(dt.UTC))
    assert checkpoint.head_of(org) is not None
    forged = dataclasses.replace(checkpoint, heads=tuple(
        dataclasses.replace(h, sequence=2) if h.chain_key == org else h for h in checkpoint.heads))
    anchors.write(forged)
    result = verify_audit_trail(audit_log, signer, anchors, org)
    assert result.first_break is not None and result.first_break.reason is BreakReason.ANCHOR_INVALID


def test_the_head_checkpoint_names_every_chain_and_a_later_row_is_not_yet_anchored(
    engine: Engine, signer: AuditSigner, tmp_path: Path,
) -> None:
    audit_log = PostgresAuditLog(engine, signer)
    anchors = AppendOnlyFileAnchorStore(tmp_path / "anchors.jsonl")
    orgs = [create_tenant(engine).organization_id for _ in range(2)]
    for org in orgs:
        _chain(audit_log, org, 2)
    anchor_chain_heads(audit_log, signer, anchors, dt.datetime.now(dt.UTC))
    _chain(audit_log, orgs[0], 1)
    latest = anchors.latest()
    assert latest is not None and {h.chain_key for h in latest.heads} >= set(orgs)
    result = verify_audit_trail(audit_log, signer, anchors, orgs[0])
    assert result.ok and result.anchored_sequence == 2 and result.last_sequence == 3


def test_access_events_are_batched_into_the_chain_and_isolated(engine: Engine, signer: AuditSigner) -> None:
    audit_log = PostgresAuditLog(engine, signer)
    mine, theirs = (create_tenant(engine).organization_id for _ in range(2))
    recorder = BatchingAccessRecorder(audit_log, batch_size=50, flush_seconds=60)
    for index in range(120):
        recorder.record(access_event("access.test.read", None, None, organization_id=mine if index % 3 else theirs,
                                     metadata={"i": index}))
    recorder.close()
    # one INSERT per (up to) 50 events of an organization: 80 + 40 events are 3 batches when one
    # flush takes them all, a few more when the size trigger split them (never one per event)
    assert recorder.written == 120 and 3 <= recorder.batches <= 6
    for org, count in ((mine, 80), (theirs, 40)):
        page = audit_log.list_records(org, AuditQuery(action="access.test.read", limit=500))
        assert len(page.records) == count
        assert {r.event.organization_id for r in page.records} == {org}
        assert verify_audit_trail(audit_log, signer, None, org).ok
    # row-level security: the app role with one tenant sees none of the other's access events
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.current_org_id', :t, true)"), {"t": str(mine)})
        seen = conn.execute(text("SELECT count(*) FROM audit_logs WHERE organization_id = :o"),
                            {"o": theirs}).scalar_one()
    assert seen == 0


# --- the list's index plan ------------------------------------------------------------------------


def _bulk_rows(database: PgDatabase, org: uuid.UUID, count: int, users: list[uuid.UUID],
               resources: list[uuid.UUID]) -> None:
    """`count` rows for `org` as the superuser with triggers off (the plan test needs statistics,
    not a valid chain): 40 actions, 50 users, 1% failures, one row a second."""
    with psycopg.connect(libpq_url(database.admin_url)) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "INSERT INTO audit_logs (id, organization_id, user_id, action, resource_type, resource_id,"
            " response_status, created_at, sequence_number, previous_hash, hash, key_id)"
            " SELECT gen_random_uuid(), %(org)s, (%(users)s::uuid[])[1 + i %% 50], 'action.' || (i %% 40),"
            " CASE WHEN i %% 10 = 0 THEN 'file' ELSE 'reconciliation_job' END,"
            " (%(resources)s::uuid[])[1 + i %% 1000], CASE WHEN i %% 100 = 7 THEN 403 ELSE 200 END,"
            " TIMESTAMP '2026-01-01' + make_interval(secs => i), i, repeat('0', 64), repeat('0', 64), 'bulk'"
            " FROM generate_series(1, %(n)s) AS i",
            {"org": org, "users": users, "resources": resources, "n": count})
        conn.execute("ANALYZE audit_logs")
        conn.commit()


def test_the_list_is_served_from_the_indexes_at_scale(pg_fresh_database: PgDatabase) -> None:
    app = create_engine(pg_fresh_database.app_url, pool_size=2)
    try:
        org = create_tenant(app).organization_id
        other = create_tenant(app).organization_id
        users = [uuid.uuid4() for _ in range(50)]
        resources = [uuid.uuid4() for _ in range(1000)]
        _bulk_rows(pg_fresh_database, other, 50_000, users, resources)
        _bulk_rows(pg_fresh_database, org, 200_000, users, resources)
        queries = {
            "newest": (AuditQuery(), "audit_logs_chain_sequence_key"),
            "user": (AuditQuery(user_id=users[3]), "idx_audit_chain_user_seq"),  # 4,000 rows: no sort of them
            "resource": (AuditQuery(resource_type="reconciliation_job", resource_id=resources[11]), None),
            "rare resource": (AuditQuery(resource_type="file", resource_id=resources[10]), None),
            "failures": (AuditQuery(outcome="failure"), "idx_audit_chain_failures_seq"),
            "action": (AuditQuery(action="action.7"), None),
            "period": (AuditQuery(created_from=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
                                  created_to=dt.datetime(2026, 1, 2, 1, tzinfo=dt.UTC)), None),
            "user_and_period": (AuditQuery(user_id=users[5], created_from=dt.datetime(2026, 1, 2, tzinfo=dt.UTC)),
                                None),
        }
        with app.begin() as conn:
            conn.execute(text("SELECT set_config('app.current_org_id', :t, true)"), {"t": str(org)})
            for name, (query, index) in queries.items():
                statement, params = list_statement(org, query, columns="id")
                params.setdefault("first", 86_400)
                params.setdefault("last", 90_000)
                plan = "\n".join(row[0] for row in conn.execute(text("EXPLAIN " + str(statement)), params))
                assert "Seq Scan" not in plan, (name, plan)
                # A sort, or a bitmap heap scan, only of the few rows of a rare value read from an
                # index (the planner may pick either for a narrow range): never of a large set.
                for line in plan.splitlines():
                    if "Sort  (cost=" in line or "Bitmap Heap Scan" in line:  # nodes, not "Sort Key:"
                        assert int(line.split("rows=")[1].split(" ")[0]) <= 1000, (name, plan)
                if index is not None:
                    assert index in plan, (name, plan)
            # the period's bounds come from two probes of (chain_key, created_at)
            for moment in ("2026-01-02", "2026-01-03"):
                plan = "\n".join(row[0] for row in conn.execute(text(
                    "EXPLAIN SELECT min(sequence_number) FROM audit_logs WHERE chain_key = :key AND created_at ="
                    " (SELECT min(created_at) FROM audit_logs WHERE chain_key = :key AND created_at >= :m)"),
                    {"key": org, "m": moment}))
                assert "idx_audit_chain_created" in plan and "Seq Scan" not in plan, plan
        audit_log = PostgresAuditLog(app, AuditSigner("bulk", KEY))
        page = audit_log.list_records(org, AuditQuery(user_id=users[3], created_from=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
                                                      created_to=dt.datetime(2026, 1, 2, 2, tzinfo=dt.UTC), limit=10))
        assert len(page.records) == 10 and all(r.event.user_id == users[3] for r in page.records)
        assert all(dt.datetime(2026, 1, 2) <= r.created_at < dt.datetime(2026, 1, 2, 2) for r in page.records)
    finally:
        app.dispose()


# --- the API on PostgreSQL --------------------------------------------------------------------------


@pytest.fixture
def http(pg_database: PgDatabase, tmp_path: Path) -> Iterator[tuple[Container, TestClient[Any]]]:
    settings = Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=pg_database.app_url, pool_size=4),
                        storage=StorageSettings(backend="filesystem", filesystem_root=tmp_path / "storage"),
                        mailer=MailerSettings(backend="file", outbox_dir=tmp_path / "mail"))
    container = bootstrap(settings)
    try:
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            yield container, client
    finally:
        container.close()


def test_api_verify_fails_after_truncation_and_reads_are_access_events(
    pg_database: PgDatabase, http: tuple[Container, TestClient[Any]],
) -> None:
    container, client = http
    org, admin = onboard(client)
    admin_token = login(client, admin.org_code, admin.email, admin.password)
    auditor_id, auditor = create_user_with_role(client, admin_token, "auditor")
    for _ in range(4):
        client.get("/api/users", headers=bearer(admin_token))  # some rows (access events) in the chain
    container.access_recorder.flush()
    anchor_chain_heads(container.audit_log, container.audit_signer, container.audit_anchors, dt.datetime.now(dt.UTC))
    intact = client.get("/api/audit-logs/verify", headers=bearer(auditor))
    assert intact.status_code == 200 and intact.json()["data"]["intact"] is True, intact.text
    container.access_recorder.flush()
    listed = client.get("/api/audit-logs", headers=bearer(auditor), params={"per_page": 5}).json()
    assert listed["data"][0]["action"].startswith("access.")

    container.access_recorder.flush()
    anchor_chain_heads(container.audit_log, container.audit_signer, container.audit_anchors, dt.datetime.now(dt.UTC))
    _truncate_as_superuser(pg_database, org, 3)
    broken = client.get("/api/audit-logs/verify", headers=bearer(auditor)).json()["data"]
    assert broken["intact"] is False, broken
    assert broken["first_break"]["reason"] == "truncated"
    assert broken["first_break"]["missing_through"] - broken["first_break"]["missing_from"] == 2
    container.access_recorder.flush()
    reads = container.audit_log.list_records(org, AuditQuery(user_id=auditor_id, limit=100)).records
    assert "access.audit_logs.verify" in {r.event.action for r in reads}  # the list's row was truncated
