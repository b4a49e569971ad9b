"""System maintenance use cases run by sweeper jobs (no tenant: they work across organizations
through the narrow system functions, docs/tenancy.md)."""

from __future__ import annotations

from typing import Any


def delete_expired_sessions(database: Any) -> int:
    """Delete expired and long-revoked sessions of every organization; return how many.
    Idempotent: a second run right after deletes nothing."""
    with database.unit_of_work(None) as uow:
        deleted = int(uow.sessions.delete_expired())
        uow.commit()
    return deleted
