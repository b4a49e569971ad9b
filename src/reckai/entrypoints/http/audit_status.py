"""The response status an audit row records for each outcome of a use case.

Use cases say how an action ended in the application's words (`application.context.Outcome`);
the HTTP layer puts this mapping into every request's `RequestInfo`, so audit rows of API requests
carry the status the client was answered with, and no use case names an HTTP status.
"""

from __future__ import annotations

from reckai.application.context import Outcome

AUDIT_STATUS: dict[Outcome, int] = {
    Outcome.DONE: 200,
    Outcome.CREATED: 201,
    Outcome.ACCEPTED: 202,
    Outcome.UNAUTHENTICATED: 401,
    Outcome.DENIED: 403,
    Outcome.REFUSED: 422,
}


def audit_status(outcome: Outcome) -> int:
    return AUDIT_STATUS[outcome]
