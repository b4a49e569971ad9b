"""Audit use cases: record an event, verify the chains, purge what is past retention."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from reckai.application.ports.audit import READ_PAGE_MAX, AuditLog, AuditPurgeRefused
from reckai.application.ports.unit_of_work import UnitOfWork
from reckai.domain.audit.chain import (
    AuditSigner,
    ChainVerification,
    ChainVerifier,
    retention_cutoff,
)
from reckai.domain.audit.events import AuditEvent, AuditRecord


def record_event(audit_log: AuditLog, event: AuditEvent, uow: UnitOfWork | None = None) -> AuditRecord:
    """Record within `uow` when given (commits with it), else in a transaction of its own."""
    if uow is None:
        return audit_log.record_independently(event)
    return audit_log.record(uow, event)


def verify_chain(
    audit_log: AuditLog,
    signer: AuditSigner,
    chain_key: uuid.UUID,
    now: dt.datetime | None = None,
    page_size: int = READ_PAGE_MAX,
    through_sequence: int | None = None,
) -> ChainVerification:
    """Recompute one chain page by page; the result names the first broken row, if any.

    `through_sequence` stops early (used before a purge); otherwise the chain head is checked
    too, so rows deleted from the end are caught.
    """
    head = audit_log.chain_head(chain_key)
    verifier = ChainVerifier(signer, chain_key, head.checkpoint if head else None, now)
    after = verifier.last_sequence
    while verifier.first_break is None:
        page = audit_log.read_chain(chain_key, after, page_size)
        if through_sequence is not None:
            page = [record for record in page if record.sequence_number <= through_sequence]
        if not page:
            break
        verifier.check(page)
        after = page[-1].sequence_number
        if through_sequence is not None and after >= through_sequence:
            break
    return verifier.finish(None if through_sequence is not None else head)


def verify_chains(
    audit_log: AuditLog,
    signer: AuditSigner,
    organization_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> list[ChainVerification]:
    """Verify one organization's chain, or every chain (each organization and the system chain)."""
    keys = [organization_id] if organization_id is not None else audit_log.chain_keys()
    return [verify_chain(audit_log, signer, key, now) for key in keys]


@dataclass(frozen=True)
class PeriodVerification:
    """The organization's chain verified from its start (or purge checkpoint) through the last row
    before `period_end`: a row of the period links to every row before it, so the whole prefix is
    checked. `rows_in_period` is how many of the checked rows fall in [period_start, period_end)."""

    organization_id: uuid.UUID
    period_start: dt.datetime
    period_end: dt.datetime
    verification: ChainVerification
    rows_in_period: int

    @property
    def result(self) -> str:
        """"intact", or the first broken row described."""
        first = self.verification.first_break
        return "intact" if first is None else first.describe()


def verify_organization_period(audit_log: AuditLog, signer: AuditSigner, organization_id: uuid.UUID,
                               period_start: dt.datetime, period_end: dt.datetime,
                               now: dt.datetime | None = None) -> PeriodVerification:
    """THE verification of one organization's audit trail over a period: the audit report calls it
    (application/reports), and so will `GET /api/audit-logs/verify` (issue 14's later part).

    Through the end of the chain when the period reaches it (the chain head is checked too, so
    rows removed from the end are caught); otherwise through the last row before `period_end`."""
    naive_end = period_end.astimezone(dt.UTC).replace(tzinfo=None)
    naive_start = period_start.astimezone(dt.UTC).replace(tzinfo=None)
    head = audit_log.chain_head(organization_id)
    through = audit_log.last_sequence_before(organization_id, naive_end)
    reaches_end = head is None or through is None or through >= head.last_sequence
    verification = verify_chain(audit_log, signer, organization_id, now,
                                through_sequence=None if reaches_end else through)
    in_period = 0
    after = 0
    while True:
        page = audit_log.read_chain(organization_id, after, READ_PAGE_MAX)
        if not page:
            break
        in_period += sum(1 for r in page if naive_start <= r.created_at < naive_end)
        after = page[-1].sequence_number
        if page[-1].created_at >= naive_end:
            break
    return PeriodVerification(organization_id, period_start, period_end, verification, in_period)


@dataclass(frozen=True)
class PurgeOutcome:
    chain_key: uuid.UUID
    rows_removed: int
    through_sequence: int | None  # None: nothing was old enough


def purge_expired(
    audit_log: AuditLog, signer: AuditSigner, chain_key: uuid.UUID, now: dt.datetime
) -> PurgeOutcome:
    """Remove the chain's rows older than seven years, leaving a signed checkpoint.

    The rows to remove are verified first: purging a tampered prefix would launder it, so a
    broken prefix refuses the purge (AuditPurgeRefused) and is left for investigation.
    """
    through = audit_log.last_sequence_before(chain_key, retention_cutoff(now))
    head = audit_log.chain_head(chain_key)
    if through is None or head is None or (head.checkpoint and through <= head.checkpoint.through_sequence):
        return PurgeOutcome(chain_key, 0, None)
    prefix = verify_chain(audit_log, signer, chain_key, now, through_sequence=through)
    if prefix.first_break is not None:
        raise AuditPurgeRefused(chain_key, "the rows to purge do not verify: " + prefix.first_break.describe())
    last = audit_log.record_at(chain_key, through)
    if last is None:
        raise AuditPurgeRefused(chain_key, f"row {through} disappeared")
    checkpoint = signer.sign_checkpoint(chain_key, last.sequence_number, last.hash, last.created_at)
    removed = audit_log.purge_through(checkpoint)
    return PurgeOutcome(chain_key, removed, through)
