"""The optional approval types (docs/workflow.md): `user_onboarding` and `system_setting`.

An organization that requires a checker for one of them (`workflow.approval_required_for`, or the
identity flag `user_onboarding_requires_approval`) still uses the ordinary routes, POST /api/users
and PUT /api/settings. The identity use cases decide, in their own transaction, whether the change
may happen at once; when it may not they raise ApprovalRequired, and these use cases request the
approval instead. The change happens when a checker approves (requests._apply_effect), never
before, and never by the requester's own decision.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reckai.application.approvals.common import WorkflowServices
from reckai.application.approvals.requests import request_approval
from reckai.application.context import RequestInfo
from reckai.application.errors import FieldError, NotFound, QuotaExceeded, ValidationFailed
from reckai.application.identity import organizations as org_cases
from reckai.application.identity import users as user_cases
from reckai.application.identity.common import IdentityServices
from reckai.application.identity.errors import ApprovalRequired
from reckai.domain.approvals.workflow import MAX_TITLE_LENGTH, Approval, InvalidApproval
from reckai.domain.identity.entities import User
from reckai.domain.identity.principal import Principal


@dataclass(frozen=True)
class UserCreation:
    user: User | None = None  # created at once (201)
    approval: Approval | None = None  # or requested: the user is created when a checker approves (202)


@dataclass(frozen=True)
class UserChange:
    user: User  # after the change, or unchanged while a role raise waits
    approval: Approval | None = None  # set: the raise waits for a checker (202)


@dataclass(frozen=True)
class SettingsChange:
    settings: org_cases.OrganizationSettingsView  # after the change, or unchanged while it waits
    approval: Approval | None = None  # set: the change waits for a checker (202)


def _validation(exc: InvalidApproval, prefix: str) -> ValidationFailed:
    """The metadata schema's problems under the route's own field names."""
    return ValidationFailed([FieldError(field.removeprefix(prefix), message) for field, message in exc.details.items()],
                            exc.message)


def create_user_or_request_approval(identity: IdentityServices, workflow: WorkflowServices, principal: Principal, *,
                                    email: str, name: str, role: str, password: str | None,
                                    request: RequestInfo) -> UserCreation:
    try:
        return UserCreation(user=user_cases.create_user(identity, principal, email=email, name=name, role=role,
                                                        password=password, request=request))
    except ApprovalRequired:
        pass
    if password is not None:
        # A password must never sit in an approval's metadata: the approved user signs in after
        # an invitation (POST /api/users/{id}/invite), like any account created without one.
        raise ValidationFailed([FieldError("password", "not accepted while user creation needs a user_onboarding "
                                           "approval; invite the user once the request is approved")])
    with workflow.database.unit_of_work(principal.organization_id) as uow:
        # Fail early when no slot is free; the slot is reserved (row lock) only at approval time.
        quota = uow.quotas.get(principal.organization_id)
        if quota is None:
            raise NotFound("organization_quota", principal.organization_id)
        if uow.users.count(is_active=True) >= quota.max_users:
            raise QuotaExceeded("max_users", quota.max_users)
    title = f"New {role}: {name.strip()}"[:MAX_TITLE_LENGTH]
    try:
        approval = request_approval(workflow, principal, type="user_onboarding", title=title,
                                    description=f"Create the user {email.strip()} ({name.strip()}) as {role}.",
                                    metadata={"email": email.strip(), "name": name.strip(), "role": role},
                                    request=request)
    except InvalidApproval as exc:
        raise _validation(exc, "metadata.") from None
    return UserCreation(approval=approval)


def update_user_or_request_approval(identity: IdentityServices, workflow: WorkflowServices, principal: Principal,
                                    user_id: uuid.UUID, *, name: str | None = None, role: str | None = None,
                                    is_active: bool | None = None, request: RequestInfo) -> UserChange:
    """PUT /api/users/:id. A raise to a role that may decide approvals (or admin) always needs a
    checker (segregation of duties): a `user_onboarding` approval with action change_role."""
    try:
        return UserChange(user_cases.update_user(identity, principal, user_id, name=name, role=role,
                                                 is_active=is_active, request=request))
    except ApprovalRequired:
        pass
    assert role is not None
    user = user_cases.get_user(identity, principal, user_id)
    try:
        approval = request_approval(workflow, principal, type="user_onboarding",
                                    title=f"Raise {user.name} to {role}"[:MAX_TITLE_LENGTH],
                                    description=f"Change the role of {user.email} from {user.role} to {role}.",
                                    metadata={"action": "change_role", "user_id": str(user.id), "role": role},
                                    request=request)
    except InvalidApproval as exc:
        raise _validation(exc, "metadata.") from None
    return UserChange(user, approval)


def change_settings_or_request_approval(identity: IdentityServices, workflow: WorkflowServices,
                                        principal: Principal, *, name: str | None = None, domain: str | None = None,
                                        password_policy: Mapping[str, Any] | None = None,
                                        user_onboarding_requires_approval: bool | None = None,
                                        request: RequestInfo) -> SettingsChange:
    changes = org_cases.settings_changes(name=name, domain=domain, password_policy=password_policy,
                                         user_onboarding_requires_approval=user_onboarding_requires_approval)
    try:
        return SettingsChange(org_cases.write_settings(
            identity, principal, name=name, domain=domain, password_policy=password_policy,
            user_onboarding_requires_approval=user_onboarding_requires_approval, request=request))
    except ApprovalRequired:
        pass  # the changes are valid (write_settings validates first); a checker must approve them
    try:
        approval = request_approval(workflow, principal, type="system_setting",
                                    title="Organization settings: " + ", ".join(sorted(changes)),
                                    description="Change the organization settings (PUT /api/settings).",
                                    metadata={"key": "organization", "value": changes}, request=request)
    except InvalidApproval as exc:
        raise _validation(exc, "metadata.value.") from None
    return SettingsChange(org_cases.read_settings(identity, principal), approval)
