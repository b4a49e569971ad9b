"""Virus-scanner port (spec §6.3 "virus scanning on upload").

Failure policy: fail CLOSED. A scanner that is down, times out, answers something unexpected or
hits one of its size limits never lets a file through: callers must refuse the upload on any
ScannerError, exactly as they do on an INFECTED verdict. The one way to accept unscanned files is
the explicit `DisabledScanner` (embedded mode, or production with SCANNER_ALLOW_DISABLED=true),
whose NOT_SCANNED verdict is recorded and shown in `/health/storage`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from reckai.application.ports.health import HealthReport
from reckai.application.ports.storage import ByteSource


class ScanVerdict(str, Enum):
    CLEAN = "clean"
    INFECTED = "infected"
    NOT_SCANNED = "not_scanned"  # only from a scanner that is explicitly disabled


@dataclass(frozen=True)
class ScanResult:
    verdict: ScanVerdict
    signature: str | None = None  # the scanner's signature name when INFECTED
    scanned_bytes: int = 0

    @property
    def infected(self) -> bool:
        return self.verdict is ScanVerdict.INFECTED


class ScannerError(Exception):
    """Base of scanner port errors. Every one of them means: refuse the file."""


class ScannerUnavailable(ScannerError):
    """The scanner could not be reached, timed out, or answered with an error or nonsense."""


class ScanLimitExceeded(ScannerError):
    """The file is beyond what the scanner will inspect (stream, file or scan size, nesting):
    it was NOT fully scanned, so it must be refused, never treated as clean."""

    def __init__(self, limit: str) -> None:
        super().__init__(f"virus scanner limit exceeded: {limit}")
        self.limit = limit


class VirusScanner(Protocol):
    @property
    def enabled(self) -> bool:
        """False only for the explicit disabled scanner."""
        ...

    def scan(self, source: ByteSource) -> ScanResult:
        """Stream `source` to the scanner and return its verdict (CLEAN or INFECTED).

        Raises ScannerUnavailable or ScanLimitExceeded; exceptions raised by `source` itself
        propagate unchanged. The disabled scanner returns NOT_SCANNED without reading.
        """
        ...

    def health(self) -> HealthReport:
        """Ping the scanner. The disabled scanner reports ok with "virus scanning disabled".
        Never raises."""
        ...
