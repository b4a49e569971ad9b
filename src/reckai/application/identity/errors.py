"""Errors of the identity use cases; each refines a kind of reckai.application.errors."""

from __future__ import annotations

from collections.abc import Iterable

from reckai.application.errors import (
    ApplicationError,
    Conflict,
    FieldError,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
)

GENERIC_LOGIN_FAILURE = "Invalid organization code, email or password"


class InvalidCredentials(Unauthenticated):
    """Unknown organization or user, wrong password, locked or inactive account: one answer for
    all, so the response says nothing about which it was. `reason` goes to the audit log only."""

    code = "INVALID_CREDENTIALS"

    def __init__(self, reason: str) -> None:
        super().__init__(GENERIC_LOGIN_FAILURE, reason=reason)


class InvalidMfaCode(Unauthenticated):
    code = "INVALID_MFA_CODE"

    def __init__(self, reason: str = "invalid_code") -> None:
        super().__init__("The verification code is not valid", reason=reason)


class InvalidRefreshToken(Unauthenticated):
    code = "INVALID_REFRESH_TOKEN"

    def __init__(self, reason: str) -> None:
        super().__init__("The refresh token is not valid; sign in again", reason=reason)


class ReauthenticationFailed(Unauthenticated):
    """The current password given to confirm a sensitive change (password, MFA) is wrong."""

    code = "REAUTHENTICATION_FAILED"

    def __init__(self) -> None:
        super().__init__("The current password is not correct", reason="reauthentication_failed")


class PasswordChangeRequired(PermissionDenied):
    """The password has expired (or was set by an administrator): only the change endpoint works."""

    code = "PASSWORD_CHANGE_REQUIRED"

    def __init__(self) -> None:
        super().__init__(None, "Your password has expired; change it at POST /api/auth/password/change")


class InvalidLinkToken(ValidationFailed):
    """An invitation or password-reset token that is unknown, used or expired (one answer for all)."""

    code = "INVALID_TOKEN"

    def __init__(self) -> None:
        super().__init__((FieldError("token", "is invalid or has expired"),), "The link is invalid or has expired")


class WeakPassword(ValidationFailed):
    code = "PASSWORD_POLICY_VIOLATION"

    def __init__(self, details: Iterable[FieldError]) -> None:
        super().__init__(details, "The password does not meet the password policy")


class SignupDisabled(PermissionDenied):
    code = "SIGNUP_DISABLED"

    def __init__(self) -> None:
        super().__init__(None, "Public sign-up is disabled on this deployment")


class OrganizationCodeTaken(Conflict):
    code = "ORGANIZATION_CODE_TAKEN"

    def __init__(self) -> None:
        super().__init__("This organization code is already taken", (FieldError("code", "is already taken"),))


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"

    def __init__(self) -> None:
        super().__init__("A user with this email already exists", (FieldError("email", "is already taken"),))


class EmailAlreadyRegistered(Conflict):
    """A `user_onboarding` approval names an e-mail that an account already has (at request or approval)."""

    code = "EMAIL_TAKEN"


class LastAdmin(Conflict):
    code = "LAST_ADMIN"

    def __init__(self) -> None:
        super().__init__("The organization must keep at least one active admin")


class MfaStateConflict(Conflict):
    code = "MFA_STATE_CONFLICT"


class ApprovalRequired(ApplicationError):
    """The organization requires a checker's approval (`user_onboarding` before a user is created,
    `system_setting` before its settings change). The HTTP routes turn this into a request for
    one (application/approvals/optional.py); other callers see it as an error."""

    code = "APPROVAL_REQUIRED"

    def __init__(self, approval_type: str = "user_onboarding") -> None:
        self.approval_type = approval_type
        what = "a user is created" if approval_type == "user_onboarding" else "its settings change"
        super().__init__(
            f"This organization requires a {approval_type} approval before {what}; "
            "request one at POST /api/approvals"
        )


class SelfMfaReset(PermissionDenied):
    """An administrator cannot reset their own MFA: another administrator must (a stolen admin
    password alone must not be enough to remove the second factor)."""

    def __init__(self) -> None:
        super().__init__("users:write", "An administrator cannot reset their own MFA; ask another administrator")


class EmailNotVerified(PermissionDenied):
    """An administrator whose e-mail address is not verified yet tried a gated action
    (domain/identity/verification.py): 403, naming the two ways out."""

    code = "EMAIL_NOT_VERIFIED"

    def __init__(self, action: str) -> None:
        super().__init__(None, f"Verify your e-mail address before you {action}: open the link in the verification "
                               "mail, or ask for a new mail at POST /api/auth/email-verification/resend")
        self.action = action
