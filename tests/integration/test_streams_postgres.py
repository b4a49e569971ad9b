"""Streams on PostgreSQL (row-level security, COPY, the stream tables of 0021_streams): the scenarios
of tests/support/stream_scenarios.py, which also run in memory (tests/unit/test_streams.py)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from reckai.application.streams.commands import start_stream_run
from reckai.application.streams.errors import StreamRunInProgress
from reckai.bootstrap import Container, bootstrap
from reckai.domain.streams.streams import StreamRun
from reckai.settings import DatabaseSettings, MailerSettings, Mode, Settings, StorageSettings
from tests.support import stream_scenarios as scenarios
from tests.support.streams import StreamWorld, bank_csv, stream_world, switch_csv

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def container(pg_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root = tmp_path_factory.mktemp("streams")
    settings = Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=pg_database.app_url, pool_size=4),
                        storage=StorageSettings(backend="filesystem", filesystem_root=root / "storage"),
                        mailer=MailerSettings(backend="file", outbox_dir=root / "mail"))
    built = bootstrap(settings)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def world(container: Container) -> StreamWorld:
    return stream_world(container)


def test_three_days_carry_forward_and_closing(world: StreamWorld) -> None:
    scenarios.three_days(world)


def test_re_running_over_the_same_inputs_gives_no_new_exception(world: StreamWorld) -> None:
    scenarios.rerun_gives_no_new_exception(world)


def test_files_are_refused_with_a_reason(world: StreamWorld) -> None:
    scenarios.files_are_refused_with_a_reason(world)


def test_a_file_repeating_earlier_rows_does_not_bring_them_twice(world: StreamWorld) -> None:
    scenarios.a_file_repeating_earlier_rows_does_not_bring_them_twice(world)


def test_a_remapped_file_joins_the_run_with_its_current_version(world: StreamWorld) -> None:
    scenarios.a_remapped_file_joins_the_run_with_its_current_version(world)


def test_concurrent_run_requests_start_one_run(world: StreamWorld) -> None:
    """The stream's row lock serialises starts: of two simultaneous requests one starts run 1, the
    other sees it pending and is refused (409 STREAM_RUN_IN_PROGRESS); nothing is half-written."""
    left = world.upload(bank_csv(scenarios.DAY1_BANK), "b.csv", "bank")
    right = world.upload(switch_csv(scenarios.DAY1_SWITCH), "s.csv", "switch")
    stream = world.create(left, right, name="concurrent")
    world.add(stream, left)
    world.add(stream, right)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def start() -> None:
        barrier.wait()
        try:
            outcomes.append(start_stream_run(world.services, world.caller, stream.id))
        except StreamRunInProgress as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    runs = [o for o in outcomes if isinstance(o, StreamRun)]
    assert len(runs) == 1 and runs[0].run_number == 1
    assert len([o for o in outcomes if isinstance(o, StreamRunInProgress)]) == 1
    with world.container.database.unit_of_work(world.organization_id) as uow:
        assert [r.run_number for r in uow.streams.runs(stream.id)] == [1]


def test_a_forced_job_inherits_the_earlier_jobs_exceptions(world: StreamWorld) -> None:
    """On PostgreSQL the inheritance is one statement (UPDATE ... FROM, its history entries and
    comment copies from its RETURNING); the dashboard's rollups, kept by the statement triggers of
    0019, still equal the exceptions they count (test_dashboard_postgres.py's check)."""
    import types

    from sqlalchemy import text

    from tests.integration.test_dashboard_postgres import assert_rollup_rows_match

    first, forced = scenarios.a_forced_job_inherits_the_earlier_jobs_exceptions(world)
    org = types.SimpleNamespace(uow=lambda: world.container.database.unit_of_work(world.organization_id))
    assert_rollup_rows_match(org)  # type: ignore[arg-type]
    with world.container.database.unit_of_work(world.organization_id) as uow:
        linked = uow.connection.execute(text(
            "SELECT count(*) FROM exceptions n JOIN exceptions e ON e.id = n.inherited_from"
            " WHERE n.job_id = :forced AND e.job_id = :first"), {"forced": forced, "first": first}).scalar_one()
    assert linked == 3


def test_row_keys_are_kept_by_day_and_rows_of_unknown_day_are_still_found(world: StreamWorld,
                                                                         pg_database: Any) -> None:
    """stream_rows' primary key leads with the row's transaction day (0032; docs/streams.md "Cost
    stays flat"): each row is stored under its own day, and a row whose day is not known (taken
    before 0032: the migration gives every earlier row '-infinity') is still the same row for a
    later run, whatever the day the run asks under."""
    from sqlalchemy import create_engine, text

    left = world.upload(bank_csv(scenarios.DAY1_BANK), "b.csv", "bank")
    right = world.upload(switch_csv(scenarios.DAY1_SWITCH), "s.csv", "switch")
    stream = world.create(left, right, name="days")
    world.add(stream, left)
    world.add(stream, right)
    world.run(stream)
    with world.container.database.unit_of_work(world.organization_id) as uow:
        stored = uow.connection.execute(text(
            "SELECT side, seq, transaction_day::text FROM stream_rows WHERE stream_id = :s ORDER BY side, seq"),
            {"s": stream.id}).all()
    assert [tuple(row) for row in stored] == [
        ("left", 1, "2025-12-30"), ("left", 2, "2025-12-31"), ("left", 3, "2025-12-31"),
        ("right", 1, "2025-12-30"), ("right", 2, "2025-12-31")]
    # what 0032 does to the rows of an existing stream (the app role may not change stream_rows)
    engine = create_engine(pg_database.admin_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE stream_rows SET transaction_day = '-infinity' WHERE stream_id = :s"),
                         {"s": stream.id})
    finally:
        engine.dispose()
    # yesterday's R3 again (other bytes) and a new row: R3 is found among the rows of unknown day
    overlap = world.upload(bank_csv([scenarios.DAY1_BANK[2], scenarios.DAY2_BANK[1]], balance="1.00"),
                           "b-overlap.csv", "bank")
    world.add(stream, overlap)
    run = world.run(stream)
    assert run.figures is not None
    assert run.figures["repeated_rows"] == {"left": 1, "right": 0}
    assert run.figures["new_rows"] == {"left": 1, "right": 0}
    with world.container.database.unit_of_work(world.organization_id) as uow:
        new_day = uow.connection.execute(text(
            "SELECT transaction_day::text FROM stream_rows WHERE stream_id = :s AND side = 'left' AND seq = 4"),
            {"s": stream.id}).scalar_one()
        assert uow.streams.row(stream.id, "left", 1) is not None
        assert uow.streams.row(stream.id, "left", 1).key.transaction_day is None  # type: ignore[union-attr]
    assert new_day == "2026-01-01"


def test_the_migration_gives_existing_row_keys_the_unknown_day(pg_database_factory: Any) -> None:
    """0032_stream_row_days on a database with stream rows: each keeps its key with the day
    '-infinity' (unknown) under the new primary key (stream, side, day, fingerprint, occurrence)
    (the duplicate check still finds them: the test above); and back."""
    from sqlalchemy import text

    from reckai.adapters.postgres import migrations
    from reckai.adapters.postgres.engine import create_engine
    from tests.fixtures.postgres import create_tenant

    database = pg_database_factory(migrate=False)
    migrations.upgrade(database.owner_url, "0029_forced_job_links")
    admin = create_engine(database.admin_url, pool_size=1)
    tenant = create_tenant(admin)
    params = {"org": tenant.organization_id, "user": tenant.admin_user_id, "file": uuid.uuid4()}
    try:
        with admin.begin() as conn:
            stream = conn.execute(text(
                "INSERT INTO streams (organization_id, name, left_file_type, right_file_type, left_mapping,"
                " right_mapping, rules, currency, owner_id, created_by)"
                " VALUES (:org, 's', 'bank', 'switch', '{}', '{}', '[]', 'NGN', :user, :user) RETURNING id"),
                params).scalar_one()
            conn.execute(text(
                "INSERT INTO stream_rows (organization_id, stream_id, side, fingerprint, occurrence, seq, file_id,"
                " row_number, run_number) VALUES (:org, :s, 'left', :fp, 0, 1, :file, 1, 1),"
                " (:org, :s, 'left', :fp, 1, 2, :file, 2, 1)"), {**params, "s": stream, "fp": "ab" * 32})
        migrations.upgrade(database.owner_url, "0032_stream_row_days")
        with admin.begin() as conn:
            rows = conn.execute(text("SELECT seq, transaction_day::text FROM stream_rows ORDER BY seq")).all()
            key = conn.execute(text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'stream_rows_pkey'")).scalar_one()
        assert [tuple(row) for row in rows] == [(1, "-infinity"), (2, "-infinity")]
        assert key == "PRIMARY KEY (stream_id, side, transaction_day, fingerprint, occurrence)"
        migrations.downgrade(database.owner_url, "0029_forced_job_links")
        with admin.begin() as conn:
            key = conn.execute(text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'stream_rows_pkey'")).scalar_one()
            assert conn.execute(text("SELECT count(*) FROM stream_rows")).scalar_one() == 2
        assert key == "PRIMARY KEY (stream_id, side, fingerprint, occurrence)"
    finally:
        admin.dispose()
