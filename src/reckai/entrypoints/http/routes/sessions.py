"""`/api/sessions`: the caller's own sessions (one per login); admins may list and end the
sessions of any user of their organization."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec
from litestar import Controller, delete, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from reckai.application.context import RequestInfo
from reckai.application.identity import sessions as session_cases
from reckai.application.identity.common import IdentityServices
from reckai.domain.identity.principal import Principal
from reckai.entrypoints.http.envelope import Success, ok

SELF = {"permission": "account:self"}


class SessionBody(msgspec.Struct):
    id: uuid.UUID
    user_id: uuid.UUID
    ip_address: str | None
    user_agent: str | None
    created_at: dt.datetime | None
    last_activity_at: dt.datetime | None
    expires_at: dt.datetime
    absolute_expires_at: dt.datetime | None


class Ended(msgspec.Struct):
    id: uuid.UUID
    ended: bool


class SessionController(Controller):
    path = "/api/sessions"

    @get("/", opt=SELF, sync_to_thread=True, summary="List signed-in sessions")
    def list_sessions(
        self, principal: NamedDependency[Principal], identity: NamedDependency[IdentityServices],
        user_id: Annotated[uuid.UUID | None, QueryParameter(description="admins: another user")] = None,
    ) -> Success[list[SessionBody]]:
        """The caller's active sessions (address, user agent, last activity, expiry); an administrator may
        ask for another user's with `user_id`."""
        views = session_cases.list_sessions(identity, principal, user_id)
        return ok([SessionBody(v.id, v.user_id, v.ip_address, v.user_agent, v.created_at, v.last_activity_at,
                               v.expires_at, v.absolute_expires_at) for v in views])

    @delete("/{session_id:uuid}", opt=SELF, status_code=200, sync_to_thread=True, summary="End a session")
    def end_session(self, session_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                    identity: NamedDependency[IdentityServices],
                    request_info: NamedDependency[RequestInfo]) -> Success[Ended]:
        """Signs a session out (its refresh token stops working): one of the caller's own, or, for an
        administrator, any session of the organization. Audited."""
        session_cases.end_session(identity, principal, session_id, request=request_info)
        return ok(Ended(session_id, True))


ROUTE_HANDLERS = [SessionController]
