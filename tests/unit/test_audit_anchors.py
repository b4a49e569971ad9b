"""Signed head checkpoints (issue 17 item 2): the signature, the comparison of a chain with the latest
checkpoint (truncation names the missing range), the append-only file store, the periodic job's
wiring and its settings. PostgreSQL truncation end to end: tests/integration/test_audit_trail_postgres.py;
S3 Object Lock: tests/integration/test_audit_anchors_s3.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reckai.adapters.filesystem.audit_anchors import AppendOnlyFileAnchorStore
from reckai.application import job_types
from reckai.application.audit import anchor_chain_heads, verify_audit_trail
from reckai.application.ports.audit import AuditAnchorFailed
from reckai.bootstrap import bootstrap_in_memory, scheduler_tick
from reckai.domain.audit.anchors import AnchoredHead, HeadCheckpoint, InvalidCheckpointDocument
from reckai.domain.audit.chain import AuditSigner, BreakReason, anchor_break
from reckai.domain.audit.events import AuditEvent
from reckai.settings import AuditSettings, Settings, SettingsError

SIGNER = AuditSigner("k1", "anchor-unit-test-key-0000000000000000000000")
ORG = uuid.UUID(int=42)
NOW = dt.datetime(2026, 12, 7, 6, 0)


def _checkpoint(sequence: int = 7, hash_: str = "a" * 64) -> HeadCheckpoint:
    return SIGNER.sign_head_checkpoint(NOW, [AnchoredHead(ORG, sequence, hash_)])


def test_a_checkpoint_round_trips_and_any_change_breaks_its_signature() -> None:
    checkpoint = _checkpoint()
    again = HeadCheckpoint.from_json(checkpoint.to_json())
    assert again == checkpoint and SIGNER.head_checkpoint_is_valid(again)
    lowered = dataclasses.replace(checkpoint, heads=(AnchoredHead(ORG, 4, "a" * 64),))
    assert not SIGNER.head_checkpoint_is_valid(lowered)
    assert not SIGNER.head_checkpoint_is_valid(dataclasses.replace(checkpoint, written_at=NOW + dt.timedelta(1)))
    assert not AuditSigner("k1", "another-key-000000000000000000000000000").head_checkpoint_is_valid(checkpoint)
    # a purge checkpoint's or a row's MAC is no head checkpoint signature (a kind of its own)
    purge = SIGNER.sign_checkpoint(ORG, 7, "a" * 64, NOW)
    assert not SIGNER.head_checkpoint_is_valid(dataclasses.replace(checkpoint, signature=purge.signature))
    for garbage in ("", "{}", "[1]", '{"kind": "audit-head-checkpoint", "version": 1}', "not json"):
        with pytest.raises(InvalidCheckpointDocument):
            HeadCheckpoint.from_json(garbage)


@given(table_end=st.integers(0, 50), anchored=st.integers(1, 50))
def test_a_chain_shorter_than_its_anchor_is_truncated_naming_exactly_the_missing_range(table_end: int,
                                                                                        anchored: int) -> None:
    hashes = {n: f"{n:064x}" for n in range(1, table_end + 1)}
    brk = anchor_break(SIGNER, ORG, _checkpoint(anchored, f"{anchored:064x}"), table_end, hashes.get)
    if table_end < anchored:
        assert brk is not None and brk.reason is BreakReason.TRUNCATED
        assert (brk.missing_from, brk.missing_through) == (table_end + 1, anchored)
        assert f"sequences {table_end + 1}..{anchored} are missing" in brk.detail
    else:
        assert brk is None


def test_a_rewritten_anchored_row_a_forged_checkpoint_and_an_unanchored_chain() -> None:
    checkpoint = _checkpoint(3, "b" * 64)
    brk = anchor_break(SIGNER, ORG, checkpoint, 5, lambda n: "c" * 64)
    assert brk is not None and brk.reason is BreakReason.ANCHOR_MISMATCH and brk.sequence_number == 3
    forged = dataclasses.replace(checkpoint, heads=(AnchoredHead(ORG, 1, "b" * 64),))
    brk = anchor_break(SIGNER, ORG, forged, 5, lambda n: "b" * 64)
    assert brk is not None and brk.reason is BreakReason.ANCHOR_INVALID
    assert anchor_break(SIGNER, uuid.uuid4(), checkpoint, 0, lambda n: None) is None  # not anchored yet
    assert anchor_break(SIGNER, ORG, None, 0, lambda n: None) is None


def test_the_file_store_appends_and_reads_the_last_line_whatever_the_length(tmp_path: Path) -> None:
    store = AppendOnlyFileAnchorStore(tmp_path / "var" / "anchors.jsonl")
    assert store.latest() is None
    many = [AnchoredHead(uuid.uuid4(), 5, "d" * 64) for _ in range(400)]  # a line longer than the read chunk
    for index in range(5):
        store.write(SIGNER.sign_head_checkpoint(NOW + dt.timedelta(minutes=index), [*many, AnchoredHead(ORG, index, "e" * 64)]))
    latest = store.latest()
    assert latest is not None and latest.head_of(ORG) == AnchoredHead(ORG, 4, "e" * 64)
    assert len((tmp_path / "var" / "anchors.jsonl").read_text().splitlines()) == 5
    assert (tmp_path / "var" / "anchors.jsonl").stat().st_mode & 0o777 == 0o600
    with (tmp_path / "var" / "anchors.jsonl").open("a") as handle:
        handle.write("{broken\n")
    with pytest.raises(AuditAnchorFailed, match="not a checkpoint"):
        store.latest()


def test_memory_container_anchors_and_verifies_and_the_job_runs_at_least_every_minute() -> None:
    container = bootstrap_in_memory()
    assert container.job_handlers.get(job_types.ANCHOR_AUDIT_CHAINS.name) is not None
    periods = {p.job.job_type.name: p.period_seconds for p in container.job_handlers.schedule}
    period = periods[job_types.ANCHOR_AUDIT_CHAINS.name]
    assert period + scheduler_tick(container.settings) <= 60
    org = uuid.uuid4()
    for _ in range(3):
        container.audit_log.record_independently(AuditEvent(action="test.x", organization_id=org))
    checkpoint, _ = anchor_chain_heads(container.audit_log, container.audit_signer, container.audit_anchors,
                                       dt.datetime.now(dt.UTC))
    assert checkpoint.head_of(org) is not None and checkpoint.head_of(org).sequence == 3  # type: ignore[union-attr]
    result = verify_audit_trail(container.audit_log, container.audit_signer, container.audit_anchors, org)
    assert result.ok and result.anchored_sequence == 3


def test_settings_refuse_a_checkpoint_period_over_a_minute_and_production_without_a_locked_bucket() -> None:
    with pytest.raises(SettingsError, match="AUDIT_ANCHOR_INTERVAL_SECONDS"):
        Settings(audit=AuditSettings(anchor_interval_seconds=90)).validate()
    with pytest.raises(SettingsError, match="AUDIT_ANCHOR_BUCKET"):
        Settings.from_env({"RECKAI_MODE": "production", "DATABASE_URL": "postgresql://a@b/c",
                           "MIGRATION_DATABASE_URL": "postgresql://o@b/c", "REDIS_URL": "redis://r",
                           "STORAGE_BACKEND": "s3", "S3_ENDPOINT": "s3:9000", "S3_ACCESS_KEY": "a",
                           "S3_SECRET_KEY": "s"})
