"""Workflow job handlers: the scheduled SLA escalation, notifications, ledger-posting export.

Thin: decode the payload, call a use case with the process's container. Listed in
`reckai.entrypoints.worker.actors.HANDLERS`; the SLA job is in the scheduler's periodic list.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from reckai.application.approvals import jobs as workflow_jobs
from reckai.application.breaks.exceptions import escalate_overdue_everywhere
from reckai.application.ports.jobs import JobDelivery

_log = logging.getLogger("reckai.jobs")

SLA_PERIOD_SECONDS = 300


def _services(container: Any) -> Any:
    return container.components["workflow"]


def escalate_overdue_exceptions(container: Any, delivery: JobDelivery) -> None:
    escalated = escalate_overdue_everywhere(_services(container))
    _log.info("overdue exceptions escalated", extra={"action": "exceptions.sla_escalation",
                                                     "metadata": {"organizations": escalated}})


def notify_workflow(container: Any, delivery: JobDelivery) -> None:
    if delivery.organization_id is None:
        return
    workflow_jobs.send_notification(_services(container), container.components["mailer"],
                                    delivery.organization_id, dict(delivery.payload),
                                    container.settings.http.public_base_url)


def export_ledger_posting(container: Any, delivery: JobDelivery) -> None:
    if delivery.organization_id is None:
        return
    workflow_jobs.export_ledger_posting(_services(container), container.components["storage"],
                                       delivery.organization_id, uuid.UUID(delivery.payload["approval_id"]))
