"""PostgreSQL audit log: append-only rows in per-organization HMAC chains (migration 0002).

Writing one record, in one transaction:
1. `audit_chain_reserve(chain_key)` locks the chain's head row (FOR UPDATE) and returns the next
   sequence, the previous hash and the database's current time. Other writers of the same chain
   queue on that lock until this transaction ends, so the chain cannot fork.
2. The record is sealed here, with the HMAC key the database never sees.
3. INSERT; a trigger re-checks that the row continues the chain and advances the head.

Reads go through row-level security: the tenant (or no tenant, for the system chain) is set with
`set_config(..., true)` in the reading transaction, never at session level.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from reckai.adapters.postgres.transaction import PostgresTransaction
from reckai.application.ports.audit import (
    READ_PAGE_MAX,
    AuditLog,
    AuditPage,
    AuditPurgeRefused,
    AuditQuery,
    AuditReadFailed,
    AuditWriteFailed,
)
from reckai.application.ports.unit_of_work import UnitOfWork
from reckai.domain.audit.canonical import canonical_json
from reckai.domain.audit.chain import AuditSigner, ChainCheckpoint, ChainHead
from reckai.domain.audit.events import SYSTEM_CHAIN_KEY, AuditEvent, AuditRecord, restore_event

# How long record_independently waits for a chain held by another transaction before giving up
# (it must never wait forever on a unit of work of the same request; see the port).
INDEPENDENT_LOCK_TIMEOUT_MS = 5000

_COLUMNS = (
    "id, organization_id, user_id, action, resource_type, resource_id, host(ip_address) AS ip_address,"
    " family(ip_address) AS ip_family, masklen(ip_address) AS ip_masklen,"
    " user_agent, request_method, request_path, request_body::text AS request_body, response_status,"
    " error_message, metadata::text AS metadata, created_at, chain_key, sequence_number, previous_hash,"
    " hash, key_id"
)

_RESERVE = text("SELECT next_sequence, previous_hash, created_at FROM audit_chain_reserve(:chain_key)")
_INSERT_HEAD = (
    "INSERT INTO audit_logs (id, organization_id, user_id, action, resource_type, resource_id, ip_address,"
    " user_agent, request_method, request_path, request_body, response_status, error_message, metadata,"
    " created_at, sequence_number, previous_hash, hash, key_id) VALUES "
)
_VALUES = (
    ":id, :organization_id, :user_id, :action, :resource_type, :resource_id, CAST(:ip_address AS inet),"
    " :user_agent, :request_method, :request_path, CAST(:request_body AS jsonb), :response_status,"
    " :error_message, CAST(:metadata AS jsonb), :created_at, :sequence_number, :previous_hash, :hash, :key_id"
)
_INSERT = text(_INSERT_HEAD + "(" + _VALUES + ")")
_SET_TENANT = text("SELECT set_config('app.current_org_id', :tenant, true)")


class PostgresAuditLog:
    def __init__(
        self, engine: Engine, signer: AuditSigner, independent_lock_timeout_ms: int = INDEPENDENT_LOCK_TIMEOUT_MS
    ) -> None:
        self._engine = engine
        self.signer = signer
        self._lock_timeout_ms = int(independent_lock_timeout_ms)

    # --- writing -------------------------------------------------------------------------

    def record(self, uow: UnitOfWork | Connection, event: AuditEvent) -> AuditRecord:
        connection = _connection_of(uow)
        try:
            # A savepoint, so a refused write (wrong tenant) does not poison the caller's
            # transaction beyond the error it gets.
            with connection.begin_nested():
                return self._append(connection, event)
        except DBAPIError as exc:
            raise AuditWriteFailed(event.action, _reason(exc)) from exc

    def record_independently(self, event: AuditEvent) -> AuditRecord:
        try:
            with self._engine.begin() as connection:
                connection.execute(text(f"SET LOCAL lock_timeout = {self._lock_timeout_ms}"))
                connection.execute(_SET_TENANT, {"tenant": _tenant_text(event.organization_id)})
                return self._append(connection, event)
        except SQLAlchemyError as exc:
            raise AuditWriteFailed(event.action, _reason(exc)) from exc

    def record_batch(self, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        if not events:
            return []
        organization_id = events[0].organization_id
        if any(event.organization_id != organization_id for event in events):
            raise AuditWriteFailed(events[0].action, "a batch holds the events of one organization")
        try:
            with self._engine.begin() as connection:
                connection.execute(text(f"SET LOCAL lock_timeout = {self._lock_timeout_ms}"))
                connection.execute(_SET_TENANT, {"tenant": _tenant_text(organization_id)})
                reserved = connection.execute(_RESERVE, {"chain_key": events[0].chain_key}).one()
                records: list[AuditRecord] = []
                previous_hash, sequence = reserved.previous_hash, reserved.next_sequence
                for event in events:
                    record = self.signer.seal(event, record_id=uuid.uuid4(), sequence_number=sequence,
                                              previous_hash=previous_hash, created_at=reserved.created_at)
                    records.append(record)
                    previous_hash, sequence = record.hash, sequence + 1
                # One INSERT for the batch; the chain trigger checks each row in order.
                values, params = [], {}
                for index, record in enumerate(records):
                    row = _parameters(record)
                    values.append("(" + re.sub(r":(\w+)", rf":r{index}_\1", _VALUES) + ")")
                    params.update({f"r{index}_{name}": value for name, value in row.items()})
                connection.execute(text(_INSERT_HEAD + ", ".join(values)), params)
                return records
        except SQLAlchemyError as exc:
            raise AuditWriteFailed(events[0].action, _reason(exc)) from exc

    def _append(self, connection: Connection, event: AuditEvent) -> AuditRecord:
        reserved = connection.execute(_RESERVE, {"chain_key": event.chain_key}).one()
        record = self.signer.seal(
            event,
            record_id=uuid.uuid4(),
            sequence_number=reserved.next_sequence,
            previous_hash=reserved.previous_hash,
            created_at=reserved.created_at,
        )
        connection.execute(_INSERT, _parameters(record))
        return record

    # --- reading -------------------------------------------------------------------------

    @contextmanager
    def _reading(self, tenant: uuid.UUID | None) -> Iterator[Connection]:
        try:
            with self._engine.begin() as connection:
                connection.execute(text("SET TRANSACTION READ ONLY"))
                connection.execute(_SET_TENANT, {"tenant": _tenant_text(tenant)})
                yield connection
        except SQLAlchemyError as exc:
            raise AuditReadFailed(_reason(exc)) from exc

    def chain_keys(self) -> list[uuid.UUID]:
        with self._reading(None) as connection:
            rows = connection.execute(text("SELECT chain_key FROM audit_chain_keys() WHERE last_sequence > 0"))
            return [row.chain_key for row in rows]

    def chain_head(self, chain_key: uuid.UUID) -> ChainHead | None:
        with self._reading(_tenant_of(chain_key)) as connection:
            row = connection.execute(
                text("SELECT * FROM audit_chain_heads WHERE chain_key = :key"), {"key": chain_key}
            ).one_or_none()
        if row is None:
            return None
        checkpoint = None
        if row.checkpoint_sequence > 0:
            checkpoint = ChainCheckpoint(
                chain_key=row.chain_key,
                through_sequence=row.checkpoint_sequence,
                through_hash=row.checkpoint_hash,
                through_created_at=row.checkpoint_created_at,
                key_id=row.checkpoint_key_id or "",
                signature=row.checkpoint_signature or "",
            )
        return ChainHead(row.chain_key, row.last_sequence, row.last_hash, checkpoint)

    def read_chain(self, chain_key: uuid.UUID, after_sequence: int, limit: int) -> list[AuditRecord]:
        limit = max(0, min(limit, READ_PAGE_MAX))
        with self._reading(_tenant_of(chain_key)) as connection:
            rows = connection.execute(
                text(
                    f"SELECT {_COLUMNS} FROM audit_logs WHERE chain_key = :key AND sequence_number > :after"
                    " ORDER BY sequence_number LIMIT :limit"
                ),
                {"key": chain_key, "after": after_sequence, "limit": limit},
            )
            return [_record(row) for row in rows]

    def record_at(self, chain_key: uuid.UUID, sequence_number: int) -> AuditRecord | None:
        with self._reading(_tenant_of(chain_key)) as connection:
            row = connection.execute(
                text(f"SELECT {_COLUMNS} FROM audit_logs WHERE chain_key = :key AND sequence_number = :seq"),
                {"key": chain_key, "seq": sequence_number},
            ).one_or_none()
        return _record(row) if row is not None else None

    def last_sequence_before(self, chain_key: uuid.UUID, cutoff: dt.datetime) -> int | None:
        with self._reading(_tenant_of(chain_key)) as connection:
            sequence: int | None = connection.execute(
                text("SELECT max(sequence_number) FROM audit_logs WHERE chain_key = :key AND created_at < :cutoff"),
                {"key": chain_key, "cutoff": _naive_utc(cutoff)},
            ).scalar_one()
            return sequence

    def all_chain_heads(self) -> list[ChainHead]:
        with self._reading(None) as connection:
            rows = connection.execute(text("SELECT chain_key, last_sequence, last_hash FROM audit_chain_head_hashes()"))
            return [ChainHead(row.chain_key, row.last_sequence, row.last_hash) for row in rows]

    def sequence_range(
        self, chain_key: uuid.UUID, created_from: dt.datetime | None, created_to: dt.datetime | None
    ) -> tuple[int, int] | None:
        with self._reading(_tenant_of(chain_key)) as connection:
            return _sequence_range(connection, chain_key, created_from, created_to)

    def list_records(self, organization_id: uuid.UUID, query: AuditQuery) -> AuditPage:
        if organization_id == SYSTEM_CHAIN_KEY:
            return AuditPage((), None)
        statement, params = list_statement(organization_id, query)
        with self._reading(organization_id) as connection:
            if query.created_from is not None or query.created_to is not None:
                bounds = _sequence_range(connection, organization_id, query.created_from, query.created_to)
                if bounds is None:
                    return AuditPage((), None)
                params["first"], params["last"] = bounds
            records = [_record(row) for row in connection.execute(statement, params)]
        more = len(records) > query.limit
        page = records[: query.limit]
        return AuditPage(tuple(page), page[-1].sequence_number if more else None)

    # --- retention -----------------------------------------------------------------------

    def purge_through(self, checkpoint: ChainCheckpoint) -> int:
        try:
            with self._engine.begin() as connection:
                connection.execute(_SET_TENANT, {"tenant": _tenant_text(_tenant_of(checkpoint.chain_key))})
                removed: int = connection.execute(
                    text(
                        "SELECT audit_purge_expired(:key, :seq, :hash, :created_at, :key_id, :signature)"
                    ),
                    {
                        "key": checkpoint.chain_key,
                        "seq": checkpoint.through_sequence,
                        "hash": checkpoint.through_hash,
                        "created_at": checkpoint.through_created_at,
                        "key_id": checkpoint.key_id,
                        "signature": checkpoint.signature,
                    },
                ).scalar_one()
                return removed
        except DBAPIError as exc:
            if _sqlstate(exc) in {"42501", "22023", "P0002"}:
                raise AuditPurgeRefused(checkpoint.chain_key, _reason(exc)) from exc
            raise AuditReadFailed(_reason(exc)) from exc


def list_statement(organization_id: uuid.UUID, query: AuditQuery, columns: str = _COLUMNS) -> tuple[Any, dict[str, Any]]:
    """The listing's SQL: newest first by sequence (keyset). A period becomes the sequence bounds
    `:first` / `:last` (filled in by the caller from `_sequence_range`): created_at never decreases
    along a chain, and a sequence range keeps every filter's (chain_key, ..., sequence_number)
    index usable. Exposed for the index-plan test and the benchmark."""
    conditions = ["chain_key = :key"]
    params: dict[str, Any] = {"key": organization_id, "limit": query.limit + 1}
    for column, value in (
        ("action", query.action),
        ("user_id", query.user_id),
        ("resource_type", query.resource_type),
        ("resource_id", query.resource_id),
    ):
        if value is not None:
            conditions.append(f"{column} = :{column}")
            params[column] = value
    if query.outcome == "failure":
        conditions.append("response_status >= 400")
    elif query.outcome == "success":
        conditions.append("(response_status IS NULL OR response_status < 400)")
    if query.created_from is not None or query.created_to is not None:
        conditions.append("sequence_number BETWEEN :first AND :last")
    if query.before_sequence is not None:
        conditions.append("sequence_number < :before")
        params["before"] = query.before_sequence
    statement = text(
        f"SELECT {columns} FROM audit_logs WHERE {' AND '.join(conditions)}"
        " ORDER BY sequence_number DESC LIMIT :limit"
    )
    return statement, params


_FIRST_FROM = text(
    "SELECT min(sequence_number) FROM audit_logs WHERE chain_key = :key AND created_at ="
    " (SELECT min(created_at) FROM audit_logs WHERE chain_key = :key AND created_at >= :moment)"
)
_LAST_BEFORE = text(
    "SELECT max(sequence_number) FROM audit_logs WHERE chain_key = :key AND created_at ="
    " (SELECT max(created_at) FROM audit_logs WHERE chain_key = :key AND created_at < :moment)"
)
_FIRST = text("SELECT min(sequence_number) FROM audit_logs WHERE chain_key = :key")
_LAST = text("SELECT max(sequence_number) FROM audit_logs WHERE chain_key = :key")


def _sequence_range(
    connection: Connection, chain_key: uuid.UUID, created_from: dt.datetime | None, created_to: dt.datetime | None
) -> tuple[int, int] | None:
    """Two index probes on (chain_key, created_at) or the chain's unique index, whatever the size."""
    key = {"key": chain_key}
    first = connection.execute(_FIRST_FROM, {**key, "moment": _naive_utc(created_from)}).scalar_one() \
        if created_from is not None else connection.execute(_FIRST, key).scalar_one()
    last = connection.execute(_LAST_BEFORE, {**key, "moment": _naive_utc(created_to)}).scalar_one() \
        if created_to is not None else connection.execute(_LAST, key).scalar_one()
    if first is None or last is None or first > last:
        return None
    return int(first), int(last)


def _connection_of(uow: UnitOfWork | Connection) -> Connection:
    """The unit of work's connection (its transaction, its tenant); a bare Connection also works."""
    if isinstance(uow, Connection):
        return uow
    if not isinstance(uow, PostgresTransaction):
        raise TypeError("PostgresAuditLog.record needs a PostgreSQL unit of work (with .connection)")
    return uow.connection


def _tenant_of(chain_key: uuid.UUID) -> uuid.UUID | None:
    return None if chain_key == SYSTEM_CHAIN_KEY else chain_key


def _tenant_text(organization_id: uuid.UUID | None) -> str:
    return "" if organization_id is None else str(organization_id)


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is not None:
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _parameters(record: AuditRecord) -> dict[str, Any]:
    event = record.event
    return {
        "id": record.id,
        "organization_id": event.organization_id,
        "user_id": event.user_id,
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "ip_address": event.ip_address,
        "user_agent": event.user_agent,
        "request_method": event.request_method,
        "request_path": event.request_path,
        # The canonical text is valid JSON, keeps Decimals exact and has no NUL: store it as is.
        "request_body": None if event.request_body is None else canonical_json(event.request_body),
        "response_status": event.response_status,
        "error_message": event.error_message,
        "metadata": None if event.metadata is None else canonical_json(event.metadata),
        "created_at": record.created_at,
        "sequence_number": record.sequence_number,
        "previous_hash": record.previous_hash,
        "hash": record.hash,
        "key_id": record.key_id,
    }


def _record(row: Row[Any]) -> AuditRecord:
    event = restore_event(
        action=row.action,
        organization_id=row.organization_id,
        user_id=row.user_id,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        ip_address=_ip_text(row),
        user_agent=row.user_agent,
        request_method=row.request_method,
        request_path=row.request_path,
        request_body=_json(row.request_body),
        response_status=row.response_status,
        error_message=row.error_message,
        metadata=_json(row.metadata),
    )
    return AuditRecord(
        id=row.id,
        chain_key=row.chain_key,
        sequence_number=row.sequence_number,
        previous_hash=row.previous_hash,
        hash=row.hash,
        key_id=row.key_id,
        created_at=row.created_at,
        event=event,
    )


def _ip_text(row: Row[Any]) -> str | None:
    if row.ip_address is None:
        return None
    address = ipaddress.ip_address(row.ip_address).compressed
    host_bits = 32 if row.ip_family == 4 else 128
    # A stored network (10.0.0.0/8) is not what we wrote: keep the prefix so the hash differs.
    return address if row.ip_masklen == host_bits else f"{address}/{row.ip_masklen}"


def _json(value: str | None) -> Any:
    # Decimal for non-integers: JSONB keeps numeric digits exactly, a float would not.
    return None if value is None else json.loads(value, parse_float=Decimal)


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _reason(exc: Exception) -> str:
    """The database's message without parameters or SQL (they may hold personal data)."""
    orig = getattr(exc, "orig", None)
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    state = getattr(orig, "sqlstate", None)
    if primary:
        return f"{primary} (SQLSTATE {state})" if state else primary
    return type(orig or exc).__name__


_check: type[AuditLog] = PostgresAuditLog
