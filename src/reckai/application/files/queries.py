"""get_file, list_files, download_file_url, delete_file."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from reckai.application.context import Caller, Outcome
from reckai.application.errors import ServiceUnavailable
from reckai.application.files.common import audit_event, claimed, load_file, logger
from reckai.application.files.errors import FileInProcessingJob
from reckai.application.files.services import FileServices
from reckai.application.ports.files import DataMapping, FileFilter, NormalizedFile, ReconciliationFile
from reckai.application.ports.storage import DOWNLOAD_URL_LIFETIME, StorageError


@dataclass(frozen=True)
class FileDetails:
    file: ReconciliationFile
    mappings: list[DataMapping]
    normalized: NormalizedFile | None  # the current version (the highest), None before the first
    versions: list[NormalizedFile] = field(default_factory=list)  # every normalized version, oldest first


@dataclass(frozen=True)
class DownloadLink:
    url: str
    expires_at: dt.datetime


def get_file(services: FileServices, caller: Caller, file_id: uuid.UUID) -> FileDetails:
    with services.database.unit_of_work(caller.organization_id) as uow:
        file = load_file(uow, file_id)
        versions = list(uow.normalized_files.versions(file_id))
        return FileDetails(file=file, mappings=list(uow.data_mappings.list_for_file(file_id)),
                           normalized=versions[-1] if versions else None, versions=versions)


def list_files(services: FileServices, caller: Caller, file_filter: FileFilter, *, page: int,
               per_page: int) -> tuple[list[ReconciliationFile], int]:
    """The organization's files, newest upload first; (page of files, total matching)."""
    with services.database.unit_of_work(caller.organization_id) as uow:
        return uow.files.list(file_filter, limit=per_page, offset=(page - 1) * per_page)


def download_file_url(services: FileServices, caller: Caller, file_id: uuid.UUID) -> DownloadLink:
    """A link to the original as uploaded, valid for one hour (spec §6.3); audited."""
    with services.database.unit_of_work(caller.organization_id) as uow:
        file = load_file(uow, file_id)
        expires_at = services.now() + DOWNLOAD_URL_LIFETIME
        try:
            url = services.storage.download_url(file.storage_path, expires_in=DOWNLOAD_URL_LIFETIME,
                                                download_name=file.original_filename)
        except StorageError as exc:
            raise ServiceUnavailable("storage", type(exc).__name__) from exc
        services.audit_log.record(uow, audit_event(caller, "file.download_link_issued", file_id, outcome=Outcome.DONE))
        uow.commit()
    return DownloadLink(url=url, expires_at=expires_at)


def delete_file(services: FileServices, caller: Caller, file_id: uuid.UUID) -> None:
    """Remove the row (mappings and normalized rows with it), then the objects.

    Refused while the file is part of a job that is processing, and (FileBusy) while a mapping or
    normalization holds the file's claim. The row goes first: if removing an
    object then fails, what remains is an object nobody can reach (logged for cleanup), never a row
    pointing at nothing.
    """
    with claimed(services, caller.organization_id, file_id), \
            services.database.unit_of_work(caller.organization_id) as uow:
        file = load_file(uow, file_id)
        if uow.files.in_processing_job(file_id):
            raise FileInProcessingJob(file_id)
        keys = [file.storage_path] + [version.storage_path for version in uow.normalized_files.versions(file_id)]
        uow.files.delete(file_id)
        services.audit_log.record(uow, audit_event(
            caller, "file.deleted", file_id, outcome=Outcome.DONE, original_filename=file.original_filename,
            sha256=file.checksum, size_bytes=file.size_bytes))
        uow.commit()
    for key in keys:
        try:
            services.storage.delete(key)
        except StorageError:
            logger.error("file.delete.orphaned_object", extra={"object": key, "file_id": str(file_id)})
