"""In-memory head checkpoint store (tests and the in-memory container)."""

from __future__ import annotations

import threading

from reckai.application.ports.audit import AuditAnchorStore
from reckai.domain.audit.anchors import HeadCheckpoint


class MemoryAnchorStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.checkpoints: list[HeadCheckpoint] = []

    @property
    def description(self) -> str:
        return "memory (tests only)"

    def write(self, checkpoint: HeadCheckpoint) -> str:
        with self._lock:
            self.checkpoints.append(checkpoint)
            return f"memory:{len(self.checkpoints)}"

    def latest(self) -> HeadCheckpoint | None:
        with self._lock:
            return self.checkpoints[-1] if self.checkpoints else None


_check: type[AuditAnchorStore] = MemoryAnchorStore
