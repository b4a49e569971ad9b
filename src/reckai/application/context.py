"""Who is asking, from where, and the one way a use case turns that into an audit event.

- `RequestInfo`: where a request came from (address, client, method, path, request id), for audit
  rows and device binding. Built by the entrypoint (the HTTP layer from the connection; the CLI and
  the jobs leave it empty).
- `Caller`: an authenticated user of one organization, with the facts of their request. Use cases
  that act for a user take one (or a domain `Principal` plus a `RequestInfo`, the same facts).
- `Outcome`: how an action ended, in the application's words. The audit row's `response_status`
  is an HTTP number; the HTTP layer says which number each outcome is (`RequestInfo.statuses`,
  filled from `entrypoints/http/audit_status.py`), so no use case speaks HTTP. Actions outside a
  request (jobs, the CLI) have no response and record none.
- `audit_event(...)`: the one builder of audit events from those facts.

The clock is a port (`application/ports/clock.py`); services carry the one bootstrap gave them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from reckai.domain.audit.events import AuditEvent
from reckai.domain.identity.devices import device_fingerprint
from reckai.domain.identity.permissions import has_permission
from reckai.domain.identity.principal import Principal


class Outcome(str, Enum):
    DONE = "done"  # the action happened
    CREATED = "created"  # ... and made something new
    ACCEPTED = "accepted"  # taken on, finished later (a mail queued)
    UNAUTHENTICATED = "unauthenticated"  # refused: who is asking is not established
    DENIED = "denied"  # refused: the caller's role does not allow it
    REFUSED = "refused"  # refused: the input breaks a rule (a file refused, rows that do not normalize)


# Outcome -> the response status the audit row records (the HTTP layer's mapping).
ResponseStatuses = Callable[[Outcome], int]


@dataclass(frozen=True)
class RequestInfo:
    """Facts about the request (or CLI call) for audit rows and device binding."""

    ip_address: str | None = None
    user_agent: str | None = None
    accept_language: str | None = None
    device_id: str | None = None
    method: str | None = None
    path: str | None = None
    request_id: str | None = None
    statuses: ResponseStatuses | None = None

    @property
    def fingerprint(self) -> str:
        return device_fingerprint(self.user_agent, self.accept_language, self.device_id)

    def status_of(self, outcome: Outcome | None) -> int | None:
        if outcome is None or self.statuses is None:
            return None
        return self.statuses(outcome)


NO_REQUEST = RequestInfo()


@dataclass(frozen=True)
class Caller:
    """An authenticated user of one organization (or, with no user, a job acting for it) and the
    facts of the request."""

    organization_id: uuid.UUID
    user_id: uuid.UUID | None
    ip_address: str | None = None
    user_agent: str | None = None
    request_method: str | None = None
    request_path: str | None = None
    role: str | None = None
    request_id: str | None = None
    statuses: ResponseStatuses | None = None
    # The acting user's address is proven (Principal.email_verified); a job acting for the
    # organization has no address to prove.
    email_verified: bool = True

    @classmethod
    def of(cls, principal: Principal, request: RequestInfo) -> Caller:
        return cls(organization_id=principal.organization_id, user_id=principal.user_id,
                   ip_address=request.ip_address, user_agent=request.user_agent, request_method=request.method,
                   request_path=request.path, role=principal.role, request_id=request.request_id,
                   statuses=request.statuses, email_verified=principal.email_verified)

    @classmethod
    def system(cls, organization_id: uuid.UUID) -> Caller:
        """A job or sweeper working for the organization: no user, no request."""
        return cls(organization_id=organization_id, user_id=None)

    @property
    def acting_user(self) -> uuid.UUID:
        """The user who acts (uploads a file, creates a job); a system caller has none."""
        if self.user_id is None:
            raise RuntimeError("this action needs a user; a system caller has none")
        return self.user_id

    @property
    def request(self) -> RequestInfo:
        return RequestInfo(ip_address=self.ip_address, user_agent=self.user_agent, method=self.request_method,
                           path=self.request_path, request_id=self.request_id, statuses=self.statuses)

    def may(self, permission: str) -> bool:
        return self.role is not None and has_permission(self.role, permission)


def audit_event(action: str, request: RequestInfo | None, *, organization_id: uuid.UUID | None = None,
                user_id: uuid.UUID | None = None, resource_type: str | None = None,
                resource_id: uuid.UUID | None = None, outcome: Outcome | None = None, error: str | None = None,
                metadata: Mapping[str, Any] | None = None) -> AuditEvent:
    """The audit event of an action: who (organization, user), on what (resource), from where
    (the request's facts), how it ended (outcome -> response status, as the request says), and its
    metadata exactly as given (None stays None; the caller decides between no metadata and {})."""
    request = request or NO_REQUEST
    return AuditEvent(
        action=action, organization_id=organization_id, user_id=user_id, resource_type=resource_type,
        resource_id=resource_id, ip_address=request.ip_address, user_agent=request.user_agent,
        request_method=request.method, request_path=request.path, response_status=request.status_of(outcome),
        error_message=error, metadata=None if metadata is None else dict(metadata),
    )
