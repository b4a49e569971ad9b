"""Erasable personal data in audit rows (issue 17 item 5; docs/privacy.md, "Erasure").

`PersonalDataAuditLog` is the container's audit log: before the underlying log (PostgreSQL or
memory) seals an event into its chain, each personal value of the event's metadata
(domain/audit/personal.py: `email`, `full_name`, ...) is replaced by its ciphertext under the
subject's data key, made on first use. The chain's HMAC is computed over what is stored, the
ciphertext, which erasure does not change: destroying the key (`uow.subject_keys.destroy`) turns
the value into `[erased]` for every reader while `reckai audit verify` still passes.

Readers of the trail (GET /api/audit-logs, its CSV export) go through `PersonalData.reveal`,
which opens what can be opened. Verification, the organization's export and the chain itself
read the stored rows as they are.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from reckai.application.ports.audit import AuditLog, AuditPage, AuditQuery
from reckai.application.ports.clock import Clock
from reckai.application.ports.subject_keys import (
    PersonalDataUnreadable,
    SubjectCipher,
    SubjectKey,
    SubjectKeyRepository,
)
from reckai.application.ports.unit_of_work import Database, UnitOfWork
from reckai.domain.audit.chain import ChainCheckpoint, ChainHead
from reckai.domain.audit.events import AuditEvent, AuditRecord
from reckai.domain.audit.personal import (
    Envelope,
    personal_values,
    reveal_metadata,
    sealed_subjects,
    subject_of,
    with_metadata,
)

UNREADABLE = "[unreadable]"  # a sealed value that does not open under its key: a fault, not erasure


@dataclass(frozen=True)
class PersonalData:
    """Sealing personal values under their subject's key, and opening them for readers."""

    database: Database[UnitOfWork]
    cipher: SubjectCipher
    clock: Clock

    def needs_sealing(self, event: AuditEvent) -> bool:
        return event.organization_id is not None and subject_of(event) is not None and bool(personal_values(event))

    def seal(self, keys: SubjectKeyRepository, event: AuditEvent) -> AuditEvent:
        """The event with its personal values encrypted (the unit of work of `keys` must be the
        event's organization's); unchanged when it has none, or names no subject."""
        if not self.needs_sealing(event):
            return event
        subject = subject_of(event)
        assert subject is not None and event.organization_id is not None
        key = keys.get(subject)
        if key is None:
            key_id = uuid.uuid4()
            key = keys.add_if_absent(SubjectKey(
                id=key_id, organization_id=event.organization_id, subject_id=subject,
                wrapped_key=self.cipher.new_wrapped_key(event.organization_id, subject, key_id),
                created_at=self.clock()))
        sealed = {name: Envelope(subject, key.id, self.cipher.encrypt(key, value)).text()
                  for name, value in personal_values(event).items()}
        return with_metadata(event, {**event.metadata, **sealed})

    def reveal(self, organization_id: uuid.UUID, records: Sequence[AuditRecord]) -> list[AuditRecord]:
        """The records as a reader sees them: each sealed value opened, `[erased]` when its key was
        destroyed (or replaced by a later key). Hash and chain fields stay as stored."""
        subjects = set().union(*(sealed_subjects(record.event.metadata) for record in records)) if records else set()
        if not subjects:
            return list(records)
        with self.database.unit_of_work(organization_id) as uow:
            keys = dict(uow.subject_keys.get_many(subjects))

        def open_envelope(envelope: Envelope) -> str | None:
            key = keys.get(envelope.subject_id)
            if key is None or key.id != envelope.key_id:
                return None
            try:
                return self.cipher.decrypt(key, envelope.ciphertext)
            except PersonalDataUnreadable:
                return UNREADABLE

        return [dataclasses.replace(record, event=_with_stored_metadata(
            record.event, reveal_metadata(record.event.metadata, open_envelope))) for record in records]


def _with_stored_metadata(event: AuditEvent, metadata: object) -> AuditEvent:
    """A copy for display: no re-cleaning (the record is shown as stored, apart from the opened values)."""
    copy = object.__new__(AuditEvent)
    for name in AuditEvent.__dataclass_fields__:
        object.__setattr__(copy, name, metadata if name == "metadata" else getattr(event, name))
    return copy


class PersonalDataAuditLog:
    """An AuditLog that seals personal values before `inner` (the PostgreSQL or memory log)
    chains the event. Reads are the inner log's, as stored."""

    def __init__(self, inner: AuditLog, personal: PersonalData) -> None:
        self.inner = inner
        self.personal = personal

    def record(self, uow: UnitOfWork, event: AuditEvent) -> AuditRecord:
        return self.inner.record(uow, self.personal.seal(uow.subject_keys, event))

    def _sealed_apart(self, events: Sequence[AuditEvent]) -> list[AuditEvent]:
        """Seal in a transaction of its own per organization (a new key is committed before the
        events are written; it would be harmless if they then were not)."""
        sealed = list(events)
        for organization_id in {event.organization_id for event in events if self.personal.needs_sealing(event)}:
            with self.personal.database.unit_of_work(organization_id) as uow:
                for index, event in enumerate(events):
                    if event.organization_id == organization_id:
                        sealed[index] = self.personal.seal(uow.subject_keys, event)
                uow.commit()
        return sealed

    def record_independently(self, event: AuditEvent) -> AuditRecord:
        [sealed] = self._sealed_apart([event])
        return self.inner.record_independently(sealed)

    def record_batch(self, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        return self.inner.record_batch(self._sealed_apart(events))

    def chain_keys(self) -> list[uuid.UUID]:
        return self.inner.chain_keys()

    def chain_head(self, chain_key: uuid.UUID) -> ChainHead | None:
        return self.inner.chain_head(chain_key)

    def read_chain(self, chain_key: uuid.UUID, after_sequence: int, limit: int) -> list[AuditRecord]:
        return self.inner.read_chain(chain_key, after_sequence, limit)

    def record_at(self, chain_key: uuid.UUID, sequence_number: int) -> AuditRecord | None:
        return self.inner.record_at(chain_key, sequence_number)

    def last_sequence_before(self, chain_key: uuid.UUID, cutoff: dt.datetime) -> int | None:
        return self.inner.last_sequence_before(chain_key, cutoff)

    def list_records(self, organization_id: uuid.UUID, query: AuditQuery) -> AuditPage:
        return self.inner.list_records(organization_id, query)

    def all_chain_heads(self) -> list[ChainHead]:
        return self.inner.all_chain_heads()

    def sequence_range(self, chain_key: uuid.UUID, created_from: dt.datetime | None,
                       created_to: dt.datetime | None) -> tuple[int, int] | None:
        return self.inner.sequence_range(chain_key, created_from, created_to)

    def purge_through(self, checkpoint: ChainCheckpoint) -> int:
        return self.inner.purge_through(checkpoint)


_check: type[AuditLog] = PersonalDataAuditLog
