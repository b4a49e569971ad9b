"""Manual matching: a person confirms or declines a suggested match, or links unmatched rows.

A row is identified by its file and its 1-based data row (`RowRef`). A declined pair (one left row,
one right row) is remembered for the organization, so later jobs over the same rows do not suggest
it again (the matching job consults `DeclinedPairs` through the port in application/ports/workflow.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reckai.domain.exceptions.errors import BreakError, InvalidBreakValue

MAX_LINK_ROWS = 200


class MatchStateError(BreakError):
    code = "MATCH_STATE_CONFLICT"


@dataclass(frozen=True, order=True)
class RowRef:
    file_id: uuid.UUID
    row_number: int

    def __post_init__(self) -> None:
        if self.row_number < 1:
            raise InvalidBreakValue("row_number", "must be >= 1")


@dataclass(frozen=True)
class MatchMember:
    side: str  # "left" | "right"
    row: RowRef
    amount_minor: int | None = None


@dataclass
class MatchGroup:
    """A `match_groups` row with its members."""

    id: uuid.UUID
    organization_id: uuid.UUID
    job_id: uuid.UUID
    status: str  # auto | suggested | manual | declined
    members: list[MatchMember]
    rule_id: uuid.UUID | None = None
    rule_version: int | None = None
    confidence: Any = None  # Decimal in [0, 1]
    evidence: dict[str, Any] = field(default_factory=dict)
    created_by: uuid.UUID | None = None
    created_at: dt.datetime | None = None

    def pairs(self) -> list[tuple[RowRef, RowRef]]:
        lefts = [m.row for m in self.members if m.side == "left"]
        rights = [m.row for m in self.members if m.side == "right"]
        return [(left, right) for left in lefts for right in rights]

    def confirm(self, user_id: uuid.UUID, at: dt.datetime) -> None:
        if self.status != "suggested":
            raise MatchStateError(f"only a suggested match can be confirmed; this one is {self.status}")
        self.status = "manual"
        self.evidence = {**self.evidence, "confirmed_by": str(user_id), "confirmed_at": at.isoformat()}

    def decline(self, user_id: uuid.UUID, at: dt.datetime, reason: str | None) -> list[DeclinedPair]:
        if self.status != "suggested":
            raise MatchStateError(f"only a suggested match can be declined; this one is {self.status}")
        self.status = "declined"
        self.evidence = {**self.evidence, "declined_by": str(user_id), "declined_at": at.isoformat(),
                         "decline_reason": reason}
        return [DeclinedPair(self.organization_id, left, right, user_id, at, self.job_id, reason)
                for left, right in self.pairs()]


@dataclass(frozen=True)
class DeclinedPair:
    organization_id: uuid.UUID
    left: RowRef
    right: RowRef
    declined_by: uuid.UUID
    declined_at: dt.datetime
    job_id: uuid.UUID | None = None
    reason: str | None = None


def manual_group(*, organization_id: uuid.UUID, job_id: uuid.UUID, members: Sequence[MatchMember],
                 already_matched: Iterable[RowRef], user_id: uuid.UUID, at: dt.datetime,
                 note: str | None) -> MatchGroup:
    """A hand-made match: at least one row of each side, no row twice, none already matched."""
    sides = {m.side for m in members}
    if sides != {"left", "right"}:
        raise InvalidBreakValue("rows", "link at least one left row and one right row")
    if len(members) > MAX_LINK_ROWS:
        raise InvalidBreakValue("rows", f"at most {MAX_LINK_ROWS} rows in one match")
    refs = [m.row for m in members]
    if len(set(refs)) != len(refs):
        raise InvalidBreakValue("rows", "a row appears twice")
    taken = sorted(set(refs) & set(already_matched))
    if taken:
        raise MatchStateError("rows are already matched",
                              {f"rows.{ref.file_id}.{ref.row_number}": "already matched" for ref in taken})
    left_total = sum(m.amount_minor or 0 for m in members if m.side == "left")
    right_total = sum(m.amount_minor or 0 for m in members if m.side == "right")
    evidence = {"linked_by": str(user_id), "linked_at": at.isoformat(), "note": note,
                "left_total_minor": left_total, "right_total_minor": right_total,
                "difference_minor": left_total - right_total}
    return MatchGroup(id=uuid.uuid4(), organization_id=organization_id, job_id=job_id, status="manual",
                      members=list(members), evidence=evidence, created_by=user_id, created_at=at)

