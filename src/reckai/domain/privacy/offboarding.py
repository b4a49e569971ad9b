"""Offboarding an organization (issue 17 item 7; docs/privacy.md, "Offboarding"): what its row
becomes once it is a tombstone.

The row stays (its audit chain, its users and every foreign key point at it) with its name and
sign-in code replaced by pseudonyms and a marker in its settings; it is inactive, so sign-in and
every token are refused, and the retention and export-expiry jobs no longer visit it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

OFFBOARDED_NAME = "Offboarded organization"
OFFBOARDED_MARKER = "offboarded"  # the settings key of the tombstone
_CODE_PREFIX = "offboarded-"
MAX_OVERRIDE_REASON = 200


def offboarded_code(code: str) -> str:
    """The pseudonym that replaces a sign-in code: a digest of it, so the old code is no longer
    stored (it is free for another organization), yet a sign-in with it can still be recognised and
    told that the organization was offboarded. 43 characters (the column holds 50). Not keyed: a
    code is an identifier the organization chose, not a secret; someone with the database can test
    a guessed code against it."""
    digest = hashlib.sha256(f"reckai-offboarded:{code.strip().lower()}".encode()).hexdigest()
    return _CODE_PREFIX + digest[:32]


def is_offboarded(settings: Mapping[str, Any] | None) -> bool:
    return bool((settings or {}).get(OFFBOARDED_MARKER))


def tombstone_settings(*, at: dt.datetime, export_id: uuid.UUID | None, override_reason: str | None) -> dict[str, Any]:
    """The settings a tombstone keeps: only the marker (the organization's own settings, contact
    details included, go)."""
    return {OFFBOARDED_MARKER: {"at": at.astimezone(dt.UTC).isoformat(),
                                "export_id": str(export_id) if export_id else None,
                                "without_export": override_reason is not None}}


def clean_override_reason(reason: str) -> str:
    """The reason an operator gives to offboard without a completed export: one line, 1-200
    characters. ValueError otherwise."""
    cleaned = (reason or "").strip()
    if not cleaned or len(cleaned) > MAX_OVERRIDE_REASON or "\n" in cleaned or "\r" in cleaned:
        raise ValueError(f"a reason is required: one line, at most {MAX_OVERRIDE_REASON} characters")
    return cleaned
