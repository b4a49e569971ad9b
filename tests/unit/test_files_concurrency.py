"""The per-file claim on the in-memory container (tests/integration/test_files_concurrency.py runs
the races over HTTP against PostgreSQL).

A parser that pauses inside `normalize` until the test lets it go makes the overlap certain: while
one mapping holds the claim, a second mapping and a delete are refused with FileBusy (409) and
change nothing; a job's normalize step waits and then returns the same, single result.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.adapters.polars.file_processing import PolarsFileParser
from reckai.application.errors import ValidationFailed
from reckai.application.files import (
    Caller,
    FileServices,
    confirm_mapping,
    delete_file,
    get_file,
    normalize_file_job,
    upload_file,
    validate_form,
)
from reckai.application.files.errors import FileBusy, FileVersionConflict
from reckai.application.ports.files import NormalizationOutcome
from reckai.bootstrap import bootstrap_in_memory
from reckai.domain.ingestion.mapping import Mapping
from reckai.domain.ingestion.storage_keys import normalized_file_key, organization_prefix
from tests.contracts.identity_repositories import signup
from tests.support.files_corpus import EXPLICIT_MAPPING, GOOD_CSV


class PausingParser:
    """The real parser, except that `normalize` waits for `release` once `paused` is armed."""

    def __init__(self, parser: Any) -> None:
        self._parser = parser
        self.inside = threading.Event()
        self.release = threading.Event()
        self.paused = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)

    def normalize(self, read: Callable[[], bytes], mapping: Mapping, filename: str | None) -> NormalizationOutcome:
        if self.paused:
            self.inside.set()
            assert self.release.wait(10), "the test never released the parser"
        return self._parser.normalize(read, mapping, filename)


@dataclass
class World:
    services: FileServices
    caller: Caller
    parser: PausingParser

    def upload(self) -> uuid.UUID:
        return upload_file(self.services, self.caller, validate_form("bank.csv", "bank", None), [GOOD_CSV]).file.id

    def org_keys(self) -> list[str]:
        return list(self.services.storage.list_keys(organization_prefix(self.caller.organization_id)))


@pytest.fixture
def world() -> World:
    parser = PausingParser(PolarsFileParser())
    container = bootstrap_in_memory(scanner=InMemoryScanner(), file_parser=parser)
    created, _ = signup(container.database)
    caller = Caller(organization_id=created.organization_id, user_id=created.admin_user_id)
    return World(container.files, caller, parser)


def _in_thread(target: Any) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(target())
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_while_one_mapping_runs_others_get_file_busy_and_a_job_waits(world: World) -> None:
    file_id = world.upload()
    world.parser.paused = True
    first, first_outcome = _in_thread(lambda: confirm_mapping(world.services, world.caller, file_id, None))
    assert world.parser.inside.wait(10)

    with pytest.raises(FileBusy) as busy:
        confirm_mapping(world.services, world.caller, file_id, EXPLICIT_MAPPING)
    assert busy.value.code == "FILE_BUSY"
    with pytest.raises(FileBusy):
        delete_file(world.services, world.caller, file_id)
    with pytest.raises(FileBusy):  # a job that may not wait long enough
        normalize_file_job(world.services, world.caller.organization_id, file_id, wait_seconds=0.1)
    during = get_file(world.services, world.caller, file_id)
    assert during.file.status == "mapped" and during.normalized is None
    assert all(m.auto_detected for m in during.mappings)  # the refused override changed nothing

    job, job_outcome = _in_thread(lambda: normalize_file_job(world.services, world.caller.organization_id, file_id))
    world.parser.release.set()
    first.join(10)
    job.join(10)
    assert not isinstance(first_outcome[0], BaseException), first_outcome
    normalized = first_outcome[0].normalized
    assert job_outcome == [normalized]  # the job waited, then found the one result
    after = get_file(world.services, world.caller, file_id)
    assert after.file.status == "normalized" and after.normalized == normalized
    targets = [m.target_field for m in after.mappings]
    assert len(targets) == len(set(targets))
    assert sorted(world.org_keys()) == sorted([after.file.storage_path,
                                               normalized_file_key(world.caller.organization_id, file_id)])


def test_the_claim_is_released_when_the_holder_fails(world: World) -> None:
    file_id = world.upload()
    fields: dict[str, Any] = dict(EXPLICIT_MAPPING["fields"])  # type: ignore[call-overload]
    missing_column = {**EXPLICIT_MAPPING, "fields": {**fields, "amount": {"column": "nope"}}}
    with pytest.raises(ValidationFailed):  # raised inside the claim, while normalizing
        confirm_mapping(world.services, world.caller, file_id, missing_column)
    assert get_file(world.services, world.caller, file_id).file.status == "error"
    outcome = confirm_mapping(world.services, world.caller, file_id, EXPLICIT_MAPPING)
    assert outcome.file.status == "normalized"
    delete_file(world.services, world.caller, file_id)
    assert world.org_keys() == []


def test_claims_are_per_file(world: World) -> None:
    first_id, second_id = world.upload(), world.upload()
    world.parser.paused = True
    first, first_outcome = _in_thread(lambda: confirm_mapping(world.services, world.caller, first_id, None))
    assert world.parser.inside.wait(10)
    world.parser.paused = False
    assert confirm_mapping(world.services, world.caller, second_id, None).file.status == "normalized"
    world.parser.release.set()
    first.join(10)
    assert first_outcome[0].file.status == "normalized"


def test_a_remap_racing_for_the_same_version_keeps_nothing_and_says_so(world: World) -> None:
    """Re-maps are serialised by the claim; should a writer that bypassed it store version N+1 while
    a re-map reads the rows, the re-map answers FILE_VERSION_CONFLICT and keeps nothing: its
    Parquet is deleted and the other writer's version stays current (never two rows of one number,
    never an object without its row)."""
    file_id = world.upload()
    first = confirm_mapping(world.services, world.caller, file_id, EXPLICIT_MAPPING).normalized
    assert first is not None and first.version == 1
    world.parser.paused = True
    remap, remap_outcome = _in_thread(lambda: confirm_mapping(world.services, world.caller, file_id, None))
    assert world.parser.inside.wait(10)
    key = normalized_file_key(world.caller.organization_id, file_id, version=2, writer=uuid.uuid4())
    world.services.storage.put(key, [b"the intruder's version"])
    with world.services.database.unit_of_work(world.caller.organization_id) as uow:  # the intruder
        intruder = uow.normalized_files.put(dataclasses.replace(first, id=uuid.uuid4(), version=2, storage_path=key))
        uow.commit()
    before = set(world.org_keys())
    world.parser.release.set()
    remap.join(10)
    assert isinstance(remap_outcome[0], FileVersionConflict), remap_outcome
    assert remap_outcome[0].code == "FILE_VERSION_CONFLICT"
    with world.services.database.unit_of_work(world.caller.organization_id) as uow:
        assert list(uow.normalized_files.versions(file_id)) == [first, intruder]
    assert set(world.org_keys()) == before  # the loser's object removed, the winner's kept
    with world.services.storage.open(key) as stored:
        assert stored.read() == b"the intruder's version"
