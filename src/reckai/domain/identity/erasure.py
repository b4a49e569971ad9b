"""What erasure leaves of a user's row (issue 17 item 5; docs/privacy.md, "Erasure").

The row stays (audit rows, approvals, comments and jobs point at it, and the audit log refuses the
cascade), but nothing in it identifies the person any more: the address becomes one under the
reserved `.invalid` domain (RFC 2606: never delivered), the name a fixed word, and the account
cannot sign in (inactive, an unusable password, no MFA, no sign-in history, a new token version).
"""

from __future__ import annotations

import datetime as dt
import uuid

from reckai.domain.identity.entities import User

ERASED_EMAIL_DOMAIN = "erased.invalid"
ERASED_NAME = "Erased user"


def erased_email(user_id: uuid.UUID) -> str:
    return f"erased-{user_id}@{ERASED_EMAIL_DOMAIN}"


def is_erased(user: User) -> bool:
    return user.email == erased_email(user.id)


def pseudonymise(user: User, unusable_password_hash: str, at: dt.datetime, actor: uuid.UUID | None) -> None:
    """Overwrite everything in the row that identifies or authenticates the person."""
    user.email = erased_email(user.id)
    user.name = ERASED_NAME
    user.is_active = False
    user.is_email_verified = False
    user.password_hash = unusable_password_hash
    user.password_changed_at = at
    user.mfa_enabled = False
    user.mfa_secret = None
    user.failed_login_attempts = 0
    user.locked_until = None
    user.login_sources = {}  # sign-in failures per client address
    user.last_login_at = None
    user.token_version += 1  # live access tokens are refused at once
    user.changed_by(actor, at)
