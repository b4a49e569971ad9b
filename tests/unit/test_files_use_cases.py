"""File use cases over the in-memory container: state is asserted (rows, objects, audit), never mocks."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reckai.adapters.memory.scanner import EICAR, InMemoryScanner
from reckai.adapters.polars.normalize import read_parquet_bytes
from reckai.application.errors import QuotaExceeded, RateLimited, ServiceUnavailable, ValidationFailed
from reckai.application.files import (
    Caller,
    FileServices,
    confirm_mapping,
    delete_file,
    download_file_url,
    get_file,
    normalize_file_job,
    upload_file,
    validate_form,
)
from reckai.application.files.errors import (
    FileInfected,
    FileInProcessingJob,
    FileRejected,
    FileStateConflict,
    FileTooLarge,
    NormalizationFailed,
)
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.domain.ingestion.storage_keys import organization_prefix
from tests.contracts.identity_repositories import signup
from tests.support.files_corpus import (
    EXPLICIT_MAPPING,
    GOOD_CSV,
    RAGGED_CSV,
    UNPARSEABLE_CSV,
    BadFile,
    refused_at_upload,
)

GIB = 1024 ** 3


@dataclass
class World:
    container: Container
    services: FileServices
    caller: Caller

    def keys(self, prefix: str = "") -> list[str]:
        return list(self.services.storage.list_keys(prefix))

    def org_keys(self) -> list[str]:
        return self.keys(organization_prefix(self.caller.organization_id))

    def used_bytes(self) -> int:
        with self.services.database.unit_of_work(self.caller.organization_id) as uow:
            return int(uow.files.total_size_bytes())

    def audit_actions(self) -> list[str]:
        log = self.container.audit_log
        return [r.event.action for r in log.read_chain(self.caller.organization_id, 0, 1000)]

    def set_quota(self, **limits: int) -> None:
        with self.services.database.unit_of_work(self.caller.organization_id) as uow:
            quota = uow.quotas.get(self.caller.organization_id)
            uow.quotas.update(dataclasses.replace(quota, **limits))
            uow.commit()

    def upload(self, data: bytes | Iterator[bytes], filename: str = "bank.csv", file_type: str = "bank") -> Any:
        body = [data] if isinstance(data, bytes) else data
        return upload_file(self.services, self.caller, validate_form(filename, file_type, None), body)


@pytest.fixture
def world() -> World:
    container = bootstrap_in_memory(scanner=InMemoryScanner())  # scanning on: EICAR is flagged
    created, _ = signup(container.database)
    caller = Caller(organization_id=created.organization_id, user_id=created.admin_user_id, ip_address="10.1.2.3")
    return World(container, container.files, caller)


def test_upload_records_the_file_its_proposal_and_an_audit_event(world: World) -> None:
    result = world.upload(GOOD_CSV)
    file = result.file
    assert (file.format, file.kind, file.status, file.scan_status) == ("csv", "csv", "uploaded", "clean")
    assert file.size_bytes == len(GOOD_CSV)
    import hashlib

    assert file.checksum == hashlib.sha256(GOOD_CSV).hexdigest()
    assert file.uploaded_by == world.caller.user_id and file.duplicate_of is None
    assert world.org_keys() == [file.storage_path]
    with world.services.storage.open(file.storage_path) as stored:
        assert stored.read() == GOOD_CSV
    details = get_file(world.services, world.caller, file.id)
    by_target = {m.target_field: m for m in details.mappings}
    assert by_target["amount"].source_column == "amount" and by_target["amount"].auto_detected
    assert by_target["amount"].data_type == "currency" and 0 < by_target["amount"].confidence <= 1
    assert by_target["transaction_date"].source_column == "date"
    assert "file.uploaded" in world.audit_actions()


def test_second_upload_of_the_same_bytes_is_flagged_as_duplicate(world: World) -> None:
    first = world.upload(GOOD_CSV).file
    second = world.upload(GOOD_CSV, filename="bank-again.csv").file
    assert second.duplicate_of == first.id and first.duplicate_of is None


@pytest.mark.parametrize("bad", refused_at_upload(), ids=lambda b: b.name)
def test_bad_files_are_refused_with_nothing_half_written(world: World, bad: BadFile) -> None:
    with pytest.raises(FileRejected) as caught:
        world.upload(bad.data, filename=bad.filename)
    assert caught.value.code == bad.code and len(caught.value.message) > 15
    assert world.org_keys() == [] and world.keys("quarantine") == []
    assert world.used_bytes() == 0
    assert world.audit_actions() == ["file.upload.refused"]


def test_infected_upload_is_quarantined_refused_and_audited(world: World) -> None:
    with pytest.raises(FileInfected) as caught:
        world.upload(b"date,amount\n" + EICAR + b"\n")
    assert caught.value.signature == "Eicar-Test-Signature"
    assert world.org_keys() == []
    quarantined = world.keys("quarantine")
    assert len(quarantined) == 1 and str(world.caller.organization_id) in quarantined[0]
    assert world.used_bytes() == 0
    assert "file.upload.infected" in world.audit_actions()


def test_scanner_down_or_limit_refuses_the_file(world: World) -> None:
    scanner = world.container.scanner
    scanner.available = False
    with pytest.raises(ServiceUnavailable):
        world.upload(GOOD_CSV)
    scanner.available = True
    scanner.stream_max_bytes = 10
    with pytest.raises(FileRejected) as caught:
        world.upload(GOOD_CSV)
    assert caught.value.code == "SCAN_LIMIT_EXCEEDED"
    assert world.org_keys() == [] and world.keys("quarantine") == [] and world.used_bytes() == 0


def test_file_above_max_file_size_is_refused_while_streaming(world: World) -> None:
    world.set_quota(max_file_size_mb=1)
    sent = []

    def body() -> Iterator[bytes]:
        for _ in range(10):
            sent.append(1)
            yield b"x" * (512 * 1024)

    with pytest.raises(FileTooLarge):
        world.upload(body())
    assert len(sent) == 3  # stopped at the first chunk past 1 MiB, not after reading everything
    assert world.org_keys() == [] and world.used_bytes() == 0


def test_storage_quota_is_reserved_under_the_row_lock(world: World) -> None:
    """Two uploads that each fit, but not both: exactly one is accepted."""
    world.set_quota(max_storage_gb=1)
    with world.services.database.unit_of_work(world.caller.organization_id) as uow:
        filler = world.upload(GOOD_CSV).file
        uow.files.update(dataclasses.replace(filler, size_bytes=GIB - 600))  # as if 1 GiB - 600 B were used
        uow.commit()
    data = GOOD_CSV + b"2024-01-04,1.00,NGN,123456789014,X\n" * 4  # ~350 bytes: one fits, two do not
    both_checked = threading.Barrier(2)
    outcomes: list[Any] = []

    def body(tag: bytes) -> Iterator[bytes]:
        both_checked.wait(5)  # both passed the early (unlocked) check before either stores
        yield data + tag

    def run(tag: bytes) -> None:
        try:
            outcomes.append(world.upload(body(tag)).file)
        except QuotaExceeded as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in (b"2024-01-05,1,NGN,1,A\n", b"2024-01-05,2,NGN,2,B\n")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(type(o).__name__ for o in outcomes) == ["QuotaExceeded", "ReconciliationFile"]
    assert world.used_bytes() <= GIB
    assert len(world.org_keys()) == 2  # the filler and the one accepted upload


def test_no_storage_left_is_refused_before_reading(world: World) -> None:
    world.set_quota(max_storage_gb=0)
    with pytest.raises(QuotaExceeded):
        world.upload(GOOD_CSV)


def test_eleventh_upload_in_an_hour_is_rate_limited(world: World) -> None:
    for i in range(10):
        world.upload(GOOD_CSV + str(i).encode() + b"\n")
    with pytest.raises(RateLimited) as caught:
        world.upload(GOOD_CSV)
    assert caught.value.retry_after_seconds > 0


def test_confirm_proposal_normalizes_to_parquet(world: World) -> None:
    file = world.upload(GOOD_CSV).file
    outcome = confirm_mapping(world.services, world.caller, file.id, None)
    assert outcome.file.status == "normalized" and outcome.file.row_count == 2
    assert outcome.normalized is not None and "/processed/files/" in outcome.normalized.storage_path
    with world.services.storage.open(outcome.normalized.storage_path) as stored:
        frame = read_parquet_bytes(stored.read())
    assert frame["amount_minor"].to_list() == [125050, 29]
    assert frame["reference"].to_list() == ["123456789012", "123456789013"]
    assert world.services.storage.exists(file.storage_path)  # the original is kept


def test_override_with_unknown_key_is_refused_field_by_field(world: World) -> None:
    file = world.upload(GOOD_CSV).file
    rules = {**EXPLICIT_MAPPING, "fields": {**EXPLICIT_MAPPING["fields"], "amount": {"column": "amount", "colour": 1}}}
    with pytest.raises(ValidationFailed) as caught:
        confirm_mapping(world.services, world.caller, file.id, rules)
    assert caught.value.details[0].field == "transformation_rules.fields.amount"
    assert "colour" in caught.value.details[0].message
    assert get_file(world.services, world.caller, file.id).file.status == "uploaded"


@pytest.mark.parametrize("data", [RAGGED_CSV, UNPARSEABLE_CSV], ids=["ragged", "unparseable_values"])
def test_row_errors_end_in_status_error_with_a_report_and_no_parquet(world: World, data: bytes) -> None:
    file = world.upload(data).file
    with pytest.raises(NormalizationFailed) as caught:
        confirm_mapping(world.services, world.caller, file.id, EXPLICIT_MAPPING)
    assert caught.value.details and "rows could not be normalized" in caught.value.message
    details = get_file(world.services, world.caller, file.id)
    assert details.file.status == "error" and details.file.error_message
    errors = details.file.error_report["errors"]
    assert errors and {"row_number", "column", "value", "reason"} <= set(errors[0])
    assert details.normalized is None
    assert world.org_keys() == [file.storage_path]  # the original only: no Parquet
    outcome = confirm_mapping(world.services, world.caller, file.id, EXPLICIT_MAPPING, allow_row_errors=True)
    assert outcome.file.status == "normalized" and outcome.file.row_count == 2
    assert outcome.file.error_report["errors"]


def test_a_failed_remap_leaves_the_current_version_and_writes_nothing(world: World) -> None:
    file = world.upload(UNPARSEABLE_CSV).file
    first = confirm_mapping(world.services, world.caller, file.id, EXPLICIT_MAPPING, allow_row_errors=True)
    keys = world.org_keys()
    assert len(keys) == 2
    with pytest.raises(NormalizationFailed) as caught:
        confirm_mapping(world.services, world.caller, file.id, EXPLICIT_MAPPING)
    assert caught.value.details and "rows could not be normalized" in caught.value.message
    assert world.org_keys() == keys  # version 1's Parquet kept, no object of the failed version
    details = get_file(world.services, world.caller, file.id)
    assert details.normalized == first.normalized and [v.version for v in details.versions] == [1]
    assert details.file == first.file  # status, row count, report: as they were
    assert "file.remap_failed" in world.audit_actions()


def test_normalize_file_job_is_idempotent_and_needs_a_confirmed_mapping(world: World) -> None:
    file = world.upload(GOOD_CSV).file
    with pytest.raises(FileStateConflict):
        normalize_file_job(world.services, world.caller.organization_id, file.id)
    confirm_mapping(world.services, world.caller, file.id, None)
    first = normalize_file_job(world.services, world.caller.organization_id, file.id)
    again = normalize_file_job(world.services, world.caller.organization_id, file.id)
    assert first == again and first.row_count == 2


def test_delete_removes_row_and_objects_and_is_refused_while_processing(world: World) -> None:
    file = world.upload(GOOD_CSV).file
    confirm_mapping(world.services, world.caller, file.id, None)

    @dataclass
    class Job:
        id: uuid.UUID
        organization_id: uuid.UUID
        status: str

    job = Job(uuid.uuid4(), world.caller.organization_id, "processing")
    with world.services.database.unit_of_work(world.caller.organization_id) as uow:
        uow.put("reconciliation_jobs", job.id, job)
        uow.files.update(dataclasses.replace(uow.files.get(file.id), job_id=job.id))
        uow.commit()
    with pytest.raises(FileInProcessingJob):
        delete_file(world.services, world.caller, file.id)
    assert len(world.org_keys()) == 2
    with world.services.database.unit_of_work(world.caller.organization_id) as uow:
        uow.put("reconciliation_jobs", job.id, dataclasses.replace(job, status="completed"))
        uow.commit()
    delete_file(world.services, world.caller, file.id)
    assert world.org_keys() == [] and world.used_bytes() == 0
    assert "file.deleted" in world.audit_actions()


def test_another_organization_cannot_see_or_touch_the_file(world: World) -> None:
    file = world.upload(GOOD_CSV).file
    other, _ = signup(world.services.database)
    stranger = Caller(organization_id=other.organization_id, user_id=other.admin_user_id)
    from reckai.application.errors import NotFound

    for action in (get_file, download_file_url, delete_file):
        with pytest.raises(NotFound):
            action(world.services, stranger, file.id)
    with pytest.raises(NotFound):
        confirm_mapping(world.services, stranger, file.id, None)
    assert world.org_keys() == [file.storage_path]


def test_download_link_is_signed_and_expires_in_an_hour(world: World) -> None:
    file = world.upload(GOOD_CSV).file
    link = download_file_url(world.services, world.caller, file.id)
    token = link.url.rsplit("/", 1)[1]
    grant = world.services.storage.verify_download_token(token)  # type: ignore[attr-defined]
    assert grant.key == file.storage_path and grant.download_name == "bank.csv"
    assert 3590 <= (grant.expires_at - world.services.now()).total_seconds() <= 3600


def test_form_validation_names_each_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_form("../../etc/", "ledger", "not-a-uuid")
    assert {d.field for d in caught.value.details} == {"file", "file_type", "job_id"}
    assert validate_form("C:\\exports\\bank statement.csv", "bank", None).original_filename == "bank statement.csv"


def test_file_the_detector_cannot_read_alone_is_kept_without_a_proposal(world: World) -> None:
    file = world.upload(b"1,2,3\n4,5,6\n7,8,9\n", filename="no-header.csv").file
    assert file.status == "uploaded" and "header_row" in file.error_report["proposal_error"]
    assert get_file(world.services, world.caller, file.id).mappings == []
    with pytest.raises(ValidationFailed) as caught:
        confirm_mapping(world.services, world.caller, file.id, None)
    assert caught.value.details[0].field == "transformation_rules"
    assert world.org_keys() == [file.storage_path]


def _fresh_world() -> World:
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    created, _ = signup(container.database)
    caller = Caller(organization_id=created.organization_id, user_id=created.admin_user_id)
    return World(container, container.files, caller)


_PIECES = [b"date,amount,currency\n", b"2024-01-02,1.00,NGN\n", b"\x00", b"PK\x03\x04", b"<a>", b";", b"|",
           b"\xff\xfe", b"\xef\xbb\xbf", b"\r\n", b"\"", b"12abc", EICAR]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.sampled_from(_PIECES) | st.binary(max_size=40), max_size=12),
       name=st.sampled_from(["a.csv", "a.xlsx", "a.xml", "a.txt", "a"]),
       chunk=st.integers(min_value=1, max_value=64))
def test_any_upload_either_is_whole_or_leaves_nothing(pieces: list[bytes], name: str, chunk: int) -> None:
    """Whatever the bytes, an upload ends with a row and its object, or with neither."""
    world = _fresh_world()
    data = b"".join(pieces)
    from reckai.application.errors import ApplicationError
    from reckai.application.files import check_upload_allowed

    limits = check_upload_allowed(world.services, world.caller, count_rate_limit=False)
    try:
        result = upload_file(world.services, world.caller, validate_form(name, "card", None),
                             [data[i:i + chunk] for i in range(0, len(data), chunk)], limits)
    except ApplicationError:
        assert world.org_keys() == [] and world.used_bytes() == 0
    else:
        assert world.org_keys() == [result.file.storage_path] and world.used_bytes() == len(data)
        with world.services.storage.open(result.file.storage_path) as stored:
            assert stored.read() == data


def test_a_statement_held_by_an_earlier_file_is_flagged_and_its_rows_still_load(world: World) -> None:
    statement = (Path(__file__).resolve().parents[1] / "fixtures_data" / "statement.camt053.xml").read_bytes()
    first = world.upload(statement, filename="camt-1.xml").file
    confirm_mapping(world.services, world.caller, first.id, None)
    second = world.upload(statement + b"\n", filename="camt-again.xml").file
    normalized = confirm_mapping(world.services, world.caller, second.id, None)
    assert normalized.normalized is not None and normalized.normalized.row_count > 0
    shown = get_file(world.services, world.caller, second.id).file
    repeated = [w for w in shown.error_report["warnings"] if w["kind"] == "duplicate_statement"]
    assert len(repeated) == 1 and "camt-1.xml" in repeated[0]["message"] and str(first.id) in repeated[0]["message"]
    first_shown = get_file(world.services, world.caller, first.id).file
    assert [w for w in first_shown.error_report["warnings"] if w["kind"] == "duplicate_statement"] == []
