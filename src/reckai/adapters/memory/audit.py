"""In-memory audit log for use-case tests; the same contract tests run over it and Postgres.

Like the real adapter, a record written inside a unit of work is discarded when that unit of work
rolls back, if the unit of work says so: it must offer `on_rollback(callback)` (the memory unit of
work does). The chain stays locked for that unit of work until it ends (`on_commit`/`on_rollback`),
as the chain-head row lock does in PostgreSQL, so a rolled-back record never leaves a gap.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from typing import Any

from reckai.application.ports.audit import (
    READ_PAGE_MAX,
    AuditLog,
    AuditPage,
    AuditPurgeRefused,
    AuditQuery,
    AuditWriteFailed,
)
from reckai.domain.audit.chain import AuditSigner, ChainCheckpoint, ChainHead, retention_cutoff
from reckai.domain.audit.events import GENESIS_HASH, SYSTEM_CHAIN_KEY, AuditEvent, AuditRecord


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class MemoryAuditLog:
    def __init__(self, signer: AuditSigner, clock: Callable[[], dt.datetime] = _utc_now,
                 lock_timeout_seconds: float = 5.0) -> None:
        self.signer = signer
        self._clock = clock
        self._lock_timeout = lock_timeout_seconds
        self._state = threading.Lock()
        self._records: dict[uuid.UUID, list[AuditRecord]] = {}
        self._heads: dict[uuid.UUID, ChainHead] = {}
        self._last_created: dict[uuid.UUID, dt.datetime] = {}
        self._chain_locks: dict[uuid.UUID, threading.Lock] = {}
        self._open: dict[int, dict[uuid.UUID, list[AuditRecord]]] = {}  # id(uow) -> its chains' records

    # --- writing -------------------------------------------------------------------------

    def record(self, uow: Any, event: AuditEvent) -> AuditRecord:
        tenant = getattr(uow, "organization_id", event.organization_id)
        if tenant != event.organization_id:
            raise AuditWriteFailed(event.action, "the event's organization is not the unit of work's tenant")
        on_commit = getattr(uow, "on_commit", None)
        on_rollback = getattr(uow, "on_rollback", None)
        if on_commit is None or on_rollback is None:
            # A unit of work that cannot tell us when it ends: write through.
            return self.record_independently(event)
        open_chains = self._open.get(id(uow))
        if open_chains is None:
            open_chains = self._open[id(uow)] = {}
            on_commit(lambda: self._finish(uow, committed=True))
            on_rollback(lambda: self._finish(uow, committed=False))
        key = event.chain_key
        if key not in open_chains:
            self._acquire(key, event)
            open_chains[key] = []
        record = self._append(event)
        open_chains[key].append(record)
        return record

    def _finish(self, uow: Any, committed: bool) -> None:
        for key, records in self._open.pop(id(uow), {}).items():
            if not committed:
                for record in reversed(records):
                    self._discard(record)
            self._release(key)

    def record_independently(self, event: AuditEvent) -> AuditRecord:
        self._acquire(event.chain_key, event)
        try:
            return self._append(event)
        finally:
            self._release(event.chain_key)

    def _acquire(self, key: uuid.UUID, event: AuditEvent) -> None:
        with self._state:
            lock = self._chain_locks.setdefault(key, threading.Lock())
        if not lock.acquire(timeout=self._lock_timeout):
            raise AuditWriteFailed(event.action, "the audit chain stayed locked past the lock timeout")

    def _release(self, key: uuid.UUID) -> None:
        self._chain_locks[key].release()

    def _append(self, event: AuditEvent) -> AuditRecord:
        key = event.chain_key
        with self._state:
            head = self._heads.get(key) or ChainHead(key, 0, GENESIS_HASH)
            created_at = max(self._clock(), self._last_created.get(key, dt.datetime.min))
            record = self.signer.seal(
                event,
                record_id=uuid.uuid4(),
                sequence_number=head.last_sequence + 1,
                previous_hash=head.last_hash,
                created_at=created_at,
            )
            self._records.setdefault(key, []).append(record)
            self._heads[key] = ChainHead(key, record.sequence_number, record.hash, head.checkpoint)
            self._last_created[key] = record.created_at
            return record

    def _discard(self, record: AuditRecord) -> None:
        # Runs while the unit of work still holds the chain, so the record is the chain's last.
        with self._state:
            chain = self._records.get(record.chain_key, [])
            if not chain or chain[-1].id != record.id:
                return
            chain.pop()
            previous = chain[-1] if chain else None
            head = self._heads[record.chain_key]
            if previous is not None:
                self._heads[record.chain_key] = ChainHead(
                    record.chain_key, previous.sequence_number, previous.hash, head.checkpoint
                )
            elif head.checkpoint is not None:
                checkpoint = head.checkpoint
                self._heads[record.chain_key] = ChainHead(
                    record.chain_key, checkpoint.through_sequence, checkpoint.through_hash, checkpoint
                )
            else:
                self._heads[record.chain_key] = ChainHead(record.chain_key, 0, GENESIS_HASH)

    # --- reading -------------------------------------------------------------------------

    def chain_keys(self) -> list[uuid.UUID]:
        with self._state:
            return sorted(key for key, head in self._heads.items() if head.last_sequence > 0)

    def chain_head(self, chain_key: uuid.UUID) -> ChainHead | None:
        with self._state:
            return self._heads.get(chain_key)

    def read_chain(self, chain_key: uuid.UUID, after_sequence: int, limit: int) -> list[AuditRecord]:
        limit = max(0, min(limit, READ_PAGE_MAX))
        with self._state:
            chain = list(self._records.get(chain_key, []))
        return [r for r in chain if r.sequence_number > after_sequence][:limit]

    def record_at(self, chain_key: uuid.UUID, sequence_number: int) -> AuditRecord | None:
        with self._state:
            for record in self._records.get(chain_key, []):
                if record.sequence_number == sequence_number:
                    return record
        return None

    def last_sequence_before(self, chain_key: uuid.UUID, cutoff: dt.datetime) -> int | None:
        with self._state:
            older = [r.sequence_number for r in self._records.get(chain_key, []) if r.created_at < cutoff]
        return max(older) if older else None

    def list_records(self, organization_id: uuid.UUID, query: AuditQuery) -> AuditPage:
        if organization_id == SYSTEM_CHAIN_KEY:
            return AuditPage((), None)
        with self._state:
            chain = list(self._records.get(organization_id, []))
        matching = [r for r in reversed(chain) if _matches(r, query)]
        page = matching[: query.limit]
        more = len(matching) > query.limit
        return AuditPage(tuple(page), page[-1].sequence_number if more and page else None)

    # --- retention -----------------------------------------------------------------------

    def purge_through(self, checkpoint: ChainCheckpoint) -> int:
        key = checkpoint.chain_key
        with self._state:
            head = self._heads.get(key)
            if head is None:
                raise AuditPurgeRefused(key, "the chain does not exist")
            done = head.checkpoint.through_sequence if head.checkpoint else 0
            if not done < checkpoint.through_sequence <= head.last_sequence:
                raise AuditPurgeRefused(key, f"sequence {checkpoint.through_sequence} is not purgeable")
            chain = self._records.get(key, [])
            target = next((r for r in chain if r.sequence_number == checkpoint.through_sequence), None)
            if target is None or target.hash != checkpoint.through_hash or target.created_at != checkpoint.through_created_at:
                raise AuditPurgeRefused(key, "the checkpoint does not describe the row")
            if target.created_at >= retention_cutoff(self._clock()):
                raise AuditPurgeRefused(key, "the rows are within the seven-year retention period")
            kept = [r for r in chain if r.sequence_number > checkpoint.through_sequence]
            removed = len(chain) - len(kept)
            self._records[key] = kept
            self._heads[key] = ChainHead(key, head.last_sequence, head.last_hash, checkpoint)
            return removed

    # --- test support: what a database owner could do behind the application's back ----------

    def tamper(self, chain_key: uuid.UUID, sequence_number: int, replace: Callable[[AuditRecord], AuditRecord | None]) -> None:
        """Replace (or, when `replace` returns None, delete) one stored record, bypassing every rule."""
        with self._state:
            chain = self._records[chain_key]
            for index, record in enumerate(chain):
                if record.sequence_number == sequence_number:
                    replacement = replace(record)
                    if replacement is None:
                        del chain[index]
                    else:
                        chain[index] = replacement
                    return
        raise KeyError(sequence_number)


def _matches(record: AuditRecord, query: AuditQuery) -> bool:
    event = record.event
    return (
        (query.before_sequence is None or record.sequence_number < query.before_sequence)
        and (query.action is None or event.action == query.action)
        and (query.user_id is None or event.user_id == query.user_id)
        and (query.resource_type is None or event.resource_type == query.resource_type)
        and (query.resource_id is None or event.resource_id == query.resource_id)
        and (query.created_from is None or record.created_at >= _naive(query.created_from))
        and (query.created_to is None or record.created_at < _naive(query.created_to))
    )


def _naive(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is not None:
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


_check: type[AuditLog] = MemoryAuditLog
