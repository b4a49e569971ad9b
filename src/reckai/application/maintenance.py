"""System maintenance use cases run by sweeper jobs (no tenant: they work across organizations
through the narrow system functions, docs/tenancy.md)."""

from __future__ import annotations

import logging

from reckai.application.ports.jobs import JobDelivery
from reckai.application.ports.unit_of_work import Database, UnitOfWork

_log = logging.getLogger("reckai.jobs")


def delete_expired_sessions(database: Database[UnitOfWork]) -> int:
    """Delete expired and long-revoked sessions of every organization; return how many.
    Idempotent: a second run right after deletes nothing."""
    with database.unit_of_work(None) as uow:
        deleted = int(uow.sessions.delete_expired())
        uow.commit()
    return deleted


def cleanup_expired_sessions_job(database: Database[UnitOfWork], delivery: JobDelivery) -> None:
    """The `cleanup_expired_sessions` job (low queue, periodic)."""
    deleted = delete_expired_sessions(database)
    _log.info(
        "expired sessions deleted",
        extra={"action": "sessions.cleanup", "metadata": {"deleted": deleted, "outbox_id": str(delivery.outbox_id)}},
    )
