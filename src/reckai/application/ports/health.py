"""Health reporting: what `/health/*` endpoints ask each dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    # Short, operator-facing sentence; never a secret, a stack trace or a connection string.
    detail: str


class HealthCheck(Protocol):
    def __call__(self) -> HealthReport:
        """Really exercise the dependency (not just a cached flag) and say whether it works.

        Must not raise: a failure is reported as `HealthReport(ok=False, detail=...)`.
        """
        ...
