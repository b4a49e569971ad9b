"""What a matcher returns: clean matches, suggestions for a person, and classified breaks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class MatchStatus(str, Enum):
    AUTO = "auto"  # confidence at or above the rule's threshold: a clean match
    SUGGESTED = "suggested"  # a person must confirm (low confidence, or a tie)


class BreakType(str, Enum):
    AMOUNT_MISMATCH = "amount_mismatch"
    DATE_MISMATCH = "date_mismatch"
    MISSING_ENTRY = "missing_entry"
    DUPLICATE = "duplicate"
    TIMING_DIFFERENCE = "timing_difference"
    NON_SETTLEMENT = "non_settlement"


@dataclass(frozen=True)
class MatchRecord:
    """One matched (or suggested) pair of rows; members of a group share `group_id`."""

    left_row: int
    right_row: int
    rule: str
    rule_version: int
    status: MatchStatus
    confidence_bp: int  # confidence in basis points (0..10000)
    group_id: str | None = None
    # amount_diff (left - right, minor units; for a group: the row against the group's net),
    # day_delta (left - right), similarity_bp, left_key / right_key, fee_minor, members.
    evidence: tuple[tuple[str, Any], ...] = ()

    @property
    def confidence(self) -> float:
        return self.confidence_bp / 10_000

    def evidence_dict(self) -> dict[str, Any]:
        return dict(self.evidence)


@dataclass(frozen=True)
class BreakFacts:
    """Everything about a break that a matcher decides; the wording is added by `explanations`."""

    type: BreakType
    left_row: int | None
    right_row: int | None
    currency: str
    left_amount_minor: int | None = None
    right_amount_minor: int | None = None
    left_date: dt.datetime | None = None
    right_date: dt.datetime | None = None
    left_direction: str | None = None
    right_direction: str | None = None
    left_status: str | None = None
    right_status: str | None = None
    reference: str | None = None
    rule: str | None = None  # the rule whose identity linked the pair
    original_row: int | None = None  # duplicates: the copy that stays

    @property
    def amount_minor(self) -> int:
        """The left side's amount when the left row exists (the issue's convention), else the right's."""
        if self.left_amount_minor is not None:
            return self.left_amount_minor
        return self.right_amount_minor or 0

    @property
    def amount_difference_minor(self) -> int | None:
        if self.left_amount_minor is None or self.right_amount_minor is None:
            return None
        return self.left_amount_minor - self.right_amount_minor

    @property
    def day_delta(self) -> int | None:
        if self.left_date is None or self.right_date is None:
            return None
        return (self.left_date.date() - self.right_date.date()).days


@dataclass(frozen=True)
class ExceptionRecord:
    facts: BreakFacts
    severity: str  # low | medium | high | critical
    description: str
    explanation: str  # exceptions.ai_explanation: deterministic text a person can act on
    ai_confidence_bp: int
    suggested_action: str

    @property
    def type(self) -> BreakType:
        return self.facts.type

    @property
    def ai_confidence(self) -> float:
        return self.ai_confidence_bp / 10_000


@dataclass
class ReconciliationResult:
    matches: list[MatchRecord]
    suggestions: list[MatchRecord]
    exceptions: list[ExceptionRecord]
    left_row_count: int = 0
    right_row_count: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    # (side, reversal row, approval row): reversal rows netted against the approval they reverse;
    # they take part in nothing else, and the approval counts as reversed (docs/matching.md).
    reversals: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def matched_left_rows(self) -> set[int]:
        return {m.left_row for m in self.matches}

    @property
    def matched_right_rows(self) -> set[int]:
        return {m.right_row for m in self.matches}

    def summary(self) -> dict[str, Any]:
        by_type: dict[str, int] = {t.value: 0 for t in BreakType}
        for record in self.exceptions:
            by_type[record.type.value] += 1
        matched_rows = len(self.matched_left_rows) + len(self.matched_right_rows)
        total_rows = self.left_row_count + self.right_row_count
        return {
            "rows": {"left": self.left_row_count, "right": self.right_row_count},
            "matched_pairs": len(self.matches),
            "matched_rows": {"left": len(self.matched_left_rows), "right": len(self.matched_right_rows)},
            "suggested_pairs": len(self.suggestions),
            "exceptions": len(self.exceptions),
            "exceptions_by_type": by_type,
            "reversals_netted": {side: sum(1 for s, _, _ in self.reversals if s == side) for side in ("left", "right")},
            # share of all rows (both files) that ended in a clean match, in percent (spec DECIMAL(5,2))
            "match_rate": round(100 * matched_rows / total_rows, 2) if total_rows else 0.0,
            "seconds": {stage: round(seconds, 4) for stage, seconds in self.stage_seconds.items()},
        }
