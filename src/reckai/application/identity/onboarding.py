"""The `user_onboarding` approval type (identity's): an account created only when a checker approves.

Registered in bootstrap (`ApprovalHandlers`); docs/workflow.md says when the type is used.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from uuid import uuid4

from reckai.application.approvals.common import WorkflowServices
from reckai.application.approvals.handlers import ApprovalHandler
from reckai.application.context import Outcome, RequestInfo
from reckai.application.errors import QuotaExceeded
from reckai.application.identity.errors import EmailAlreadyRegistered
from reckai.application.ports.repositories import DuplicateEntity
from reckai.application.ports.workflow import WorkflowUnitOfWork
from reckai.domain.approvals.workflow import Approval, ApprovalEffect
from reckai.domain.identity.entities import User
from reckai.domain.identity.principal import Principal


def user_onboarding_handler(services: WorkflowServices) -> ApprovalHandler:
    def check(uow: WorkflowUnitOfWork, metadata: dict[str, Any]) -> None:
        if uow.users.get_by_email(metadata["email"]) is not None:
            raise EmailAlreadyRegistered("a user with this e-mail already exists")

    def apply(uow: WorkflowUnitOfWork, checker: Principal, approval: Approval,
              request: RequestInfo | None) -> ApprovalEffect:
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
        return {"email": meta.get("email"), "name": meta.get("name"), "role": meta.get("role")}

    return ApprovalHandler(apply=apply, check=check, subject=subject, snapshot=snapshot)


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
