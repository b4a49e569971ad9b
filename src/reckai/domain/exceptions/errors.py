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

    def __init__(self, exception_id: uuid.UUID | None, status: str, action: str) -> None:
        super().__init__(f"cannot {action} an exception that is {status}")
        self.exception_id = exception_id
        self.status = status
        self.action = action


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
