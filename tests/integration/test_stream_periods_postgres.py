"""Period close of a stream on PostgreSQL: the scenarios of tests/support/period_scenarios.py (also
run in memory), and the database's own freeze, tested as the app role reckai_app: a plain UPDATE or
DELETE of a closed period's exception or match is refused by the trigger of 0024_period_close,
whatever the application does; only the adjustment path (its row written in the same transaction,
the transaction-local setting naming its approval) lets a change through, for the exceptions it names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, ProgrammingError

from reckai.application.ports.repositories import FrozenByClosedPeriod
from reckai.bootstrap import Container, bootstrap
from reckai.entrypoints.http.errors import describe_error
from reckai.entrypoints.http.routes import collect_routes
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.support import period_scenarios as scenarios
from tests.support.streams import StreamWorld, stream_world

pytestmark = pytest.mark.integration

MOVED = scenarios.clock()


@pytest.fixture(scope="module")
def container(pg_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root = tmp_path_factory.mktemp("periods")
    settings = Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=pg_database.app_url, pool_size=4),
                        storage=StorageSettings(backend="filesystem", filesystem_root=root / "storage"),
                        mailer=MailerSettings(backend="file", outbox_dir=root / "mail"))
    built = bootstrap(settings, clock=MOVED)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def world(container: Container) -> StreamWorld:
    return stream_world(container)


def test_closing_through_an_approval_snapshots_the_period(world: StreamWorld) -> None:
    scenarios.the_snapshot_holds_the_period_figures(world, MOVED)


def test_every_path_refuses_an_exception_of_a_closed_period(world: StreamWorld) -> None:
    scenarios.every_path_refuses_a_closed_periods_exception(world, MOVED)


def test_an_adjustment_reopens_and_a_later_match_is_held(world: StreamWorld) -> None:
    scenarios.adjustment_reopens_and_later_match_is_held(world, MOVED)


def test_a_link_adjustment_links_a_closed_periods_rows(world: StreamWorld) -> None:
    scenarios.a_link_adjustment_links_a_closed_periods_rows(world, MOVED)


def test_periods_close_in_order_and_reopen_from_the_latest(world: StreamWorld) -> None:
    scenarios.periods_close_in_order_and_reopen_from_the_latest(world, MOVED)


def test_an_earlier_open_period_blocks_a_close(world: StreamWorld) -> None:
    scenarios.an_earlier_open_period_blocks_a_close(world, MOVED)


def test_the_daily_and_aging_reports_show_the_periods(world: StreamWorld) -> None:
    scenarios.the_reports_show_the_periods_figures(world, MOVED)


# --- the database's freeze, as the app role ---


def _as_tenant(conn: Connection, organization_id: uuid.UUID) -> None:
    conn.execute(text("SELECT set_config('app.current_org_id', :org, true)"), {"org": str(organization_id)})


def _refused(engine: Engine, organization_id: uuid.UUID, statement: str, params: dict[str, Any],
             setup: str | None = None) -> str:
    with engine.connect() as conn:
        _as_tenant(conn, organization_id)
        if setup:
            conn.execute(text(setup), params)
        with pytest.raises((DBAPIError, ProgrammingError)) as caught:
            conn.execute(text(statement), params)
        conn.rollback()
    return str(caught.value.orig)


def test_the_database_refuses_changes_to_a_closed_periods_rows_as_the_app_role(
        world: StreamWorld, app_engine: Engine) -> None:
    day = scenarios.close_first_day(world, MOVED)
    org, r3, r5 = world.organization_id, day.items["R3"].id, day.items["R5"].id
    with app_engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == "reckai_app"
    message = _refused(app_engine, org, "UPDATE exceptions SET description = 'changed' WHERE id = :id", {"id": r3})
    assert "closed period" in message and "period_adjustment" in message
    assert "closed period" in _refused(app_engine, org, "DELETE FROM exceptions WHERE id = :id", {"id": r3})
    # a bulk statement touching a frozen row among others is refused as a whole
    assert "closed period" in _refused(app_engine, org, "UPDATE exceptions SET description = description"
                                                        " WHERE id IN (:id, :other)", {"id": r3, "other": r5})
    # the closed period's matches (run 1's job)
    assert "read-only" in _refused(app_engine, org, "DELETE FROM reconciliation_matches WHERE job_id = :job",
                                   {"job": day.run1_job})
    # setting the adjustment marker by hand is not enough: no adjustment row of this transaction
    assert "closed period" in _refused(
        app_engine, org, "UPDATE exceptions SET description = 'changed' WHERE id = :id",
        {"id": r3, "approval": str(uuid.uuid4())},
        setup="SELECT set_config('reckai.period_adjustment', :approval, true)")
    # nor may the app role forge the transaction column of an adjustment row
    with app_engine.connect() as conn:
        _as_tenant(conn, org)
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("INSERT INTO stream_period_adjustments (id, organization_id, stream_id, period_key,"
                              " approval_id, action, exception_ids, reason, requested_by, approved_by, applied_at,"
                              " applied_in_transaction) SELECT gen_random_uuid(), :org, :s, '2025-12-31',"
                              " gen_random_uuid(), 'reopen', ARRAY[CAST(:id AS uuid)], 'r', :u, :u, now(),"
                              " txid_current()"),
                         {"org": org, "s": day.stream.id, "id": r3, "u": world.caller.user_id})
        conn.rollback()
    # through the repository (the application's check bypassed): the trigger's refusal is a port error,
    # answered 409 PERIOD_CLOSED over HTTP, never a 500
    with world.container.database.unit_of_work(org) as uow:
        item = uow.exceptions.get_for_update(r3)
        assert item is not None
        item.description = "changed behind the check"
        with pytest.raises(FrozenByClosedPeriod) as frozen:
            uow.exceptions.update(item)
    assert frozen.value.code == "PERIOD_CLOSED"
    answer = describe_error(frozen.value, collect_routes().error_statuses)
    assert answer.status == 409 and answer.envelope.error.code == "PERIOD_CLOSED"
    # a carried (open at close) item is not frozen
    with app_engine.begin() as conn:
        _as_tenant(conn, org)
        assert conn.execute(text("UPDATE exceptions SET description = description WHERE id = :id"),
                            {"id": r5}).rowcount == 1
    with app_engine.connect() as conn:
        _as_tenant(conn, org)
        assert conn.execute(text("SELECT status FROM exceptions WHERE id = :id"), {"id": r3}).scalar_one() == "ignored"


def test_an_approved_adjustment_cannot_be_replayed(world: StreamWorld, app_engine: Engine) -> None:
    """After an adjustment was applied, its approval id in the marker no longer opens the path: the
    adjustment row was written by another transaction."""
    from reckai.application.approvals.requests import approve_request
    from reckai.application.streams.periods import AdjustmentRequest, request_period_adjustment

    day = scenarios.close_first_day(world, MOVED)
    r3 = day.items["R3"].id
    asked = request_period_adjustment(world.container.workflow, day.who.admin, day.stream.id, "2025-12-31",
                                      AdjustmentRequest("reopen", [r3], "reversed"))
    approve_request(world.container.workflow, day.who.supervisor, asked.id)
    with app_engine.connect() as conn:
        _as_tenant(conn, world.organization_id)
        assert conn.execute(text("SELECT status FROM exceptions WHERE id = :id"), {"id": r3}).scalar_one() == "open"
        assert conn.execute(text("SELECT count(*) FROM stream_period_adjustments WHERE approval_id = :a"),
                            {"a": asked.id}).scalar_one() == 1
    assert "closed period" in _refused(
        app_engine, world.organization_id, "UPDATE exceptions SET status = 'resolved' WHERE id = :id",
        {"id": r3, "approval": str(asked.id)}, setup="SELECT set_config('reckai.period_adjustment', :approval, true)")
