"""Audit events (what happened) and audit records (an event sealed into its chain).

Every organization's records form one hash chain; events with no organization (a failed login
for an unknown organization code, system work) form the system chain, keyed by the nil UUID.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from dataclasses import dataclass, field
from typing import Any

from reckai.domain.audit.redaction import clean_text, redact, redact_path, scrub_text

SYSTEM_CHAIN_KEY = uuid.UUID(int=0)
GENESIS_HASH = "0" * 64

ACTION_MAX_CHARS = 100
RESOURCE_TYPE_MAX_CHARS = 100
USER_AGENT_MAX_CHARS = 1024
ERROR_MESSAGE_MAX_CHARS = 4000

JsonValue = Any  # dict / list / str / int / Decimal / float / bool / None after redaction


class InvalidAuditEvent(ValueError):
    """An event the application built wrongly (a bug in the caller, not bad user input)."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"audit event {field_name}: {problem}")
        self.field_name = field_name
        self.problem = problem


def chain_key_for(organization_id: uuid.UUID | None) -> uuid.UUID:
    return organization_id if organization_id is not None else SYSTEM_CHAIN_KEY


@dataclass(frozen=True)
class AuditEvent:
    """One thing worth keeping for seven years.

    Construction cleans the free-form parts: request bodies and metadata are redacted of secrets
    (see redaction.py), the path's secret query parameters and any bearer tokens or JWTs in text
    are replaced, and over-long text is cut. Identifiers and the action are checked instead,
    because a wrong one is a bug that should fail loudly.
    """

    action: str
    organization_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    resource_type: str | None = None
    resource_id: uuid.UUID | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    request_method: str | None = None
    request_path: str | None = None
    request_body: JsonValue = None
    response_status: int | None = None
    error_message: str | None = None
    metadata: JsonValue = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.action, str) or not self.action.strip():
            raise InvalidAuditEvent("action", "must be a non-empty string")
        if len(self.action) > ACTION_MAX_CHARS or "\x00" in self.action:
            raise InvalidAuditEvent("action", f"must be at most {ACTION_MAX_CHARS} characters, no NUL")
        for name in ("organization_id", "user_id", "resource_id"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, uuid.UUID):
                raise InvalidAuditEvent(name, "must be a uuid.UUID or None")
        if self.organization_id == SYSTEM_CHAIN_KEY:
            raise InvalidAuditEvent("organization_id", "the nil UUID is reserved for the system chain")
        if self.resource_type is not None and (
            len(self.resource_type) > RESOURCE_TYPE_MAX_CHARS or "\x00" in self.resource_type
        ):
            raise InvalidAuditEvent("resource_type", f"must be at most {RESOURCE_TYPE_MAX_CHARS} characters")
        if self.response_status is not None and (
            isinstance(self.response_status, bool)
            or not isinstance(self.response_status, int)
            or not 100 <= self.response_status <= 599
        ):
            raise InvalidAuditEvent("response_status", "must be an HTTP status code (100-599)")
        set_ = object.__setattr__
        set_(self, "ip_address", _normalise_ip(self.ip_address))
        if self.request_method is not None:
            method = clean_text(self.request_method, 10).upper()
            set_(self, "request_method", method[:10])
        if self.user_agent is not None:
            set_(self, "user_agent", scrub_text(self.user_agent, USER_AGENT_MAX_CHARS))
        if self.request_path is not None:
            set_(self, "request_path", redact_path(self.request_path))
        if self.error_message is not None:
            set_(self, "error_message", scrub_text(self.error_message, ERROR_MESSAGE_MAX_CHARS))
        set_(self, "request_body", redact(self.request_body))
        set_(self, "metadata", redact(self.metadata))

    @property
    def chain_key(self) -> uuid.UUID:
        return chain_key_for(self.organization_id)


def _normalise_ip(value: str | None) -> str | None:
    """Compressed host address as PostgreSQL INET gives it back; anything unparseable is dropped
    into None rather than failing the audit write (the raw text is not worth a lost record)."""
    if value is None:
        return None
    try:
        return ipaddress.ip_address(str(value).strip()).compressed
    except ValueError:
        return None


@dataclass(frozen=True)
class AuditRecord:
    """An event as stored: its place in the chain and the HMAC sealing it."""

    id: uuid.UUID
    chain_key: uuid.UUID
    sequence_number: int
    previous_hash: str
    hash: str
    key_id: str
    created_at: dt.datetime  # naive UTC, microseconds (PostgreSQL TIMESTAMP precision)
    event: AuditEvent

    @property
    def organization_id(self) -> uuid.UUID | None:
        return self.event.organization_id

    def sealed_fields(self) -> dict[str, Any]:
        """Every stored field except `hash` itself: what the HMAC covers."""
        event = self.event
        return {
            "id": self.id,
            "chain_key": self.chain_key,
            "sequence_number": self.sequence_number,
            "previous_hash": self.previous_hash,
            "key_id": self.key_id,
            "created_at": self.created_at,
            "organization_id": event.organization_id,
            "user_id": event.user_id,
            "action": event.action,
            "resource_type": event.resource_type,
            "resource_id": event.resource_id,
            "ip_address": event.ip_address,
            "user_agent": event.user_agent,
            "request_method": event.request_method,
            "request_path": event.request_path,
            "request_body": event.request_body,
            "response_status": event.response_status,
            "error_message": event.error_message,
            "metadata": event.metadata,
        }


def restore_event(**stored: Any) -> AuditEvent:
    """Rebuild an event from stored columns without re-cleaning them.

    Cleaning is idempotent for what we wrote, but a row tampered with in the database must be
    verified as it *is*, not as cleaning would make it, or redaction could hide the tampering.
    """
    event = object.__new__(AuditEvent)
    for name in AuditEvent.__dataclass_fields__:
        object.__setattr__(event, name, stored.get(name))
    return event
