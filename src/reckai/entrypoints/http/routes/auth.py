"""`/api/auth/*` (spec §5.1 Authentication): login (two steps with MFA), refresh, logout, MFA
enrolment, password change and reset, invitation acceptance, and the caller's own profile."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import Response

from reckai.application.context import RequestInfo
from reckai.application.identity import email_verification as verification_cases
from reckai.application.identity import login as login_cases
from reckai.application.identity import mfa as mfa_cases
from reckai.application.identity import passwords as password_cases
from reckai.application.identity import users as user_cases
from reckai.application.identity.common import IdentityServices, TokenPair
from reckai.domain.identity.principal import Principal
from reckai.entrypoints.http.auth import ALLOW_EXPIRED_PASSWORD, STATE_ACCESS_EXPIRES_AT
from reckai.entrypoints.http.envelope import Success, ok

SELF = {"permission": "account:self"}


ORGANIZATION_CODE = msgspec.Meta(description="The organization's sign-in code (chosen at sign-up; in the "
                                              "invitation mail).", examples=["first-bank"])
EMAIL = msgspec.Meta(description="The account's e-mail address (compared case-insensitively).",
                     examples=["ada.analyst@firstbank.example"])
PASSWORD = msgspec.Meta(description="The account's password.", examples=["Quartz!Ledger-7291"])
NEW_PASSWORD = msgspec.Meta(description="The password to set; it must meet the organization's password policy "
                                        "(violations come back one per rule).", examples=["Meadow$Abacus-4471"])
LINK_TOKEN = msgspec.Meta(description="The token from the mail's link (the value after `?token=`); single use.",
                          examples=["q3J9x0bT5m2VfWzY8kLp4sNcR7aH1dEuG6iO0tQyZ_w"])
REFRESH_TOKEN = msgspec.Meta(description="The refresh token of a session (from login or the last refresh).",
                             examples=["r1.8f3b9c2d4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c"])
TOTP_CODE = msgspec.Meta(description="The 6-digit code shown by the authenticator app now.", examples=["492817"])


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    organization_code: Annotated[str, ORGANIZATION_CODE]
    email: Annotated[str, EMAIL]
    password: Annotated[str, PASSWORD]


class MfaLoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    mfa_token: Annotated[str, msgspec.Meta(description="The `mfa_token` that the login answered with status "
                                                       "mfa_required (valid five minutes, one use).",
                                           examples=["mfa.eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.e30.c2ln"])]
    code: Annotated[str, msgspec.Meta(description="A 6-digit TOTP code, or one of the recovery codes (each works "
                                                  "once).", examples=["492817"])]


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str, REFRESH_TOKEN]


class LogoutRequest(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str | None, msgspec.Meta(
        description="Also end this session (its refresh token stops working); without it only the access token "
                    "is revoked.", examples=["r1.8f3b9c2d4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c"])] = None


class ReauthenticateRequest(msgspec.Struct, forbid_unknown_fields=True):
    password: Annotated[str, msgspec.Meta(description="The caller's current password, asked again before a "
                                                      "sensitive change.", examples=["Quartz!Ledger-7291"])]


class MfaCodeRequest(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, TOTP_CODE]


class PasswordChangeRequest(msgspec.Struct, forbid_unknown_fields=True):
    current_password: Annotated[str, msgspec.Meta(description="The password in use now.",
                                                  examples=["Quartz!Ledger-7291"])]
    new_password: Annotated[str, NEW_PASSWORD]


class PasswordResetRequest(msgspec.Struct, forbid_unknown_fields=True):
    organization_code: Annotated[str, ORGANIZATION_CODE]
    email: Annotated[str, EMAIL]


class PasswordResetConfirm(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, LINK_TOKEN]
    new_password: Annotated[str, NEW_PASSWORD]


class InvitationAccept(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, LINK_TOKEN]
    password: Annotated[str, NEW_PASSWORD]


class EmailVerificationConfirm(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, LINK_TOKEN]


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
    # False for an administrator who signed up and has not opened the verification link yet: they
    # may not add users or start jobs (403 EMAIL_NOT_VERIFIED) until they do.
    email_verified: bool


class AcceptedInvitation(msgspec.Struct):
    user_id: uuid.UUID


class EmailVerified(msgspec.Struct):
    user_id: uuid.UUID
    email_verified: bool


class EmailVerificationResent(msgspec.Struct):
    """`queued`: a new mail is on its way (earlier links stop working when it is sent);
    `already_verified`: nothing to do."""

    already_verified: bool
    queued: bool
    message: str


def tokens_body(pair: TokenPair) -> Tokens:
    return Tokens(pair.access_token, pair.token_type, pair.expires_in, pair.access_expires_at, pair.refresh_token,
                  pair.refresh_expires_at, pair.session_id)


def _outcome(result: login_cases.LoginResult) -> LoginOutcome:
    return LoginOutcome(status=result.status, tokens=tokens_body(result.tokens) if result.tokens else None,
                        mfa_token=result.mfa_token, mfa_expires_at=result.mfa_expires_at)


class AuthController(Controller):
    path = "/api/auth"

    @post("/login", opt={"public": True, "errors": {
        401: "INVALID_CREDENTIALS: unknown organization or e-mail, wrong password, locked or deactivated account "
             "(one answer for all, so accounts cannot be probed), an offboarded organization's too.",
        429: "RATE_LIMITED: too many attempts from this address or for this account; retry after `Retry-After`."}},
          status_code=200, sync_to_thread=True, summary="Sign in")
    def login(self, data: JSONBody[LoginRequest], identity: NamedDependency[IdentityServices],
              request_info: NamedDependency[RequestInfo]) -> Success[LoginOutcome]:
        """Step one of signing in: organization code, e-mail and password. Answers `status` authenticated
        (with tokens), mfa_required (send `mfa_token` and a code to /api/auth/mfa/login) or
        password_change_required (tokens that only change the password)."""
        result = login_cases.login(identity, organization_code=data.organization_code, email=data.email,
                                   password=data.password, request=request_info)
        return ok(_outcome(result))

    @post("/mfa/login", opt={"public": True, "errors": {
        401: "INVALID_MFA_CODE: the code is wrong or was used already, or the challenge expired or was used.",
        429: "RATE_LIMITED: too many attempts; retry after `Retry-After`.",
        503: "SERVICE_UNAVAILABLE: the sign-in challenge store cannot be reached."}},
          status_code=200, sync_to_thread=True, summary="Sign in, second step (MFA)")
    def mfa_login(self, data: JSONBody[MfaLoginRequest], identity: NamedDependency[IdentityServices],
                  request_info: NamedDependency[RequestInfo]) -> Success[LoginOutcome]:
        """Completes a login that answered mfa_required, with a TOTP code or a recovery code."""
        result = login_cases.verify_mfa_login(identity, mfa_token=data.mfa_token, code=data.code, request=request_info)
        return ok(_outcome(result))

    @post("/refresh", opt={"public": True, "errors": {
        401: "INVALID_REFRESH_TOKEN: unknown, expired or revoked; a reused (already rotated) token ends the whole "
             "session.",
        429: "RATE_LIMITED: too many attempts; retry after `Retry-After`."}},
          status_code=200, sync_to_thread=True, summary="Refresh the access token")
    def refresh(self, data: JSONBody[RefreshRequest], identity: NamedDependency[IdentityServices],
                request_info: NamedDependency[RequestInfo]) -> Success[Tokens]:
        """Trades a refresh token for a new access token and a new refresh token (rotation: the old one stops
        working)."""
        return ok(tokens_body(login_cases.refresh_session(identity, refresh_token=data.refresh_token,
                                                          request=request_info)))

    @post("/logout", opt={**SELF, ALLOW_EXPIRED_PASSWORD: True}, status_code=200, sync_to_thread=True,
          summary="Sign out")
    def logout(self, principal: NamedDependency[Principal], identity: NamedDependency[IdentityServices],
               request_info: NamedDependency[RequestInfo], request: Request[Any, Any, Any],
               data: JSONBody[LogoutRequest | None] = None) -> Success[LogoutOutcome]:
        """Revokes the access token used for this call and, with `refresh_token`, ends that session."""
        expires_at = request.scope["state"][STATE_ACCESS_EXPIRES_AT]
        revoked = login_cases.logout(identity, principal, access_expires_at=expires_at,
                                     refresh_token=data.refresh_token if data else None, request=request_info)
        return ok(LogoutOutcome(access_token_revoked=True, session_revoked=revoked))

    @get("/me", opt={**SELF, ALLOW_EXPIRED_PASSWORD: True}, sync_to_thread=False, summary="Who am I")
    def me(self, principal: NamedDependency[Principal]) -> Success[Profile]:
        """The signed-in user: id, organization, e-mail, role, the permissions the role grants, and whether the
        e-mail address is verified."""
        return ok(Profile(principal.user_id, principal.organization_id, principal.email, principal.role,
                          sorted(principal.permissions), principal.email_verified))

    @post("/mfa/enable", opt={**SELF, "errors": {
        401: "REAUTHENTICATION_FAILED: the password is wrong.",
        409: "MFA_STATE_CONFLICT: MFA is already enabled."}},
          status_code=200, sync_to_thread=True, summary="Start MFA enrolment")
    def mfa_enable(self, data: JSONBody[ReauthenticateRequest], principal: NamedDependency[Principal],
                   identity: NamedDependency[IdentityServices],
                   request_info: NamedDependency[RequestInfo]) -> Success[MfaEnrollmentBody]:
        """After re-entering the password: a new TOTP secret with its otpauth URI and QR code (SVG). MFA is on
        only once /api/auth/mfa/verify accepts a code."""
        enrollment = mfa_cases.enable_mfa(identity, principal, password=data.password, request=request_info)
        return ok(MfaEnrollmentBody(enrollment.secret, enrollment.provisioning_uri, enrollment.qr_svg))

    @post("/mfa/verify", opt={**SELF, "errors": {
        401: "INVALID_MFA_CODE: the code does not match the pending secret.",
        409: "MFA_STATE_CONFLICT: no enrolment is pending (call /api/auth/mfa/enable first), or MFA is on "
             "already."}},
          status_code=200, sync_to_thread=True, summary="Finish MFA enrolment")
    def mfa_verify(self, data: JSONBody[MfaCodeRequest], principal: NamedDependency[Principal],
                   identity: NamedDependency[IdentityServices],
                   request_info: NamedDependency[RequestInfo]) -> Success[RecoveryCodes]:
        """Confirms the authenticator with a code; MFA is then required at every login. Answers ten recovery
        codes, shown this once."""
        codes = mfa_cases.verify_mfa(identity, principal, code=data.code, request=request_info)
        return ok(RecoveryCodes(mfa_enabled=True, recovery_codes=codes))

    @post("/password/change", opt={**SELF, ALLOW_EXPIRED_PASSWORD: True, "errors": {
        401: "REAUTHENTICATION_FAILED: the current password is wrong."}},
          status_code=200, sync_to_thread=True, summary="Change my password")
    def password_change(self, data: JSONBody[PasswordChangeRequest], principal: NamedDependency[Principal],
                        identity: NamedDependency[IdentityServices],
                        request_info: NamedDependency[RequestInfo]) -> Success[Tokens]:
        """Sets a new password (checked against the policy and the history); the caller's other sessions end
        and a fresh token pair is answered. 400 PASSWORD_POLICY_VIOLATION lists every broken rule."""
        pair = password_cases.change_password(identity, principal, current_password=data.current_password,
                                              new_password=data.new_password, request=request_info)
        return ok(tokens_body(pair))

    @post("/password/reset", opt={"public": True, "errors": {
        429: "RATE_LIMITED: too many reset requests from this address; retry after `Retry-After`."}},
          status_code=202, sync_to_thread=True, summary="Ask for a password reset link")
    def password_reset(self, data: JSONBody[PasswordResetRequest], identity: NamedDependency[IdentityServices],
                       request_info: NamedDependency[RequestInfo]) -> Response[Success[Accepted]]:
        """Mails a single-use link (one hour) to the account's address, if the account exists; the answer is
        the same either way. The link opens the page `/reset-password`."""
        password_cases.request_password_reset(
            identity, organization_code=data.organization_code, email=data.email, request=request_info)
        body = ok(Accepted("If the account exists, a reset link has been sent to its email address"))
        return Response(body, status_code=202)

    @post("/password/reset/confirm", opt={"public": True, "errors": {
        429: "RATE_LIMITED: too many attempts from this address; retry after `Retry-After`."}},
          status_code=200, sync_to_thread=True, summary="Set a new password with a reset link")
    def password_reset_confirm(self, data: JSONBody[PasswordResetConfirm], identity: NamedDependency[IdentityServices],
                               request_info: NamedDependency[RequestInfo]) -> Success[Accepted]:
        """Uses the reset link's token to set a new password; every session of the account ends. 400
        INVALID_TOKEN (unknown, used or expired link) or PASSWORD_POLICY_VIOLATION (each broken rule)."""
        password_cases.confirm_password_reset(identity, token=data.token, new_password=data.new_password,
                                              request=request_info)
        return ok(Accepted("Password changed; sign in with the new password"))

    @post("/invitations/accept", opt={"public": True, "errors": {
        429: "RATE_LIMITED: too many attempts from this address; retry after `Retry-After`."}},
          status_code=200, sync_to_thread=True, summary="Accept an invitation")
    def accept_invitation(self, data: JSONBody[InvitationAccept], identity: NamedDependency[IdentityServices],
                          request_info: NamedDependency[RequestInfo]) -> Success[AcceptedInvitation]:
        """Uses the invitation link's token to set the new user's first password (the page
        `/accept-invitation` does the same for a person). 400 INVALID_TOKEN or PASSWORD_POLICY_VIOLATION."""
        user_id = user_cases.accept_invite(identity, token=data.token, password=data.password, request=request_info)
        return ok(AcceptedInvitation(user_id))

    @post("/email-verification/resend", opt={**SELF, "errors": {
        429: "RATE_LIMITED: too many resend requests for this account; retry after `Retry-After`."}},
          status_code=200, sync_to_thread=True, summary="Send my verification mail again")
    def email_verification_resend(self, principal: NamedDependency[Principal],
                                  identity: NamedDependency[IdentityServices],
                                  request_info: NamedDependency[RequestInfo]) -> Success[EmailVerificationResent]:
        """Queues a new verification mail to the caller's own address, with a single-use link (72 hours) to the
        page `/verify-email`; the earlier link stops working. Nothing is sent when the address is verified."""
        outcome = verification_cases.resend_email_verification(identity, principal, request=request_info)
        message = ("Your e-mail address is already verified" if outcome.already_verified
                   else "A new verification mail is on its way; open its link within 72 hours")
        return ok(EmailVerificationResent(outcome.already_verified, outcome.queued, message))

    @post("/email-verification/confirm", opt={"public": True, "errors": {
        429: "RATE_LIMITED: too many attempts from this address; retry after `Retry-After`."}},
          status_code=200, sync_to_thread=True, summary="Verify an e-mail address with the mailed link")
    def email_verification_confirm(self, data: JSONBody[EmailVerificationConfirm],
                                   identity: NamedDependency[IdentityServices],
                                   request_info: NamedDependency[RequestInfo]) -> Success[EmailVerified]:
        """Uses the verification link's token (the page `/verify-email` does the same for a person): the
        account's address counts as verified from the next request on. 400 INVALID_TOKEN (unknown, used or
        expired link)."""
        user_id = verification_cases.confirm_email_verification(identity, token=data.token, request=request_info)
        return ok(EmailVerified(user_id, True))


ROUTE_HANDLERS = [AuthController]
