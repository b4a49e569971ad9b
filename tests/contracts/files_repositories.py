"""The file repositories' contract (files, data_mappings, normalized_files), over every adapter.

Not collected by itself: tests/unit/test_files_repositories_memory.py and
tests/integration/test_files_repositories_postgres.py import these tests and provide the
`database` fixture and an `add_job(database, organization_id, user_id, status)` fixture.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from reckai.application.ports.files import (
    DataMapping,
    EarlierStatement,
    FileFilter,
    NormalizedFile,
    ReconciliationFile,
)
from reckai.application.ports.reconciliations import JobFileLink
from reckai.application.ports.repositories import DuplicateEntity, EntityNotFound, TenantIsolationViolation
from reckai.domain.ingestion.statements import StatementIdentity
from tests.contracts.identity_repositories import signup


def new_file(organization_id: uuid.UUID, user_id: uuid.UUID, *, checksum: str | None = None,
             size_bytes: int = 100, job_id: uuid.UUID | None = None) -> ReconciliationFile:
    file_id = uuid.uuid4()
    return ReconciliationFile(
        id=file_id, organization_id=organization_id, name="bank.csv", original_filename="bank.csv",
        file_type="bank", format="csv", kind="csv", size_bytes=size_bytes,
        storage_path=f"organizations/{organization_id}/uploads/2026/01/{file_id}.csv", status="uploaded",
        uploaded_by=user_id, checksum=checksum or uuid.uuid4().hex * 2, job_id=job_id,
    )


def new_mapping(file: ReconciliationFile, target: str, confidence: str | None = "0.95") -> DataMapping:
    return DataMapping(
        id=uuid.uuid4(), organization_id=file.organization_id, file_id=file.id, source_column=target,
        target_field=target, data_type="string", auto_detected=confidence is not None,
        transformation_rules={"parse": {"format": "csv"}, "field": {"column": target}},
        confidence=Decimal(confidence) if confidence else None, created_by=file.uploaded_by,
    )


@pytest.fixture
def tenant(database: Any) -> tuple[uuid.UUID, uuid.UUID]:
    created, _ = signup(database)
    return created.organization_id, created.admin_user_id


def test_add_get_update_round_trip(database: Any, tenant: tuple[uuid.UUID, uuid.UUID]) -> None:
    org, user = tenant
    file = new_file(org, user)
    with database.unit_of_work(org) as uow:
        stored = uow.files.add(file)
        uow.commit()
    assert stored.uploaded_at is not None and stored.uploaded_at.tzinfo is not None
    with database.unit_of_work(org) as uow:
        got = uow.files.get(file.id)
        assert got == stored
        changed = dataclasses.replace(got, status="error", error_message="bad", scan_status="not_scanned",
                                      error_report={"errors": [{"row_number": 1, "reason": "x"}]}, row_count=3)
        uow.files.update(changed)
        uow.commit()
    with database.unit_of_work(org) as uow:
        assert uow.files.get(file.id) == changed


def test_other_tenant_sees_nothing_and_cannot_write(database: Any, tenant: tuple[uuid.UUID, uuid.UUID]) -> None:
    org, user = tenant
    other, _ = signup(database)
    file = new_file(org, user)
    with database.unit_of_work(org) as uow:
        uow.files.add(file)
        uow.commit()
    with database.unit_of_work(other.organization_id) as uow:
        assert uow.files.get(file.id) is None
        assert uow.files.total_size_bytes() == 0
        assert uow.files.first_with_checksum(file.checksum) is None
        assert uow.files.delete(file.id) is False
        with pytest.raises(TenantIsolationViolation):
            uow.files.add(new_file(org, user))
        with pytest.raises(EntityNotFound):
            uow.files.update(dataclasses.replace(file, organization_id=other.organization_id))


def test_rollback_discards(database: Any, tenant: tuple[uuid.UUID, uuid.UUID]) -> None:
    org, user = tenant
    file = new_file(org, user)
    with database.unit_of_work(org) as uow:
        uow.files.add(file)
    with database.unit_of_work(org) as uow:
        assert uow.files.get(file.id) is None


def test_checksum_lookup_and_total_size(database: Any, tenant: tuple[uuid.UUID, uuid.UUID]) -> None:
    org, user = tenant
    first = new_file(org, user, checksum="a" * 64, size_bytes=10)
    with database.unit_of_work(org) as uow:
        uow.files.add(first)
        uow.commit()
    second = new_file(org, user, checksum="a" * 64, size_bytes=32)
    with database.unit_of_work(org) as uow:
        uow.files.add(second)
        uow.commit()
    with database.unit_of_work(org) as uow:
        assert uow.files.first_with_checksum("a" * 64) == first.id
        assert uow.files.first_with_checksum("a" * 64, excluding=first.id) == second.id
        assert uow.files.first_with_checksum("b" * 64) is None
        assert uow.files.total_size_bytes() == 42


def test_list_filters_and_pages_newest_first(database: Any, tenant: tuple[uuid.UUID, uuid.UUID]) -> None:
    org, user = tenant
    other, _ = signup(database)
    base = dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC)
    made = []
    for i, (file_type, kind, fmt, status) in enumerate([
            ("bank", "csv", "csv", "uploaded"), ("switch", "csv", "csv", "normalized"),
            ("bank", "xlsx", "excel", "processed"), ("bank", "mt940", "txt", "normalized")]):
        made.append(dataclasses.replace(new_file(org, user), file_type=file_type, kind=kind, format=fmt,
                                        status=status, uploaded_at=base + dt.timedelta(days=i)))
    with database.unit_of_work(org) as uow:
        for file in made:
            uow.files.add(file)
        uow.commit()
    with database.unit_of_work(other.organization_id) as uow:
        uow.files.add(new_file(other.organization_id, other.admin_user_id))
        uow.commit()
    with database.unit_of_work(org) as uow:
        page, total = uow.files.list(FileFilter(), limit=3, offset=0)
        assert total == 4 and [f.id for f in page] == [made[3].id, made[2].id, made[1].id]
        rest, _ = uow.files.list(FileFilter(), limit=3, offset=3)
        assert [f.id for f in rest] == [made[0].id]
        assert rest[0] == made[0]
        banks, total = uow.files.list(FileFilter(file_type="bank", status="normalized"), limit=10, offset=0)
        assert total == 1 and [f.id for f in banks] == [made[3].id]
        assert [f.id for f in uow.files.list(FileFilter(kind="xlsx"), limit=10, offset=0)[0]] == [made[2].id]
        assert [f.id for f in uow.files.list(FileFilter(format="csv"), limit=10, offset=0)[0]] == [
            made[1].id, made[0].id]
        window = FileFilter(uploaded_from=base + dt.timedelta(days=1), uploaded_to=base + dt.timedelta(days=3))
        assert [f.id for f in uow.files.list(window, limit=10, offset=0)[0]] == [made[2].id, made[1].id]
        assert uow.files.list(FileFilter(status="error"), limit=10, offset=0) == ([], 0)


def test_mappings_replace_and_cascade_on_delete(database: Any, tenant: tuple[uuid.UUID, uuid.UUID]) -> None:
    org, user = tenant
    file = new_file(org, user)
    with database.unit_of_work(org) as uow:
        uow.files.add(file)
        uow.data_mappings.replace_for_file(file.id, [new_mapping(file, "reference"), new_mapping(file, "amount")])
        uow.normalized_files.put(NormalizedFile(id=uuid.uuid4(), file_id=file.id, organization_id=org,
                                                storage_path="x/normalized.parquet", row_count=5, checksum="c" * 64))
        uow.commit()
    with database.unit_of_work(org) as uow:
        rows = uow.data_mappings.list_for_file(file.id)
        assert [m.target_field for m in rows] == ["amount", "reference"]
        assert rows[0].confidence == Decimal("0.95") and rows[0].auto_detected is True
        assert rows[0].transformation_rules == {"parse": {"format": "csv"}, "field": {"column": "amount"}}
        uow.data_mappings.replace_for_file(file.id, [new_mapping(file, "currency", confidence=None)])
        uow.commit()
    with database.unit_of_work(org) as uow:
        rows = uow.data_mappings.list_for_file(file.id)
        assert [(m.target_field, m.auto_detected, m.confidence) for m in rows] == [("currency", False, None)]
        assert uow.files.delete(file.id) is True
        uow.commit()
    with database.unit_of_work(org) as uow:
        assert uow.data_mappings.list_for_file(file.id) == []
        assert uow.normalized_files.get_for_file(file.id) is None


def _version(file: ReconciliationFile, version: int, row_count: int, **extra: Any) -> NormalizedFile:
    return NormalizedFile(id=uuid.uuid4(), file_id=file.id, organization_id=file.organization_id,
                          storage_path=f"p{version}", row_count=row_count, checksum=None, version=version, **extra)


def test_normalized_versions_are_kept_and_the_highest_is_current(database: Any,
                                                                  tenant: tuple[uuid.UUID, uuid.UUID]) -> None:
    org, user = tenant
    file = new_file(org, user)
    with database.unit_of_work(org) as uow:
        uow.files.add(file)
        first = uow.normalized_files.put(_version(file, 1, 1, mapping={"fields": {"amount": {"column": "a"}}},
                                                  created_by=user))
        second = uow.normalized_files.put(_version(file, 2, 7, mapping={"fields": {"amount": {"column": "b"}}}))
        uow.commit()
    with database.unit_of_work(org) as uow:
        assert uow.normalized_files.get_for_file(file.id) == second
        assert uow.normalized_files.get_version(file.id, 1) == first
        assert first.mapping == {"fields": {"amount": {"column": "a"}}} and first.created_by == user
        assert first.created_at is not None
        assert list(uow.normalized_files.versions(file.id)) == [first, second]
        assert uow.normalized_files.get_version(file.id, 3) is None
        assert uow.normalized_files.delete_for_file(file.id) == 2
        assert uow.normalized_files.get_for_file(file.id) is None
        with pytest.raises(EntityNotFound):
            uow.normalized_files.put(NormalizedFile(id=uuid.uuid4(), file_id=uuid.uuid4(), organization_id=org,
                                                    storage_path="p", row_count=0, checksum=None))


def test_a_version_number_is_stored_once(database: Any, tenant: tuple[uuid.UUID, uuid.UUID]) -> None:
    org, user = tenant
    file = new_file(org, user)
    with database.unit_of_work(org) as uow:
        uow.files.add(file)
        kept = uow.normalized_files.put(_version(file, 1, 3))
        with pytest.raises(DuplicateEntity):
            uow.normalized_files.put(_version(file, 1, 9))
        uow.commit()  # the refused write left the unit of work usable
    with database.unit_of_work(org) as uow:
        assert list(uow.normalized_files.versions(file.id)) == [kept]


def test_a_job_reads_the_version_its_link_recorded(database: Any, tenant: tuple[uuid.UUID, uuid.UUID],
                                                   add_job: Any) -> None:
    org, user = tenant
    file = new_file(org, user)
    with database.unit_of_work(org) as uow:
        uow.files.add(file)
        uow.commit()
    old_job = add_job(database, org, user, "completed")
    pending_job = add_job(database, org, user, "pending")
    other_job = add_job(database, org, user, "completed")
    with database.unit_of_work(org) as uow:
        first = uow.normalized_files.put(_version(file, 1, 3))
        uow.reconciliation_jobs.link_files(old_job, [JobFileLink(file.id, "left", 1)])
        uow.reconciliation_jobs.link_files(pending_job, [JobFileLink(file.id, "left")])
        second = uow.normalized_files.put(_version(file, 2, 4))
        uow.commit()
    with database.unit_of_work(org) as uow:
        assert uow.normalized_files.for_job(old_job, file.id) == first
        # a job that does not link the file (a stream run's carried row): the newest recorded version
        assert uow.normalized_files.for_job(other_job, file.id) == first
        assert [link.file_version for link in uow.reconciliation_jobs.linked_files(pending_job)] == [None]
        uow.reconciliation_jobs.record_file_version(pending_job, file.id, 2)
        uow.commit()
    with database.unit_of_work(org) as uow:
        assert uow.normalized_files.for_job(pending_job, file.id) == second
        assert uow.normalized_files.for_job(old_job, file.id) == first
        assert [link.file_version for link in uow.reconciliation_jobs.linked_files(pending_job)] == [2]
        with pytest.raises(EntityNotFound):
            uow.reconciliation_jobs.record_file_version(other_job, file.id, 2)


def test_mark_processed_changes_the_status_only(database: Any, tenant: tuple[uuid.UUID, uuid.UUID]) -> None:
    org, user = tenant
    file = dataclasses.replace(new_file(org, user), status="normalized", row_count=5, error_report={"a": 1})
    at = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
    with database.unit_of_work(org) as uow:
        uow.files.add(file)
        uow.commit()
    with database.unit_of_work(org) as uow:
        locked = uow.files.get_for_update(file.id)
        assert locked is not None and locked.status == "normalized"
        uow.files.mark_processed(file.id, at)
        uow.commit()
    with database.unit_of_work(org) as uow:
        stored = uow.files.get(file.id)
        assert stored is not None
        assert (stored.status, stored.processed_at, stored.row_count, stored.error_report) == (
            "processed", at, 5, {"a": 1})
        assert uow.files.get_for_update(uuid.uuid4()) is None


def test_file_statements_name_the_earliest_other_file_of_the_organization(
        database: Any, tenant: tuple[uuid.UUID, uuid.UUID]) -> None:
    org, user = tenant
    created, _ = signup(database)
    other_org, other_user = created.organization_id, created.admin_user_id
    first, second, third, foreign = new_file(org, user), new_file(org, user), new_file(org, user), \
        new_file(other_org, other_user)
    same = StatementIdentity(key="mt940|acct|ref|1/1|2026-01-01|10", label="s", line_number=2)
    with database.unit_of_work(org) as uow:
        for file in (first, second, third):
            uow.files.add(file)
        uow.file_statements.replace_for_file(first.id, [same, same])  # given twice in one file: one row
        uow.commit()
    with database.unit_of_work(other_org) as uow:
        uow.files.add(foreign)
        uow.file_statements.replace_for_file(foreign.id, [same])
        assert set(uow.file_statements.earlier([same.key], foreign.id)) == set()  # not org's file
        uow.commit()
    with database.unit_of_work(org) as uow:
        uow.file_statements.replace_for_file(second.id, [same])
        uow.commit()
    with database.unit_of_work(org) as uow:
        assert uow.file_statements.earlier([same.key, "other"], third.id) == {
            same.key: EarlierStatement(same.key, first.id, "bank.csv")}
        assert uow.file_statements.earlier([same.key], first.id)[same.key].file_id == second.id
        assert uow.file_statements.earlier([], third.id) == {}
        uow.file_statements.replace_for_file(first.id, [])  # normalized again without the statement
        assert uow.file_statements.earlier([same.key], third.id)[same.key].file_id == second.id
        assert uow.files.delete(second.id)
        assert uow.file_statements.earlier([same.key], third.id) == {}


def test_in_processing_job(database: Any, tenant: tuple[uuid.UUID, uuid.UUID], add_job: Any) -> None:
    org, user = tenant
    processing = add_job(database, org, user, "processing")
    done = add_job(database, org, user, "completed")
    own = new_file(org, user, job_id=processing)
    idle = new_file(org, user, job_id=done)
    loose = new_file(org, user)
    with database.unit_of_work(org) as uow:
        for f in (own, idle, loose):
            uow.files.add(f)
        uow.commit()
    with database.unit_of_work(org) as uow:
        assert uow.files.job_exists(processing) and not uow.files.job_exists(uuid.uuid4())
        assert uow.files.in_processing_job(own.id) is True
        assert uow.files.in_processing_job(idle.id) is False
        assert uow.files.in_processing_job(loose.id) is False


def test_claim_is_exclusive_per_file_until_the_transaction_ends(database: Any,
                                                                tenant: tuple[uuid.UUID, uuid.UUID]) -> None:
    org, _ = tenant
    first_id, second_id = uuid.uuid4(), uuid.uuid4()
    with database.unit_of_work(org) as holder:
        assert holder.files.try_claim(first_id)
        with database.unit_of_work(org) as other:
            assert not other.files.try_claim(first_id)  # held elsewhere: refused at once, no wait
            assert other.files.try_claim(second_id)  # per file
        with database.unit_of_work(org) as other:
            assert other.files.try_claim(second_id)  # released with the unit of work that held it
        holder.commit()  # ends the holder's transaction, and the claim with it
        with database.unit_of_work(org) as other:
            assert other.files.try_claim(first_id)
