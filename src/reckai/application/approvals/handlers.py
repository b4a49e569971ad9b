"""Approval types plug into the maker-checker workflow here: one handler per type, registered in
bootstrap by the feature that owns the type (docs/architecture.md, "Adding an approval type").

The workflow (application/approvals/requests.py) knows no feature: it validates the metadata,
asks the type's handler to `check` a plain request (or to `propose` it, for types whose request
is made by their own use case), and on approval calls the handler's `apply` in the decision's
transaction; on decline or cancel, `withdraw`. `ApprovalHandlers.require_all()` fails bootstrap
when an approval type has no handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reckai.application.context import RequestInfo
from reckai.application.ports.workflow import WorkflowUnitOfWork
from reckai.domain.approvals.workflow import Approval, ApprovalEffect, ApprovalType
from reckai.domain.identity.principal import Principal

# (uow, checker, approval, request) -> what the approval did; runs in the decision's transaction.
ApplyEffect = Callable[[WorkflowUnitOfWork, Principal, Approval, RequestInfo | None], ApprovalEffect]
# (principal, validated metadata, title, description, request) -> the approval this type's own use
# case requested (rule versions, exception resolutions make their request themselves).
Propose = Callable[[Principal, dict[str, Any], str, str, RequestInfo | None], Approval]
# (uow, validated metadata) -> None, raising when the request cannot be made (checked before it is stored).
CheckRequest = Callable[[WorkflowUnitOfWork, dict[str, Any]], None]
# (uow, principal, approval, action) -> None: a declined or cancelled request leaves its subject as it was.
Withdraw = Callable[[WorkflowUnitOfWork, Principal, Approval, str], None]
# (uow, may(permission), approval) -> what the approval refers to, for GET /api/approvals/:id.
Subject = Callable[[WorkflowUnitOfWork, Callable[[str], bool], Approval], dict[str, Any]]
# (uow, approval) -> what the checker is asked to approve, as it stands now: stored in the approval
# when it is requested (metadata.snapshot) and compared again before it is approved (snapshots.py).
Snapshot = Callable[[WorkflowUnitOfWork, Approval], dict[str, Any]]


@dataclass(frozen=True)
class ApprovalHandler:
    apply: ApplyEffect
    propose: Propose | None = None
    check: CheckRequest | None = None
    withdraw: Withdraw | None = None
    subject: Subject | None = None
    snapshot: Snapshot | None = None


class MissingApprovalHandler(RuntimeError):
    """Bootstrap: an approval type has no handler (its feature did not register one)."""


class ApprovalHandlers:
    def __init__(self) -> None:
        self._handlers: dict[ApprovalType, ApprovalHandler] = {}

    def register(self, kind: ApprovalType, handler: ApprovalHandler) -> None:
        if kind in self._handlers:
            raise ValueError(f"approval type {kind.value!r} already has a handler")
        self._handlers[kind] = handler

    def get(self, kind: ApprovalType) -> ApprovalHandler:
        handler = self._handlers.get(kind)
        if handler is None:
            raise MissingApprovalHandler(f"no handler is registered for approval type {kind.value!r}")
        return handler

    def require_all(self) -> None:
        missing = [kind.value for kind in ApprovalType if kind not in self._handlers]
        if missing:
            raise MissingApprovalHandler(f"approval types without a handler: {', '.join(missing)}")
