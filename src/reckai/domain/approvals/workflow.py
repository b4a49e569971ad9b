"""Maker-checker: an approval request and the rules for deciding it.

    pending --approve (a checker, never the requester)--> approved
    pending --decline (a checker, with a comment)------> declined
    pending --cancel (the requester only)--------------> cancelled

A request is decided once: every decision is from `pending`, and the final statuses have no way
out. Invariants (`check_invariants`, hypothesis-tested): a pending request has no reviewer; an
approved or declined one has a reviewer who is not the requester and a review time; a declined one
has a comment; a cancelled one was cancelled by its requester. Who may be a checker at all (the
`approvals:approve` permission) is decided outside and passed in as `Checker.may_approve`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

MAX_COMMENT_LENGTH = 4000
MAX_TITLE_LENGTH = 255


class ApprovalStatus(str, Enum):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"
    CANCELLED = "cancelled"


class ApprovalType(str, Enum):
    RULE_CONFIGURATION = "rule_configuration"
    LEDGER_POSTING = "ledger_posting"
    USER_ONBOARDING = "user_onboarding"
    EXCEPTION_RESOLUTION = "exception_resolution"
    REPORT_GENERATION = "report_generation"
    SYSTEM_SETTING = "system_setting"
    PERIOD_CLOSE = "period_close"  # a stream's period (issue 15 item 4; docs/streams.md)
    PERIOD_ADJUSTMENT = "period_adjustment"
    PERIOD_REOPEN = "period_reopen"
    DATA_EXPORT = "data_export"  # issue 17 item 6: an organization's data export
    DATA_ERASURE = "data_erasure"  # issue 17 item 5: a person's right to erasure


class ApprovalError(Exception):
    code = "APPROVAL_RULE_VIOLATION"

    def __init__(self, message: str, details: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})


class ApprovalAlreadyDecided(ApprovalError):
    code = "APPROVAL_ALREADY_DECIDED"

    def __init__(self, approval_id: uuid.UUID, status: str) -> None:
        super().__init__(f"approval {approval_id} is already {status}")
        self.approval_id = approval_id
        self.status = status


class SelfApprovalForbidden(ApprovalError):
    code = "SELF_APPROVAL_FORBIDDEN"

    def __init__(self, approval_id: uuid.UUID) -> None:
        super().__init__("the requester of an approval cannot decide it")
        self.approval_id = approval_id


class NotAChecker(ApprovalError):
    code = "NOT_A_CHECKER"

    def __init__(self) -> None:
        super().__init__("only a role holding approvals:approve may decide an approval")


class OnlyRequesterMayCancel(ApprovalError):
    code = "ONLY_REQUESTER_MAY_CANCEL"

    def __init__(self, approval_id: uuid.UUID) -> None:
        super().__init__("only the requester may cancel an approval request")
        self.approval_id = approval_id


class ApprovalSubjectChanged(ApprovalError):
    """The subject changed after the request (its snapshot no longer matches): the checker would
    approve something other than what was asked. `details` maps each changed field to then/now."""

    code = "APPROVAL_SUBJECT_CHANGED"

    def __init__(self, approval_id: uuid.UUID, changes: list[dict[str, Any]]) -> None:
        super().__init__("the subject of this approval changed after it was requested; the maker must ask again",
                         {change["field"]: f"was {change['then']!r}, now {change['now']!r}" for change in changes})
        self.approval_id = approval_id
        self.changes = changes


class InvalidApproval(ApprovalError):
    """A request or decision with a bad field: `details` maps field -> message."""

    code = "VALIDATION_ERROR"


def parse_type(value: str) -> ApprovalType:
    try:
        return ApprovalType(value)
    except ValueError:
        raise InvalidApproval("unknown approval type",
                              {"type": f"must be one of {[t.value for t in ApprovalType]}"}) from None


def parse_status(value: str) -> ApprovalStatus:
    try:
        return ApprovalStatus(value)
    except ValueError:
        raise InvalidApproval("unknown approval status",
                              {"status": f"must be one of {[s.value for s in ApprovalStatus]}"}) from None


def clean_comment(comment: str | None, field_name: str = "comment") -> str | None:
    if comment is None:
        return None
    cleaned = comment.strip()
    if len(cleaned) > MAX_COMMENT_LENGTH:
        raise InvalidApproval("comment too long", {field_name: f"is longer than {MAX_COMMENT_LENGTH} characters"})
    return cleaned or None


@dataclass(frozen=True)
class Checker:
    user_id: uuid.UUID
    may_approve: bool  # holds approvals:approve in this organization


@dataclass
class Approval:
    id: uuid.UUID
    organization_id: uuid.UUID
    type: ApprovalType
    title: str
    description: str
    metadata: dict[str, Any]
    requested_by: uuid.UUID
    requested_at: dt.datetime
    status: ApprovalStatus = ApprovalStatus.PENDING
    reviewed_by: uuid.UUID | None = None
    reviewed_at: dt.datetime | None = None
    review_comments: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    @classmethod
    def request(cls, *, organization_id: uuid.UUID, type: ApprovalType, title: str, description: str,
                metadata: dict[str, Any], requested_by: uuid.UUID, at: dt.datetime,
                id: uuid.UUID | None = None) -> Approval:
        title = (title or "").strip()
        if not title or len(title) > MAX_TITLE_LENGTH:
            raise InvalidApproval("bad title", {"title": f"is required, at most {MAX_TITLE_LENGTH} characters"})
        description = (description or "").strip()
        if not description:
            raise InvalidApproval("bad description", {"description": "is required"})
        return cls(id=id or uuid.uuid4(), organization_id=organization_id, type=type, title=title,
                   description=description, metadata=metadata, requested_by=requested_by, requested_at=at,
                   created_at=at, updated_at=at)

    def _require_pending(self) -> None:
        if self.status is not ApprovalStatus.PENDING:
            raise ApprovalAlreadyDecided(self.id, self.status.value)

    def _require_checker(self, checker: Checker) -> None:
        if not checker.may_approve:
            raise NotAChecker()
        if checker.user_id == self.requested_by:
            raise SelfApprovalForbidden(self.id)

    def approve(self, checker: Checker, at: dt.datetime, comment: str | None = None) -> None:
        self._require_checker(checker)
        self._require_pending()
        self._decide(ApprovalStatus.APPROVED, checker.user_id, at, clean_comment(comment))

    def decline(self, checker: Checker, at: dt.datetime, comment: str | None) -> None:
        self._require_checker(checker)
        self._require_pending()
        cleaned = clean_comment(comment)
        if cleaned is None:
            raise InvalidApproval("a decline needs a comment", {"comment": "is required to decline"})
        self._decide(ApprovalStatus.DECLINED, checker.user_id, at, cleaned)

    def cancel(self, user_id: uuid.UUID, at: dt.datetime, comment: str | None = None) -> None:
        if user_id != self.requested_by:
            raise OnlyRequesterMayCancel(self.id)
        self._require_pending()
        self._decide(ApprovalStatus.CANCELLED, user_id, at, clean_comment(comment))

    def _decide(self, status: ApprovalStatus, reviewer: uuid.UUID, at: dt.datetime, comment: str | None) -> None:
        self.status = status
        self.reviewed_by = reviewer
        self.reviewed_at = at
        self.review_comments = comment
        self.updated_at = at

    def check_invariants(self) -> None:
        if self.status is ApprovalStatus.PENDING:
            assert self.reviewed_by is None and self.reviewed_at is None
            return
        assert self.reviewed_by is not None and self.reviewed_at is not None
        if self.status is ApprovalStatus.CANCELLED:
            assert self.reviewed_by == self.requested_by
        else:
            assert self.reviewed_by != self.requested_by, "nobody approves their own request"
        if self.status is ApprovalStatus.DECLINED:
            assert self.review_comments


def eligible_checker_roles(role_permissions: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """Roles holding approvals:approve, from a role -> permissions map (kept out of identity's module)."""
    return frozenset(role for role, perms in role_permissions.items() if "approvals:approve" in perms)


@dataclass(frozen=True)
class ApprovalEffect:
    """What approving did, for the audit record and the response."""

    kind: str
    resource_type: str | None = None
    resource_id: uuid.UUID | None = None
    details: dict[str, Any] = field(default_factory=dict)
