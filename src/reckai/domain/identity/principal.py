"""The authenticated caller of a request, as the HTTP guard established it.

Built on every request from a verified access token *and* the current state of the user and the
organization (active, token version, role), so a deactivation or role change takes effect at once.
Handlers read it as `request.state.principal` or through the `principal` dependency.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    organization_id: uuid.UUID
    role: str
    permissions: frozenset[str]
    session_id: uuid.UUID | None  # the session (token family) of the access token; None for system callers
    token_id: str  # the access token's jti
    email: str
    # The user's address is proven (the verification link, an accepted invitation, or an operator
    # created the account), read from the user row on every request like the role: verifying takes
    # effect at the next request, no new sign-in needed.
    email_verified: bool

    def holds(self, permission: str) -> bool:
        return permission in self.permissions
