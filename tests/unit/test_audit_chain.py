"""Canonical encoding, sealing and verification of audit chains (pure domain, no service)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reckai.domain.audit.canonical import NotCanonicalisable, canonical_json
from reckai.domain.audit.chain import (
    AuditSigner,
    BreakReason,
    ChainHead,
    retention_cutoff,
    verify_chain,
)
from reckai.domain.audit.events import (
    GENESIS_HASH,
    SYSTEM_CHAIN_KEY,
    AuditEvent,
    AuditRecord,
    InvalidAuditEvent,
)

ORG = uuid.UUID("11111111-1111-1111-1111-111111111111")
START = dt.datetime(2025, 1, 1, 12, 0, 0, 123456)
SIGNER = AuditSigner("k1", "test-key-0123456789-0123456789-0123456789")


def make_chain(count: int, signer: AuditSigner = SIGNER, organization_id: uuid.UUID | None = ORG) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    previous = GENESIS_HASH
    for index in range(count):
        event = AuditEvent(
            action="reconciliation.job.created",
            organization_id=organization_id,
            user_id=uuid.UUID(int=index + 1),
            resource_type="reconciliation_job",
            resource_id=uuid.uuid4(),
            ip_address="192.168.1.1",
            metadata={"job_name": f"POS {index}", "file_count": 2, "match_rate": 0.93},
        )
        record = signer.seal(
            event,
            record_id=uuid.uuid4(),
            sequence_number=index + 1,
            previous_hash=previous,
            created_at=START + dt.timedelta(seconds=index),
        )
        records.append(record)
        previous = record.hash
    return records


def with_event(record: AuditRecord, **changes: Any) -> AuditRecord:
    event = object.__new__(AuditEvent)
    for name in AuditEvent.__dataclass_fields__:
        object.__setattr__(event, name, changes.get(name, getattr(record.event, name)))
    return dataclasses.replace(record, event=event)


# --- canonical encoding ----------------------------------------------------------------------

def test_canonical_json_sorts_keys_and_fixes_formats() -> None:
    value = {"b": 1, "a": [True, None, "é"], "id": uuid.UUID(int=1), "at": dt.datetime(2025, 1, 2, 3, 4, 5)}
    assert canonical_json(value) == (
        '{"a":[true,null,"\\u00e9"],"at":"2025-01-02T03:04:05.000000Z",'
        '"b":1,"id":"00000000-0000-0000-0000-000000000001"}'
    )


def test_aware_timestamps_are_encoded_in_utc() -> None:
    lagos = dt.timezone(dt.timedelta(hours=1))
    assert canonical_json(dt.datetime(2025, 1, 1, 13, 0, tzinfo=lagos)) == '"2025-01-01T12:00:00.000000Z"'


@pytest.mark.parametrize(
    ("written", "read_back"),
    [(1e100, 10**100), (100.0, Decimal("100.0")), (0.1, Decimal("0.1")), (1e-7, Decimal("1E-7")), (5, 5)],
)
def test_numbers_encode_the_same_after_a_jsonb_round_trip(written: Any, read_back: Any) -> None:
    # JSONB gives 1e100 back as an integer and 100.0 as "100.0"; the value, not the type, counts.
    assert canonical_json(written) == canonical_json(read_back)


def test_strings_and_numbers_are_not_confused() -> None:
    assert canonical_json("1") != canonical_json(1)
    assert canonical_json(True) != canonical_json(1)


def test_unencodable_values_are_refused() -> None:
    with pytest.raises(NotCanonicalisable):
        canonical_json({"x": object()})
    with pytest.raises(NotCanonicalisable):
        canonical_json({1: "non-string key"})


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.floats(allow_nan=False, allow_infinity=False)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(), children, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=200)
@given(_json)
def test_canonical_form_is_stable_through_json_text_with_decimal_numbers(value: Any) -> None:
    # What the adapter does on read: parse JSONB text with Decimal floats.
    text = canonical_json(value)
    assert canonical_json(json.loads(text, parse_float=Decimal)) == text


# --- sealing and verifying -------------------------------------------------------------------

def test_an_untouched_chain_verifies() -> None:
    chain = make_chain(5)
    result = verify_chain(SIGNER, ORG, chain, ChainHead(ORG, 5, chain[-1].hash))
    assert result.ok and result.records_checked == 5


def test_sealing_links_each_record_to_the_previous_hash() -> None:
    chain = make_chain(3)
    assert chain[0].previous_hash == GENESIS_HASH
    assert [r.previous_hash for r in chain[1:]] == [r.hash for r in chain[:-1]]
    assert all(len(r.hash) == 64 for r in chain)


def test_a_changed_field_breaks_the_chain_at_that_row() -> None:
    chain = make_chain(5)
    chain[2] = with_event(chain[2], action="reconciliation.job.deleted")
    result = verify_chain(SIGNER, ORG, chain)
    assert result.first_break is not None
    assert result.first_break.record_id == chain[2].id
    assert result.first_break.sequence_number == 3
    assert result.first_break.reason is BreakReason.HASH_MISMATCH
    assert result.records_checked == 2


def test_a_changed_timestamp_or_chain_field_breaks_the_chain() -> None:
    chain = make_chain(3)
    moved = dataclasses.replace(chain[1], created_at=chain[1].created_at + dt.timedelta(microseconds=1))
    assert verify_chain(SIGNER, ORG, [chain[0], moved, chain[2]]).first_break.reason is BreakReason.HASH_MISMATCH  # type: ignore[union-attr]


def test_a_deleted_middle_row_is_a_gap_named_at_the_next_row() -> None:
    chain = make_chain(5)
    del chain[2]
    brk = verify_chain(SIGNER, ORG, chain).first_break
    assert brk is not None
    assert (brk.reason, brk.sequence_number, brk.record_id) == (BreakReason.SEQUENCE_GAP, 4, chain[2].id)


def test_a_renumbered_chain_after_deletion_fails_on_the_previous_hash() -> None:
    chain = make_chain(4)
    del chain[1]
    renumbered = [chain[0]] + [dataclasses.replace(r, sequence_number=i + 2) for i, r in enumerate(chain[1:])]
    brk = verify_chain(SIGNER, ORG, renumbered).first_break
    assert brk is not None and brk.reason is BreakReason.PREVIOUS_HASH_MISMATCH and brk.sequence_number == 2


def test_a_chain_rewritten_without_the_key_fails_at_the_first_row() -> None:
    forger = AuditSigner("k1", "the-owner-guessed-this-key-0000000000000")
    forged = make_chain(4, signer=forger)
    brk = verify_chain(SIGNER, ORG, forged).first_break
    assert brk is not None and brk.reason is BreakReason.HASH_MISMATCH and brk.sequence_number == 1


def test_a_record_sealed_with_an_unknown_key_id_is_reported() -> None:
    other = AuditSigner("k9", "another-key-0000000000000000000000000000")
    brk = verify_chain(SIGNER, ORG, make_chain(2, signer=other)).first_break
    assert brk is not None and brk.reason is BreakReason.UNKNOWN_KEY


def test_rotated_keys_still_verify_old_rows() -> None:
    old = AuditSigner("k0", "old-key-00000000000000000000000000000000")
    first = make_chain(2, signer=old)
    new = AuditSigner("k1", "new-key-00000000000000000000000000000000", previous_keys={"k0": "old-key-00000000000000000000000000000000"})
    third = new.seal(AuditEvent(action="x", organization_id=ORG), record_id=uuid.uuid4(), sequence_number=3,
                     previous_hash=first[-1].hash, created_at=START)
    assert verify_chain(new, ORG, [*first, third]).ok
    assert not verify_chain(SIGNER, ORG, [*first, third]).ok


def test_a_row_moved_to_another_chain_is_reported() -> None:
    chain = make_chain(2)
    other_org = uuid.UUID(int=7)
    brk = verify_chain(SIGNER, other_org, chain).first_break
    assert brk is not None and brk.reason is BreakReason.CHAIN_KEY_MISMATCH


def test_rows_deleted_from_the_tail_are_caught_by_the_head() -> None:
    chain = make_chain(5)
    brk = verify_chain(SIGNER, ORG, chain[:3], ChainHead(ORG, 5, chain[-1].hash)).first_break
    assert brk is not None and brk.reason is BreakReason.MISSING_TAIL and brk.sequence_number == 4


def test_system_chain_uses_the_nil_uuid() -> None:
    chain = make_chain(2, organization_id=None)
    assert all(r.chain_key == SYSTEM_CHAIN_KEY for r in chain)
    assert verify_chain(SIGNER, SYSTEM_CHAIN_KEY, chain).ok


def test_the_nil_uuid_is_not_an_organization() -> None:
    with pytest.raises(InvalidAuditEvent):
        AuditEvent(action="x", organization_id=SYSTEM_CHAIN_KEY)


@pytest.mark.parametrize("bad", [{"action": ""}, {"action": "x" * 101}, {"action": "ok", "response_status": 42},
                                 {"action": "ok", "user_id": "not-a-uuid"}])
def test_malformed_events_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidAuditEvent):
        AuditEvent(**bad)


# --- retention checkpoints -------------------------------------------------------------------

def test_verification_resumes_from_a_signed_checkpoint() -> None:
    chain = make_chain(6)
    checkpoint = SIGNER.sign_checkpoint(ORG, 3, chain[2].hash, chain[2].created_at)
    head = ChainHead(ORG, 6, chain[-1].hash, checkpoint)
    now = START + dt.timedelta(days=366 * 8)
    result = verify_chain(SIGNER, ORG, chain[3:], head, now=now)
    assert result.ok and result.records_checked == 3


def test_a_forged_checkpoint_does_not_verify() -> None:
    chain = make_chain(6)
    forger = AuditSigner("k1", "the-owner-guessed-this-key-0000000000000")
    checkpoint = forger.sign_checkpoint(ORG, 3, chain[2].hash, chain[2].created_at)
    brk = verify_chain(SIGNER, ORG, chain[3:], ChainHead(ORG, 6, chain[-1].hash, checkpoint),
                       now=START + dt.timedelta(days=366 * 8)).first_break
    assert brk is not None and brk.reason is BreakReason.INVALID_CHECKPOINT


def test_a_checkpoint_over_rows_younger_than_seven_years_is_reported() -> None:
    chain = make_chain(6)
    checkpoint = SIGNER.sign_checkpoint(ORG, 3, chain[2].hash, chain[2].created_at)
    brk = verify_chain(SIGNER, ORG, chain[3:], ChainHead(ORG, 6, chain[-1].hash, checkpoint),
                       now=START + dt.timedelta(days=365)).first_break
    assert brk is not None and brk.reason is BreakReason.INVALID_CHECKPOINT


def test_retention_cutoff_is_seven_calendar_years() -> None:
    assert retention_cutoff(dt.datetime(2032, 3, 1, 10, 0)) == dt.datetime(2025, 3, 1, 10, 0)
    assert retention_cutoff(dt.datetime(2032, 2, 29)) == dt.datetime(2025, 2, 28)


def test_signer_repr_hides_the_key() -> None:
    assert "test-key" not in repr(SIGNER)
