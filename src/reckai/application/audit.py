"""Audit use cases: record an event, verify the chains (one use case, `verify_audit_trail`, for the
CLI, the API and reports), anchor the chain heads outside the database, purge what is past
retention."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from reckai.application.ports.audit import (
    READ_PAGE_MAX,
    AuditAnchorStore,
    AuditLog,
    AuditPurgeRefused,
)
from reckai.application.ports.jobs import JobDelivery
from reckai.application.ports.unit_of_work import UnitOfWork
from reckai.domain.audit.anchors import AnchoredHead, HeadCheckpoint
from reckai.domain.audit.chain import (
    AuditSigner,
    BreakReason,
    ChainBreak,
    ChainVerification,
    ChainVerifier,
    anchor_break,
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


_log = logging.getLogger("reckai.audit")


@dataclass(frozen=True)
class AuditTrailVerification:
    """The verdict on one chain (an organization's trail, or the system chain), over a period or
    whole: intact, or the first broken row (or missing range)."""

    chain_key: uuid.UUID
    records_checked: int
    first_break: ChainBreak | None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    first_sequence: int | None = None  # the verified rows' sequences (None: no row in the period)
    last_sequence: int | None = None
    # What the latest head checkpoint anchors for this chain (None: no checkpoint names it yet);
    # rows after it, written in the last minute or so, are not anchored.
    anchored_sequence: int | None = None
    anchored_at: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.first_break is None


def verify_audit_trail(
    audit_log: AuditLog,
    signer: AuditSigner,
    anchors: AuditAnchorStore | None,
    chain_key: uuid.UUID,
    *,
    created_from: dt.datetime | None = None,
    created_to: dt.datetime | None = None,
    now: dt.datetime | None = None,
    latest_checkpoint: HeadCheckpoint | None = None,
    page_size: int = READ_PAGE_MAX,
) -> AuditTrailVerification:
    """THE verification of an audit trail: `reckai audit verify`, `GET /api/audit-logs/verify` and
    reports call this.

    Recomputes the chain's rows with created_from <= created_at < created_to (the whole chain
    without a period) page by page: sequence continuity, links, HMACs. The first row of a period
    links to the stored hash of the row before it (that row itself is outside what was asked).
    When the period is open-ended (no `created_to`) the chain's end is checked too: against the
    chain head (rows deleted from the end) and against the latest signed head checkpoint kept
    outside the database (`anchors`): rows it anchors that are gone, even with the head moved
    back, are a `truncated` break naming the missing sequences. `latest_checkpoint` lets a caller
    verifying many chains read the store once.
    """
    head = audit_log.chain_head(chain_key)
    verifier = ChainVerifier(signer, chain_key, head.checkpoint if head else None, now)
    checkpoint = latest_checkpoint if latest_checkpoint is not None else (anchors.latest() if anchors else None)
    anchored = checkpoint.head_of(chain_key) if checkpoint else None
    whole = created_from is None and created_to is None
    bounds = None if whole else audit_log.sequence_range(chain_key, created_from, created_to)
    first_sequence: int | None = None
    if whole or bounds is not None:
        first, last = bounds if bounds is not None else (verifier.last_sequence + 1, None)
        if first - 1 > verifier.last_sequence and verifier.first_break is None:
            before = audit_log.record_at(chain_key, first - 1)
            if before is None:
                verifier.first_break = ChainBreak(chain_key, first - 1, None, BreakReason.SEQUENCE_GAP,
                                                  f"row {first - 1}, before the period, is missing")
            else:
                verifier.expected_sequence, verifier.previous_hash = first, before.hash
        after = verifier.last_sequence
        while verifier.first_break is None:
            page = audit_log.read_chain(chain_key, after, page_size)
            if last is not None:
                page = [record for record in page if record.sequence_number <= last]
            if not page:
                break
            if first_sequence is None:
                first_sequence = page[0].sequence_number
            verifier.check(page)
            after = page[-1].sequence_number
            if last is not None and after >= last:
                break
    if created_to is not None:
        result = verifier.finish(None)
    else:
        result = verifier.finish(head)
        if result.first_break is None:
            table_last = verifier.last_sequence if (whole or bounds is not None) else _table_end(audit_log, chain_key)
            brk = anchor_break(signer, chain_key, checkpoint, table_last,
                               lambda n: _hash_at(audit_log, chain_key, n))
            if brk is not None:
                result = ChainVerification(chain_key, result.records_checked, brk)
    return AuditTrailVerification(
        chain_key, result.records_checked, result.first_break, created_from, created_to, first_sequence,
        verifier.last_sequence if result.records_checked else None,
        anchored.sequence if anchored else None, checkpoint.written_at if checkpoint and anchored else None)


def _table_end(audit_log: AuditLog, chain_key: uuid.UUID) -> int:
    bounds = audit_log.sequence_range(chain_key, None, None)
    return bounds[1] if bounds else 0


def _hash_at(audit_log: AuditLog, chain_key: uuid.UUID, sequence: int) -> str | None:
    record = audit_log.record_at(chain_key, sequence)
    if record is not None:
        return record.hash
    head = audit_log.chain_head(chain_key)
    purged = head.checkpoint if head else None
    if purged is not None and sequence == purged.through_sequence:
        return purged.through_hash
    return None


def verify_chains(
    audit_log: AuditLog,
    signer: AuditSigner,
    organization_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
    anchors: AuditAnchorStore | None = None,
) -> list[AuditTrailVerification]:
    """Verify one organization's chain, or every chain (each organization and the system chain,
    and any chain the latest head checkpoint names that the database no longer has)."""
    checkpoint = anchors.latest() if anchors else None
    if organization_id is not None:
        keys = [organization_id]
    else:
        keys = sorted(set(audit_log.chain_keys()) | {head.chain_key for head in (checkpoint.heads if checkpoint else ())})
    return [verify_audit_trail(audit_log, signer, anchors, key, now=now, latest_checkpoint=checkpoint)
            for key in keys]


# --- anchors: signed head checkpoints outside the database ------------------------------------------


def anchor_chain_heads(
    audit_log: AuditLog, signer: AuditSigner, anchors: AuditAnchorStore, now: dt.datetime
) -> tuple[HeadCheckpoint, str]:
    """Sign every chain's current head and write it to the anchor store; also log it (the log
    shipping keeps a second copy). Returns the checkpoint and where it went."""
    heads = [AnchoredHead(head.chain_key, head.last_sequence, head.last_hash) for head in audit_log.all_chain_heads()]
    checkpoint = signer.sign_head_checkpoint(now, heads)
    location = anchors.write(checkpoint)
    _log.info("audit head checkpoint written", extra={"action": "audit.checkpoint", "metadata": {
        "location": location, "chains": len(heads), "checkpoint": checkpoint.to_json()}})
    return checkpoint, location


def anchor_chain_heads_job(
    audit_log: AuditLog, signer: AuditSigner, anchors: AuditAnchorStore, delivery: JobDelivery
) -> None:
    """The periodic `anchor_audit_chains` job (docs/audit.md, "Anchors")."""
    anchor_chain_heads(audit_log, signer, anchors, dt.datetime.now(dt.UTC))


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
