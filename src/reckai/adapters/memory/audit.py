"""In-memory audit log on the memory unit of work; the same contract tests run over it and Postgres.

Records and chain heads are rows of the `MemoryDatabase` store ("audit_logs" keyed by id,
"audit_chain_heads" keyed by chain key), both system-nullable like their SQL tables. A write
locks the chain's head row with `lock_row` (as `audit_chain_reserve` does with FOR UPDATE), so
the chain stays locked until the unit of work commits or rolls back; staged records vanish on
rollback. `record_independently` uses a unit of work of its own, like a second connection.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Sequence

from reckai.adapters.clock import utc_now
from reckai.adapters.memory.unit_of_work import MemoryDatabase, MemoryUnitOfWork
from reckai.application.ports.audit import (
    READ_PAGE_MAX,
    AuditLog,
    AuditPage,
    AuditPurgeRefused,
    AuditQuery,
    AuditWriteFailed,
)
from reckai.application.ports.unit_of_work import UnitOfWork
from reckai.domain.audit.chain import AuditSigner, ChainCheckpoint, ChainHead, retention_cutoff
from reckai.domain.audit.events import GENESIS_HASH, SYSTEM_CHAIN_KEY, AuditEvent, AuditRecord

RECORDS = "audit_logs"
HEADS = "audit_chain_heads"


@dataclasses.dataclass(frozen=True)
class _HeadRow:
    organization_id: uuid.UUID | None  # what the memory "row-level security" looks at
    head: ChainHead
    last_created_at: dt.datetime | None


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class MemoryAuditLog:
    def __init__(
        self,
        signer: AuditSigner,
        database: MemoryDatabase | None = None,
        clock: Callable[[], dt.datetime] = lambda: utc_now().replace(tzinfo=None),  # as the SQL column: naive UTC
        lock_timeout_seconds: float = 5.0,
    ) -> None:
        self.signer = signer
        self._database = database or MemoryDatabase()
        self._clock = clock
        self._lock_timeout = lock_timeout_seconds

    # --- writing -------------------------------------------------------------------------

    def record(self, uow: UnitOfWork, event: AuditEvent) -> AuditRecord:
        if not isinstance(uow, MemoryUnitOfWork) or uow.store is not self._database.store:
            raise TypeError("MemoryAuditLog.record needs a unit of work of the same MemoryDatabase")
        if uow.organization_id != event.organization_id:
            raise AuditWriteFailed(event.action, "the event's organization is not the unit of work's tenant")
        return self._append(uow, event)

    def record_independently(self, event: AuditEvent) -> AuditRecord:
        with self._database.unit_of_work(event.organization_id) as uow:
            record = self._append(uow, event)
            uow.commit()
        return record

    def record_batch(self, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        if not events:
            return []
        organization_id = events[0].organization_id
        if any(event.organization_id != organization_id for event in events):
            raise AuditWriteFailed(events[0].action, "a batch holds the events of one organization")
        with self._database.unit_of_work(organization_id) as uow:
            records = [self._append(uow, event) for event in events]
            uow.commit()
        return records

    def _append(self, uow: MemoryUnitOfWork, event: AuditEvent) -> AuditRecord:
        key = event.chain_key
        try:
            uow.lock_row(HEADS, key, timeout=self._lock_timeout)
        except TimeoutError as exc:
            raise AuditWriteFailed(event.action, "the audit chain stayed locked past the lock timeout") from exc
        row = uow.get(HEADS, key) or _HeadRow(event.organization_id, ChainHead(key, 0, GENESIS_HASH), None)
        now = self._clock()
        created_at = max(now, row.last_created_at) if row.last_created_at else now
        record = self.signer.seal(
            event,
            record_id=uuid.uuid4(),
            sequence_number=row.head.last_sequence + 1,
            previous_hash=row.head.last_hash,
            created_at=created_at,
        )
        uow.put(RECORDS, record.id, record)
        head = ChainHead(key, record.sequence_number, record.hash, row.head.checkpoint)
        uow.put(HEADS, key, _HeadRow(event.organization_id, head, record.created_at))
        return record

    # --- reading -------------------------------------------------------------------------

    def _chain(self, chain_key: uuid.UUID) -> list[AuditRecord]:
        with self._database.unit_of_work(_tenant_of(chain_key)) as uow:
            records = [r for _, r in uow.rows(RECORDS) if r.chain_key == chain_key]
        return sorted(records, key=lambda r: r.sequence_number)

    def chain_keys(self) -> list[uuid.UUID]:
        with self._database.unit_of_work(None) as uow:
            return sorted(row.head.chain_key for _, row in uow.all_rows(HEADS) if row.head.last_sequence > 0)

    def chain_head(self, chain_key: uuid.UUID) -> ChainHead | None:
        with self._database.unit_of_work(_tenant_of(chain_key)) as uow:
            row = uow.get(HEADS, chain_key)
        return row.head if row is not None else None

    def read_chain(self, chain_key: uuid.UUID, after_sequence: int, limit: int) -> list[AuditRecord]:
        limit = max(0, min(limit, READ_PAGE_MAX))
        return [r for r in self._chain(chain_key) if r.sequence_number > after_sequence][:limit]

    def record_at(self, chain_key: uuid.UUID, sequence_number: int) -> AuditRecord | None:
        return next((r for r in self._chain(chain_key) if r.sequence_number == sequence_number), None)

    def last_sequence_before(self, chain_key: uuid.UUID, cutoff: dt.datetime) -> int | None:
        older = [r.sequence_number for r in self._chain(chain_key) if r.created_at < _naive(cutoff)]
        return max(older) if older else None

    def all_chain_heads(self) -> list[ChainHead]:
        with self._database.unit_of_work(None) as uow:
            heads = [row.head for _, row in uow.all_rows(HEADS) if row.head.last_sequence > 0]
        return sorted((ChainHead(h.chain_key, h.last_sequence, h.last_hash) for h in heads),
                      key=lambda head: head.chain_key)

    def sequence_range(
        self, chain_key: uuid.UUID, created_from: dt.datetime | None, created_to: dt.datetime | None
    ) -> tuple[int, int] | None:
        inside = [r.sequence_number for r in self._chain(chain_key)
                  if (created_from is None or r.created_at >= _naive(created_from))
                  and (created_to is None or r.created_at < _naive(created_to))]
        return (min(inside), max(inside)) if inside else None

    def list_records(self, organization_id: uuid.UUID, query: AuditQuery) -> AuditPage:
        if organization_id == SYSTEM_CHAIN_KEY:
            return AuditPage((), None)
        matching = [r for r in reversed(self._chain(organization_id)) if _matches(r, query)]
        page = matching[: query.limit]
        more = len(matching) > query.limit
        return AuditPage(tuple(page), page[-1].sequence_number if more and page else None)

    # --- retention -----------------------------------------------------------------------

    def purge_through(self, checkpoint: ChainCheckpoint) -> int:
        key = checkpoint.chain_key
        with self._database.unit_of_work(_tenant_of(key)) as uow:
            uow.lock_row(HEADS, key, timeout=self._lock_timeout)
            row = uow.get(HEADS, key)
            if row is None:
                raise AuditPurgeRefused(key, "the chain does not exist")
            head = row.head
            done = head.checkpoint.through_sequence if head.checkpoint else 0
            if not done < checkpoint.through_sequence <= head.last_sequence:
                raise AuditPurgeRefused(key, f"sequence {checkpoint.through_sequence} is not purgeable")
            chain = [r for _, r in uow.rows(RECORDS) if r.chain_key == key]
            target = next((r for r in chain if r.sequence_number == checkpoint.through_sequence), None)
            if target is None or (target.hash, target.created_at) != (
                checkpoint.through_hash,
                checkpoint.through_created_at,
            ):
                raise AuditPurgeRefused(key, "the checkpoint does not describe the row")
            if target.created_at >= retention_cutoff(self._clock()):
                raise AuditPurgeRefused(key, "the rows are within the seven-year retention period")
            removed = 0
            for record in chain:
                if record.sequence_number <= checkpoint.through_sequence:
                    uow.remove(RECORDS, record.id)
                    removed += 1
            new_head = ChainHead(key, head.last_sequence, head.last_hash, checkpoint)
            uow.put(HEADS, key, dataclasses.replace(row, head=new_head))
            uow.commit()
        return removed

    # --- test support: what a database owner could do behind the application's back ----------

    def tamper(
        self, chain_key: uuid.UUID, sequence_number: int, replace: Callable[[AuditRecord], AuditRecord | None]
    ) -> None:
        """Replace (or, when `replace` returns None, delete) one stored record, bypassing every rule."""
        store = self._database.store
        with store.lock:
            records = store.tables.get(RECORDS, {})
            for record_id, record in list(records.items()):
                if record.chain_key == chain_key and record.sequence_number == sequence_number:
                    replacement = replace(record)
                    if replacement is None:
                        del records[record_id]
                    else:
                        records[record_id] = replacement
                    return
        raise KeyError(sequence_number)


def _tenant_of(chain_key: uuid.UUID) -> uuid.UUID | None:
    return None if chain_key == SYSTEM_CHAIN_KEY else chain_key


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
        and (query.outcome is None or (query.outcome == "failure") == _failed(event.response_status))
    )


def _failed(status: int | None) -> bool:
    return status is not None and status >= 400


def _naive(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is not None:
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


_check: type[AuditLog] = MemoryAuditLog
