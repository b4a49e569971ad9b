"""A stream: a named, long-lived pairing of two sides reconciled run after run (docs/streams.md).

Standard library only. The stream holds what every run uses: a mapping template per side (each
new file of that side must have exactly this mapping), the pinned rule versions (their definitions
as approved), the leading side and the currency. Rows keep their identity across runs by their key
(side, fingerprint of the canonical fields, occurrence among identical rows of their file); the
stream numbers each row it takes once (`seq`) and every run refers to rows by that number.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reckai.domain.exceptions.lifecycle import SYSTEM_RESOLUTION_CODE

SIDES = ("left", "right")
MAX_NAME_LENGTH = 255
_CURRENCY = re.compile(r"^[A-Z]{3}$")

# The canonical fields a row's fingerprint covers: everything the source said about the
# transaction, but not where it stood in its file (`row_number`) nor the source's own column
# layout (`raw`), so the same transaction exported again, elsewhere in a file or under renamed
# columns, keeps its key.
FINGERPRINT_FIELDS = ("amount_minor", "direction", "currency", "transaction_date", "has_time", "value_date",
                      "reference", "secondary_reference", "description", "channel", "account", "status",
                      "counterparty")

# The resolution code of an exception closed because its rows matched in a later run of the stream
# (a system action: no person, no checker; domain/exceptions/policy.py:closing_needs_checker).
MATCHED_IN_LATER_RUN = SYSTEM_RESOLUTION_CODE


class InvalidStream(ValueError):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field_name = field_name
        self.reason = reason


@dataclass(frozen=True)
class PinnedRule:
    """A rule version as it was approved when the stream pinned it."""

    rule_id: uuid.UUID
    version: int
    name: str
    definition: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"rule_id": str(self.rule_id), "version": self.version, "name": self.name,
                "definition": self.definition}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> PinnedRule:
        return cls(uuid.UUID(str(value["rule_id"])), int(value["version"]), str(value["name"]),
                   dict(value["definition"]))


@dataclass(frozen=True)
class StreamSide:
    file_type: str
    mapping: dict[str, Any]


@dataclass(frozen=True)
class Stream:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    left: StreamSide
    right: StreamSide
    rules: tuple[PinnedRule, ...]
    leading_side: str | None
    currency: str
    owner_id: uuid.UUID
    created_by: uuid.UUID
    options: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    def side(self, side: str) -> StreamSide:
        return self.left if side == "left" else self.right


@dataclass(frozen=True)
class StreamFile:
    stream_id: uuid.UUID
    file_id: uuid.UUID
    side: str
    checksum: str
    added_by: uuid.UUID
    added_at: dt.datetime | None = None
    job_id: uuid.UUID | None = None  # the run that used it (None: waiting for the next run)


@dataclass(frozen=True)
class StreamRun:
    stream_id: uuid.UUID
    run_number: int
    job_id: uuid.UUID
    created_by: uuid.UUID
    created_at: dt.datetime | None = None
    carry_key: str | None = None  # the stored open items after this run (set when it completes)
    figures: dict[str, Any] | None = None


def check_name(name: str) -> str:
    cleaned = (name or "").strip()
    if not cleaned:
        raise InvalidStream("name", "is required")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidStream("name", f"is longer than {MAX_NAME_LENGTH} characters")
    return cleaned


def check_currency(currency: str) -> str:
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise InvalidStream("currency", "must be an ISO 4217 code of three capital letters, e.g. NGN")
    return currency


def check_leading_side(side: str | None) -> str | None:
    if side not in (None, *SIDES):
        raise InvalidStream("leading_side", "must be left, right or null")
    return side


def mapping_differences(template: Any, found: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Where a file's mapping differs from the stream's template: (dotted path, template's value,
    file's value), sorted by path; empty when the file fits."""
    if isinstance(template, Mapping) and isinstance(found, Mapping):
        differences: list[tuple[str, Any, Any]] = []
        for key in sorted(set(template) | set(found), key=str):
            where = f"{path}.{key}" if path else str(key)
            differences += mapping_differences(template.get(key), found.get(key), where)
        return differences
    if isinstance(template, Sequence) and isinstance(found, Sequence) \
            and not isinstance(template, str) and not isinstance(found, str) and len(template) == len(found):
        differences = []
        for index, (expected, given) in enumerate(zip(template, found, strict=True)):
            differences += mapping_differences(expected, given, f"{path}.{index}" if path else str(index))
        return differences
    return [] if template == found else [(path or "mapping", template, found)]


def later_match_note(run_number: int, side: str, partner_side: str, partner_file: str | None,
                     partner_row: int | None) -> str:
    """The resolution note of an exception its rows' later match closed."""
    where = f"row {partner_row} of file {partner_file}" if partner_file else "a row"
    return f"matched in run {run_number} with {partner_side} {where} (the {side} row of this exception)"
