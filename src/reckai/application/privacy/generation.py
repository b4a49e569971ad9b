"""Generating a data export (the `generate_data_export` job, low queue; docs/privacy.md, "Export").

One attempt: lock the row and mark it `running`; build the zip in a temporary file (archive.py):
the datasets read through the unit of work's reader, one row at a time; the audit rows through the
audit log (the organization's chain up to its head when the export began, or the person's actions);
then the stored objects the rows name, copied in chunks; `README.md` and `manifest.json` last.
Store the zip once at the key fixed at creation, then, under the row lock again, record its size
and SHA-256 and audit `privacy.export.generated`. Any failure marks the export `failed` with a
message, audited as `privacy.export.failed`. A message for an export that is no longer pending or
running does nothing (redelivery is harmless).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any

from reckai.application.context import Caller, Outcome
from reckai.application.ports.audit import AuditQuery
from reckai.application.ports.jobs import JobDelivery
from reckai.application.ports.privacy import ORGANIZATION_DATASETS, USER_DATASETS
from reckai.application.ports.storage import StorageError, StorageObjectMissing
from reckai.application.privacy.archive import AUDIT_CHAIN_PATH, ArchiveWriter, readme
from reckai.application.privacy.services import PrivacyServices, export_event
from reckai.domain.audit.events import GENESIS_HASH, AuditRecord
from reckai.domain.ingestion.storage_keys import organization_prefix, processed_prefix
from reckai.domain.privacy.exports import (
    FORMAT_NAME,
    FORMAT_VERSION,
    README_NAME,
    DataExport,
    ExportScope,
    ExportStateError,
    ExportStatus,
)

_log = logging.getLogger("reckai.privacy")
AUDIT_PAGE = 500


class ExportFailure(Exception):
    """A failure whose message is meant for the person who asked for the export."""


def generate_data_export_job(services: PrivacyServices, delivery: JobDelivery) -> None:
    if delivery.organization_id is None:
        raise ValueError("a data export message must name its organization")
    generate_export(services, delivery.organization_id, uuid.UUID(str(delivery.payload["export_id"])))


def generate_export(services: PrivacyServices, organization_id: uuid.UUID, export_id: uuid.UUID) -> DataExport | None:
    caller = Caller.system(organization_id)
    with services.database.unit_of_work(organization_id) as uow:
        export = uow.data_exports.get_for_update(export_id)
        if export is None or export.status not in (ExportStatus.PENDING, ExportStatus.RUNNING):
            return export
        running = export.started(services.now())
        uow.data_exports.update(running)
        uow.commit()
    try:
        with tempfile.TemporaryFile(dir=services.temp_dir) as spool:
            summary = write_archive(services, running, spool)
            spool.seek(0)
            try:
                stored = services.storage.put(running.storage_path, spool, content_type="application/zip")
            except StorageError as exc:
                raise ExportFailure(f"the export could not be stored ({type(exc).__name__}); request it again") from exc
            if stored.sha256 is None:
                raise ExportFailure("the storage did not report the stored zip's SHA-256; request it again")
            sha256 = stored.sha256
    except Exception as exc:  # noqa: BLE001 - any failure ends the attempt as a recorded `failed` export
        message = str(exc) if isinstance(exc, ExportFailure) else (
            f"the export could not be generated ({type(exc).__name__}); request it again, and report it with the "
            "export id if it happens again")
        _log.exception("data export failed", extra={"action": "privacy.export.failed", "resource_id": str(export_id)})
        return _fail(services, caller, export_id, message)
    with services.database.unit_of_work(organization_id) as uow:
        current = uow.data_exports.get_for_update(export_id)
        if current is None or current.status is not ExportStatus.RUNNING:
            return current
        completed = current.completed(size_bytes=stored.size_bytes, sha256=sha256, now=services.now())
        uow.data_exports.update(completed)
        services.audit_log.record(uow, export_event(
            caller, "privacy.export.generated", export_id, outcome=Outcome.DONE, scope=completed.scope.value,
            subject_user_id=str(completed.subject_user_id) if completed.subject_user_id else None,
            requested_by=str(completed.requested_by), size_bytes=completed.size_bytes, sha256=completed.sha256,
            **summary))
        uow.commit()
    return completed


def _fail(services: PrivacyServices, caller: Caller, export_id: uuid.UUID, message: str) -> DataExport | None:
    with services.database.unit_of_work(caller.organization_id) as uow:
        current = uow.data_exports.get_for_update(export_id)
        if current is None:
            return None
        try:
            failed = current.failed(message, services.now())
        except ExportStateError:
            return current
        uow.data_exports.update(failed)
        services.audit_log.record(uow, export_event(caller, "privacy.export.failed", export_id,
                                                    outcome=Outcome.REFUSED, scope=current.scope.value,
                                                    error=message))
        uow.commit()
    return failed


def write_archive(services: PrivacyServices, export: DataExport, spool: Any) -> dict[str, Any]:
    """The whole zip into `spool` (a writable, seekable binary file); answers the audit summary."""
    generated_at = services.now()
    manifest: dict[str, Any] = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "scope": export.scope.value,
        "export_id": export.id, "organization_id": export.organization_id,
        "subject_user_id": export.subject_user_id, "schema_version": services.schema_version(),
        "generated_at": generated_at, "requested_by": export.requested_by, "approval_id": export.approval_id,
        "generated_by": "generate_data_export job",
    }
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        writer = ArchiveWriter(archive)
        if export.scope is ExportScope.USER:
            assert export.subject_user_id is not None
            _user_data(services, export, writer)
        else:
            manifest.update(_organization_data(services, export, writer))
        writer.text(README_NAME, readme())
        writer.manifest(manifest)
        files = writer.files
    return {"files": len(files), "rows": sum(int(entry.get("rows", 0)) for entry in files),
            "schema_version": manifest["schema_version"]}


def _user_data(services: PrivacyServices, export: DataExport, writer: ArchiveWriter) -> None:
    subject = export.subject_user_id
    assert subject is not None
    with services.database.unit_of_work(export.organization_id) as uow:
        for dataset in USER_DATASETS:
            writer.jsonl(f"data/{dataset}.jsonl", uow.export_data.rows(dataset, user_id=subject))
    writer.jsonl("data/audit_actions.jsonl", _audit_actions(services, export.organization_id, subject))


def _audit_actions(services: PrivacyServices, organization_id: uuid.UUID,
                   user_id: uuid.UUID) -> Iterator[Mapping[str, Any]]:
    query = AuditQuery(user_id=user_id, limit=AUDIT_PAGE)
    while True:
        page = services.audit_log.list_records(organization_id, query)
        for record in services.personal.reveal(organization_id, page.records):
            yield audit_row(record)
        if page.next_before_sequence is None:
            return
        query = dataclasses.replace(query, before_sequence=page.next_before_sequence)


def audit_row(record: AuditRecord) -> dict[str, Any]:
    return {**record.sealed_fields(), "hash": record.hash}


def _organization_data(services: PrivacyServices, export: DataExport, writer: ArchiveWriter) -> dict[str, Any]:
    organization_id = export.organization_id
    objects: dict[str, None] = {}  # storage keys the rows name, in order (keys only: one per file or job)
    jobs: list[uuid.UUID] = []
    with services.database.unit_of_work(organization_id) as uow:
        for dataset in ORGANIZATION_DATASETS:
            writer.jsonl(f"data/{dataset}.jsonl", _noting(uow.export_data.rows(dataset), dataset, objects, jobs))
    chain = _audit_chain(services, organization_id, writer)
    for job_id in jobs:
        for key in services.storage.list_keys(processed_prefix(organization_id, job_id)):
            objects.setdefault(key)
    prefix = organization_prefix(organization_id)
    missing: list[str] = []
    for key in objects:
        if not key.startswith(prefix):
            continue  # never another organization's object, whatever a row says
        try:
            with services.storage.open(key) as source:
                writer.copy(f"objects/{key.removeprefix(prefix)}", source)
        except StorageObjectMissing:
            missing.append(key)
    return {"audit_chain": chain, "missing_objects": missing}


def _noting(rows: Iterator[Mapping[str, Any]], dataset: str, objects: dict[str, None],
            jobs: list[uuid.UUID]) -> Iterator[Mapping[str, Any]]:
    """The rows as they are, noting the stored objects they name (files, normalized data, reports)
    and the jobs (whose outputs are listed from storage afterwards)."""
    for row in rows:
        if dataset in ("files", "normalized_files") or (dataset == "reports" and row.get("status") == "completed"):
            key = row.get("storage_path")
            if isinstance(key, str) and key:
                objects.setdefault(key)
        elif dataset == "reconciliation_jobs" and row.get("id") is not None:
            jobs.append(uuid.UUID(str(row["id"])))
        yield row


def _audit_chain(services: PrivacyServices, organization_id: uuid.UUID, writer: ArchiveWriter) -> dict[str, Any]:
    """The organization's chain in sequence order, from where retention left it to the head read
    first (rows appended while the export runs belong to the next export)."""
    head = services.audit_log.chain_head(organization_id)
    if head is None or head.last_sequence == 0:
        writer.jsonl(AUDIT_CHAIN_PATH, iter(()))
        return {"chain_key": organization_id, "first_sequence": None, "last_sequence": None,
                "start_previous_hash": GENESIS_HASH, "last_hash": None}
    start_after = head.checkpoint.through_sequence if head.checkpoint else 0
    start_hash = head.checkpoint.through_hash if head.checkpoint else GENESIS_HASH

    def records() -> Iterator[Mapping[str, Any]]:
        after = start_after
        while after < head.last_sequence:
            page = services.audit_log.read_chain(organization_id, after, AUDIT_PAGE)
            if not page:
                return
            for record in page:
                if record.sequence_number > head.last_sequence:
                    return
                yield audit_row(record)
                after = record.sequence_number

    writer.jsonl(AUDIT_CHAIN_PATH, records())
    return {"chain_key": organization_id, "first_sequence": start_after + 1, "last_sequence": head.last_sequence,
            "start_previous_hash": start_hash, "last_hash": head.last_hash}
