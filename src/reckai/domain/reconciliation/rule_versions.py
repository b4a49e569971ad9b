"""Versions of a matching rule: a change never takes effect until a checker approves it.

    (propose) -> pending --approve--> active   (the previously active version becomes retired)
                 pending --decline/cancel--> retired (never active: approved_at stays empty)

Invariants of one rule's versions (`check_invariants`, hypothesis-tested): version numbers are
1, 2, 3 ... without gaps; at most one is active and at most one pending; an active or once-active
version has an approval id and approval time; only the newest version may be pending; the rule row
(`matching_rules`) mirrors its active version (is_active, approval_id, approved_at).
A deactivation is a version whose definition says `"is_active": false`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from reckai.domain.reconciliation.results import MatchRecord, ReconciliationResult


class VersionStatus(str, Enum):
    PENDING = "pending"
    ACTIVE = "active"
    RETIRED = "retired"


class RuleVersionError(Exception):
    code = "RULE_VERSION_CONFLICT"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ChangeAlreadyPending(RuleVersionError):
    code = "RULE_CHANGE_PENDING"

    def __init__(self, rule_id: uuid.UUID, version: int) -> None:
        super().__init__(f"rule {rule_id} already has a change waiting for approval (version {version})")
        self.rule_id = rule_id
        self.version = version


class NotPending(RuleVersionError):
    code = "RULE_VERSION_NOT_PENDING"

    def __init__(self, rule_id: uuid.UUID, version: int, status: str) -> None:
        super().__init__(f"version {version} of rule {rule_id} is {status}, not pending")
        self.rule_id = rule_id
        self.version = version


class RuleAlreadyInactive(RuleVersionError):
    code = "RULE_ALREADY_INACTIVE"

    def __init__(self, rule_id: uuid.UUID) -> None:
        super().__init__(f"rule {rule_id} is already inactive")
        self.rule_id = rule_id


@dataclass
class RuleVersion:
    id: uuid.UUID
    rule_id: uuid.UUID
    organization_id: uuid.UUID
    version: int
    definition: dict[str, Any]
    created_by: uuid.UUID
    created_at: dt.datetime
    status: VersionStatus = VersionStatus.PENDING
    approval_id: uuid.UUID | None = None
    approved_at: dt.datetime | None = None

    @property
    def deactivates(self) -> bool:
        return self.definition.get("is_active") is False


@dataclass
class RuleHistory:
    """A rule and all its versions; the aggregate that decides version changes."""

    rule_id: uuid.UUID
    organization_id: uuid.UUID
    versions: list[RuleVersion] = field(default_factory=list)

    @property
    def active(self) -> RuleVersion | None:
        return next((v for v in self.versions if v.status is VersionStatus.ACTIVE), None)

    @property
    def pending(self) -> RuleVersion | None:
        return next((v for v in self.versions if v.status is VersionStatus.PENDING), None)

    @property
    def is_active(self) -> bool:
        active = self.active
        return active is not None and not active.deactivates

    def propose(self, definition: dict[str, Any], *, created_by: uuid.UUID, at: dt.datetime,
                approval_id: uuid.UUID | None = None, id: uuid.UUID | None = None) -> RuleVersion:
        pending = self.pending
        if pending is not None:
            raise ChangeAlreadyPending(self.rule_id, pending.version)
        if definition.get("is_active") is False and not self.is_active:
            raise RuleAlreadyInactive(self.rule_id)
        number = max((v.version for v in self.versions), default=0) + 1
        version = RuleVersion(id=id or uuid.uuid4(), rule_id=self.rule_id, organization_id=self.organization_id,
                              version=number, definition=dict(definition), created_by=created_by, created_at=at,
                              approval_id=approval_id)
        self.versions.append(version)
        return version

    def _pending(self, version_number: int) -> RuleVersion:
        version = next((v for v in self.versions if v.version == version_number), None)
        if version is None or version.status is not VersionStatus.PENDING:
            raise NotPending(self.rule_id, version_number, version.status.value if version else "missing")
        return version

    def approve(self, version_number: int, *, approval_id: uuid.UUID, at: dt.datetime) -> list[RuleVersion]:
        """Activate the pending version; returns every version whose status changed."""
        version = self._pending(version_number)
        changed = []
        previous = self.active
        if previous is not None:
            previous.status = VersionStatus.RETIRED
            changed.append(previous)
        version.status = VersionStatus.ACTIVE
        version.approval_id = approval_id
        version.approved_at = at
        changed.append(version)
        return changed

    def withdraw(self, version_number: int) -> RuleVersion:
        """A declined or cancelled change: the pending version is retired without ever being active."""
        version = self._pending(version_number)
        version.status = VersionStatus.RETIRED
        return version

    def check_invariants(self) -> None:
        numbers = [v.version for v in self.versions]
        assert numbers == list(range(1, len(numbers) + 1)), "versions are numbered 1..n"
        assert sum(v.status is VersionStatus.ACTIVE for v in self.versions) <= 1
        assert sum(v.status is VersionStatus.PENDING for v in self.versions) <= 1
        pending = self.pending
        if pending is not None:
            assert pending.version == numbers[-1], "only the newest version may be pending"
        for version in self.versions:
            if version.status is VersionStatus.ACTIVE:
                assert version.approval_id is not None and version.approved_at is not None
            if version.approved_at is not None:
                assert version.approval_id is not None


# --- preview: what a proposed rule change would do to a completed job's matches ------------------

PREVIEW_SAMPLES = 20


def diff_results(before: ReconciliationResult, after: ReconciliationResult) -> dict[str, Any]:
    """Compare two ReconciliationResults of the same data (current rules vs proposed rules).

    A match is identified by its (left_row, right_row) pair. `added`: pairs only the proposal makes;
    `removed`: pairs only the current rules make; `changed`: pairs both make but with another
    status (auto/suggested), rule or confidence. Counted separately for clean matches and
    suggestions, with a few examples of each, and the exception totals before and after.
    """

    def index(result: ReconciliationResult) -> dict[tuple[int, int], MatchRecord]:
        return {(m.left_row, m.right_row): m for m in [*result.matches, *result.suggestions]}

    old, new = index(before), index(after)
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(pair for pair in set(old) & set(new)
                     if (old[pair].status, old[pair].rule, old[pair].confidence_bp)
                     != (new[pair].status, new[pair].rule, new[pair].confidence_bp))

    def describe(pair: tuple[int, int], record: MatchRecord,
                 previous: MatchRecord | None = None) -> dict[str, Any]:
        item: dict[str, object] = {"left_row": pair[0], "right_row": pair[1], "status": record.status.value,
                                   "rule": record.rule, "confidence": record.confidence_bp / 10_000}
        if previous is not None:
            item["was"] = {"status": previous.status.value, "rule": previous.rule,
                           "confidence": previous.confidence_bp / 10_000}
        return item

    def count(pairs: list[tuple[int, int]], source: dict[tuple[int, int], MatchRecord], status: str) -> int:
        return sum(1 for pair in pairs if source[pair].status.value == status)

    return {
        "matches": {"before": len(before.matches), "after": len(after.matches),
                    "added": count(added, new, "auto"), "removed": count(removed, old, "auto"),
                    "changed": sum(1 for p in changed if "auto" in (old[p].status.value, new[p].status.value))},
        "suggestions": {"before": len(before.suggestions), "after": len(after.suggestions),
                        "added": count(added, new, "suggested"), "removed": count(removed, old, "suggested")},
        "exceptions": {"before": len(before.exceptions), "after": len(after.exceptions)},
        "added": len(added), "removed": len(removed), "changed": len(changed),
        "examples": {"added": [describe(p, new[p]) for p in added[:PREVIEW_SAMPLES]],
                     "removed": [describe(p, old[p]) for p in removed[:PREVIEW_SAMPLES]],
                     "changed": [describe(p, new[p], old[p]) for p in changed[:PREVIEW_SAMPLES]]},
    }
