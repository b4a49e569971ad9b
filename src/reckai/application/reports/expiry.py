"""The `expire_reports` job (low queue, hourly): a completed report past its `expires_at`
(`reports.expiry_days` after generation) loses its file; the row stays, status `expired`, audited
as `report.expired`. Idempotent: a row already expired is not selected again, and deleting a
missing object is not an error."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from reckai.application.context import Caller, Outcome
from reckai.application.ports.jobs import JobDelivery
from reckai.application.ports.storage import StorageError
from reckai.application.reports.services import ReportServices, report_event

_log = logging.getLogger("reckai.reports")
BATCH = 200


def expire_reports(services: ReportServices, now: dt.datetime | None = None) -> dict[str, int]:
    now = now or services.now()
    with services.database.unit_of_work(None) as uow:
        organizations = list(uow.reports.organizations_with_expired(now))
    return {str(org): expire_organization_reports(services, org, now) for org in organizations}


def expire_organization_reports(services: ReportServices, organization_id: uuid.UUID, now: dt.datetime) -> int:
    expired = 0
    caller = Caller.system(organization_id)
    while True:
        before = expired
        with services.database.unit_of_work(organization_id) as uow:
            due = uow.reports.expired(now, BATCH)
            for report in due:
                try:
                    services.storage.delete(report.storage_path)
                except StorageError:
                    _log.warning("expired report object not deleted; retried next run",
                                 extra={"action": "report.expire", "resource_id": str(report.id)})
                    continue
                uow.reports.update(report.expired(now))
                services.audit_log.record(uow, report_event(caller, "report.expired", report.id,
                                                            outcome=Outcome.DONE, type=report.type,
                                                            expires_at=report.expires_at.isoformat()
                                                            if report.expires_at else None))
                expired += 1
            uow.commit()
        if len(due) < BATCH or expired == before:  # the rest could not be deleted now: next run
            return expired


def expire_reports_job(services: ReportServices, delivery: JobDelivery) -> None:
    done = expire_reports(services)
    if done:
        _log.info("expired reports removed", extra={"action": "report.expire", "metadata": done})
