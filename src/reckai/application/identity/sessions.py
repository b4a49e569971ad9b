"""A user's sessions (one per login: a refresh-token family) and ending them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from reckai.application.context import Outcome, RequestInfo
from reckai.application.errors import NotFound
from reckai.application.identity.common import IdentityServices
from reckai.domain.identity.principal import Principal

MANAGE_OTHERS = "users:write"


@dataclass(frozen=True)
class SessionView:
    id: uuid.UUID  # the token family: stable across refreshes
    user_id: uuid.UUID
    ip_address: str | None
    user_agent: str | None
    created_at: dt.datetime | None
    last_activity_at: dt.datetime | None
    expires_at: dt.datetime
    absolute_expires_at: dt.datetime | None


def list_sessions(services: IdentityServices, principal: Principal, user_id: uuid.UUID | None = None) -> Sequence[SessionView]:
    """The caller's live sessions; an admin may name another user of the organization."""
    target = user_id or principal.user_id
    if target != principal.user_id and not principal.holds(MANAGE_OTHERS):
        raise NotFound("user", target)
    now = services.now()
    with services.database.unit_of_work(principal.organization_id) as uow:
        if uow.users.get(target) is None:
            raise NotFound("user", target)
        rows = uow.sessions.list_for_user(target)
        views = []
        for row in rows:
            if row.rotated_at is not None or row.family_id is None or row.expires_at <= now:
                continue
            family = uow.sessions.get_family(row.family_id)
            if family is None or family.revoked_at is not None or family.absolute_expires_at <= now:
                continue
            views.append(SessionView(family.id, row.user_id, row.ip_address, row.user_agent, family.created_at,
                                     row.last_activity_at, row.expires_at, family.absolute_expires_at))
    return views


def end_session(services: IdentityServices, principal: Principal, session_id: uuid.UUID, *, request: RequestInfo) -> None:
    """Revoke a session (token family). Own sessions for everyone; any session of the
    organization for admins. Someone else's session is "not found" to a non-admin."""
    with services.database.unit_of_work(principal.organization_id) as uow:
        family = uow.sessions.get_family(session_id)
        if family is None or (family.user_id != principal.user_id and not principal.holds(MANAGE_OTHERS)):
            raise NotFound("session", session_id)
        revoked = uow.sessions.revoke_family(family.id, services.now(), "ended_by_user"
                                             if family.user_id == principal.user_id else "ended_by_admin")
        services.audit_log.record(uow, services.event(
            "auth.session.ended", request, organization_id=principal.organization_id, user_id=principal.user_id,
            resource_type="session", resource_id=family.id, outcome=Outcome.DONE,
            metadata={"owner": str(family.user_id), "revoked_count": revoked}))
        uow.commit()
