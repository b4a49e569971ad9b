"""The orphaned-object sweeper against PostgreSQL (as reckai_app, through the SECURITY DEFINER
functions of 0008_file_sweeper) with the real storage adapters: encrypted filesystem and S3
(moto over HTTP)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from reckai.adapters.postgres.engine import create_engine
from reckai.application.files import (
    Caller,
    confirm_mapping,
    delete_file,
    upload_file,
    validate_form,
)
from reckai.application.files.sweeper import ORPHAN_GRACE, sweep_orphaned_objects
from reckai.application.ports.files import ReconciliationFile
from reckai.application.ports.rate_limit import TIERS
from reckai.bootstrap import Container, bootstrap
from reckai.domain.ingestion.storage_keys import processed_key, upload_key
from reckai.settings import DatabaseSettings, Mode, ScannerSettings, Settings, StorageSettings
from tests.contracts.identity_repositories import signup
from tests.support.files_corpus import GOOD_CSV
from tests.unit.test_files_sweeper import FailingDeletes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["filesystem", "s3"])
def container(request: pytest.FixtureRequest, pg_database: Any,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    if request.param == "s3":
        s3 = request.getfixturevalue("s3_server")
        # A bucket of its own (embedded mode creates it): the sweeper lists every organization's
        # objects, and the session's bucket holds other tests' upload-shaped objects that have no
        # file row (test_storage_s3's), which a sweep with no grace would rightly delete.
        storage = StorageSettings(backend="s3", s3_endpoint=s3.endpoint, s3_access_key=s3.access_key,
                                  s3_secret_key=s3.secret_key, s3_bucket=f"reckai-sweeper-{uuid.uuid4().hex[:8]}",
                                  s3_region=s3.region, s3_secure=s3.secure)
    else:
        storage = StorageSettings(backend="filesystem", filesystem_root=tmp_path_factory.mktemp("sweeper"))
    built = bootstrap(Settings(mode=Mode.EMBEDDED, database=DatabaseSettings(url=pg_database.app_url, pool_size=4),
                               storage=storage, scanner=ScannerSettings(enabled=False)))
    try:
        yield built
    finally:
        built.close()


class World:
    def __init__(self, container: Container) -> None:
        self.container = container
        self.storage = FailingDeletes(container.storage)
        created, _ = signup(container.database)
        self.caller = Caller(organization_id=created.organization_id, user_id=created.admin_user_id)
        self.services = dataclasses.replace(container.files, storage=self.storage)

    def upload(self) -> uuid.UUID:
        self.container.rate_limiter.reset(TIERS["upload"], str(self.caller.user_id))
        form = validate_form("bank.csv", "bank", None)
        return upload_file(self.services, self.caller, form, [GOOD_CSV]).file.id

    def org_keys(self) -> list[str]:
        return list(self.storage.list_keys(f"organizations/{self.caller.organization_id}/"))

    def sweep(self, grace: dt.timedelta = ORPHAN_GRACE) -> Any:
        return sweep_orphaned_objects(self.container.database, self.storage, grace=grace, page_size=3)


@pytest.fixture
def world(container: Container) -> World:
    return World(container)


@pytest.fixture(scope="module")
def admin(pg_database: Any) -> Iterator[Any]:
    """A superuser connection: the only way, besides the functions, to touch the candidates."""
    engine = create_engine(pg_database.admin_url, pool_size=1)
    yield engine
    engine.dispose()


def _backdate_candidates(admin: Any, keys: list[str], by: dt.timedelta) -> None:
    with admin.begin() as conn:
        conn.execute(text("UPDATE file_sweep_candidates SET first_seen_at = first_seen_at - make_interval(secs => :s)"
                          " WHERE object_key = ANY(:keys)"), {"s": by.total_seconds(), "keys": keys})


def test_orphans_of_a_failed_delete_are_swept_after_the_grace_period(world: World, admin: Any) -> None:
    file_id = world.upload()
    confirm_mapping(world.services, world.caller, file_id, None)
    kept_id = world.upload()
    world.storage.failing = True
    delete_file(world.services, world.caller, file_id)  # committed; both objects left behind
    world.storage.failing = False
    orphans = sorted(k for k in world.org_keys() if str(file_id) in k)
    assert len(orphans) == 2 and any("/processed/files/" in k for k in orphans)

    assert world.sweep().deleted == []  # seen for the first time: kept for the grace period
    assert sorted(k for k in world.org_keys() if str(file_id) in k) == orphans
    _backdate_candidates(admin, orphans, ORPHAN_GRACE + dt.timedelta(minutes=1))
    assert sorted(world.sweep().deleted) == orphans
    assert [k for k in world.org_keys() if str(file_id) in k] == []
    assert len([k for k in world.org_keys() if str(kept_id) in k]) == 1  # has its row: untouched
    with admin.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM file_sweep_candidates WHERE object_key = ANY(:k)"),
                            {"k": orphans}).scalar_one()
    assert left == 0


def test_an_upload_in_flight_is_never_swept(world: World, admin: Any) -> None:
    in_flight = uuid.uuid4()
    key = upload_key(world.caller.organization_id, in_flight, dt.date.today(), "csv")
    world.storage.put(key, [GOOD_CSV])  # stored; its row is committed only after scanning and checks
    assert world.sweep().deleted == []
    with world.container.database.unit_of_work(world.caller.organization_id) as uow:
        uow.files.add(ReconciliationFile(
            id=in_flight, organization_id=world.caller.organization_id, name="bank.csv",
            original_filename="bank.csv", file_type="bank", format="csv", size_bytes=len(GOOD_CSV),
            storage_path=key, status="uploaded", uploaded_by=world.caller.user_id))
        uow.commit()
    _backdate_candidates(admin, [key], dt.timedelta(days=30))
    assert world.sweep(grace=dt.timedelta(0)).deleted == []  # it has its row: forgotten, not swept
    assert world.storage.exists(key)
    with admin.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM file_sweep_candidates WHERE object_key = :k"),
                            {"k": key}).scalar_one() == 0


def test_other_objects_of_the_organization_are_not_the_sweepers(world: World) -> None:
    results = processed_key(world.caller.organization_id, uuid.uuid4(), "results", "csv")
    world.storage.put(results, [b"a,b\n"])
    assert world.sweep(grace=dt.timedelta(0)).deleted == []
    assert world.storage.exists(results)
    world.storage.delete(results)


def test_the_app_role_reaches_the_candidates_only_through_the_functions(container: Container) -> None:
    for statement in ("SELECT * FROM file_sweep_candidates", "DELETE FROM file_sweep_candidates"):
        with container.database.unit_of_work(None) as uow, pytest.raises(ProgrammingError, match="permission denied"):
            uow.connection.execute(text(statement))
    # Another organization's file exists, whatever the caller's tenant: the function answers only that.
    other, _ = signup(container.database)
    world = World(container)
    file_id = world.upload()
    key = next(k for k in world.org_keys() if str(file_id) in k)
    with container.database.unit_of_work(other.organization_id) as uow:
        assert uow.file_sweep.observe([(key, file_id)], 0) == []
        assert uow.file_sweep.observe([("organizations/x/uploads/2026/01/y.csv", uuid.uuid4())], 0) != []
        uow.rollback()
