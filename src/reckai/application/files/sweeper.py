"""sweep_orphaned_objects: delete stored objects of files whose row is gone (docs/files.md
"Orphaned objects").

`delete_file` removes the row first and the objects after the commit; when removing an object
fails then, the object is unreachable (logged `file.delete.orphaned_object`). This low-priority
periodic job finds such objects, under `organizations/*/uploads/` (originals) and
`organizations/*/processed/files/` (normalized forms), and deletes them.

An upload in flight also has an object without a row (the row is committed only once the object
is complete and checked). Storage does not tell object ages, so the sweeper counts from when it
first saw the object without a row, in PostgreSQL (FileSweepRepository), and deletes only what
stayed without a row for the whole grace period. The first sighting is never earlier than the
object itself, so nothing younger than the grace period is ever swept.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from reckai.application.files.common import logger
from reckai.application.ports.files import FilesUnitOfWork
from reckai.application.ports.jobs import JobDelivery
from reckai.application.ports.storage import FileStorage, StorageError
from reckai.application.ports.unit_of_work import Database
from reckai.domain.ingestion.storage_keys import NORMALIZED_FILES_SEGMENT, ORGANIZATIONS_ROOT

# Far longer than any upload takes to stream, scan, check and commit (the largest allowed file
# is streamed and scanned in minutes), short enough that space comes back the same day.
ORPHAN_GRACE = dt.timedelta(hours=6)
SWEEP_PERIOD_SECONDS = 3600
PAGE_SIZE = 500
# A candidate not seen again for this long after a pass ended is an object that went away by itself.
UNSEEN_SLACK_SECONDS = 600

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_FILE_OBJECT = re.compile(
    rf"{ORGANIZATIONS_ROOT}/{_UUID}/(?:uploads/\d{{4}}/\d{{2}}/(?P<upload>{_UUID})\.[a-z0-9]{{1,10}}"
    rf"|processed/{NORMALIZED_FILES_SEGMENT}/(?P<normalized>{_UUID})/[A-Za-z0-9][A-Za-z0-9._-]*)"
)


def file_id_of(key: str) -> uuid.UUID | None:
    """The file id an object key belongs to, for the originals and normalized forms only (a job's
    results, reports and quarantine are not the file sweeper's)."""
    found = _FILE_OBJECT.fullmatch(key)
    if found is None:
        return None
    return uuid.UUID(found["upload"] or found["normalized"])


@dataclass
class SweepReport:
    examined: int = 0  # file objects looked up (originals and normalized forms)
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # due, but storage refused to delete them


def sweep_orphaned_objects(database: Database[FilesUnitOfWork], storage: FileStorage, *, grace: dt.timedelta = ORPHAN_GRACE,
                           page_size: int = PAGE_SIZE) -> SweepReport:
    """One pass over every organization's file objects. Idempotent; a failed delete is retried
    by the next pass (the candidate stays). Raises StorageError when listing fails (the job is
    retried), leaving what earlier pages did in place."""
    if grace < dt.timedelta(0):
        raise ValueError("grace must not be negative")
    started = time.monotonic()
    report = SweepReport()
    for page in _pages(_file_objects(storage.list_keys(f"{ORGANIZATIONS_ROOT}/")), page_size):
        report.examined += len(page)
        with database.unit_of_work(None) as uow:
            due = uow.file_sweep.observe(page, int(grace.total_seconds()))
            uow.commit()
        deleted = [key for key in due if _delete(storage, key, report)]
        if deleted:
            with database.unit_of_work(None) as uow:
                uow.file_sweep.forget(deleted)
                uow.commit()
    with database.unit_of_work(None) as uow:  # only after a whole pass: everything listed was seen
        uow.file_sweep.forget([], _unseen_seconds(started))
        uow.commit()
    return report


def _delete(storage: FileStorage, key: str, report: SweepReport) -> bool:
    try:
        storage.delete(key)
    except StorageError as exc:
        report.failed.append(key)
        logger.error("file.sweep.delete_failed", extra={"object": key, "error": type(exc).__name__})
        return False
    report.deleted.append(key)
    logger.warning("file.sweep.orphan_deleted", extra={"object": key})
    return True


def _unseen_seconds(started: float) -> int:
    return int(time.monotonic() - started) + UNSEEN_SLACK_SECONDS


def _file_objects(keys: Iterable[str]) -> Iterator[tuple[str, uuid.UUID]]:
    for key in keys:
        file_id = file_id_of(key)
        if file_id is not None:
            yield key, file_id


def _pages(items: Iterator[tuple[str, uuid.UUID]], size: int) -> Iterator[list[tuple[str, uuid.UUID]]]:
    while page := list(islice(items, size)):
        yield page


def sweep_orphaned_file_objects_job(database: Database[FilesUnitOfWork], storage: FileStorage,
                                    delivery: JobDelivery) -> None:
    """The `sweep_orphaned_file_objects` job (low queue, periodic)."""
    report = sweep_orphaned_objects(database, storage)
    logger.info(
        "orphaned file objects swept",
        extra={"action": "file.sweep", "metadata": {"examined": report.examined, "deleted": len(report.deleted),
                                                    "failed": len(report.failed),
                                                    "outbox_id": str(delivery.outbox_id)}},
    )
