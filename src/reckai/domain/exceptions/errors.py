"""Errors of the exception (break) lifecycle. Each carries the data a client needs and a stable
`code`; the HTTP route module maps them to statuses (an illegal transition is 409)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping


class BreakError(Exception):
    code = "EXCEPTION_RULE_VIOLATION"

    def __init__(self, message: str, details: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})


class InvalidTransition(BreakError):
    """The action is not allowed from the exception's current status."""

    code = "INVALID_TRANSITION"

    def __init__(self, exception_id: uuid.UUID | None, status: str, action: str, hint: str | None = None) -> None:
        super().__init__(f"cannot {action} an exception that is {status}" + (f": {hint}" if hint else ""))
        self.exception_id = exception_id
        self.status = status
        self.action = action
        self.hint = hint


class ReasonRequired(BreakError):
    """Reopening, ignoring or overriding the severity needs a written reason."""

    code = "REASON_REQUIRED"

    def __init__(self, action: str) -> None:
        super().__init__(f"{action} needs a reason", {"reason": "is required"})
        self.action = action


class InvalidBreakValue(BreakError):
    """A field value the lifecycle refuses (unknown severity, empty resolution note ...)."""

    code = "VALIDATION_ERROR"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", {field: message})
        self.field = field


class InvalidWorkflowSettings(BreakError):
    """The organization's `settings["workflow"]` cannot be used; `field` names the offending key."""

    code = "INVALID_WORKFLOW_SETTINGS"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"settings.workflow.{field}: {message}", {f"workflow.{field}": message})
        self.field = field


class BulkRefused(BreakError):
    """A bulk request refused as a whole (all or nothing): `refusals` names every exception that
    could not take the action and why, in the order the request gave them."""

    code = "BULK_REFUSED"

    def __init__(self, action: str, refusals: Mapping[str, str]) -> None:
        count = len(refusals)
        super().__init__(f"cannot {action} {count} of the exceptions; nothing was changed", refusals)
        self.refusals = dict(refusals)
