"""The scanner that runs when virus scanning is explicitly off (embedded mode without clamd, or
production with SCANNER_ALLOW_DISABLED=true). It never pretends to have scanned: every verdict is
NOT_SCANNED and its health says so."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reckai.application.ports.health import HealthReport
from reckai.application.ports.scanner import ScanResult, ScanVerdict
from reckai.application.ports.storage import ByteSource

DISABLED_DETAIL = "virus scanning disabled"


class DisabledScanner:
    @property
    def enabled(self) -> bool:
        return False

    def scan(self, source: ByteSource) -> ScanResult:
        return ScanResult(ScanVerdict.NOT_SCANNED)

    def health(self) -> HealthReport:
        return HealthReport(ok=True, detail=DISABLED_DETAIL)


if TYPE_CHECKING:
    from reckai.application.ports.scanner import VirusScanner

    _check: VirusScanner = DisabledScanner()
