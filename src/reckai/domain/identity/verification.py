"""Who must have proven their e-mail address before what (docs/identity.md, "E-mail verification").

An administrator who signed up on their own is the one account whose address nobody has vouched
for: the sign-up form took it on trust. Until they open the link mailed to it, they may sign in and
set the organization up, but not bring other people in (create or invite users) nor start
reconciliation jobs, the two things that act on an address or data at someone else's expense.
Other roles' addresses were typed by an administrator (who is verified to do so) or proven by
accepting an invitation.
"""

from __future__ import annotations

from enum import Enum


class GatedAction(Enum):
    """What an unverified administrator may not do; the value completes "verify your e-mail
    address before you ..."."""

    ADD_USER = "add or invite users"
    START_JOB = "start reconciliation jobs"


def must_verify_email(role: str | None, email_verified: bool) -> bool:
    """True when this caller is refused the gated actions until their address is verified."""
    return role == "admin" and not email_verified
