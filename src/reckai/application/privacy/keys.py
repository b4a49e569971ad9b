"""`reckai keys rotate`: wrap every organization's data key again under the active master key
(issue 17 item 4; docs/privacy.md, "Rotating the master key").

Without downtime: each organization's key is re-wrapped in its own short transaction (its key row
locked for that moment only), and the data key itself does not change, so every ciphertext and
blind index stays valid; a request that read the old wrapping a moment before unwraps it with the
retired master key, which the settings still hold, and gets the same key. Idempotent: a second run
finds nothing to do; a run interrupted half-way is finished by the next.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from reckai.application.context import Outcome, RequestInfo, audit_event
from reckai.application.ports.audit import AuditLog
from reckai.application.ports.personal_data import KeyRotationUnitOfWork
from reckai.application.ports.unit_of_work import Database


@dataclass(frozen=True)
class KeyRotation:
    rewrapped: list[uuid.UUID] = field(default_factory=list)


def rotate_data_keys(database: Database[KeyRotationUnitOfWork], audit_log: AuditLog, *, request: RequestInfo,
                     batch_size: int = 100) -> KeyRotation:
    """Re-wrap, batch after batch, the data keys another master key wraps; audit each
    (`security.data_key_rewrapped`, a system event of the organization). Stops when a batch brings
    nothing new (a key whose master key is gone raises DataKeyUnavailable, naming it)."""
    done = KeyRotation()
    while True:
        with database.unit_of_work(None) as uow:
            stale = [organization_id for organization_id in uow.data_keys.stale_organizations(batch_size)
                     if organization_id not in done.rewrapped]
        if not stale:
            return done
        for organization_id in stale:
            with database.unit_of_work(organization_id) as uow:
                if uow.data_keys.rewrap():
                    audit_log.record(uow, audit_event(
                        "security.data_key_rewrapped", request, organization_id=organization_id, user_id=None,
                        resource_type="organization", resource_id=organization_id, outcome=Outcome.DONE,
                        metadata={"by": "operator"}))
                    uow.commit()
            done.rewrapped.append(organization_id)
