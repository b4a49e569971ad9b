"""The lifecycle of a reconciliation exception (a "break"): statuses, the transitions between them,
severity overrides, assignment, and the history every change leaves behind.

    open --start--> in_progress --resolve--> resolved --reopen(reason)--> open
                         |  \\--ignore(reason)--> ignored --reopen(reason)--> open
                         \\--escalate--> escalated --start--> in_progress
                                            \\--resolve--> resolved
    open | in_progress --sla_escalate (the scheduled job only)--> escalated

Closing (resolve, ignore) from `open` is allowed: `ExceptionItem.close` records the implicit
`start` as its own history entry (changes `{"implicit": true, "for": "resolve"}`) before the
closing, so the history still reads open -> in_progress -> resolved (docs/workflow.md).

Invariants (checked by `check_invariants`, held by every method, tested with hypothesis):
- a resolved exception has resolved_by, resolved_at and a resolution code and note; any other
  status has none of them (reopening clears them; the history keeps them);
- `due_at` is `created_at` plus the SLA hours of the *current* severity;
- every change appends exactly one history entry naming the actor (None: the system).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any

from reckai.domain.exceptions.errors import InvalidBreakValue, InvalidTransition, ReasonRequired
from reckai.domain.exceptions.policy import SEVERITIES, SlaPolicy, StakedAmount
from reckai.domain.ingestion.canonical import minor_unit_exponent

EXCEPTION_TYPES = ("amount_mismatch", "date_mismatch", "missing_entry", "duplicate", "timing_difference",
                   "non_settlement")
MAX_REASON_LENGTH = 2000
MAX_NOTE_LENGTH = 4000


class ExceptionStatus(str, Enum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    IGNORED = "ignored"


class BreakAction(str, Enum):
    START = "start"
    RESOLVE = "resolve"
    ESCALATE = "escalate"
    IGNORE = "ignore"
    REOPEN = "reopen"
    SLA_ESCALATE = "sla_escalate"  # the scheduled SLA job, never a person


class ResolutionCode(str, Enum):
    MATCHED_MANUALLY = "matched_manually"
    CORRECTED_AT_SOURCE = "corrected_at_source"
    ADJUSTMENT_POSTED = "adjustment_posted"
    TIMING_CLEARED = "timing_cleared"
    DUPLICATE_REVERSED = "duplicate_reversed"
    WRITTEN_OFF = "written_off"
    FALSE_POSITIVE = "false_positive"
    OTHER = "other"


S, A = ExceptionStatus, BreakAction
# The resolution of an exception a stream's later run closed by matching its row (a system action;
# domain/streams/streams.py:MATCHED_IN_LATER_RUN). Not a ResolutionCode: no person may send it.
SYSTEM_RESOLUTION_CODE = "matched_in_later_run"
TRANSITIONS: dict[tuple[ExceptionStatus, BreakAction], ExceptionStatus] = {
    (S.OPEN, A.START): S.IN_PROGRESS,
    (S.IN_PROGRESS, A.RESOLVE): S.RESOLVED,
    (S.IN_PROGRESS, A.ESCALATE): S.ESCALATED,
    (S.IN_PROGRESS, A.IGNORE): S.IGNORED,
    (S.ESCALATED, A.START): S.IN_PROGRESS,
    (S.ESCALATED, A.RESOLVE): S.RESOLVED,
    (S.RESOLVED, A.REOPEN): S.OPEN,
    (S.IGNORED, A.REOPEN): S.OPEN,
    (S.OPEN, A.SLA_ESCALATE): S.ESCALATED,
    (S.IN_PROGRESS, A.SLA_ESCALATE): S.ESCALATED,
}
PERSON_ACTIONS = frozenset(A) - {A.SLA_ESCALATE}
CLOSING_ACTIONS = frozenset({A.RESOLVE, A.IGNORE})
ACTIVE_STATUSES = frozenset({S.OPEN, S.IN_PROGRESS, S.ESCALATED})  # still needs work; may be overdue
SLA_ESCALATABLE = frozenset({S.OPEN, S.IN_PROGRESS})
# What an exception of a forced re-run takes from the earlier job's exception with its key
# (ExceptionItem.inherit; adapters/postgres/reconciliations.py sets the same columns in SQL).
INHERITED_FIELDS = ("status", "assigned_to", "resolved_by", "resolved_at", "resolution_code", "resolution_note",
                    "escalated_at", "severity", "severity_reason", "created_at", "due_at")
INHERIT_ACTION = "inherit"  # its history entry's action (the system's; actor None)


def inheritance_changes(earlier_id: uuid.UUID, earlier_job_id: uuid.UUID, status: str,
                        comments: int) -> dict[str, Any]:
    """The `changes` of an `inherit` history entry (the PostgreSQL adapter builds the same JSON)."""
    return {"inherited_from": str(earlier_id), "earlier_job_id": str(earlier_job_id), "status": status,
            "comments_copied": comments, "by": "system",
            "note": f"inherited from exception {earlier_id} of job {earlier_job_id}"}


def action_to_reach(current: ExceptionStatus, target: ExceptionStatus) -> BreakAction:
    """The person action that moves `current` to `target` (PATCH gives a target status); a closing
    from `open` is its closing action (`ExceptionItem.close` records the implicit start)."""
    for (source, action), destination in TRANSITIONS.items():
        if source is current and destination is target and action in PERSON_ACTIONS:
            return action
    for action in CLOSING_ACTIONS:
        if current is S.OPEN and TRANSITIONS.get((S.IN_PROGRESS, action)) is target:
            return action
    raise InvalidTransition(None, current.value, f"move to {target.value} from", how_to_reach(current, target))


_HOW = {A.START: "start it (PATCH status in_progress)", A.REOPEN: "reopen it (PATCH status open with a reason)",
        A.ESCALATE: "escalate it (PATCH status escalated)"}


def how_to_reach(current: ExceptionStatus, target: ExceptionStatus) -> str | None:
    """A hint for a refused move: the person action that leads from `current` to a status from
    which `target` is reachable, or None when there is none (or it is reachable already)."""
    for (source, action), middle in TRANSITIONS.items():
        if source is current and action in _HOW and middle is not target and (
                any(s is middle and d is target and a in PERSON_ACTIONS for (s, a), d in TRANSITIONS.items())
                or (middle is S.OPEN and target in (S.RESOLVED, S.IGNORED))):
            return f"{_HOW[action]} first"
    return None


def parse_status(value: str) -> ExceptionStatus:
    try:
        return ExceptionStatus(value)
    except ValueError:
        raise InvalidBreakValue("status", f"must be one of {[s.value for s in ExceptionStatus]}") from None


def parse_severity(value: str) -> str:
    if value not in SEVERITIES:
        raise InvalidBreakValue("severity", f"must be one of {list(SEVERITIES)}")
    return value


def parse_resolution_code(value: str) -> ResolutionCode:
    try:
        return ResolutionCode(value)
    except ValueError:
        raise InvalidBreakValue("resolution_code", f"must be one of {[c.value for c in ResolutionCode]}") from None


def _text(value: str | None, field_name: str, limit: int) -> str | None:
    if value is None:
        return None
    cleaned = value.strip()
    if len(cleaned) > limit:
        raise InvalidBreakValue(field_name, f"is longer than {limit} characters")
    return cleaned or None


@dataclass(frozen=True)
class Resolution:
    code: ResolutionCode
    note: str

    @classmethod
    def of(cls, code: str, note: str | None) -> Resolution:
        parsed = parse_resolution_code(code)
        cleaned = _text(note, "resolution_note", MAX_NOTE_LENGTH)
        if cleaned is None:
            raise InvalidBreakValue("resolution_note", "is required")
        return cls(parsed, cleaned)


@dataclass(frozen=True)
class HistoryEntry:
    """One change of an exception, as it is stored in `exception_history`."""

    exception_id: uuid.UUID
    action: str  # a BreakAction value, or "assign", "severity_override", "comment", "approval_requested"
    actor_id: uuid.UUID | None
    at: dt.datetime
    from_status: str | None = None
    to_status: str | None = None
    reason: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class Comment:
    id: uuid.UUID
    organization_id: uuid.UUID
    exception_id: uuid.UUID
    user_id: uuid.UUID
    content: str
    created_at: dt.datetime

    @classmethod
    def write(cls, *, organization_id: uuid.UUID, exception_id: uuid.UUID, user_id: uuid.UUID, content: str,
              at: dt.datetime) -> Comment:
        cleaned = _text(content, "content", MAX_NOTE_LENGTH)
        if cleaned is None:
            raise InvalidBreakValue("content", "is required")
        return cls(uuid.uuid4(), organization_id, exception_id, user_id, cleaned, at)


@dataclass(slots=True)
class ExceptionItem:
    """An `exceptions` row (spec §1) plus the workflow columns of migrations 0006, 0007 and 0014.

    Slotted: an export holds a batch of thousands, and past 30 attributes an instance's `__dict__`
    no longer shares its keys with the others (CPython), which doubled a batch's memory."""

    id: uuid.UUID
    organization_id: uuid.UUID
    job_id: uuid.UUID
    type: str
    severity: str
    status: ExceptionStatus
    description: str
    created_at: dt.datetime
    due_at: dt.datetime
    amount: Decimal | None = None  # spec DECIMAL(18,2), major units
    currency: str | None = "NGN"
    transaction_date: dt.date | None = None
    ai_explanation: str | None = None
    ai_confidence: Decimal | None = None
    suggested_action: str | None = None
    assigned_to: uuid.UUID | None = None
    resolved_by: uuid.UUID | None = None
    resolved_at: dt.datetime | None = None
    resolution_code: str | None = None
    resolution_note: str | None = None
    severity_reason: str | None = None
    escalated_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    # the rows the break is about, as the reconciliation job recorded them (migration 0006)
    left_file_id: uuid.UUID | None = None
    left_row: int | None = None
    right_file_id: uuid.UUID | None = None
    right_row: int | None = None
    amount_minor: int | None = None
    evidence: dict[str, Any] | None = None
    # the rows' search keys (domain/exceptions/search.py; migration 0014)
    reference: str | None = None
    reference_other: str | None = None
    secondary_reference: str | None = None
    secondary_reference_other: str | None = None
    masked_account: str | None = None
    channel: str | None = None
    # the exception of the earlier job whose state this one took (a forced re-run; migration 0029)
    inherited_from: uuid.UUID | None = None

    @classmethod
    def new(cls, *, organization_id: uuid.UUID, job_id: uuid.UUID, type: str, severity: str, description: str,
            created_at: dt.datetime, sla: SlaPolicy, id: uuid.UUID | None = None, **fields: Any) -> ExceptionItem:
        if type not in EXCEPTION_TYPES:
            raise InvalidBreakValue("type", f"must be one of {list(EXCEPTION_TYPES)}")
        parse_severity(severity)
        return cls(id=id or uuid.uuid4(), organization_id=organization_id, job_id=job_id, type=type,
                   severity=severity, status=ExceptionStatus.OPEN, description=description,
                   created_at=created_at, due_at=sla.due_at(created_at, severity), updated_at=created_at,
                   **fields)

    # --- questions ---

    def is_overdue(self, now: dt.datetime) -> bool:
        return self.status in ACTIVE_STATUSES and now >= self.due_at

    def allows(self, action: BreakAction) -> bool:
        return (self.status, action) in TRANSITIONS

    def may_close(self, action: BreakAction) -> bool:
        """Whether `action` (resolve or ignore) can close this exception now, directly or from
        `open` through the implicit start."""
        return action in CLOSING_ACTIONS and (
            self.allows(action) or (self.status is S.OPEN and (S.IN_PROGRESS, action) in TRANSITIONS))

    def refuse_unless_closable(self, action: BreakAction) -> None:
        if not self.may_close(action):
            target = TRANSITIONS.get((S.IN_PROGRESS, action))
            raise InvalidTransition(self.id, self.status.value, action.value,
                                    how_to_reach(self.status, target) if target is not None else None)

    def staked_amounts(self) -> list[StakedAmount]:
        """The stored amounts closing this exception settles: its own amount and those of its rows
        as the reconciliation job recorded them (`evidence.left/right.amount_minor`). For an amount
        mismatch of 250,050 vs 250,000 that is 250,050, not the 50 of difference."""
        staked = [StakedAmount(self.amount, self.currency)] if self.amount is not None else []
        exponent = minor_unit_exponent(self.currency or "")
        minors = [self.amount_minor] + [
            side.get("amount_minor") for side in ((self.evidence or {}).get(key) for key in ("left", "right"))
            if isinstance(side, dict)]
        staked += [StakedAmount.of_minor(value, self.currency, exponent) for value in minors
                   if isinstance(value, int) and not isinstance(value, bool)]
        return staked

    def material(self) -> dict[str, Any]:
        """What a checker approves about this exception (compared with the request's snapshot)."""
        return {"id": str(self.id), "type": self.type, "amount": None if self.amount is None else str(self.amount),
                "currency": self.currency, "amount_minor": self.amount_minor, "description": self.description,
                "ai_explanation": self.ai_explanation,
                "left": {"file_id": str(self.left_file_id) if self.left_file_id else None, "row": self.left_row},
                "right": {"file_id": str(self.right_file_id) if self.right_file_id else None, "row": self.right_row},
                "evidence": self.evidence}

    # --- changes; each returns the history entry it leaves ---

    def apply(self, action: BreakAction, *, actor_id: uuid.UUID | None, at: dt.datetime,
              reason: str | None = None, resolution: Resolution | None = None) -> HistoryEntry:
        target = TRANSITIONS.get((self.status, action))
        if target is None:
            raise InvalidTransition(self.id, self.status.value, action.value)
        if action is A.SLA_ESCALATE and actor_id is not None:
            raise InvalidTransition(self.id, self.status.value, "sla_escalate (system only)")
        reason = _text(reason, "reason", MAX_REASON_LENGTH)
        if action in (A.REOPEN, A.IGNORE) and reason is None:
            raise ReasonRequired(action.value)
        if action is A.RESOLVE:
            if resolution is None:
                raise InvalidBreakValue("resolution_code", "is required to resolve")
            if actor_id is None:
                raise InvalidBreakValue("resolved_by", "a resolution is made by a person")
        changes: dict[str, Any] = {}
        previous = self.status
        self.status = target
        if action is A.RESOLVE:
            assert resolution is not None and actor_id is not None
            self.resolved_by, self.resolved_at = actor_id, at
            self.resolution_code, self.resolution_note = resolution.code.value, resolution.note
            changes = {"resolution_code": resolution.code.value, "resolution_note": resolution.note}
        elif action is A.REOPEN:
            changes = {"previous_resolution_code": self.resolution_code, "previous_resolved_by":
                       str(self.resolved_by) if self.resolved_by else None}
            self.resolved_by = self.resolved_at = None
            self.resolution_code = self.resolution_note = None
        if target is S.ESCALATED:
            self.escalated_at = at
        self.updated_at = at
        return HistoryEntry(self.id, action.value, actor_id, at, previous.value, target.value, reason, changes)

    def close(self, action: BreakAction, *, actor_id: uuid.UUID, at: dt.datetime, reason: str | None = None,
              resolution: Resolution | None = None) -> list[HistoryEntry]:
        """Resolve or ignore: from `open` the implicit start is its own entry before the closing.
        Everything the closing needs is checked first, so a refusal changes nothing."""
        self.refuse_unless_closable(action)
        if action is A.IGNORE and _text(reason, "reason", MAX_REASON_LENGTH) is None:
            raise ReasonRequired(action.value)
        if action is A.RESOLVE and resolution is None:
            raise InvalidBreakValue("resolution_code", "is required to resolve")
        entries = []
        if self.status is S.OPEN:
            entries.append(self.apply(A.START, actor_id=actor_id, at=at))
            entries[-1].changes.update({"implicit": True, "for": action.value})
        entries.append(self.apply(action, actor_id=actor_id, at=at, reason=reason, resolution=resolution))
        return entries

    def close_by_later_match(self, *, at: dt.datetime, note: str, code: str,
                             rows: dict[str, Any]) -> HistoryEntry:
        """Resolved by the system: a later run of the stream matched this exception's row (docs/
        streams.md). No person acts, so `resolved_by` stays empty and `code` (MATCHED_IN_LATER_RUN)
        is one no person can send; the history entry names both rows."""
        if self.status not in ACTIVE_STATUSES:
            raise InvalidTransition(self.id, self.status.value, "close by a later match")
        previous = self.status
        self.status = S.RESOLVED
        self.resolved_by, self.resolved_at = None, at
        self.resolution_code, self.resolution_note = code, note
        self.updated_at = at
        return HistoryEntry(self.id, A.RESOLVE.value, None, at, previous.value, S.RESOLVED.value, None,
                            {"resolution_code": code, "resolution_note": note, "by": "system", "rows": rows})

    def inherit(self, earlier: ExceptionItem, *, earlier_job_id: uuid.UUID, at: dt.datetime,
                comments: int = 0) -> HistoryEntry:
        """A forced re-run found the same break as `earlier` (same key: domain/exceptions/
        inheritance.py): this exception, new and open, takes its state as the system, no person
        deciding (docs/decisions/forced-job-inheritance.md). Status (closed stays closed),
        assignee, resolution, escalation, severity (with its override reason) and the SLA clock
        (`created_at`, `due_at`: the break was first found then) carry; `inherited_from` names it."""
        if self.status is not S.OPEN or self.inherited_from is not None:
            raise InvalidTransition(self.id, self.status.value, "inherit the state of another exception into")
        previous = self.status
        for name in INHERITED_FIELDS:
            setattr(self, name, getattr(earlier, name))
        self.inherited_from = earlier.id
        self.updated_at = at
        return HistoryEntry(self.id, INHERIT_ACTION, None, at, previous.value, self.status.value, None,
                            inheritance_changes(earlier.id, earlier_job_id, self.status.value, comments))

    def override_severity(self, severity: str, *, reason: str | None, actor_id: uuid.UUID, at: dt.datetime,
                          sla: SlaPolicy) -> HistoryEntry:
        parse_severity(severity)
        cleaned = _text(reason, "reason", MAX_REASON_LENGTH)
        if cleaned is None:
            raise ReasonRequired("severity_override")
        if self.status not in ACTIVE_STATUSES:
            raise InvalidTransition(self.id, self.status.value, "change the severity of")
        changes = {"severity": {"from": self.severity, "to": severity},
                   "due_at": {"from": self.due_at.isoformat()}}
        self.severity, self.severity_reason = severity, cleaned
        self.due_at = sla.due_at(self.created_at, severity)
        changes["due_at"]["to"] = self.due_at.isoformat()
        self.updated_at = at
        return HistoryEntry(self.id, "severity_override", actor_id, at, self.status.value, self.status.value,
                            cleaned, changes)

    def refuse_unless_assignable(self) -> None:
        if self.status not in ACTIVE_STATUSES:
            raise InvalidTransition(self.id, self.status.value, "assign",
                                    "reopen it (PATCH status open with a reason) first")

    def assign(self, assignee_id: uuid.UUID | None, *, actor_id: uuid.UUID, at: dt.datetime) -> HistoryEntry:
        self.refuse_unless_assignable()
        changes = {"assigned_to": {"from": str(self.assigned_to) if self.assigned_to else None,
                                   "to": str(assignee_id) if assignee_id else None}}
        self.assigned_to = assignee_id
        self.updated_at = at
        return HistoryEntry(self.id, "assign", actor_id, at, self.status.value, self.status.value, None, changes)

    def check_invariants(self, sla: SlaPolicy) -> None:
        resolved_fields = (self.resolved_by, self.resolved_at, self.resolution_code, self.resolution_note)
        if self.status is S.RESOLVED and self.resolution_code == SYSTEM_RESOLUTION_CODE:
            assert self.resolved_by is None and self.resolved_at and self.resolution_note, "a system closing names its match"
        elif self.status is S.RESOLVED:
            assert all(value is not None for value in resolved_fields), "a resolved exception names its resolution"
        else:
            assert all(value is None for value in resolved_fields), "only a resolved exception has a resolution"
        assert self.due_at == sla.due_at(self.created_at, self.severity), "due_at follows the severity"
        assert self.severity in SEVERITIES
        if self.status is S.ESCALATED:
            assert self.escalated_at is not None
