"""The in-memory transaction under every in-memory unit of work, with the same contract as the
PostgreSQL one.

Rows live in a `MemoryStore` shared by every unit of work of one `MemoryDatabase`. A transaction
stages its writes and applies them on commit (so leaving without commit discards them), and it
behaves like row-level security: `rows(table)` yields only the bound organization's rows, and
`put` refuses a row of another organization. Pre-tenant and system methods use `all_rows`.
Rows are copied in and out so callers never alias stored state.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import uuid
from collections.abc import Hashable, Iterator
from types import TracebackType
from typing import Any, ClassVar, Self

from reckai.application.ports.repositories import TenantIsolationViolation

# Tables whose rows may belong to no organization (system rows), as in SQL: the audit log and its
# chain heads, and the job outbox. Only a unit of work bound to no organization sees those rows.
NULLABLE_TENANT_TABLES = frozenset({"audit_logs", "audit_chain_heads", "outbox_messages"})

_DELETED = object()


class MemoryStore:
    def __init__(self) -> None:
        self.tables: dict[str, dict[Hashable, Any]] = {}
        self.lock = threading.RLock()
        # Row locks taken by get_for_update-style reads: (table, key) -> owning unit of work.
        self.row_locks: dict[tuple[str, Hashable], object] = {}
        self.row_lock_released = threading.Condition(self.lock)


def _organization_of(table: str, row: Any) -> Any:
    if table == "organizations":
        return row.id
    return getattr(row, "organization_id", None)


class MemoryTransaction:
    """Staged writes over a shared `MemoryStore`, seen through the bound organization. Repositories
    take this (not the unit of work that lists them), so their modules never import the unit of work."""

    # Tables whose organization_id may be None for system rows (as audit_logs/outbox in SQL).
    nullable_tenant_tables: ClassVar[frozenset[str]] = NULLABLE_TENANT_TABLES

    def __init__(self, store: MemoryStore, organization_id: uuid.UUID | None = None) -> None:
        self.store = store
        self.organization_id = organization_id
        self._staged: dict[str, dict[Hashable, Any]] = {}
        self._entered = False
        self._transaction_now: dt.datetime | None = None

    def __enter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a unit of work cannot be entered twice")
        self._entered = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.rollback()
        self._entered = False

    def now(self) -> dt.datetime:
        """The transaction's timestamp, like PostgreSQL's now(): fixed until commit or rollback."""
        if self._transaction_now is None:
            self._transaction_now = dt.datetime.now(dt.UTC)
        return self._transaction_now

    def commit(self) -> None:
        self._require_entered()
        self._transaction_now = None
        with self.store.lock:
            for table, rows in self._staged.items():
                stored = self.store.tables.setdefault(table, {})
                for key, row in rows.items():
                    if row is _DELETED:
                        stored.pop(key, None)
                    else:
                        stored[key] = row
            self._release_locks()
        self._staged = {}

    def rollback(self) -> None:
        self._staged = {}
        self._transaction_now = None
        with self.store.lock:
            self._release_locks()

    # --- for repository adapters -------------------------------------------------------------

    def _require_entered(self) -> None:
        if not self._entered:
            raise RuntimeError("use the unit of work inside its `with` block")

    def _visible(self, table: str, row: Any) -> bool:
        owner = _organization_of(table, row)
        if owner is None and table in self.nullable_tenant_tables:
            return self.organization_id is None
        return self.organization_id is not None and owner == self.organization_id

    def all_rows(self, table: str) -> Iterator[tuple[Hashable, Any]]:
        """Every row of every tenant, staged writes included (pre-tenant/system use only)."""
        self._require_entered()
        with self.store.lock:
            merged = dict(self.store.tables.get(table, {}))
        merged.update(self._staged.get(table, {}))
        for key, row in merged.items():
            if row is not _DELETED:
                yield key, copy.deepcopy(row)

    def rows(self, table: str) -> Iterator[tuple[Hashable, Any]]:
        """The bound organization's rows (what row-level security would show)."""
        for key, row in self.all_rows(table):
            if self._visible(table, row):
                yield key, row

    def get(self, table: str, key: Hashable) -> Any | None:
        self._require_entered()
        staged = self._staged.get(table, {})
        if key in staged:
            row = staged[key]
        else:
            with self.store.lock:
                row = self.store.tables.get(table, {}).get(key, _DELETED)
        if row is _DELETED or not self._visible(table, row):
            return None
        return copy.deepcopy(row)

    def put(self, table: str, key: Hashable, row: Any, *, system: bool = False) -> None:
        """Stage a row; refuses one the bound organization could not write (unless `system`)."""
        self._require_entered()
        if not system and not self._visible(table, row):
            raise TenantIsolationViolation(table, _organization_of(table, row), self.organization_id)
        self._staged.setdefault(table, {})[key] = copy.deepcopy(row)

    def remove(self, table: str, key: Hashable) -> None:
        self._require_entered()
        self._staged.setdefault(table, {})[key] = _DELETED

    def lock_row(self, table: str, key: Hashable, timeout: float = 10.0) -> None:
        """Block until no other unit of work holds the row (SELECT ... FOR UPDATE)."""
        with self.store.row_lock_released:
            holder = self.store.row_locks.get((table, key))
            while holder is not None and holder is not self:
                if not self.store.row_lock_released.wait(timeout):
                    raise TimeoutError(f"row {table}/{key} stayed locked for {timeout}s")
                holder = self.store.row_locks.get((table, key))
            self.store.row_locks[(table, key)] = self

    def _release_locks(self) -> None:
        mine = [k for k, holder in self.store.row_locks.items() if holder is self]
        for k in mine:
            del self.store.row_locks[k]
        if mine:
            self.store.row_lock_released.notify_all()
