"""Data access tracking (issue 17 item 3; docs/audit.md, "Access events").

Reads of sensitive data (downloads, exports, a job's results pages, exception detail, the user
list and detail, audit-log reads) are recorded as access events: audit rows whose action starts
with `access.`, in the organization's chain (tamper-evident, kept seven years with the rest).

No synchronous write on the read path: `BatchingAccessRecorder.record` only appends to an
in-process buffer; a background thread writes the buffer once a second, or as soon as it holds
`batch_size` events, with one transaction and one multi-row INSERT per organization and batch
(`AuditLog.record_batch`). `close()` (the container's shutdown) writes what is left.

What a crash loses: the events buffered since the last flush (at most about one second's worth,
or `batch_size` events per organization) and any batch that was being retried; the request log
lines of those requests (method, path, user, address) are still written. A failed write is retried
on the next tick; past `max_buffered` events the oldest are dropped and counted in an ERROR log
line (`audit.access.dropped`), never silently.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from reckai.application.context import Outcome, RequestInfo, audit_event
from reckai.application.ports.audit import AuditError, AuditLog
from reckai.domain.audit.events import AuditEvent
from reckai.domain.identity.principal import Principal

_log = logging.getLogger("reckai.audit.access")

ACCESS_PREFIX = "access."


@dataclass(frozen=True, slots=True)
class PendingAccess:
    """An access event as the read path hands it over: the facts only. The audit event is built
    (redaction, cleaning) by the writer thread, so the request pays for a tuple, not for that."""

    action: str
    organization_id: uuid.UUID
    user_id: uuid.UUID | None
    request: RequestInfo | None
    resource_type: str | None
    resource_id: uuid.UUID | None
    metadata: Mapping[str, Any] | None
    accessed_at: dt.datetime

    def build(self) -> AuditEvent:
        details = {"accessed_at": self.accessed_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), **(self.metadata or {})}
        if self.request is not None and self.request.request_id:
            details["request_id"] = self.request.request_id
        return audit_event(self.action, self.request, organization_id=self.organization_id, user_id=self.user_id,
                           resource_type=self.resource_type, resource_id=self.resource_id, outcome=Outcome.DONE,
                           metadata=details)


def access_event(action: str, principal: Principal | None, request: RequestInfo | None, *,
                 organization_id: uuid.UUID | None = None, resource_type: str | None = None,
                 resource_id: uuid.UUID | None = None, metadata: Mapping[str, Any] | None = None,
                 now: dt.datetime | None = None) -> PendingAccess:
    """Who (the principal, or none for a bearer-token download), what (action, resource), when
    (`accessed_at`: the read's own time; the row's created_at is when its batch was written), from
    where (address, client, request id from `request`)."""
    if not action.startswith(ACCESS_PREFIX):
        raise ValueError(f"access event actions start with {ACCESS_PREFIX!r}")
    organization = organization_id or (principal.organization_id if principal else None)
    if organization is None:
        raise ValueError("an access event belongs to an organization")
    return PendingAccess(action, organization, principal.user_id if principal else None, request, resource_type,
                         resource_id, metadata, (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC))


Access = AuditEvent | PendingAccess


class AccessRecorder(Protocol):
    def record(self, event: Access) -> None:
        """Queue the access event; never blocks on the database."""
        ...

    def flush(self) -> int:
        """Write everything queued now; returns how many events were written."""
        ...

    def close(self) -> None:
        """Stop the background writer after a last flush."""
        ...


class BatchingAccessRecorder:
    def __init__(self, audit_log: AuditLog, *, batch_size: int = 100, flush_seconds: float = 1.0,
                 max_buffered: int = 100_000, on_dropped: Callable[[int], None] | None = None,
                 background: bool = True) -> None:
        """`background=False`: no writer thread, events are written by `flush()` only (tests)."""
        if batch_size < 1 or flush_seconds <= 0 or max_buffered < batch_size:
            raise ValueError("batch_size >= 1, flush_seconds > 0, max_buffered >= batch_size")
        self._audit_log = audit_log
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.max_buffered = max_buffered
        self._on_dropped = on_dropped
        self._buffer: list[Access] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one flush at a time (thread, close(), tests)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._background = background
        self._thread: threading.Thread | None = None
        self.written = 0
        self.dropped = 0
        self.batches = 0

    def record(self, event: Access) -> None:
        if event.organization_id is None:
            raise ValueError("an access event belongs to an organization")
        with self._lock:
            self._buffer.append(event)
            full = len(self._buffer) >= self.batch_size
            dropped = self._trim()
            if self._background and self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(target=self._run, name="reckai-access-events", daemon=True)
                self._thread.start()
        if dropped:
            self._report_dropped(dropped)
        if full:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def flush(self) -> int:
        with self._flush_lock:
            with self._lock:
                events, self._buffer = self._buffer, []
            if not events:
                return 0
            by_organization: dict[uuid.UUID | None, list[AuditEvent]] = {}
            for item in events:
                try:
                    event = item.build() if isinstance(item, PendingAccess) else item
                except ValueError as exc:  # an event the code built wrongly: say so, keep the others
                    _log.error("access event not recordable", extra={"action": "audit.access.invalid",
                                                                      "metadata": {"error": str(exc)[:200]}})
                    continue
                by_organization.setdefault(event.organization_id, []).append(event)
            written = 0
            failed: list[Access] = []
            for group in by_organization.values():
                for start in range(0, len(group), self.batch_size):
                    batch = group[start:start + self.batch_size]
                    if failed:  # the database is failing: keep the rest for the next tick
                        failed.extend(batch)
                        continue
                    try:
                        self._audit_log.record_batch(batch)
                    except (AuditError, OSError) as exc:
                        _log.error("access events not written yet, retried on the next tick",
                                   extra={"action": "audit.access.retry",
                                          "metadata": {"events": len(batch), "error": type(exc).__name__}})
                        failed.extend(batch)
                        continue
                    written += len(batch)
                    self.batches += 1
            if failed:
                with self._lock:
                    self._buffer = failed + self._buffer
                    dropped = self._trim()
                if dropped:
                    self._report_dropped(dropped)
            self.written += written
            return written

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        self.flush()

    def _trim(self) -> int:
        """Drop the oldest events past max_buffered (caller holds the lock); returns how many."""
        excess = len(self._buffer) - self.max_buffered
        if excess <= 0:
            return 0
        del self._buffer[:excess]
        self.dropped += excess
        return excess

    def _report_dropped(self, count: int) -> None:
        _log.error("access events dropped: the buffer is full and the audit log cannot be written",
                   extra={"action": "audit.access.dropped", "metadata": {"events": count}})
        if self._on_dropped is not None:
            self._on_dropped(count)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the writer thread must survive anything and retry
                _log.exception("access event writer failed", extra={"action": "audit.access.error"})


_check: type[AccessRecorder] = BatchingAccessRecorder
