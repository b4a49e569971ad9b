"""The audit log on real PostgreSQL: the shared contract, then what only a database can show —
append-only triggers and grants, tampering by the owner or a superuser, tenancy, retention purge."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from reckai.adapters.postgres.audit import PostgresAuditLog
from reckai.adapters.postgres.engine import create_engine
from reckai.adapters.postgres.roles import libpq_url
from reckai.adapters.postgres.unit_of_work import PostgresUnitOfWork
from reckai.application.audit import purge_expired, verify_chains
from reckai.application.ports.audit import AuditPurgeRefused, AuditQuery
from reckai.domain.audit.chain import AuditSigner, BreakReason
from reckai.domain.audit.events import GENESIS_HASH, SYSTEM_CHAIN_KEY, AuditEvent
from tests.fixtures.postgres import PgDatabase, create_tenant
from tests.unit.test_audit_contract import KEY, AuditLogContract, event

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def signer() -> AuditSigner:
    return AuditSigner("test-1", KEY)


@pytest.fixture(scope="module")
def shared_audit_engine(pg_database: PgDatabase) -> Iterator[Engine]:
    # Its own pool: the concurrency test needs one connection per writer thread.
    engine = create_engine(pg_database.app_url, pool_size=8, max_overflow=2)
    yield engine
    engine.dispose()


@pytest.fixture
def database(request: pytest.FixtureRequest, pg_database: PgDatabase) -> PgDatabase:
    """The session's database; a fresh one for a test marked `global_state`. Such a test asserts
    on the system chain, which every other test writes to as well (a sign-in to an unknown
    organization through an app seals a system row with that app's key, e.g. `dev-1`), so on the
    shared database its verdict would depend on which tests ran before it, with which examples."""
    if request.node.get_closest_marker("global_state") is not None:
        fresh: PgDatabase = request.getfixturevalue("pg_fresh_database")
        return fresh
    return pg_database


@pytest.fixture
def audit_engine(database: PgDatabase, pg_database: PgDatabase, shared_audit_engine: Engine) -> Iterator[Engine]:
    if database is pg_database:
        yield shared_audit_engine
        return
    engine = create_engine(database.app_url, pool_size=8, max_overflow=2)
    yield engine
    engine.dispose()


@pytest.fixture
def audit_log(audit_engine: Engine, signer: AuditSigner) -> PostgresAuditLog:
    return PostgresAuditLog(audit_engine, signer)


@pytest.fixture
def short_lock_audit_log(audit_engine: Engine, signer: AuditSigner) -> PostgresAuditLog:
    return PostgresAuditLog(audit_engine, signer, independent_lock_timeout_ms=300)


@pytest.fixture
def new_organization(audit_engine: Engine) -> Callable[[], uuid.UUID]:
    return lambda: create_tenant(audit_engine).organization_id


@pytest.fixture
def new_user(audit_engine: Engine) -> Callable[[uuid.UUID], uuid.UUID]:
    def make(organization_id: uuid.UUID) -> uuid.UUID:
        with audit_engine.begin() as conn:
            conn.execute(text("SELECT set_config('app.current_org_id', :org, true)"), {"org": str(organization_id)})
            return conn.execute(
                # The audit tests never read the user back: a distinct blind index is all the row needs.
                text("INSERT INTO users (organization_id, email, email_index, password_hash, name, role)"
                     " VALUES (:org, 'not-read', :index, 'x', 'not-read', 'auditor') RETURNING id"),
                {"org": organization_id, "index": uuid.uuid4().hex},
            ).scalar_one()

    return make


@pytest.fixture
def unit_of_work(audit_engine: Engine) -> Callable[..., Any]:
    @contextmanager
    def make(organization_id: uuid.UUID | None) -> Iterator[PostgresUnitOfWork]:
        with PostgresUnitOfWork(audit_engine, organization_id) as uow:
            yield uow

    return make


class TestPostgresAuditLog(AuditLogContract):
    pass


# --- append-only -----------------------------------------------------------------------------


@pytest.fixture
def org_with_chain(audit_log: PostgresAuditLog, new_organization: Callable[[], uuid.UUID]) -> uuid.UUID:
    org = new_organization()
    for index in range(5):
        audit_log.record_independently(event(org, f"step.{index}", metadata={"index": index, "rate": 0.5}))
    return org


def _as_app(engine: Engine, org: uuid.UUID, statement: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.current_org_id', :org, true)"), {"org": str(org)})
        conn.execute(text(statement), {"org": org})


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_logs SET action = 'rewritten' WHERE organization_id = :org",
        "DELETE FROM audit_logs WHERE organization_id = :org",
        "TRUNCATE audit_logs",
        "UPDATE audit_chain_heads SET last_sequence = 0 WHERE organization_id = :org",
    ],
)
def test_the_app_role_has_no_privilege_to_change_history(
    audit_engine: Engine, org_with_chain: uuid.UUID, statement: str
) -> None:
    with pytest.raises(DBAPIError) as caught:
        _as_app(audit_engine, org_with_chain, statement)
    assert isinstance(caught.value.orig, psycopg.errors.InsufficientPrivilege)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_logs SET action = 'rewritten' WHERE organization_id = :org",
        "DELETE FROM audit_logs WHERE organization_id = :org",
        "TRUNCATE audit_logs",
    ],
)
def test_even_a_superuser_is_refused_by_the_triggers(
    database: PgDatabase, audit_log: PostgresAuditLog, org_with_chain: uuid.UUID, statement: str
) -> None:
    with (
        psycopg.connect(libpq_url(database.admin_url)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
    ):
        conn.execute(statement.replace(":org", "%(org)s"), {"org": org_with_chain})
    assert len(audit_log.read_chain(org_with_chain, 0, 10)) == 5


def test_the_trigger_refuses_a_row_that_does_not_continue_the_chain(
    audit_engine: Engine, audit_log: PostgresAuditLog, org_with_chain: uuid.UUID, signer: AuditSigner
) -> None:
    head = audit_log.chain_head(org_with_chain)
    assert head is not None
    for sequence, previous, created_at in (
        (head.last_sequence + 2, head.last_hash, None),  # skips a number
        (head.last_sequence + 1, GENESIS_HASH, None),  # forks from the start
        (head.last_sequence + 1, head.last_hash, dt.datetime(2001, 1, 1)),  # back-dated
    ):
        record = signer.seal(
            AuditEvent(action="forged", organization_id=org_with_chain),
            record_id=uuid.uuid4(),
            sequence_number=sequence,
            previous_hash=previous,
            created_at=created_at or dt.datetime.now(dt.UTC),
        )
        with pytest.raises(DBAPIError), audit_engine.begin() as conn:
            conn.execute(text("SELECT set_config('app.current_org_id', :org, true)"), {"org": str(org_with_chain)})
            conn.execute(
                text(
                    "INSERT INTO audit_logs (id, organization_id, action, created_at, sequence_number,"
                    " previous_hash, hash, key_id) VALUES (:id, :org, 'forged', :at, :seq, :prev, :hash, 'test-1')"
                ),
                {"id": record.id, "org": org_with_chain, "at": record.created_at, "seq": sequence,
                 "prev": previous, "hash": record.hash},
            )
    assert [r.ok for r in verify_chains(audit_log, signer, org_with_chain)] == [True]


# --- tampering behind the application's back -------------------------------------------------


@contextmanager
def _superuser(database: PgDatabase) -> Iterator[psycopg.Connection]:
    """A superuser session with the audit triggers switched off, as an attacker with the keys to
    the database (but not to the application's HMAC key) would do."""
    with psycopg.connect(libpq_url(database.admin_url)) as conn:
        conn.execute("SET session_replication_role = replica")  # no triggers fire
        yield conn


def _first_break(audit_log: PostgresAuditLog, signer: AuditSigner, org: uuid.UUID) -> Any:
    [result] = verify_chains(audit_log, signer, org)
    return result.first_break


def test_a_field_changed_by_the_superuser_is_named(
    database: PgDatabase, audit_log: PostgresAuditLog, org_with_chain: uuid.UUID, signer: AuditSigner
) -> None:
    victim = audit_log.record_at(org_with_chain, 3)
    assert victim is not None
    with _superuser(database) as conn:
        conn.execute("UPDATE audit_logs SET metadata = '{\"index\": 2, \"rate\": 0.25}' WHERE id = %s", (victim.id,))
    brk = _first_break(audit_log, signer, org_with_chain)
    assert brk is not None
    assert (brk.record_id, brk.sequence_number, brk.reason) == (victim.id, 3, BreakReason.HASH_MISMATCH)


def test_a_field_changed_by_the_owner_with_the_trigger_disabled_is_named(
    database: PgDatabase, owner_engine: Engine, audit_log: PostgresAuditLog, org_with_chain: uuid.UUID,
    signer: AuditSigner,
) -> None:
    victim = audit_log.record_at(org_with_chain, 2)
    assert victim is not None
    with owner_engine.begin() as conn:
        # The owner may disable its own table's triggers, and sets the tenant to pass FORCE RLS.
        conn.execute(text("ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only"))
        conn.execute(text("SELECT set_config('app.current_org_id', :org, true)"), {"org": str(org_with_chain)})
        changed = conn.execute(text("UPDATE audit_logs SET ip_address = '10.9.9.9' WHERE id = :id"), {"id": victim.id})
        assert changed.rowcount == 1
        conn.execute(text("ALTER TABLE audit_logs ENABLE TRIGGER audit_logs_append_only"))
    brk = _first_break(audit_log, signer, org_with_chain)
    assert brk is not None
    assert (brk.record_id, brk.sequence_number, brk.reason) == (victim.id, 2, BreakReason.HASH_MISMATCH)


def test_a_deleted_middle_row_is_a_gap(
    database: PgDatabase, audit_log: PostgresAuditLog, org_with_chain: uuid.UUID, signer: AuditSigner
) -> None:
    with _superuser(database) as conn:
        conn.execute("DELETE FROM audit_logs WHERE chain_key = %s AND sequence_number = 3", (org_with_chain,))
    after_gap = audit_log.record_at(org_with_chain, 4)
    brk = _first_break(audit_log, signer, org_with_chain)
    assert brk is not None and after_gap is not None
    assert (brk.record_id, brk.sequence_number, brk.reason) == (after_gap.id, 4, BreakReason.SEQUENCE_GAP)


def test_rows_deleted_from_the_end_are_caught_by_the_chain_head(
    database: PgDatabase, audit_log: PostgresAuditLog, org_with_chain: uuid.UUID, signer: AuditSigner
) -> None:
    with _superuser(database) as conn:
        conn.execute("DELETE FROM audit_logs WHERE chain_key = %s AND sequence_number >= 4", (org_with_chain,))
    brk = _first_break(audit_log, signer, org_with_chain)
    assert brk is not None and brk.reason is BreakReason.MISSING_TAIL and brk.sequence_number == 4


def test_a_chain_rewritten_whole_without_the_key_is_caught_at_its_first_row(
    database: PgDatabase, audit_log: PostgresAuditLog, org_with_chain: uuid.UUID, signer: AuditSigner
) -> None:
    # The owner rewrites every row (a different action) and recomputes every hash and link, with
    # a key of its own, consistently: sequence and links are perfect, only the HMAC key is wrong.
    forger = AuditSigner(signer.key_id, "owner-made-up-key-000000000000000000000")
    original = audit_log.read_chain(org_with_chain, 0, 100)
    previous = GENESIS_HASH
    with _superuser(database) as conn:
        for record in original:
            forged = forger.seal(
                AuditEvent(action="nothing.to.see", organization_id=org_with_chain),
                record_id=record.id, sequence_number=record.sequence_number,
                previous_hash=previous, created_at=record.created_at,
            )
            conn.execute(
                "UPDATE audit_logs SET action = %s, metadata = NULL, previous_hash = %s, hash = %s WHERE id = %s",
                (forged.event.action, forged.previous_hash, forged.hash, record.id),
            )
            previous = forged.hash
        conn.execute("UPDATE audit_chain_heads SET last_hash = %s WHERE chain_key = %s", (previous, org_with_chain))
    brk = _first_break(audit_log, signer, org_with_chain)
    assert brk is not None
    assert (brk.record_id, brk.sequence_number, brk.reason) == (original[0].id, 1, BreakReason.HASH_MISMATCH)
    # With the forger's key the rewrite is self-consistent: only the real key tells.
    [forged_view] = verify_chains(audit_log, forger, org_with_chain)
    assert forged_view.ok


# --- tenancy -------------------------------------------------------------------------------


def test_the_app_role_sees_only_its_own_organizations_audit_rows(
    audit_engine: Engine, audit_log: PostgresAuditLog, new_organization: Callable[[], uuid.UUID]
) -> None:
    mine, theirs = new_organization(), new_organization()
    audit_log.record_independently(event(mine, "mine"))
    audit_log.record_independently(event(theirs, "theirs"))
    audit_log.record_independently(event(None, "system"))
    with audit_engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.current_org_id', :org, true)"), {"org": str(mine)})
        actions = conn.execute(text("SELECT action FROM audit_logs")).scalars().all()
        heads = conn.execute(text("SELECT chain_key FROM audit_chain_heads")).scalars().all()
        with pytest.raises(DBAPIError):
            conn.execute(text("SELECT * FROM audit_chain_reserve(:k)"), {"k": theirs})
    assert actions == ["mine"]
    assert heads == [mine]
    assert [r.event.action for r in audit_log.list_records(mine, AuditQuery()).records] == ["mine"]


# --- retention -----------------------------------------------------------------------------


def _plant_old_chain(database: PgDatabase, signer: AuditSigner, org: uuid.UUID, ages: list[dt.timedelta]) -> None:
    """Rows sealed with the real key but dated in the past (only possible with triggers off)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    previous = GENESIS_HASH
    with _superuser(database) as conn:
        for index, age in enumerate(ages, start=1):
            record = signer.seal(
                AuditEvent(action=f"old.{index}", organization_id=org),
                record_id=uuid.uuid4(), sequence_number=index, previous_hash=previous, created_at=now - age,
            )
            conn.execute(
                "INSERT INTO audit_logs (id, organization_id, action, created_at, sequence_number, previous_hash,"
                " hash, key_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (record.id, org, record.event.action, record.created_at, index, previous, record.hash, record.key_id),
            )
            previous = record.hash
        conn.execute(
            "INSERT INTO audit_chain_heads (chain_key, organization_id, last_sequence, last_hash, last_created_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (org, org, len(ages), previous, now - ages[-1]),
        )


def test_purge_removes_only_rows_past_seven_years_and_the_chain_still_verifies(
    database: PgDatabase, audit_log: PostgresAuditLog, signer: AuditSigner, new_organization: Callable[[], uuid.UUID]
) -> None:
    org = new_organization()
    year = dt.timedelta(days=365)
    _plant_old_chain(database, signer, org, [9 * year, 8 * year, 7 * year + dt.timedelta(days=30), 2 * year])
    audit_log.record_independently(event(org, "today"))
    now = dt.datetime.now(dt.UTC)

    outcome = purge_expired(audit_log, signer, org, now)
    assert (outcome.rows_removed, outcome.through_sequence) == (3, 3)
    assert [r.event.action for r in audit_log.read_chain(org, 0, 10)] == ["old.4", "today"]
    [result] = verify_chains(audit_log, signer, org, now=now)
    assert result.ok and result.records_checked == 2
    assert purge_expired(audit_log, signer, org, now).rows_removed == 0


def test_the_purge_function_refuses_rows_inside_retention(
    audit_log: PostgresAuditLog, signer: AuditSigner, org_with_chain: uuid.UUID
) -> None:
    young = audit_log.record_at(org_with_chain, 2)
    assert young is not None
    checkpoint = signer.sign_checkpoint(org_with_chain, 2, young.hash, young.created_at)
    with pytest.raises(AuditPurgeRefused, match="retention"):
        audit_log.purge_through(checkpoint)
    assert len(audit_log.read_chain(org_with_chain, 0, 10)) == 5


def test_a_forged_checkpoint_is_caught(
    database: PgDatabase, audit_log: PostgresAuditLog, signer: AuditSigner, new_organization: Callable[[], uuid.UUID]
) -> None:
    org = new_organization()
    year = dt.timedelta(days=365)
    _plant_old_chain(database, signer, org, [9 * year, 8 * year, 1 * year])
    forger = AuditSigner(signer.key_id, "owner-made-up-key-000000000000000000000")
    second = audit_log.record_at(org, 2)
    assert second is not None
    # The owner removes two recent-looking rows "as if" purged, with a checkpoint it signed itself.
    audit_log.purge_through(forger.sign_checkpoint(org, 2, second.hash, second.created_at))
    [result] = verify_chains(audit_log, signer, org, now=dt.datetime.now(dt.UTC))
    assert result.first_break is not None and result.first_break.reason is BreakReason.INVALID_CHECKPOINT


@pytest.mark.global_state
def test_system_chain_rows_are_invisible_to_tenants_and_verify(
    audit_engine: Engine, audit_log: PostgresAuditLog, signer: AuditSigner, org_with_chain: uuid.UUID
) -> None:
    audit_log.record_independently(event(None, "auth.login.failed", metadata={"organization": "unknown"}))
    with audit_engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.current_org_id', :org, true)"), {"org": str(org_with_chain)})
        assert conn.execute(text("SELECT count(*) FROM audit_logs WHERE organization_id IS NULL")).scalar_one() == 0
    results = {r.chain_key: r for r in verify_chains(audit_log, signer)}
    assert results[SYSTEM_CHAIN_KEY].ok


# --- the command line --------------------------------------------------------------------------


def test_cli_verify_on_postgres_says_ok_then_names_the_tampered_row(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database: PgDatabase,
    audit_log: PostgresAuditLog, signer: AuditSigner, org_with_chain: uuid.UUID,
) -> None:
    from reckai.entrypoints.cli import audit as audit_cli
    from reckai.entrypoints.cli.main import main

    @dataclasses.dataclass
    class Tools:  # what the audit commands use of the container, on the test database
        audit_log: PostgresAuditLog
        audit_signer: AuditSigner
        audit_anchors: Any = None

        def close(self) -> None:
            pass

    container = Tools(audit_log, signer)
    monkeypatch.setattr(audit_cli, "container_factory", lambda: container)
    assert main(["audit", "verify", "--organization", str(org_with_chain)]) == 0
    assert f"OK organization {org_with_chain}: 5 records" in capsys.readouterr().out

    victim = audit_log.record_at(org_with_chain, 4)
    assert victim is not None
    with _superuser(database) as conn:
        conn.execute("UPDATE audit_logs SET response_status = 200 WHERE id = %s", (victim.id,))
    assert main(["audit", "verify", "--organization", str(org_with_chain)]) == 1
    out = capsys.readouterr().out
    assert f"row {victim.id} at sequence 4: hash_mismatch" in out
