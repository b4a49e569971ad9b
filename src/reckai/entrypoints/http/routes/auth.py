"""`/api/auth/*` (spec §5.1 Authentication): login (two steps with MFA), refresh, logout, MFA
enrolment, password change and reset, invitation acceptance, and the caller's own profile."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import Response

from reckai.application.context import RequestInfo
from reckai.application.identity import login as login_cases
from reckai.application.identity import mfa as mfa_cases
from reckai.application.identity import passwords as password_cases
from reckai.application.identity import users as user_cases
from reckai.application.identity.common import IdentityServices, TokenPair
from reckai.domain.identity.principal import Principal
from reckai.entrypoints.http.auth import ALLOW_EXPIRED_PASSWORD, STATE_ACCESS_EXPIRES_AT
from reckai.entrypoints.http.envelope import Success, ok

SELF = {"permission": "account:self"}


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    organization_code: str
    email: str
    password: str


class MfaLoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    mfa_token: str
    code: str  # a 6-digit TOTP code or a recovery code


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: str


class LogoutRequest(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: str | None = None


class ReauthenticateRequest(msgspec.Struct, forbid_unknown_fields=True):
    password: str


class MfaCodeRequest(msgspec.Struct, forbid_unknown_fields=True):
    code: str


class PasswordChangeRequest(msgspec.Struct, forbid_unknown_fields=True):
    current_password: str
    new_password: str


class PasswordResetRequest(msgspec.Struct, forbid_unknown_fields=True):
    organization_code: str
    email: str


class PasswordResetConfirm(msgspec.Struct, forbid_unknown_fields=True):
    token: str
    new_password: str


class InvitationAccept(msgspec.Struct, forbid_unknown_fields=True):
    token: str
    password: str


class Tokens(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    access_expires_at: dt.datetime
    refresh_token: str
    refresh_expires_at: dt.datetime
    session_id: uuid.UUID


class LoginOutcome(msgspec.Struct):
    """`status`: "authenticated"; "mfa_required" (send `mfa_token` and a code to
    /api/auth/mfa/login); or "password_change_required" (the tokens work only for
    /api/auth/password/change, /api/auth/logout and /api/auth/me)."""

    status: str
    tokens: Tokens | None = None
    mfa_token: str | None = None
    mfa_expires_at: dt.datetime | None = None


class MfaEnrollmentBody(msgspec.Struct):
    secret: str
    otpauth_uri: str
    qr_code_svg: str


class RecoveryCodes(msgspec.Struct):
    mfa_enabled: bool
    recovery_codes: list[str]


class Accepted(msgspec.Struct):
    message: str


class LogoutOutcome(msgspec.Struct):
    access_token_revoked: bool
    session_revoked: bool


class Profile(msgspec.Struct):
    user_id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    role: str
    permissions: list[str]


class AcceptedInvitation(msgspec.Struct):
    user_id: uuid.UUID


def tokens_body(pair: TokenPair) -> Tokens:
    return Tokens(pair.access_token, pair.token_type, pair.expires_in, pair.access_expires_at, pair.refresh_token,
                  pair.refresh_expires_at, pair.session_id)


def _outcome(result: login_cases.LoginResult) -> LoginOutcome:
    return LoginOutcome(status=result.status, tokens=tokens_body(result.tokens) if result.tokens else None,
                        mfa_token=result.mfa_token, mfa_expires_at=result.mfa_expires_at)


class AuthController(Controller):
    path = "/api/auth"

    @post("/login", opt={"public": True}, status_code=200, sync_to_thread=True)
    def login(self, data: JSONBody[LoginRequest], identity: NamedDependency[IdentityServices],
              request_info: NamedDependency[RequestInfo]) -> Success[LoginOutcome]:
        result = login_cases.login(identity, organization_code=data.organization_code, email=data.email,
                                   password=data.password, request=request_info)
        return ok(_outcome(result))

    @post("/mfa/login", opt={"public": True}, status_code=200, sync_to_thread=True)
    def mfa_login(self, data: JSONBody[MfaLoginRequest], identity: NamedDependency[IdentityServices],
                  request_info: NamedDependency[RequestInfo]) -> Success[LoginOutcome]:
        result = login_cases.verify_mfa_login(identity, mfa_token=data.mfa_token, code=data.code, request=request_info)
        return ok(_outcome(result))

    @post("/refresh", opt={"public": True}, status_code=200, sync_to_thread=True)
    def refresh(self, data: JSONBody[RefreshRequest], identity: NamedDependency[IdentityServices],
                request_info: NamedDependency[RequestInfo]) -> Success[Tokens]:
        return ok(tokens_body(login_cases.refresh_session(identity, refresh_token=data.refresh_token,
                                                          request=request_info)))

    @post("/logout", opt={**SELF, ALLOW_EXPIRED_PASSWORD: True}, status_code=200, sync_to_thread=True)
    def logout(self, principal: NamedDependency[Principal], identity: NamedDependency[IdentityServices],
               request_info: NamedDependency[RequestInfo], request: Request[Any, Any, Any],
               data: JSONBody[LogoutRequest | None] = None) -> Success[LogoutOutcome]:
        expires_at = request.scope["state"][STATE_ACCESS_EXPIRES_AT]
        revoked = login_cases.logout(identity, principal, access_expires_at=expires_at,
                                     refresh_token=data.refresh_token if data else None, request=request_info)
        return ok(LogoutOutcome(access_token_revoked=True, session_revoked=revoked))

    @get("/me", opt={**SELF, ALLOW_EXPIRED_PASSWORD: True}, sync_to_thread=False)
    def me(self, principal: NamedDependency[Principal]) -> Success[Profile]:
        return ok(Profile(principal.user_id, principal.organization_id, principal.email, principal.role,
                          sorted(principal.permissions)))

    @post("/mfa/enable", opt=SELF, status_code=200, sync_to_thread=True)
    def mfa_enable(self, data: JSONBody[ReauthenticateRequest], principal: NamedDependency[Principal],
                   identity: NamedDependency[IdentityServices],
                   request_info: NamedDependency[RequestInfo]) -> Success[MfaEnrollmentBody]:
        enrollment = mfa_cases.enable_mfa(identity, principal, password=data.password, request=request_info)
        return ok(MfaEnrollmentBody(enrollment.secret, enrollment.provisioning_uri, enrollment.qr_svg))

    @post("/mfa/verify", opt=SELF, status_code=200, sync_to_thread=True)
    def mfa_verify(self, data: JSONBody[MfaCodeRequest], principal: NamedDependency[Principal],
                   identity: NamedDependency[IdentityServices],
                   request_info: NamedDependency[RequestInfo]) -> Success[RecoveryCodes]:
        codes = mfa_cases.verify_mfa(identity, principal, code=data.code, request=request_info)
        return ok(RecoveryCodes(mfa_enabled=True, recovery_codes=codes))

    @post("/password/change", opt={**SELF, ALLOW_EXPIRED_PASSWORD: True}, status_code=200, sync_to_thread=True)
    def password_change(self, data: JSONBody[PasswordChangeRequest], principal: NamedDependency[Principal],
                        identity: NamedDependency[IdentityServices],
                        request_info: NamedDependency[RequestInfo]) -> Success[Tokens]:
        pair = password_cases.change_password(identity, principal, current_password=data.current_password,
                                              new_password=data.new_password, request=request_info)
        return ok(tokens_body(pair))

    @post("/password/reset", opt={"public": True}, status_code=202, sync_to_thread=True)
    def password_reset(self, data: JSONBody[PasswordResetRequest], identity: NamedDependency[IdentityServices],
                       request_info: NamedDependency[RequestInfo]) -> Response[Success[Accepted]]:
        password_cases.request_password_reset(
            identity, organization_code=data.organization_code, email=data.email, request=request_info)
        body = ok(Accepted("If the account exists, a reset link has been sent to its email address"))
        return Response(body, status_code=202)

    @post("/password/reset/confirm", opt={"public": True}, status_code=200, sync_to_thread=True)
    def password_reset_confirm(self, data: JSONBody[PasswordResetConfirm], identity: NamedDependency[IdentityServices],
                               request_info: NamedDependency[RequestInfo]) -> Success[Accepted]:
        password_cases.confirm_password_reset(identity, token=data.token, new_password=data.new_password,
                                              request=request_info)
        return ok(Accepted("Password changed; sign in with the new password"))

    @post("/invitations/accept", opt={"public": True}, status_code=200, sync_to_thread=True)
    def accept_invitation(self, data: JSONBody[InvitationAccept], identity: NamedDependency[IdentityServices],
                          request_info: NamedDependency[RequestInfo]) -> Success[AcceptedInvitation]:
        user_id = user_cases.accept_invite(identity, token=data.token, password=data.password, request=request_info)
        return ok(AcceptedInvitation(user_id))


ROUTE_HANDLERS = [AuthController]
