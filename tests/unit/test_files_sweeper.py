"""The orphaned-object sweeper on the in-memory container (tests/integration/test_files_sweeper.py
runs it against PostgreSQL with the filesystem and S3 storage adapters)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import pytest

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.adapters.memory.storage import InMemoryFileStorage
from reckai.application import job_types
from reckai.application.files import (
    Caller,
    FileServices,
    confirm_mapping,
    delete_file,
    upload_file,
    validate_form,
)
from reckai.application.files.sweeper import file_id_of, sweep_orphaned_objects
from reckai.application.ports.jobs import JobDelivery
from reckai.application.ports.storage import StorageUnavailable
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.domain.ingestion.storage_keys import (
    normalized_file_key,
    processed_key,
    quarantine_key,
    report_key,
    upload_key,
)
from tests.contracts.identity_repositories import signup
from tests.support.files_corpus import GOOD_CSV

HOUR = dt.timedelta(hours=1)


class FailingDeletes:
    """Storage whose deletes fail while `failing` is set (the real adapter otherwise)."""

    def __init__(self, storage: Any) -> None:
        self._storage = storage
        self.failing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def delete(self, key: str) -> None:
        if self.failing:
            raise StorageUnavailable("storage refused the delete")
        self._storage.delete(key)


@dataclasses.dataclass
class World:
    container: Container
    services: FileServices
    caller: Caller
    storage: FailingDeletes

    def upload(self) -> uuid.UUID:
        return upload_file(self.services, self.caller, validate_form("bank.csv", "bank", None), [GOOD_CSV]).file.id

    def stored_keys(self) -> list[str]:
        return list(self.storage.list_keys(""))

    def sweep(self, grace: dt.timedelta) -> Any:
        return sweep_orphaned_objects(self.container.database, self.storage, grace=grace, page_size=2)


@pytest.fixture
def world() -> World:
    storage = FailingDeletes(InMemoryFileStorage(public_base_url="http://127.0.0.1:8000"))
    container = bootstrap_in_memory(scanner=InMemoryScanner(), storage=storage)
    created, _ = signup(container.database)
    caller = Caller(organization_id=created.organization_id, user_id=created.admin_user_id)
    return World(container, container.files, caller, storage)


def test_objects_left_by_a_failed_delete_are_swept_once_the_grace_period_has_passed(world: World) -> None:
    file_id = world.upload()
    confirm_mapping(world.services, world.caller, file_id, None)
    kept_id = world.upload()
    world.storage.failing = True
    delete_file(world.services, world.caller, file_id)  # row gone, both objects left behind
    world.storage.failing = False
    orphans = [k for k in world.stored_keys() if str(file_id) in k]
    assert len(orphans) == 2

    first = world.sweep(grace=HOUR)  # first sighting: too recent
    assert first.deleted == [] and first.examined == 3
    assert sorted(world.sweep(grace=dt.timedelta(0)).deleted) == sorted(orphans)
    assert [k for k in world.stored_keys() if str(file_id) in k] == []
    assert any(str(kept_id) in k for k in world.stored_keys())  # a file with its row is never touched
    assert world.sweep(grace=dt.timedelta(0)).deleted == []  # idempotent


def test_an_upload_in_flight_is_never_swept(world: World) -> None:
    in_flight = uuid.uuid4()
    key = upload_key(world.caller.organization_id, in_flight, dt.date.today(), "csv")
    world.storage.put(key, [GOOD_CSV])  # stored, its row not committed yet
    assert world.sweep(grace=HOUR).deleted == []
    with world.container.database.unit_of_work(world.caller.organization_id) as uow:  # the upload commits
        uow.files.add(_row(world, in_flight, key))
        uow.commit()
    assert world.sweep(grace=dt.timedelta(0)).deleted == []  # it has its row now: forgotten
    assert key in world.stored_keys()
    with world.container.database.unit_of_work(None) as uow:
        assert list(uow.all_rows("file_sweep_candidates")) == []


def test_only_file_objects_are_considered(world: World) -> None:
    org = world.caller.organization_id
    others = [processed_key(org, uuid.uuid4(), "results", "csv"), report_key(org, uuid.uuid4(), dt.date.today(), "pdf"),
              quarantine_key(org, uuid.uuid4(), dt.date.today(), "csv"), "health/probe-x"]
    for key in others:
        world.storage.put(key, [b"x"])
    report = world.sweep(grace=dt.timedelta(0))
    assert report.examined == 0 and report.deleted == []
    assert sorted(world.stored_keys()) == sorted(others)
    file_id = uuid.uuid4()
    assert file_id_of(upload_key(org, file_id, dt.date.today(), "xlsx")) == file_id
    assert file_id_of(normalized_file_key(org, file_id)) == file_id
    assert file_id_of(f"organizations/{org}/uploads/2026/01/not-a-uuid.csv") is None


def test_a_failed_delete_is_retried_by_the_next_pass(world: World) -> None:
    file_id = world.upload()
    world.storage.failing = True
    delete_file(world.services, world.caller, file_id)
    report = world.sweep(grace=dt.timedelta(0))
    assert report.deleted == [] and len(report.failed) == 1
    world.storage.failing = False
    assert world.sweep(grace=dt.timedelta(0)).deleted == report.failed
    assert world.stored_keys() == []


def test_candidates_whose_object_went_away_are_forgotten_after_a_pass(world: World) -> None:
    key = upload_key(world.caller.organization_id, uuid.uuid4(), dt.date.today(), "csv")
    world.storage.put(key, [GOOD_CSV])
    world.sweep(grace=HOUR)
    world.storage.delete(key)  # the upload failed and cleaned up after itself
    with world.container.database.unit_of_work(None) as uow:
        assert uow.file_sweep.forget([], unseen_seconds=0) == 1
        uow.commit()


def test_the_sweeper_is_a_scheduled_low_priority_job(world: World) -> None:
    assert job_types.SWEEP_ORPHANED_FILE_OBJECTS.queue.value == "low"
    registry = world.container.job_handlers
    assert registry.get(job_types.SWEEP_ORPHANED_FILE_OBJECTS.name) is not None
    assert job_types.SWEEP_ORPHANED_FILE_OBJECTS.name in [p.job.job_type.name for p in registry.schedule]
    file_id = world.upload()
    world.storage.failing = True
    delete_file(world.services, world.caller, file_id)
    world.storage.failing = False
    delivery = JobDelivery(outbox_id=uuid.uuid4(), attempt=1, organization_id=None,
                           actor_name=job_types.SWEEP_ORPHANED_FILE_OBJECTS.name, payload={})
    registry.get(job_types.SWEEP_ORPHANED_FILE_OBJECTS.name).run(delivery)  # type: ignore[union-attr]
    assert world.stored_keys() != []  # the job keeps the real grace period: a fresh orphan stays ...
    with world.container.database.unit_of_work(None) as uow:  # ... and is now a candidate
        assert [key for key, _ in uow.all_rows("file_sweep_candidates")] == world.stored_keys()


def _row(world: World, file_id: uuid.UUID, key: str) -> Any:
    from reckai.application.ports.files import ReconciliationFile

    return ReconciliationFile(
        id=file_id, organization_id=world.caller.organization_id, name="bank.csv", original_filename="bank.csv",
        file_type="bank", format="csv", size_bytes=len(GOOD_CSV), storage_path=key, status="uploaded",
        uploaded_by=world.caller.user_id)
