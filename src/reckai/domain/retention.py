"""Retention (issue 17 item 7; docs/privacy.md, "Retention"): what is kept how long, and what the
retention job must never delete.

The periods are registered settings (domain/settings_registry.py, `retention.*`). A file past its
period is deleted unless something still in use refers to it; `KeptBecause` names why one is kept,
so a dry run can say so.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

UPLOADS_SETTING = "retention.uploads_days"
DEFAULT_UPLOADS_DAYS = 2 * 365
RESULTS_SETTING = "retention.results_days"
DEFAULT_RESULTS_DAYS = 7 * 365
SESSIONS_SETTING = "retention.sessions_days"
DEFAULT_SESSIONS_DAYS = 30  # the "expired sessions 30 days": an upper bound (docs/privacy.md)
LEGAL_HOLD_SETTING = "retention.legal_hold"
MAX_HOLD_REASON = 200


class KeptBecause(str, Enum):
    """Why a file or a job past its retention period is not deleted (checked in this order)."""

    STREAM = "stream"  # a stream still lists the file / the job is a stream's run
    RUNNING_JOB = "running_job"  # the job (or a job over the file) is pending or processing
    OPEN_EXCEPTION = "open_exception"  # an exception about it is open, in progress or escalated
    PENDING_APPROVAL = "pending_approval"  # a pending approval names it, its job(s) or such an exception
    AUTHORISES_RECORD = "authorises_record"  # (approvals) a rule, report, period close, export... it authorised exists


def cutoff(now: dt.datetime, days: int) -> dt.datetime:
    """Everything stored before this instant is past a period of `days`."""
    return now - dt.timedelta(days=days)


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def referenced_ids(metadata: Any) -> frozenset[uuid.UUID]:
    """Every UUID anywhere in an approval's metadata (keys and values, nested). Deliberately wide:
    an approval type need not declare which of its fields name a file, job or exception for the
    retention job to leave those alone while it is pending."""
    found: set[uuid.UUID] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(key)
                walk(item)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in value:
                walk(item)
        elif isinstance(value, uuid.UUID):
            found.add(value)
        elif isinstance(value, str):
            found.update(uuid.UUID(match) for match in _UUID.findall(value))

    walk(metadata)
    return frozenset(found)


@dataclass(frozen=True)
class LegalHold:
    """An organization's legal hold: until the end of `until` (UTC), the retention job deletes none
    of its data. `{}` is no hold."""

    until: dt.date | None = None
    reason: str = ""

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> LegalHold:
        """The stored value, checked: `{}`, or `{"until": "YYYY-MM-DD", "reason": "..."}`. Raises
        ValueError naming what is wrong (the registry reports it as INVALID_SETTING)."""
        raw = dict(raw or {})
        if not raw:
            return cls()
        unknown = set(raw) - {"until", "reason"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}; a hold is {{until, reason}}")
        try:
            until = dt.date.fromisoformat(str(raw.get("until")))
        except ValueError:
            raise ValueError("until must be a date, YYYY-MM-DD") from None
        reason = str(raw.get("reason") or "").strip()
        if not reason or len(reason) > MAX_HOLD_REASON or "\n" in reason or "\r" in reason:
            raise ValueError(f"reason is required: one line, at most {MAX_HOLD_REASON} characters")
        return cls(until, reason)

    def as_setting(self) -> dict[str, str]:
        return {} if self.until is None else {"until": self.until.isoformat(), "reason": self.reason}

    def active(self, now: dt.datetime) -> bool:
        return self.until is not None and now.astimezone(dt.UTC).date() <= self.until
