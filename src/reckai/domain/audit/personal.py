"""Personal data in audit metadata, made erasable (issue 17 item 5; docs/privacy.md, "Erasure").

Audit rows are sealed into an HMAC chain and kept seven years, so they cannot be rewritten when a
person asks for erasure. Instead, the personal values an event carries in its metadata are stored
as ciphertext under a key of their own per person (the *subject*), and erasure destroys that key:
the stored row is unchanged (the chain, computed over the stored ciphertext, still verifies), and
what it says about the person reads as `ERASED` from then on.

This module is the rule, with no cryptography: which metadata values are personal, whose they
are, and the text form a sealed value takes in the row (`erasable:v1:<subject>:<key id>:<ciphertext>`).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reckai.domain.audit.events import AuditEvent

# Top-level metadata keys whose value is personal data about the event's subject. `name` is not
# one of them: events name jobs, rules and files with it. A caller that writes a person's name or
# address into an audit row uses one of these keys.
PERSONAL_METADATA_KEYS = frozenset({"email", "full_name", "actor_email", "actor_name", "target_email",
                                    "target_name"})
ERASED = "[erased]"
ENVELOPE_PREFIX = "erasable:v1:"


def subject_of(event: AuditEvent) -> uuid.UUID | None:
    """Whose personal data the event's metadata carries: the user the event is about (resource
    type `user`), else the acting user. None when it names no user (a sign-in attempt for an
    unknown address): there is no one whose key could be destroyed, and the value stays as given."""
    if event.resource_type == "user" and event.resource_id is not None:
        return event.resource_id
    return event.user_id


def personal_values(event: AuditEvent) -> dict[str, str]:
    """The metadata values to seal: personal keys with a text value not sealed already."""
    metadata = event.metadata
    if not isinstance(metadata, Mapping):
        return {}
    return {key: value for key, value in metadata.items()
            if key in PERSONAL_METADATA_KEYS and isinstance(value, str) and not is_envelope(value)}


@dataclass(frozen=True)
class Envelope:
    """A personal value as stored: whose, under which of their keys, and the ciphertext."""

    subject_id: uuid.UUID
    key_id: uuid.UUID
    ciphertext: str

    def text(self) -> str:
        return f"{ENVELOPE_PREFIX}{self.subject_id}:{self.key_id}:{self.ciphertext}"


def is_envelope(value: object) -> bool:
    return isinstance(value, str) and value.startswith(ENVELOPE_PREFIX)


def parse_envelope(value: object) -> Envelope | None:
    """The envelope a stored value is, or None when it is plain (or malformed: shown as stored)."""
    if not is_envelope(value):
        return None
    assert isinstance(value, str)
    parts = value[len(ENVELOPE_PREFIX):].split(":")
    if len(parts) != 3 or not parts[2]:
        return None
    try:
        return Envelope(uuid.UUID(parts[0]), uuid.UUID(parts[1]), parts[2])
    except ValueError:
        return None


def with_metadata(event: AuditEvent, metadata: dict[str, Any]) -> AuditEvent:
    """The event with other metadata (cleaned again on construction, which changes nothing that
    was cleaned once; an envelope is plain ASCII that redaction leaves as it is)."""
    return dataclasses.replace(event, metadata=metadata)


def reveal_metadata(metadata: Any, open_envelope: Callable[[Envelope], str | None]) -> Any:
    """Metadata for a reader: each sealed value opened, or ERASED when its key is gone
    (`open_envelope` returns None). Everything else as stored."""
    if not isinstance(metadata, Mapping):
        return metadata
    revealed: dict[str, Any] = {}
    for key, value in metadata.items():
        envelope = parse_envelope(value)
        if envelope is None:
            revealed[key] = value
        else:
            plain = open_envelope(envelope)
            revealed[key] = ERASED if plain is None else plain
    return revealed


def sealed_subjects(metadata: Any) -> set[uuid.UUID]:
    if not isinstance(metadata, Mapping):
        return set()
    return {envelope.subject_id for value in metadata.values() if (envelope := parse_envelope(value)) is not None}
