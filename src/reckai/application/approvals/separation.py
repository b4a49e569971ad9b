"""Segregation of duties in the maker-checker workflow (docs/workflow.md, "Segregation of duties";
the rules: domain/approvals/separation.py).

Two doors use the same rule: deciding (`require_independent_checker`, in approve_request) and
finding who may decide (`independent_checkers`: the notification's recipients, and at request
time a request nobody could approve is refused with NO_ELIGIBLE_CHECKER instead of waiting
forever).
"""

from __future__ import annotations

import datetime as dt
import uuid

from reckai.application.errors import Conflict, FieldError, PermissionDenied
from reckai.application.ports.workflow import WorkflowUnitOfWork
from reckai.domain.approvals.separation import AccountChanges, NotIndependent, independence
from reckai.domain.approvals.workflow import Approval
from reckai.domain.exceptions.policy import parse_workflow_settings
from reckai.domain.identity.entities import User
from reckai.domain.identity.permissions import has_permission

# The approval's metadata key naming the user a request is about (a role raise,
# application/identity/onboarding.py): that user never checks it.
SUBJECT_USER_KEY = "user_id"


class CheckerNotIndependent(PermissionDenied):
    """The caller may decide approvals, but not this one (docs/workflow.md)."""

    code = "CHECKER_NOT_INDEPENDENT"

    def __init__(self, why: NotIndependent) -> None:
        super().__init__("approvals:approve", f"you may not approve this request: {why.describe()}")
        self.details = (FieldError("checker", why.reason),)
        self.why = why


class NoEligibleChecker(Conflict):
    """Nobody but the requester (or only blocked users) could approve the request: said at once."""

    code = "NO_ELIGIBLE_CHECKER"

    def __init__(self, blocked: list[tuple[User, NotIndependent]]) -> None:
        if blocked:
            message = ("no checker may approve this request: " + "; ".join(
                f"{user.name} ({user.role}): {why.describe()}" for user, why in blocked))
        else:
            message = ("no other active user may approve this request (a supervisor or another admin); "
                       "an operator can add one with `reckai org add-user`")
        super().__init__(message, tuple(FieldError("checker", f"{user.id}: {why.reason}") for user, why in blocked))


def concerned_users(approval: Approval) -> frozenset[uuid.UUID]:
    user_id = approval.metadata.get(SUBJECT_USER_KEY)
    return frozenset({uuid.UUID(str(user_id))}) if user_id else frozenset()


def _account(user: User) -> AccountChanges:
    return AccountChanges(user.id, user.created_by, user.created_at, user.last_changed_by, user.last_changed_at)


def _cooling_off(uow: WorkflowUnitOfWork, approval: Approval) -> dt.timedelta:
    organization = uow.organizations.get(approval.organization_id)
    return parse_workflow_settings(organization.settings if organization else None).checker_cooling_off


def _blocked(approval: Approval, user: User, now: dt.datetime, cooling_off: dt.timedelta) -> NotIndependent | None:
    return independence(_account(user), requested_by=approval.requested_by, concerns=concerned_users(approval),
                        now=now, cooling_off=cooling_off)


def require_independent_checker(uow: WorkflowUnitOfWork, approval: Approval, checker_id: uuid.UUID,
                                now: dt.datetime) -> None:
    """The approve path's one check (after the maker-checker rule of the domain)."""
    user = uow.users.get(checker_id)
    if user is None:
        return  # the guard already refused a deleted caller; nothing to compare
    why = _blocked(approval, user, now, _cooling_off(uow, approval))
    if why is not None:
        raise CheckerNotIndependent(why)


def independent_checkers(uow: WorkflowUnitOfWork, approval: Approval, now: dt.datetime, *,
                         require_one: bool = True) -> list[uuid.UUID]:
    """Active users who may decide `approval`; with `require_one`, NoEligibleChecker when none may."""
    candidates = [user for user in uow.users.list(is_active=True, limit=10_000)
                  if has_permission(user.role, "approvals:approve") and user.id != approval.requested_by]
    cooling_off = _cooling_off(uow, approval)
    blocked = [(user, why) for user in candidates if (why := _blocked(approval, user, now, cooling_off)) is not None]
    eligible = [user.id for user in candidates if user.id not in {b.id for b, _ in blocked}]
    if require_one and not eligible:
        raise NoEligibleChecker(blocked)
    return eligible
