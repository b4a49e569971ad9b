"""The pages behind the links in mails: accept an invitation, reset a password, verify an e-mail
address (docs/http.md, "Pages behind mail links").

A mail link opens `GET /accept-invitation?token=...` or `GET /reset-password?token=...`: a plain
server-rendered HTML form (no script, no framework) that shows the organization's password rules.
The form posts to the same path without the token in the URL; the handler calls the very use case
the JSON API calls (`users.accept_invite`, `passwords.confirm_password_reset`): one rule, not two
doors. Errors come back as the form again, with the messages a person can act on.

`GET /verify-email?token=...` shows one button instead of password fields: the GET itself verifies
nothing, so a mail scanner or link preview that fetches the link cannot verify an address on the
person's behalf; pressing the button posts the token (with the CSRF field) to
`email_verification.confirm_email_verification`, as `POST /api/auth/email-verification/confirm` does.

Protections:

- CSRF: Litestar's double-submit middleware (a signed token in an HttpOnly, SameSite=Strict cookie
  and the same token in a hidden field), on these paths only; the API proper takes bearer tokens,
  which a browser never sends on its own. Its secret is derived from the JWT signing secret, so
  every process of a deployment agrees without another setting.
- The link token travels in the query string of the GET only. The request log never writes the
  query string, audit rows redact `token=` (`domain.audit.redaction.redact_path`), uvicorn's access
  log is off, and `Referrer-Policy: no-referrer` keeps it out of any later request.
- A strict Content-Security-Policy: nothing may load, no script runs, forms post to this origin.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Annotated, Any

from litestar import MediaType, Request, Response, Router, get, post
from litestar.config.csrf import CSRFConfig
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.params import Body, QueryParameter
from litestar.utils.scope.state import ScopeState

from reckai.application.context import RequestInfo
from reckai.application.errors import RateLimited, ValidationFailed
from reckai.application.identity import email_verification as verification_cases
from reckai.application.identity import passwords as password_cases
from reckai.application.identity import users as user_cases
from reckai.application.identity.common import IdentityServices
from reckai.application.identity.errors import InvalidLinkToken

ACCEPT_INVITATION_PATH = "/accept-invitation"
RESET_PASSWORD_PATH = "/reset-password"
VERIFY_EMAIL_PATH = verification_cases.VERIFY_EMAIL_PATH
PAGE_PATHS = (ACCEPT_INVITATION_PATH, RESET_PASSWORD_PATH, VERIFY_EMAIL_PATH)
CSRF_COOKIE = "reckai_csrf"
CSRF_FIELD = "_csrf_token"  # the form field Litestar's CSRF middleware reads
FORM_MEDIA_TYPE = RequestEncodingType.URL_ENCODED.value

PAGE_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CONTENT_SECURITY_POLICY, "Referrer-Policy": "no-referrer"}

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
LinkToken = Annotated[str, QueryParameter(description="the token from the mail's link")]


def csrf_secret(jwt_secret: str) -> str:
    """The CSRF signing secret, derived from (never equal to) the JWT secret: one secret to manage."""
    return hmac.new(jwt_secret.encode(), b"reckai pages csrf v1", hashlib.sha256).hexdigest()


@dataclass(frozen=True, kw_only=True)
class _Flow:
    """One mail-link page that sets a password: its path, the purpose of its tokens, its words, and
    the use case it calls (token, password, request)."""

    path: str
    purpose: str
    title: str
    button: str
    done: str
    invalid: str
    apply: Callable[[IdentityServices, str, str, RequestInfo], None]


def _accept(identity: IdentityServices, token: str, password: str, request: RequestInfo) -> None:
    user_cases.accept_invite(identity, token=token, password=password, request=request)


def _reset(identity: IdentityServices, token: str, password: str, request: RequestInfo) -> None:
    password_cases.confirm_password_reset(identity, token=token, new_password=password, request=request)


INVITATION = _Flow(
    path=ACCEPT_INVITATION_PATH, purpose="invitation", title="Accept your invitation", button="Set password",
    done="Your password is set. You can now sign in with your organization code, e-mail address and this password.",
    invalid="This invitation link is invalid, already used or expired. Ask an administrator of your "
            "organization to send a new invitation.",
    apply=_accept)
RESET = _Flow(
    path=RESET_PASSWORD_PATH, purpose="password_reset", title="Choose a new password", button="Change password",
    done="Your password has been changed and every signed-in session has ended. Sign in with the new password.",
    invalid="This password reset link is invalid, already used or expired. Request a new one from the "
            "sign-in screen; a link works once and for one hour.",
    apply=_reset)


def _html(title: str, body: str, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
    page = ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(title)} · ReckAI</title>\n</head>\n<body>\n<main>\n<h1>{escape(title)}</h1>\n"
            f"{body}</main>\n</body>\n</html>\n")
    return Response(page, status_code=status_code, media_type=MediaType.HTML, headers={**PAGE_HEADERS, **(headers or {})})


def _message(title: str, text: str, *, status_code: int, element_id: str,
             headers: dict[str, str] | None = None) -> Response[str]:
    return _html(title, f"<p id=\"{element_id}\">{escape(text)}</p>\n", status_code=status_code, headers=headers)


def _form(flow: _Flow, request: Request[Any, Any, Any], token: str, rules: Sequence[str],
          errors: Sequence[str] = (), *, status_code: int = 200) -> Response[str]:
    csrf_token = ScopeState.from_scope(request.scope).csrf_token
    alert = ""
    if errors:
        items = "".join(f"<li>{escape(error)}</li>" for error in errors)
        alert = f"<div id=\"errors\" role=\"alert\"><p>The password was not accepted:</p><ul>{items}</ul></div>\n"
    rule_items = "".join(f"<li>{escape(rule)}</li>" for rule in rules)
    body = (f"{alert}<p>Your password must follow these rules:</p>\n<ul id=\"password-rules\">{rule_items}</ul>\n"
            f"<form method=\"post\" action=\"{flow.path}\">\n"
            f"<input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{escape(str(csrf_token or ''))}\">\n"
            f"<input type=\"hidden\" name=\"token\" value=\"{escape(token)}\">\n"
            "<p><label for=\"password\">New password</label><br>"
            "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required></p>\n"
            "<p><label for=\"password_confirmation\">Repeat the new password</label><br>"
            "<input id=\"password_confirmation\" name=\"password_confirmation\" type=\"password\" "
            "autocomplete=\"new-password\" required></p>\n"
            f"<p><button type=\"submit\">{escape(flow.button)}</button></p>\n</form>\n")
    return _html(flow.title, body, status_code=status_code)


def _invalid_link(flow: _Flow) -> Response[str]:
    return _message(flow.title, flow.invalid, status_code=400, element_id="invalid-link")


def _too_many(flow: _Flow, error: RateLimited) -> Response[str]:
    minutes = max(1, round(error.retry_after_seconds / 60))
    return _message(flow.title, f"Too many attempts from your address. Try again in about {minutes} minute(s).",
                    status_code=429, element_id="rate-limited",
                    headers={"Retry-After": str(error.retry_after_seconds)})


def _show(flow: _Flow, request: Request[Any, Any, Any], identity: IdentityServices, token: str) -> Response[str]:
    if not token:
        return _invalid_link(flow)
    try:
        rules = password_cases.link_password_rules(identity, flow.purpose, token)
    except InvalidLinkToken:
        return _invalid_link(flow)
    return _form(flow, request, token, rules)


def _submit(flow: _Flow, request: Request[Any, Any, Any], identity: IdentityServices, form: dict[str, str],
            request_info: RequestInfo) -> Response[str]:
    token = str(form.get("token") or "")
    password = str(form.get("password") or "")
    if not token:
        return _invalid_link(flow)
    try:
        rules = password_cases.link_password_rules(identity, flow.purpose, token)
        if password != str(form.get("password_confirmation") or ""):
            return _form(flow, request, token, rules, ["The two passwords are not the same."], status_code=422)
        flow.apply(identity, token, password, request_info)
    except InvalidLinkToken:
        return _invalid_link(flow)
    except RateLimited as error:
        return _too_many(flow, error)
    except ValidationFailed as error:
        # The policy's violations name the field ("password must contain a digit"); a person reads
        # them as sentences about the password they typed.
        messages = [f"The password {detail.message}." for detail in error.details] or [error.message]
        return _form(flow, request, token, rules, messages, status_code=422)
    return _message(flow.title, flow.done, status_code=200, element_id="done")


@get(ACCEPT_INVITATION_PATH, sync_to_thread=True)
def invitation_page(request: Request[Any, Any, Any], identity: NamedDependency[IdentityServices],
                    token: LinkToken = "") -> Response[str]:
    return _show(INVITATION, request, identity, token)


@post(ACCEPT_INVITATION_PATH, sync_to_thread=True, status_code=200)
def invitation_submit(request: Request[Any, Any, Any], identity: NamedDependency[IdentityServices],
                      request_info: NamedDependency[RequestInfo], data: FormData) -> Response[str]:
    return _submit(INVITATION, request, identity, data, request_info)


@get(RESET_PASSWORD_PATH, sync_to_thread=True)
def reset_page(request: Request[Any, Any, Any], identity: NamedDependency[IdentityServices],
               token: LinkToken = "") -> Response[str]:
    return _show(RESET, request, identity, token)


@post(RESET_PASSWORD_PATH, sync_to_thread=True, status_code=200)
def reset_submit(request: Request[Any, Any, Any], identity: NamedDependency[IdentityServices],
                 request_info: NamedDependency[RequestInfo], data: FormData) -> Response[str]:
    return _submit(RESET, request, identity, data, request_info)


VERIFY_TITLE = "Confirm your e-mail address"
VERIFY_INVALID = ("This verification link is invalid, already used or expired. Sign in and ask for a new one "
                  "(POST /api/auth/email-verification/resend); a link works once and for 72 hours.")
VERIFY_DONE = ("Your e-mail address is confirmed. You can now add users and start reconciliation jobs; "
               "no new sign-in is needed.")


def _verify_form(request: Request[Any, Any, Any], token: str) -> Response[str]:
    csrf_token = ScopeState.from_scope(request.scope).csrf_token
    body = ("<p>Press the button to confirm that this e-mail address is yours.</p>\n"
            f"<form method=\"post\" action=\"{VERIFY_EMAIL_PATH}\">\n"
            f"<input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{escape(str(csrf_token or ''))}\">\n"
            f"<input type=\"hidden\" name=\"token\" value=\"{escape(token)}\">\n"
            "<p><button type=\"submit\">Confirm my e-mail address</button></p>\n</form>\n")
    return _html(VERIFY_TITLE, body)


def _verify_invalid() -> Response[str]:
    return _message(VERIFY_TITLE, VERIFY_INVALID, status_code=400, element_id="invalid-link")


@get(VERIFY_EMAIL_PATH, sync_to_thread=True)
def verify_email_page(request: Request[Any, Any, Any], identity: NamedDependency[IdentityServices],
                      token: LinkToken = "") -> Response[str]:
    if not token:
        return _verify_invalid()
    try:
        verification_cases.check_verification_link(identity, token)
    except InvalidLinkToken:
        return _verify_invalid()
    return _verify_form(request, token)


@post(VERIFY_EMAIL_PATH, sync_to_thread=True, status_code=200)
def verify_email_submit(identity: NamedDependency[IdentityServices], request_info: NamedDependency[RequestInfo],
                        data: FormData) -> Response[str]:
    token = str(data.get("token") or "")
    if not token:
        return _verify_invalid()
    try:
        verification_cases.confirm_email_verification(identity, token=token, request=request_info)
    except InvalidLinkToken:
        return _verify_invalid()
    except RateLimited as error:
        minutes = max(1, round(error.retry_after_seconds / 60))
        return _message(VERIFY_TITLE, f"Too many attempts from your address. Try again in about {minutes} minute(s).",
                        status_code=429, element_id="rate-limited",
                        headers={"Retry-After": str(error.retry_after_seconds)})
    return _message(VERIFY_TITLE, VERIFY_DONE, status_code=200, element_id="done")


def _csrf_refused(request: Request[Any, Any, Any], _: PermissionDeniedException) -> Response[str]:
    return _message("This form could not be accepted",
                    "The form was not sent from this page, or it was open too long. Open the link from your "
                    "e-mail again and resubmit.", status_code=403, element_id="csrf-refused")


def pages_router(*, jwt_secret: str, secure_cookie: bool) -> Router:
    """The mail-link pages, with CSRF protection on their own router (the JSON API has none to
    need). `secure_cookie`: the CSRF cookie is sent over HTTPS only (when the public URL is https)."""
    csrf = CSRFConfig(secret=csrf_secret(jwt_secret), cookie_name=CSRF_COOKIE, cookie_secure=secure_cookie,
                      cookie_httponly=True, cookie_samesite="strict", cookie_path="/")
    return Router(
        path="/",
        route_handlers=[invitation_page, invitation_submit, reset_page, reset_submit, verify_email_page,
                        verify_email_submit],
        middleware=[DefineMiddleware(CSRFMiddleware, config=csrf)],
        exception_handlers={PermissionDeniedException: _csrf_refused},
        include_in_schema=False,
        opt={"public": True},
    )
