"""Contract of the data export repository and the export reader (application/ports/privacy.py),
run over the in-memory adapter (tests/unit/test_privacy_repositories.py) and PostgreSQL
(tests/integration/test_privacy_repositories_postgres.py), so the fake cannot drift."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from reckai.application.ports.privacy import ORGANIZATION_DATASETS, SECRET_FIELDS, USER_DATASETS
from reckai.application.ports.repositories import DuplicateEntity, TenantIsolationViolation
from reckai.domain.ingestion.storage_keys import export_key
from reckai.domain.privacy.exports import RETENTION_DAYS, DataExport, ExportScope, ExportStatus

Tenants = tuple[Any, tuple[uuid.UUID, uuid.UUID], tuple[uuid.UUID, uuid.UUID]]
NOW = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)


def _export(organization_id: uuid.UUID, user_id: uuid.UUID, scope: ExportScope = ExportScope.USER) -> DataExport:
    export_id = uuid.uuid4()
    return DataExport(id=export_id, organization_id=organization_id, scope=scope,
                      subject_user_id=user_id if scope is ExportScope.USER else None, requested_by=user_id,
                      storage_path=export_key(organization_id, export_id, NOW.date()), created_at=NOW,
                      updated_at=NOW)


def check_round_trip_lifecycle_and_isolation(tenants: Tenants) -> None:
    database, (org_a, user_a), (org_b, user_b) = tenants
    export = _export(org_a, user_a)
    with database.unit_of_work(org_a) as uow:
        assert uow.data_exports.add(export) == export
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        locked = uow.data_exports.get_for_update(export.id)
        assert locked == export
        running = locked.started(NOW)
        uow.data_exports.update(running)
        done = running.completed(size_bytes=10, sha256="b" * 64, now=NOW)
        uow.data_exports.update(done)
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        back = uow.data_exports.get(export.id)
    assert back == done and back.status is ExportStatus.COMPLETED and back.expires_at is not None
    with database.unit_of_work(org_b) as uow:
        assert uow.data_exports.get(export.id) is None
        with pytest.raises(TenantIsolationViolation):
            uow.data_exports.add(_export(org_a, user_b))


def check_storage_path_is_unique(tenants: Tenants) -> None:
    database, (org_a, user_a), _ = tenants
    first = _export(org_a, user_a, ExportScope.ORGANIZATION)
    with database.unit_of_work(org_a) as uow:
        uow.data_exports.add(first)
        uow.commit()
    with database.unit_of_work(org_a) as uow, pytest.raises(DuplicateEntity):
        uow.data_exports.add(dataclasses.replace(first, id=uuid.uuid4()))


def check_the_reader_streams_the_tenants_rows_without_secrets(tenants: Tenants) -> None:
    database, (org_a, user_a), (_, user_b) = tenants
    with database.unit_of_work(org_a) as uow:
        for dataset in ORGANIZATION_DATASETS:
            for row in uow.export_data.rows(dataset, batch_size=2):
                assert not SECRET_FIELDS & set(row), dataset
                owner = row.get("id") if dataset == "organization" else row.get("organization_id")
                assert owner in (None, org_a), dataset
        assert [row["id"] for row in uow.export_data.rows("organization")] == [org_a]
        users = list(uow.export_data.rows("users"))
        assert [row["id"] for row in users] == [user_a] and "email" in users[0] and "password_hash" not in users[0]
        assert [row["id"] for row in uow.export_data.rows("profile", user_id=user_a)] == [user_a]
        assert list(uow.export_data.rows("profile", user_id=user_b)) == []  # another tenant's person
        for dataset in USER_DATASETS:
            list(uow.export_data.rows(dataset, user_id=user_a))
        with pytest.raises(KeyError):
            list(uow.export_data.rows("audit_logs"))


def check_expired_lists_completed_exports_past_their_expiry(tenants: Tenants) -> None:
    database, (org_a, user_a), (org_b, _) = tenants
    exports = [_export(org_a, user_a) for _ in range(4)]
    with database.unit_of_work(org_a) as uow:
        for export in exports:
            uow.data_exports.add(export)
        for offset, export in zip((3, 1, 2), exports[:3], strict=True):  # completed at NOW - offset days
            done = export.started(NOW).completed(size_bytes=1, sha256="c" * 64,
                                                 now=NOW - dt.timedelta(days=RETENTION_DAYS + offset))
            uow.data_exports.update(done)
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        due = uow.data_exports.expired(NOW, 10)
        assert [e.id for e in due] == [exports[0].id, exports[2].id, exports[1].id]  # oldest expiry first
        assert [e.id for e in uow.data_exports.expired(NOW, 1)] == [exports[0].id]
        assert uow.data_exports.expired(NOW - dt.timedelta(days=5), 10) == []
        uow.data_exports.update(due[0].expired(NOW))
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert exports[0].id not in {e.id for e in uow.data_exports.expired(NOW, 10)}
        assert uow.data_exports.get(exports[0].id).status is ExportStatus.EXPIRED
    with database.unit_of_work(org_b) as uow:
        assert uow.data_exports.expired(NOW, 10) == []



def check_unfinished_and_the_latest_completed_organization_export(tenants: Tenants) -> None:
    """What offboarding reads: the exports still pending or running, and the organization export
    completed last that is still completed (a person's, an expired or a failed one does not count)."""
    database, (org_a, user_a), (org_b, _) = tenants

    def made(scope: ExportScope, status: ExportStatus, completed_minutes: int | None = None) -> DataExport:
        export = _export(org_a, user_a, scope)
        at = NOW + dt.timedelta(minutes=completed_minutes or 0)
        if status is ExportStatus.PENDING:
            return export
        running = export.started(NOW)
        if status is ExportStatus.RUNNING:
            return running
        if status is ExportStatus.FAILED:
            return running.failed("boom", NOW)
        done = running.completed(size_bytes=1, sha256="c" * 64, now=at)
        return done.expired(at + dt.timedelta(days=RETENTION_DAYS)) if status is ExportStatus.EXPIRED else done

    exports = {
        "pending": made(ExportScope.USER, ExportStatus.PENDING),
        "running": made(ExportScope.ORGANIZATION, ExportStatus.RUNNING),
        "failed": made(ExportScope.ORGANIZATION, ExportStatus.FAILED),
        "older": made(ExportScope.ORGANIZATION, ExportStatus.COMPLETED, 1),
        "newer": made(ExportScope.ORGANIZATION, ExportStatus.COMPLETED, 5),
        "expired": made(ExportScope.ORGANIZATION, ExportStatus.EXPIRED, 9),
        "person": made(ExportScope.USER, ExportStatus.COMPLETED, 10),
    }
    with database.unit_of_work(org_a) as uow:
        assert uow.data_exports.latest_completed_organization_export() is None
        for export in exports.values():
            uow.data_exports.add(export)
        uow.commit()
    with database.unit_of_work(org_a) as uow:
        assert {e.id for e in uow.data_exports.unfinished()} == {exports["pending"].id, exports["running"].id}
        latest = uow.data_exports.latest_completed_organization_export()
    assert latest is not None and latest.id == exports["newer"].id
    with database.unit_of_work(org_b) as uow:
        assert uow.data_exports.unfinished() == [] and uow.data_exports.latest_completed_organization_export() is None


CHECKS: list[Callable[[Tenants], None]] = [
    check_unfinished_and_the_latest_completed_organization_export,
    check_round_trip_lifecycle_and_isolation,
    check_storage_path_is_unique,
    check_the_reader_streams_the_tenants_rows_without_secrets,
    check_expired_lists_completed_exports_past_their_expiry,
]
