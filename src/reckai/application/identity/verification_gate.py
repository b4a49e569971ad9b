"""The one check behind "unverified administrators may not add users or start jobs": every gated use
case calls `require_verified_email` first (docs/identity.md, "E-mail verification"). It reads
what the caller carries (Principal or Caller, both built from the user row of this request), so
the gate holds whichever door the use case is called through: HTTP route, approval, CLI."""

from __future__ import annotations

from typing import Protocol

from reckai.application.identity.errors import EmailNotVerified
from reckai.domain.identity.verification import GatedAction, must_verify_email


class Actor(Protocol):
    @property
    def role(self) -> str | None: ...

    @property
    def email_verified(self) -> bool: ...


def require_verified_email(actor: Actor, action: GatedAction) -> None:
    """EmailNotVerified (403 EMAIL_NOT_VERIFIED) when `actor` must verify their address first."""
    if must_verify_email(actor.role, actor.email_verified):
        raise EmailNotVerified(action.value)
