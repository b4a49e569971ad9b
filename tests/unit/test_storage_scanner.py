"""Scanner port pieces that need no daemon: reply parsing (the strings real clamd sends), the
in-memory fake and the explicit disabled scanner."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reckai.adapters.clamav.disabled import DISABLED_DETAIL, DisabledScanner
from reckai.adapters.clamav.scanner import _parse
from reckai.adapters.memory.scanner import EICAR, InMemoryScanner
from reckai.application.ports.scanner import ScanLimitExceeded, ScannerUnavailable, ScanVerdict


def test_clean_reply() -> None:
    assert _parse("stream: OK", 10).verdict is ScanVerdict.CLEAN


def test_found_reply_carries_the_signature() -> None:
    result = _parse("stream: Win.Test.EICAR_HDB-1 FOUND", 68)
    assert (result.verdict, result.signature, result.scanned_bytes) == (ScanVerdict.INFECTED, "Win.Test.EICAR_HDB-1", 68)


@pytest.mark.parametrize(
    "reply",
    ["INSTREAM size limit exceeded. ERROR", "stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND",
     "stream: Heuristics.Limits.Exceeded.MaxScanSize FOUND"],
)
def test_limit_replies_refuse(reply: str) -> None:
    with pytest.raises(ScanLimitExceeded):
        _parse(reply, 1)


@pytest.mark.parametrize("reply", ["", "stream: lstat() failed. ERROR", "UNKNOWN COMMAND", "stream:", "PONG"])
def test_anything_else_is_unavailable_never_clean(reply: str) -> None:
    with pytest.raises(ScannerUnavailable):
        _parse(reply, 1)


@given(st.text(max_size=80))
def test_no_reply_but_ok_is_ever_clean(reply: str) -> None:
    try:
        result = _parse(reply, 0)
    except (ScannerUnavailable, ScanLimitExceeded):
        return
    assert result.verdict is ScanVerdict.INFECTED or reply.strip() == "stream: OK"


def test_memory_scanner_finds_marker_across_chunk_edges() -> None:
    scanner = InMemoryScanner()
    assert scanner.scan([b"a" * 100 + EICAR[:30], EICAR[30:], b"tail"]).signature == "Eicar-Test-Signature"
    assert scanner.scan([b"plain,csv\n"]).verdict is ScanVerdict.CLEAN


def test_memory_scanner_fails_closed() -> None:
    scanner = InMemoryScanner(stream_max_bytes=10)
    with pytest.raises(ScanLimitExceeded):
        scanner.scan([b"x" * 11])
    scanner.available = False
    with pytest.raises(ScannerUnavailable):
        scanner.scan([b"x"])
    assert not scanner.health().ok


def test_disabled_scanner_says_so_and_never_claims_clean() -> None:
    scanner = DisabledScanner()
    assert not scanner.enabled
    assert scanner.scan([EICAR]).verdict is ScanVerdict.NOT_SCANNED
    report = scanner.health()
    assert report.ok and report.detail == DISABLED_DETAIL
