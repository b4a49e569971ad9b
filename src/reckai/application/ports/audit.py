"""Audit log port: the append-only, tamper-evident record of who did what (spec §1, §4, §10.2).

Adapters: `adapters.postgres.audit` (the real one: triggers refuse UPDATE/DELETE/TRUNCATE, the
chain head row is the lock that orders writers) and `adapters.memory.audit` (tests). The same
contract tests (tests/unit/test_audit_contract.py, tests/integration/test_audit_postgres.py) run
over both. docs/audit.md explains the design.

Failure policy: an audit write that fails raises AuditWriteFailed and is never swallowed. Inside
a unit of work that fails the whole transaction (the action does not happen without its record);
`record_independently` raises to the caller, which must refuse what it was about to allow.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from reckai.application.ports.unit_of_work import UnitOfWork
from reckai.domain.audit.anchors import HeadCheckpoint
from reckai.domain.audit.chain import ChainCheckpoint, ChainHead
from reckai.domain.audit.events import AuditEvent, AuditRecord

READ_PAGE_MAX = 1000
OUTCOMES = ("success", "failure")  # AuditQuery.outcome: response_status < 400 (or none) / >= 400


class AuditError(Exception):
    """Base of every audit port error."""


class AuditWriteFailed(AuditError):
    """The event could not be recorded (database unavailable, chain busy past the lock timeout,
    the event's organization is not the unit of work's tenant). Nothing was written."""

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(f"audit event {action!r} was not recorded: {reason}")
        self.action = action
        self.reason = reason


class AuditReadFailed(AuditError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"audit log could not be read: {reason}")
        self.reason = reason


class AuditPurgeRefused(AuditError):
    """The purge was refused: rows younger than retention, a stale checkpoint, an unknown chain."""

    def __init__(self, chain_key: uuid.UUID, reason: str) -> None:
        super().__init__(f"audit chain {chain_key}: purge refused: {reason}")
        self.chain_key = chain_key
        self.reason = reason


@dataclass(frozen=True)
class AuditQuery:
    """Filters for listing one organization's audit rows, newest first, keyset-paginated.

    `before_sequence` is the cursor: the `sequence_number` of the last row of the previous page
    (AuditPage.next_before_sequence). Date bounds are inclusive-exclusive: from <= created_at < to.
    """

    action: str | None = None
    user_id: uuid.UUID | None = None
    resource_type: str | None = None
    resource_id: uuid.UUID | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    before_sequence: int | None = None
    limit: int = 50
    # "success": no response status or one below 400; "failure": 400 and above (refusals, errors)
    outcome: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 500:
            raise ValueError("limit must be between 1 and 500")
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")


@dataclass(frozen=True)
class AuditPage:
    records: Sequence[AuditRecord]
    next_before_sequence: int | None  # None: this was the last page


class AuditLog(Protocol):
    def record(self, uow: UnitOfWork, event: AuditEvent) -> AuditRecord:
        """Append `event` inside the caller's unit of work; it commits or rolls back with it.

        The chain of the event's organization stays locked until that transaction ends, so record
        late in the unit of work. The event's organization must be the unit of work's tenant (or
        None with no tenant: the system chain), else AuditWriteFailed.
        """
        ...

    def record_independently(self, event: AuditEvent) -> AuditRecord:
        """Append `event` in a transaction of its own, committed before returning.

        For events that must survive the request failing: failed logins, lockouts, refused
        authorizations. Never call it for a chain the current unit of work has already written
        to (it would wait on that unit of work's lock; it gives up after a lock timeout).
        """
        ...

    def chain_keys(self) -> list[uuid.UUID]:
        """Every chain that exists: organization ids, and SYSTEM_CHAIN_KEY once it has rows."""
        ...

    def chain_head(self, chain_key: uuid.UUID) -> ChainHead | None:
        """The chain's bookkeeping (last sequence and hash, purge checkpoint); None if unknown."""
        ...

    def read_chain(self, chain_key: uuid.UUID, after_sequence: int, limit: int) -> list[AuditRecord]:
        """Up to `limit` (<= READ_PAGE_MAX) records with sequence > after_sequence, ascending.

        Records come back exactly as stored (not re-redacted), so verification sees tampering.
        """
        ...

    def record_at(self, chain_key: uuid.UUID, sequence_number: int) -> AuditRecord | None: ...

    def last_sequence_before(self, chain_key: uuid.UUID, cutoff: dt.datetime) -> int | None:
        """The highest sequence whose created_at < cutoff (naive UTC), or None."""
        ...

    def list_records(self, organization_id: uuid.UUID, query: AuditQuery) -> AuditPage:
        """One organization's records matching `query`, newest first (the tenant's view only)."""
        ...

    def all_chain_heads(self) -> list[ChainHead]:
        """Every chain's last sequence and hash (no row content; for the head checkpoints)."""
        ...

    def sequence_range(
        self, chain_key: uuid.UUID, created_from: dt.datetime | None, created_to: dt.datetime | None
    ) -> tuple[int, int] | None:
        """The first and last sequence of the chain's rows with from <= created_at < to (naive UTC;
        created_at never decreases along a chain), or None when no row is in the period."""
        ...

    def record_batch(self, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        """Append events of one organization in one transaction of its own (one reserve, one
        multi-row INSERT), committed before returning: the access-event batches (item 3)."""
        ...

    def purge_through(self, checkpoint: ChainCheckpoint) -> int:
        """Delete the chain's rows up to checkpoint.through_sequence, all past the seven-year
        retention, and store the checkpoint. Returns the number of rows removed; raises
        AuditPurgeRefused when any of them is younger or the checkpoint does not match the row."""
        ...


class AuditAnchorStore(Protocol):
    """Where the signed head checkpoints go: storage the application cannot rewrite (production:
    an S3 bucket with Object Lock in compliance mode; embedded: an append-only local file)."""

    @property
    def description(self) -> str:
        """What the store is, for operators ("s3 object lock (compliance) bucket x", "file y")."""
        ...

    def write(self, checkpoint: HeadCheckpoint) -> str:
        """Store the checkpoint; returns where (object key, file and line). Raises AuditAnchorFailed."""
        ...

    def latest(self) -> HeadCheckpoint | None:
        """The most recently written checkpoint; None before the first. Raises AuditAnchorFailed
        when the store cannot be read or its latest entry is not a checkpoint."""
        ...


class AuditAnchorFailed(AuditError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"audit head checkpoint store: {reason}")
        self.reason = reason
