"""In-memory VirusScanner for unit tests: flags streams containing a known marker, and can be told
to be down or to have a stream limit, so the fail-closed paths of callers can be tested too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from reckai.application.ports.health import HealthReport
from reckai.application.ports.scanner import ScanLimitExceeded, ScannerUnavailable, ScanResult, ScanVerdict
from reckai.application.ports.storage import ByteSource, iter_chunks

# The EICAR anti-virus test string: harmless, and every real scanner flags it.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class InMemoryScanner:
    def __init__(self, signatures: Mapping[str, bytes] | None = None, *,
                 stream_max_bytes: int | None = None) -> None:
        self.signatures = dict(signatures if signatures is not None else {"Eicar-Test-Signature": EICAR})
        self.stream_max_bytes = stream_max_bytes
        self.available = True  # set False to simulate a scanner that is down

    @property
    def enabled(self) -> bool:
        return True

    def scan(self, source: ByteSource) -> ScanResult:
        if not self.available:
            raise ScannerUnavailable("in-memory scanner is set unavailable")
        overlap = max((len(marker) for marker in self.signatures.values()), default=1) - 1
        tail = b""
        scanned = 0
        for chunk in iter_chunks(source):
            scanned += len(chunk)
            if self.stream_max_bytes is not None and scanned > self.stream_max_bytes:
                raise ScanLimitExceeded(f"stream longer than {self.stream_max_bytes} bytes")
            window = tail + chunk
            for name, marker in self.signatures.items():
                if marker in window:
                    return ScanResult(ScanVerdict.INFECTED, signature=name, scanned_bytes=scanned)
            tail = window[-overlap:] if overlap else b""
        return ScanResult(ScanVerdict.CLEAN, scanned_bytes=scanned)

    def health(self) -> HealthReport:
        if not self.available:
            return HealthReport(ok=False, detail="virus scanner down: in-memory scanner set unavailable")
        return HealthReport(ok=True, detail="in-memory virus scanner")


if TYPE_CHECKING:
    from reckai.application.ports.scanner import VirusScanner

    _check: VirusScanner = InMemoryScanner()
