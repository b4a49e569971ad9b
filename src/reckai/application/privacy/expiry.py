"""Removing data exports past their retention (the `expire_data_exports` job, low queue, hourly;
docs/privacy.md, "Export").

For each active organization (`retention_organizations()`, ids only), under its row-level security:
the completed exports whose `expires_at` has passed, oldest first, in batches: the object is
deleted from storage, the row becomes `expired` and `privacy.export.expired` is audited, in one
transaction per batch. A failed delete leaves the row completed, so the next run tries again.
"""

from __future__ import annotations

import logging
import uuid

from reckai.application.context import Caller, Outcome
from reckai.application.ports.jobs import JobDelivery, JobType, Queue
from reckai.application.ports.storage import StorageError
from reckai.application.privacy.services import PrivacyServices, export_event

EXPIRE_DATA_EXPORTS = JobType("expire_data_exports", Queue.LOW, max_attempts=2)
EXPIRE_PERIOD_SECONDS = 3600
EXPIRE_TIME_LIMIT_SECONDS = 600
BATCH = 100

_log = logging.getLogger("reckai.privacy")


def expire_data_exports_job(services: PrivacyServices, delivery: JobDelivery) -> None:
    expire_data_exports(services)


def expire_data_exports(services: PrivacyServices) -> int:
    """The number of exports expired."""
    with services.database.unit_of_work(None) as uow:
        organizations = list(uow.retention.organization_ids())
    return sum(_expire_organization(services, organization_id) for organization_id in organizations)


def _expire_organization(services: PrivacyServices, organization_id: uuid.UUID) -> int:
    caller = Caller.system(organization_id)
    expired = 0
    while True:
        now = services.now()
        with services.database.unit_of_work(organization_id) as uow:
            due = uow.data_exports.expired(now, BATCH)
            if not due:
                return expired
            for export in due:
                try:
                    services.storage.delete(export.storage_path)
                except StorageError:
                    _log.exception("export object not deleted", extra={"action": "privacy.export.expired",
                                                                      "resource_id": str(export.id)})
                    return expired  # this batch's rows stay completed: the next run deletes and marks them
                uow.data_exports.update(export.expired(now))
                services.audit_log.record(uow, export_event(
                    caller, "privacy.export.expired", export.id, outcome=Outcome.DONE, scope=export.scope.value,
                    expires_at=export.expires_at.isoformat() if export.expires_at else None, sha256=export.sha256))
            uow.commit()
            expired += len(due)
