"""The `user_onboarding` approval type (identity's): an account created only when a checker approves,
or (metadata `action: change_role`) an existing user raised to a role that may decide approvals.

Registered in bootstrap (`ApprovalHandlers`); docs/workflow.md says when the type is used.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

from reckai.application.approvals.common import WorkflowServices
from reckai.application.approvals.handlers import ApprovalHandler
from reckai.application.context import Outcome, RequestInfo
from reckai.application.errors import FieldError, NotFound, QuotaExceeded, ValidationFailed
from reckai.application.identity.errors import EmailAlreadyRegistered
from reckai.application.ports.repositories import DuplicateEntity
from reckai.application.ports.workflow import WorkflowUnitOfWork
from reckai.domain.approvals.separation import is_raise_to_checker_role
from reckai.domain.approvals.workflow import Approval, ApprovalEffect
from reckai.domain.identity.entities import User
from reckai.domain.identity.principal import Principal


def user_onboarding_handler(services: WorkflowServices) -> ApprovalHandler:
    def check(uow: WorkflowUnitOfWork, metadata: dict[str, Any]) -> None:
        if metadata.get("action") == "change_role":
            _raisable(uow, metadata)
        elif uow.users.get_by_email(metadata["email"]) is not None:
            raise EmailAlreadyRegistered("a user with this e-mail already exists")

    def apply(uow: WorkflowUnitOfWork, checker: Principal, approval: Approval,
              request: RequestInfo | None) -> ApprovalEffect:
        if approval.metadata.get("action") == "change_role":
            return _change_role(services, uow, checker, approval, request)
        user = _create_user(services, uow, approval)
        services.record(uow, checker, "user.created", request, organization_id=approval.organization_id,
                        resource_type="user", resource_id=user.id, outcome=Outcome.CREATED,
                        metadata={"role": user.role, "email": user.email, "approval_id": str(approval.id),
                                  "requested_by": str(approval.requested_by)})
        return ApprovalEffect("user_created", "user", user.id, {"role": user.role})

    def subject(uow: WorkflowUnitOfWork, may: Callable[[str], bool], approval: Approval) -> dict[str, Any]:
        return {}

    def snapshot(uow: WorkflowUnitOfWork, approval: Approval) -> dict[str, Any]:
        """The user being onboarded. (An address taken meanwhile is refused when approving, as
        EMAIL_ALREADY_REGISTERED, not as a changed subject.)"""
        meta = approval.metadata
        if meta.get("action") == "change_role":  # the stored user being raised, and to what
            user = uow.users.get(UUID(meta["user_id"]))
            if user is None:
                return {"action": "change_role", "user_id": meta["user_id"], "user": None, "role": meta.get("role")}
            return {"action": "change_role", "user_id": str(user.id), "email": user.email, "name": user.name,
                    "from_role": user.role, "role": meta.get("role"), "is_active": bool(user.is_active)}
        return {"email": meta.get("email"), "name": meta.get("name"), "role": meta.get("role")}

    return ApprovalHandler(apply=apply, check=check, subject=subject, snapshot=snapshot)


def _raisable(uow: WorkflowUnitOfWork, metadata: dict[str, Any]) -> User:
    """The user a change_role request raises: active, of this organization, and it is a raise to a
    role that may decide approvals (other role changes need no checker: PUT /api/users/:id)."""
    user = uow.users.get(UUID(metadata["user_id"]))
    if user is None:
        raise NotFound("user", metadata["user_id"])
    if not user.is_active:
        raise ValidationFailed([FieldError("metadata.user_id", "the user is deactivated")])
    if not is_raise_to_checker_role(user.role, metadata["role"]):
        raise ValidationFailed([FieldError("metadata.role", f"not a raise from {user.role} to a role that may "
                                                            "approve; change it with PUT /api/users/{id}")])
    return user


def _change_role(services: WorkflowServices, uow: WorkflowUnitOfWork, checker: Principal, approval: Approval,
                 request: RequestInfo | None) -> ApprovalEffect:
    user = _raisable(uow, approval.metadata)
    now = approval.reviewed_at or services.now()
    previous = user.role
    user.role = approval.metadata["role"]
    user.token_version += 1  # live access tokens carry the old role: they end now
    user.changed_by(approval.requested_by, now)  # the maker changed it: the cooling-off is theirs
    uow.users.update(user)
    services.record(uow, checker, "user.role_changed", request, organization_id=approval.organization_id,
                    resource_type="user", resource_id=user.id, outcome=Outcome.DONE,
                    metadata={"from": previous, "to": user.role, "approval_id": str(approval.id),
                              "requested_by": str(approval.requested_by)})
    return ApprovalEffect("user_role_changed", "user", user.id, {"from": previous, "role": user.role})


def _create_user(services: WorkflowServices, uow: WorkflowUnitOfWork, approval: Approval) -> User:
    meta = approval.metadata
    quota = uow.quotas.get_for_update(approval.organization_id)
    if quota is not None and uow.users.count(is_active=True) >= quota.max_users:
        raise QuotaExceeded("max_users", quota.max_users)
    now = approval.reviewed_at
    assert now is not None
    # Nobody knows this password: the new user signs in after accepting an invitation
    # (POST /api/users/{id}/invite), as for any account created without a password.
    unusable = services.password_hasher.hash(secrets.token_urlsafe(24))
    user = User(id=uuid4(), organization_id=approval.organization_id, email=meta["email"], name=meta["name"],
                role=meta["role"], password_hash=unusable, password_changed_at=now, created_by=approval.requested_by,
                created_at=now, updated_at=now)
    try:
        return uow.users.add(user)
    except DuplicateEntity:
        raise EmailAlreadyRegistered("a user with this e-mail already exists") from None
