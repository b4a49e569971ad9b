"""Segregation of duties: who may be the checker of a request (docs/workflow.md, "Segregation of
duties").

Maker-checker alone says "never the requester". An administrator could still be their own checker
through an account they made: create (or raise) a checker with a password they know, sign in as it
and approve. So, besides holding `approvals:approve` and not being the requester, a checker

- is not a user the request is about (a role raise of that very user), and
- was not created, nor last changed (role, activation, e-mail, an administrator's reset of the
  password or MFA), by the requester within the organization's cooling-off period
  (`workflow.checker_cooling_off_days`, default 7, at least 1).

And an account that may decide approvals (a checker role, or admin) is only created, or raised
to such a role, through an approval by another checker, whatever the organization's
user_onboarding flag (application/identity/users.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from reckai.domain.identity.permissions import has_permission

DEFAULT_COOLING_OFF_DAYS = 7
MIN_COOLING_OFF_DAYS = 1
MAX_COOLING_OFF_DAYS = 365


def is_checker_role(role: str) -> bool:
    """A role whose holder may decide approvals or manage users (who could make a checker)."""
    return role == "admin" or has_permission(role, "approvals:approve")


def _rank(role: str) -> int:
    return 2 if role == "admin" else 1 if is_checker_role(role) else 0


def is_raise_to_checker_role(previous: str, role: str) -> bool:
    """analyst/auditor -> supervisor or admin, supervisor -> admin: needs a checker's approval.
    A demotion (admin -> supervisor) or no change does not."""
    return _rank(role) > _rank(previous)


@dataclass(frozen=True)
class AccountChanges:
    """Who created a user's account and who last changed it (role, activation, e-mail, an
    administrator's password or MFA reset), and when."""

    user_id: uuid.UUID
    created_by: uuid.UUID | None
    created_at: dt.datetime | None
    last_changed_by: uuid.UUID | None
    last_changed_at: dt.datetime | None


@dataclass(frozen=True)
class NotIndependent:
    """Why a user may not be the checker of a request; `until` when it ends by itself."""

    reason: str  # subject | created_by_requester | changed_by_requester
    until: dt.datetime | None = None

    def describe(self) -> str:
        if self.reason == "subject":
            return "the request is about this user"
        what = "created" if self.reason == "created_by_requester" else "last changed"
        return f"the requester {what} this account (until {self.until.isoformat() if self.until else '?'})"


def independence(account: AccountChanges, *, requested_by: uuid.UUID, concerns: Collection[uuid.UUID],
                 now: dt.datetime, cooling_off: dt.timedelta) -> NotIndependent | None:
    """None when `account` may check a request of `requested_by` about `concerns` at `now`."""
    if account.user_id in concerns:
        return NotIndependent("subject")
    for by, at, reason in ((account.last_changed_by, account.last_changed_at, "changed_by_requester"),
                           (account.created_by, account.created_at, "created_by_requester")):
        if by == requested_by and at is not None and now < at + cooling_off:
            return NotIndependent(reason, at + cooling_off)
    return None
