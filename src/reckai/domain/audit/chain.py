"""Sealing audit records into per-organization HMAC chains, and verifying the chains.

Each record's `hash` is HMAC-SHA256(key, canonical encoding of all its other fields, including
`previous_hash`, the `hash` of the record before it in the same chain). The key lives outside
the database (settings), so someone who can rewrite the table, the owner or a superuser, cannot
produce hashes that verify: changing a field, deleting a row or re-chaining from scratch breaks
the chain at the first row touched.

Purging rows past retention (seven years) removes a prefix of a chain. What it removed is
summarised in a checkpoint (last purged sequence, its hash and timestamp) that is itself signed
with the key, so verification resumes from it and a forged checkpoint does not verify.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from reckai.domain.audit.anchors import AnchoredHead, HeadCheckpoint
from reckai.domain.audit.canonical import canonical_bytes
from reckai.domain.audit.events import GENESIS_HASH, AuditEvent, AuditRecord, chain_key_for

RETENTION_YEARS = 7


class UnknownAuditKey(LookupError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"no audit HMAC key with id {key_id!r}")
        self.key_id = key_id


class BreakReason(str, Enum):
    HASH_MISMATCH = "hash_mismatch"  # the row's content or hash was changed
    SEQUENCE_GAP = "sequence_gap"  # a row is missing before this one (or sequences were renumbered)
    PREVIOUS_HASH_MISMATCH = "previous_hash_mismatch"  # the row does not link to the row before it
    UNKNOWN_KEY = "unknown_key"  # sealed with a key id the verifier does not hold
    CHAIN_KEY_MISMATCH = "chain_key_mismatch"  # the row claims another chain than it is stored in
    MISSING_TAIL = "missing_tail"  # the chain head records more rows than are present
    INVALID_CHECKPOINT = "invalid_checkpoint"  # the purge checkpoint was forged or altered
    TRUNCATED = "truncated"  # rows the latest head checkpoint anchors are missing from the end
    ANCHOR_MISMATCH = "anchor_mismatch"  # the row at the anchored sequence has another hash
    ANCHOR_INVALID = "anchor_invalid"  # the latest head checkpoint's signature does not verify


@dataclass(frozen=True)
class ChainBreak:
    chain_key: uuid.UUID
    sequence_number: int
    record_id: uuid.UUID | None  # None when the break is not a row (missing tail, bad checkpoint)
    reason: BreakReason
    detail: str
    # TRUNCATED: the sequences known to be missing (first..last, both inclusive)
    missing_from: int | None = None
    missing_through: int | None = None

    def describe(self) -> str:
        row = f"row {self.record_id}" if self.record_id else "no row"
        return f"chain {self.chain_key}: {row} at sequence {self.sequence_number}: {self.reason.value} ({self.detail})"


@dataclass(frozen=True)
class ChainCheckpoint:
    """What a retention purge removed: the chain continues after `through_sequence`."""

    chain_key: uuid.UUID
    through_sequence: int
    through_hash: str
    through_created_at: dt.datetime
    key_id: str
    signature: str

    def signed_fields(self) -> dict[str, object]:
        return {
            "kind": "audit-checkpoint",
            "chain_key": self.chain_key,
            "through_sequence": self.through_sequence,
            "through_hash": self.through_hash,
            "through_created_at": self.through_created_at,
            "key_id": self.key_id,
        }


@dataclass(frozen=True)
class ChainHead:
    """The chain's bookkeeping row: how far it goes, and where it starts after purges."""

    chain_key: uuid.UUID
    last_sequence: int
    last_hash: str
    checkpoint: ChainCheckpoint | None = None


@dataclass(frozen=True)
class ChainVerification:
    chain_key: uuid.UUID
    records_checked: int
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


class AuditSigner:
    """Holds the current key (for sealing) and older keys by id (for verifying after rotation)."""

    def __init__(self, key_id: str, key: str | bytes, previous_keys: Mapping[str, str | bytes] | None = None) -> None:
        if not key_id:
            raise ValueError("audit key id must not be empty")
        if not key:
            raise ValueError("audit HMAC key must not be empty")
        self.key_id = key_id
        self._keys = {name: _as_bytes(value) for name, value in (previous_keys or {}).items()}
        self._keys[key_id] = _as_bytes(key)

    def __repr__(self) -> str:  # never show key material
        return f"AuditSigner(key_id={self.key_id!r}, known_keys={sorted(self._keys)!r})"

    def knows(self, key_id: str) -> bool:
        return key_id in self._keys

    def seal(
        self,
        event: AuditEvent,
        *,
        record_id: uuid.UUID,
        sequence_number: int,
        previous_hash: str,
        created_at: dt.datetime,
    ) -> AuditRecord:
        if sequence_number < 1:
            raise ValueError("sequence numbers start at 1")
        unsigned = AuditRecord(
            id=record_id,
            chain_key=event.chain_key,
            sequence_number=sequence_number,
            previous_hash=previous_hash,
            hash="",
            key_id=self.key_id,
            created_at=_utc_naive(created_at),
            event=event,
        )
        return _replace_hash(unsigned, self.compute_hash(unsigned))

    def compute_hash(self, record: AuditRecord) -> str:
        return self._mac(record.key_id, canonical_bytes(record.sealed_fields()))

    def sign_checkpoint(
        self, chain_key: uuid.UUID, through_sequence: int, through_hash: str, through_created_at: dt.datetime
    ) -> ChainCheckpoint:
        unsigned = ChainCheckpoint(
            chain_key=chain_key,
            through_sequence=through_sequence,
            through_hash=through_hash,
            through_created_at=_utc_naive(through_created_at),
            key_id=self.key_id,
            signature="",
        )
        signature = self._mac(self.key_id, canonical_bytes(unsigned.signed_fields()))
        return ChainCheckpoint(**{**unsigned.__dict__, "signature": signature})

    def checkpoint_is_valid(self, checkpoint: ChainCheckpoint) -> bool:
        if not self.knows(checkpoint.key_id):
            return False
        expected = self._mac(checkpoint.key_id, canonical_bytes(checkpoint.signed_fields()))
        return hmac.compare_digest(expected, checkpoint.signature)

    def sign_head_checkpoint(self, written_at: dt.datetime, heads: Iterable[AnchoredHead]) -> HeadCheckpoint:
        """Every chain's head at `written_at`, signed (a message kind of its own: no row hash or
        purge checkpoint can be passed off as one)."""
        unsigned = HeadCheckpoint(_utc_naive(written_at), self.key_id,
                                  tuple(sorted(heads, key=lambda head: head.chain_key)), "")
        signature = self._mac(self.key_id, canonical_bytes(unsigned.signed_fields()))
        return HeadCheckpoint(unsigned.written_at, unsigned.key_id, unsigned.heads, signature)

    def head_checkpoint_is_valid(self, checkpoint: HeadCheckpoint) -> bool:
        if not self.knows(checkpoint.key_id):
            return False
        expected = self._mac(checkpoint.key_id, canonical_bytes(checkpoint.signed_fields()))
        return hmac.compare_digest(expected, checkpoint.signature)

    def _mac(self, key_id: str, message: bytes) -> str:
        try:
            key = self._keys[key_id]
        except KeyError:
            raise UnknownAuditKey(key_id) from None
        return hmac.new(key, message, hashlib.sha256).hexdigest()


class ChainVerifier:
    """Checks one chain, record by record in sequence order, and remembers the first break.

    Feed it pages with `check(records)` (so a long chain never has to be in memory at once), then
    call `finish(head)`. Checks per record, in order: sequence continues (gap), the record links
    to the previous hash, the chain key is this chain's, the key id is known, the HMAC matches.
    """

    def __init__(
        self,
        signer: AuditSigner,
        chain_key: uuid.UUID,
        checkpoint: ChainCheckpoint | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        self._signer = signer
        self.chain_key = chain_key
        self.records_checked = 0
        self.first_break: ChainBreak | None = None
        self.expected_sequence = 1
        self.previous_hash = GENESIS_HASH
        if checkpoint is not None and checkpoint.through_sequence > 0:
            problem = _checkpoint_problem(signer, chain_key, checkpoint, now)
            if problem:
                self.first_break = ChainBreak(
                    chain_key, checkpoint.through_sequence, None, BreakReason.INVALID_CHECKPOINT, problem
                )
            self.expected_sequence = checkpoint.through_sequence + 1
            self.previous_hash = checkpoint.through_hash

    @property
    def last_sequence(self) -> int:
        return self.expected_sequence - 1

    def check(self, records: Iterable[AuditRecord]) -> bool:
        """Check the next records; False once the chain is broken (stop reading then)."""
        if self.first_break is not None:
            return False
        for record in records:
            problem = self._problem(record)
            if problem is not None:
                reason, detail = problem
                self.first_break = ChainBreak(self.chain_key, record.sequence_number, record.id, reason, detail)
                return False
            self.records_checked += 1
            self.expected_sequence = record.sequence_number + 1
            self.previous_hash = record.hash
        return True

    def finish(self, head: ChainHead | None = None) -> ChainVerification:
        if self.first_break is None and head is not None:
            if head.last_sequence > self.last_sequence:
                self.first_break = ChainBreak(
                    self.chain_key,
                    self.last_sequence + 1,
                    None,
                    BreakReason.MISSING_TAIL,
                    f"the chain head records {head.last_sequence} rows, the table ends at {self.last_sequence}",
                )
            elif head.last_sequence == self.last_sequence and head.last_hash != self.previous_hash:
                self.first_break = ChainBreak(
                    self.chain_key,
                    self.last_sequence,
                    None,
                    BreakReason.MISSING_TAIL,
                    "the chain head's last hash differs from the last row's hash",
                )
        return ChainVerification(self.chain_key, self.records_checked, self.first_break)

    def _problem(self, record: AuditRecord) -> tuple[BreakReason, str] | None:
        if record.sequence_number != self.expected_sequence:
            return BreakReason.SEQUENCE_GAP, (
                f"expected sequence {self.expected_sequence}, found {record.sequence_number}"
            )
        if not hmac.compare_digest(record.previous_hash, self.previous_hash):
            return BreakReason.PREVIOUS_HASH_MISMATCH, "previous_hash is not the hash of the row before"
        if record.chain_key != self.chain_key or record.chain_key != chain_key_for(record.event.organization_id):
            return BreakReason.CHAIN_KEY_MISMATCH, "the row's organization does not match its chain"
        if not self._signer.knows(record.key_id):
            return BreakReason.UNKNOWN_KEY, f"sealed with unknown key id {record.key_id!r}"
        if not hmac.compare_digest(self._signer.compute_hash(record), record.hash):
            return BreakReason.HASH_MISMATCH, "the row's content does not match its hash"
        return None


def verify_chain(
    signer: AuditSigner,
    chain_key: uuid.UUID,
    records: Iterable[AuditRecord],
    head: ChainHead | None = None,
    now: dt.datetime | None = None,
) -> ChainVerification:
    verifier = ChainVerifier(signer, chain_key, head.checkpoint if head else None, now)
    verifier.check(records)
    return verifier.finish(head)


def anchor_break(
    signer: AuditSigner,
    chain_key: uuid.UUID,
    checkpoint: HeadCheckpoint | None,
    table_last_sequence: int,
    hash_at: Callable[[int], str | None],
) -> ChainBreak | None:
    """Compare a chain as the database holds it with the latest head checkpoint.

    `table_last_sequence` is the last sequence present in the table (0: no row); `hash_at(n)` the
    stored hash of row n (None if absent). A chain the checkpoint does not name is not anchored yet
    (it began after the checkpoint): no break.
    """
    if checkpoint is None:
        return None
    if not signer.head_checkpoint_is_valid(checkpoint):
        return ChainBreak(chain_key, 0, None, BreakReason.ANCHOR_INVALID,
                          f"the head checkpoint of {_stamp(checkpoint.written_at)} does not verify")
    anchored = checkpoint.head_of(chain_key)
    if anchored is None or anchored.sequence < 1:
        return None
    if table_last_sequence < anchored.sequence:
        first = table_last_sequence + 1
        return ChainBreak(
            chain_key, first, None, BreakReason.TRUNCATED,
            f"sequences {first}..{anchored.sequence} are missing: the head checkpoint of "
            f"{_stamp(checkpoint.written_at)} anchors sequence {anchored.sequence}, the table ends at "
            f"{table_last_sequence}",
            missing_from=first, missing_through=anchored.sequence)
    stored = hash_at(anchored.sequence)
    if stored is None or not hmac.compare_digest(stored, anchored.hash):
        return ChainBreak(
            chain_key, anchored.sequence, None, BreakReason.ANCHOR_MISMATCH,
            f"the row at sequence {anchored.sequence} is not the one the head checkpoint of "
            f"{_stamp(checkpoint.written_at)} anchors")
    return None


def _stamp(moment: dt.datetime) -> str:
    return _utc_naive(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def retention_cutoff(now: dt.datetime) -> dt.datetime:
    """The instant before which audit rows may be purged: seven calendar years before `now`."""
    moment = _utc_naive(now)
    try:
        return moment.replace(year=moment.year - RETENTION_YEARS)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - RETENTION_YEARS, day=28)


def _checkpoint_problem(
    signer: AuditSigner, chain_key: uuid.UUID, checkpoint: ChainCheckpoint, now: dt.datetime | None
) -> str | None:
    if checkpoint.chain_key != chain_key:
        return "checkpoint belongs to another chain"
    if not signer.checkpoint_is_valid(checkpoint):
        return "checkpoint signature does not verify"
    if now is not None and checkpoint.through_created_at >= retention_cutoff(now):
        return "checkpoint purged rows younger than the retention period"
    return None


def _replace_hash(record: AuditRecord, new_hash: str) -> AuditRecord:
    return AuditRecord(**{**record.__dict__, "hash": new_hash})


def _as_bytes(key: str | bytes) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def _utc_naive(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is not None:
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment
