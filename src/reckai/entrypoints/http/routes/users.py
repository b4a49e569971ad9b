"""`/api/users` (spec §5.1 Users): admins manage the users of their own organization. When the
organization requires a `user_onboarding` approval, POST answers 202 with the request instead
(the user is created when a checker approves; docs/identity.md)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from reckai.application.access import access_event
from reckai.application.approvals.optional import (
    create_user_or_request_approval,
    update_user_or_request_approval,
)
from reckai.application.context import RequestInfo
from reckai.application.identity import mfa as mfa_cases
from reckai.application.identity import users as user_cases
from reckai.application.identity.common import IdentityServices
from reckai.application.privacy import erasure as erasure_cases
from reckai.bootstrap import Container
from reckai.domain.identity.entities import USER_ORDERS, User
from reckai.domain.identity.principal import Principal
from reckai.entrypoints.http.envelope import Pagination, Success, ok, paginated
from reckai.entrypoints.http.routes.approvals import ApprovalBody, approval_body


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(description="The user's e-mail address, unique in the organization.",
                                       examples=["ada.analyst@firstbank.example"])]
    name: Annotated[str, msgspec.Meta(description="The user's full name.", examples=["Ada Analyst"])]
    role: Annotated[str, msgspec.Meta(description="The role: admin, supervisor, analyst or auditor (docs/identity.md lists what each may do).", examples=["analyst"])]
    # Optional provisional password (the user must change it at first sign-in); without one, send
    # an invitation with POST /api/users/{id}/invite.
    password: Annotated[str | None, msgspec.Meta(
        description="Optional provisional password (it must be changed at first sign-in); without one, send an "
                    "invitation with POST /api/users/{user_id}/invite.", examples=["Quartz!Ledger-7291"])] = None


class UserUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str | None, msgspec.Meta(description="The user's full name.", examples=["Ada Analyst"])] = None
    role: Annotated[str | None, msgspec.Meta(description="The role: admin, supervisor, analyst or auditor (docs/identity.md lists what each may do).", examples=["analyst"])] = None
    is_active: Annotated[bool | None, msgspec.Meta(description="false deactivates the user (sessions end), true "
                                                               "reactivates.", examples=[False])] = None


class UserBody(msgspec.Struct):
    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    name: str
    role: str
    is_active: bool
    is_email_verified: bool
    mfa_enabled: bool
    last_login_at: dt.datetime | None
    created_at: dt.datetime | None
    created_by: uuid.UUID | None


class PendingUserBody(msgspec.Struct):
    """202: a user_onboarding approval was requested; the user exists (or has the raised role)
    once another checker approves."""

    pending_approval: ApprovalBody


class MfaResetRequest(msgspec.Struct, forbid_unknown_fields=True):
    password: Annotated[str, msgspec.Meta(description="The administrator's own password, asked again before the "
                                                      "reset.", examples=["Quartz!Ledger-7291"])]


class ErasureRequest(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str | None, msgspec.Meta(
        description="Why (one line, at most 200 characters), shown to the checker, e.g. the data subject's "
                    "request reference.", examples=["DSAR 2026-114: request of 2026-12-01"])] = None


class PendingErasureBody(msgspec.Struct):
    """202: a data_erasure approval was requested; the user is erased when another checker approves."""

    pending_approval: ApprovalBody


class InvitationBody(msgspec.Struct):
    user_id: uuid.UUID
    expires_at: dt.datetime


def user_body(user: User) -> UserBody:
    return UserBody(user.id, user.organization_id, user.email, user.name, user.role, bool(user.is_active),
                    bool(user.is_email_verified), bool(user.mfa_enabled), user.last_login_at, user.created_at,
                    user.created_by)


class UserController(Controller):
    path = "/api/users"

    @get("/", opt={"permission": "users:read"}, sync_to_thread=True, summary="List users")
    def list_users(self, principal: NamedDependency[Principal], identity: NamedDependency[IdentityServices],
                   pagination: NamedDependency[Pagination], container: NamedDependency[Container],
                   request_info: NamedDependency[RequestInfo],
                   sort: Annotated[str, QueryParameter(
                       description=f"one of {list(USER_ORDERS)} (name case-insensitively, e-mail as compared at "
                                   "sign-in); '-' prefix for descending")]
                   = "created_at") -> Success[list[UserBody]]:
        """The organization's users (active and deactivated), sorted by `sort` (creation by default, or
        name or e-mail), paginated with `page` and `per_page`."""
        users, total = user_cases.list_users(identity, principal, limit=pagination.limit, offset=pagination.offset,
                                             sort=sort)
        container.access_recorder.record(access_event(
            "access.users.list", principal, request_info, resource_type="user",
            metadata={"page": pagination.page, "per_page": pagination.per_page, "rows": len(users), "sort": sort}))
        return paginated([user_body(u) for u in users], pagination, total)

    @post("/", opt={"permission": "users:write", "errors": {
        403: "QUOTA_EXCEEDED: the organization has its tier's maximum of users; EMAIL_NOT_VERIFIED: the caller is "
             "an administrator whose e-mail address is not verified yet.",
        409: "EMAIL_TAKEN: a user of the organization has this address."}},
          status_code=201, sync_to_thread=True, summary="Create a user")
    def create_user(self, data: JSONBody[UserCreate], principal: NamedDependency[Principal],
                    identity: NamedDependency[IdentityServices], container: NamedDependency[Container],
                    request_info: NamedDependency[RequestInfo]) -> Response[Success[UserBody | PendingUserBody]]:
        """Adds a user with a role; they sign in after an invitation (or with the provisional password).
        201 created, or 202 with `pending_approval` when onboarding needs a checker."""
        outcome = create_user_or_request_approval(
            identity, container.workflow, principal, email=data.email, name=data.name,
            role=data.role, password=data.password, request=request_info)
        if outcome.approval is not None:
            return Response(ok(PendingUserBody(approval_body(outcome.approval))), status_code=202)
        assert outcome.user is not None
        return Response(ok(user_body(outcome.user)), status_code=201)

    @get("/{user_id:uuid}", opt={"permission": "users:read"}, sync_to_thread=True, summary="Read a user")
    def get_user(self, user_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                 identity: NamedDependency[IdentityServices], container: NamedDependency[Container],
                 request_info: NamedDependency[RequestInfo]) -> Success[UserBody]:
        """One user of the organization: e-mail, name, role, whether active, verified and using MFA."""
        user = user_cases.get_user(identity, principal, user_id)
        container.access_recorder.record(access_event("access.user.detail", principal, request_info,
                                                      resource_type="user", resource_id=user_id))
        return ok(user_body(user))

    @put("/{user_id:uuid}", opt={"permission": "users:write", "errors": {
        409: "LAST_ADMIN: the change would leave the organization without an active administrator."}},
         sync_to_thread=True, summary="Change a user's name, role or status")
    def update_user(self, user_id: FromPath[uuid.UUID], data: JSONBody[UserUpdate],
                    principal: NamedDependency[Principal], identity: NamedDependency[IdentityServices],
                    container: NamedDependency[Container],
                    request_info: NamedDependency[RequestInfo]) -> Response[Success[UserBody | PendingUserBody]]:
        """A raise to supervisor or admin answers 202 with a user_onboarding approval (change_role):
        the role changes when another checker approves (docs/workflow.md, segregation of duties)."""
        outcome = update_user_or_request_approval(identity, container.workflow, principal, user_id, name=data.name,
                                                  role=data.role, is_active=data.is_active, request=request_info)
        if outcome.approval is not None:
            return Response(ok(PendingUserBody(approval_body(outcome.approval))), status_code=202)
        return Response(ok(user_body(outcome.user)), status_code=200)

    @delete("/{user_id:uuid}", opt={"permission": "users:delete", "errors": {
        409: "LAST_ADMIN: the organization's last active administrator cannot be deactivated."}},
            status_code=200, sync_to_thread=True, summary="Deactivate a user")
    def delete_user(self, user_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                    identity: NamedDependency[IdentityServices],
                    request_info: NamedDependency[RequestInfo]) -> Success[UserBody]:
        """Deactivates the user (the row and its history stay, for the audit trail); their sessions end."""
        return ok(user_body(user_cases.deactivate_user(identity, principal, user_id, request=request_info)))

    @post("/{user_id:uuid}/invite", opt={"permission": "users:write", "errors": {
        403: "EMAIL_NOT_VERIFIED: the caller is an administrator whose e-mail address is not verified yet.",
        503: "SERVICE_UNAVAILABLE: the mail could not be sent; nothing was stored."}},
          status_code=200, sync_to_thread=True, summary="Invite a user to set a password")
    def invite_user(self, user_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                    identity: NamedDependency[IdentityServices],
                    request_info: NamedDependency[RequestInfo]) -> Success[InvitationBody]:
        """Mails the user a single-use link (72 hours) to the page `/accept-invitation`, where they choose
        their password; a new invitation replaces an unused one."""
        invitation = user_cases.invite_user(identity, principal, user_id, request=request_info)
        return ok(InvitationBody(invitation.user_id, invitation.expires_at))

    @post("/{user_id:uuid}/mfa/reset", opt={"permission": "users:write", "errors": {
        401: "REAUTHENTICATION_FAILED: the administrator's password is wrong.",
        403: "PERMISSION_DENIED: administrators cannot reset their own MFA (another administrator must)."}},
          status_code=200, sync_to_thread=True, summary="Reset another user's MFA")
    def reset_mfa(self, user_id: FromPath[uuid.UUID], data: JSONBody[MfaResetRequest],
                  principal: NamedDependency[Principal], identity: NamedDependency[IdentityServices],
                  request_info: NamedDependency[RequestInfo]) -> Success[UserBody]:
        """Another user lost their authenticator and recovery codes: MFA off, sessions revoked,
        audited; they enrol again (POST /api/auth/mfa/enable). `password` is the administrator's."""
        return ok(user_body(mfa_cases.reset_mfa(identity, principal, user_id, password=data.password,
                                                request=request_info)))

    @post("/{user_id:uuid}/erase", opt={"permission": "users:delete", "errors": {
        409: "LEGAL_HOLD: the organization is under a legal hold (the message names its end); "
             "USER_ALREADY_ERASED; LAST_ADMIN: the user is the organization's last active administrator."}},
          status_code=202, sync_to_thread=True, summary="Request a user's erasure (right to erasure)")
    def erase_user(self, user_id: FromPath[uuid.UUID], data: JSONBody[ErasureRequest],
                   principal: NamedDependency[Principal], identity: NamedDependency[IdentityServices],
                   container: NamedDependency[Container],
                   request_info: NamedDependency[RequestInfo]) -> Success[PendingErasureBody]:
        """Asks for the user's personal data to be erased (GDPR Art. 17): a `data_erasure` approval that
        another checker decides. On approval the user row is pseudonymised, their sessions, links and
        MFA removed, and the personal values of their audit rows read as `[erased]` (docs/privacy.md)."""
        approval = erasure_cases.request_erasure(identity, container.workflow, principal, request_info, user_id,
                                                 data.reason)
        return ok(PendingErasureBody(approval_body(approval)))


ROUTE_HANDLERS = [UserController]
