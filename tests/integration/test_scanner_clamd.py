"""The clamd adapter against a real clamd started by the test session (tests/fixtures/clamd.py)."""

from __future__ import annotations

import io
import os
import socket
import zipfile
from collections.abc import Iterator

import pytest

from reckai.adapters.clamav.scanner import ClamdScanner
from reckai.application.ports.scanner import ScanLimitExceeded, ScannerUnavailable, ScanVerdict
from tests.fixtures.clamd import (
    CLAMD_EICAR_SIGNATURE,
    CLAMD_TEST_MARKER,
    CLAMD_TEST_SIGNATURE,
    EICAR,
    ClamdEndpoint,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=["tcp", "unix"])
def scanner(request: pytest.FixtureRequest, clamd_server: ClamdEndpoint) -> ClamdScanner:
    if request.param == "tcp":
        return ClamdScanner(host=clamd_server.host, port=clamd_server.port)
    return ClamdScanner(socket_path=clamd_server.socket_path)


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_clean_csv_is_clean(scanner: ClamdScanner) -> None:
    data = b"date,amount,reference\n2024-03-01,1500.00,RRN123456789012\n" * 1000
    result = scanner.scan(io.BytesIO(data))
    assert result.verdict is ScanVerdict.CLEAN
    assert result.signature is None
    assert result.scanned_bytes == len(data)


def test_marker_split_across_chunks_is_found_with_its_signature(scanner: ClamdScanner) -> None:
    data = b"a,b\n" * 50_000 + CLAMD_TEST_MARKER + b"\n1,2\n"
    result = scanner.scan(_chunks(data, 1000))  # chunk edges fall inside the marker
    assert result.verdict is ScanVerdict.INFECTED
    assert result.signature is not None
    assert result.signature.startswith(CLAMD_TEST_SIGNATURE)


def test_eicar_inside_an_xlsx_like_zip_is_found(scanner: ClamdScanner) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as workbook:
        workbook.writestr("[Content_Types].xml", b"<Types/>")
        workbook.writestr("xl/worksheets/sheet1.xml", b"<sheetData>" + EICAR + b"</sheetData>")
    result = scanner.scan(io.BytesIO(archive.getvalue()))
    assert result.infected
    assert result.signature is not None and result.signature.startswith(CLAMD_EICAR_SIGNATURE)


def test_marker_beyond_debian_default_25mb_limit_is_still_found(clamd_server: ClamdEndpoint) -> None:
    # Debian's stock clamd stops at 25 MB and calls the rest clean; our limits are 200 MiB.
    scanner = ClamdScanner(host=clamd_server.host, port=clamd_server.port)
    padding = b"x" * (1024 * 1024)

    def source() -> Iterator[bytes]:
        for _ in range(30):
            yield padding
        yield CLAMD_TEST_MARKER

    result = scanner.scan(source())
    assert result.infected
    assert result.scanned_bytes == 30 * len(padding) + len(CLAMD_TEST_MARKER)


def test_stream_over_stream_max_length_is_refused(clamd_small_limits: ClamdEndpoint) -> None:
    scanner = ClamdScanner(host=clamd_small_limits.host, port=clamd_small_limits.port)
    with pytest.raises(ScanLimitExceeded) as refused:
        scanner.scan(_chunks(os.urandom(clamd_small_limits.stream_max_bytes * 3), 64 * 1024))
    assert "StreamMaxLength" in refused.value.limit


def test_file_over_max_file_size_is_refused_not_called_clean(clamd_small_limits: ClamdEndpoint) -> None:
    # Under StreamMaxLength but over MaxFileSize: with AlertExceedsMax clamd says
    # Heuristics.Limits.Exceeded.*, which must be a refusal, not an infection and not clean.
    scanner = ClamdScanner(socket_path=clamd_small_limits.socket_path)
    data = b"x" * (clamd_small_limits.max_file_bytes + 10_000) + CLAMD_TEST_MARKER
    with pytest.raises(ScanLimitExceeded) as refused:
        scanner.scan(io.BytesIO(data))
    assert refused.value.limit.startswith("Heuristics.Limits.Exceeded")


def test_clamd_down_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scanner = ClamdScanner(host="127.0.0.1", port=port, connect_timeout_seconds=1)
    with pytest.raises(ScannerUnavailable):
        scanner.scan([b"anything"])
    report = scanner.health()
    assert not report.ok
    assert "down" in report.detail


def test_missing_unix_socket_is_unavailable(tmp_path: object) -> None:
    scanner = ClamdScanner(socket_path=f"{tmp_path}/no-clamd.sock")
    with pytest.raises(ScannerUnavailable):
        scanner.scan([b"anything"])


def test_health_pings_the_daemon(scanner: ClamdScanner) -> None:
    report = scanner.health()
    assert report.ok
    assert "clamd" in report.detail


def test_scanner_that_stops_answering_is_unavailable() -> None:
    # A listener that accepts and never replies: the read timeout must turn into a refusal.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        scanner = ClamdScanner(host="127.0.0.1", port=silent.getsockname()[1], timeout_seconds=0.5)
        with pytest.raises(ScannerUnavailable):
            scanner.scan([b"small"])
