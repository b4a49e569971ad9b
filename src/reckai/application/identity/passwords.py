"""Changing and resetting passwords (spec §2.1): policy, history, single-use reset links."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

from reckai.application.context import Outcome, RequestInfo
from reckai.application.errors import FieldError, ValidationFailed
from reckai.application.identity.common import (
    IdentityServices,
    TokenPair,
    revoke_all_sessions,
    start_session,
)
from reckai.application.identity.errors import InvalidLinkToken
from reckai.application.identity.login import reauthenticate
from reckai.application.job_types import SEND_PASSWORD_RESET
from reckai.application.ports.jobs import JobDelivery
from reckai.application.ports.mail import OutgoingMail
from reckai.application.ports.rate_limit import auth_account_subject
from reckai.application.ports.unit_of_work import UnitOfWork
from reckai.domain.identity.entities import Organization, User, UserToken
from reckai.domain.identity.password_policy import describe_password_policy
from reckai.domain.identity.principal import Principal
from reckai.domain.identity.tokens import hash_refresh_token

RESET_TOKEN_LIFETIME = dt.timedelta(hours=1)


def set_password(
    services: IdentityServices, uow: UnitOfWork, user: User, organization: Organization | None, new_password: str,
    *, field_name: str = "new_password", expired: bool = False,
) -> None:
    """Check the new password against the policy and the history, store it, remember it in the
    history and bump the token version (every live access token of the user dies)."""
    policy = services.policy_for(organization)
    history = list(uow.users.recent_password_hashes(user.id, policy.history_size))
    if user.password_hash not in history:
        history.insert(0, user.password_hash)
    services.require_acceptable_password(new_password, policy, email=user.email, name=user.name,
                                         history=history[: policy.history_size], field_name=field_name)
    now = services.now()
    user.password_hash = services.password_hasher.hash(new_password)
    # An administrator-set password is provisional: it counts as expired, so the user must change it.
    user.password_changed_at = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) if expired else now
    user.token_version += 1
    user.failed_login_attempts = 0
    user.locked_until = None
    user.login_sources = {}
    uow.users.update(user)
    uow.users.add_password_history(user.id, user.password_hash, now)


def change_password(
    services: IdentityServices, principal: Principal, *, current_password: str, new_password: str,
    request: RequestInfo,
) -> TokenPair:
    """Requires the current password; ends every session of the user (other devices included) and
    returns a fresh session for the caller, since the token version bump ends its token too."""
    with services.database.unit_of_work(principal.organization_id) as uow:
        user, organization = reauthenticate(services, uow, principal, current_password, request,
                                            "auth.password.change_failed")
        set_password(services, uow, user, organization, new_password)
        now = services.now()
        ended = revoke_all_sessions(uow, user.id, now, "password_changed")
        tokens = start_session(services, uow, user, request)
        services.audit_log.record(uow, services.event(
            "auth.password.changed", request, organization_id=user.organization_id, user_id=user.id,
            resource_type="user", resource_id=user.id, outcome=Outcome.DONE, metadata={"logins_ended": ended}))
        uow.commit()
    services.token_blacklist.revoke(principal.token_id, now + dt.timedelta(minutes=15))
    return tokens


MAX_ORGANIZATION_CODE = 50
RESET_ADDRESS_CONTEXT = "outbox:send_password_reset:email"
MAX_EMAIL_ADDRESS = 254


def request_password_reset(
    services: IdentityServices, *, organization_code: str, email: str, request: RequestInfo,
) -> None:
    """Always "accepted" for the caller, and the same work whether or not the account exists: the
    two rate limits and one outbox row (`send_password_reset`), nothing else. No lookup, no token,
    no hash and no mail in the request, so neither its answer nor its timing tells whether the
    address is known. The worker does the rest (`send_password_reset_job`)."""
    code, address = organization_code.strip().lower(), email.strip()
    # No account has a longer code or address (organizations.code is 50 characters; an address at
    # most 254, RFC 5321): refused as input, which tells nothing about any account. Without this a
    # huge value made the job's payload too large to enqueue (a 500, found by the API fuzzer).
    too_long = [FieldError(name, f"is longer than {limit} characters") for name, value, limit in
                (("organization_code", code, MAX_ORGANIZATION_CODE), ("email", address, MAX_EMAIL_ADDRESS))
                if len(value) > limit]
    if too_long:
        raise ValidationFailed(too_long)
    services.limit("auth_ip", request.ip_address or "unknown")
    services.limit("auth_account", auth_account_subject(code, address))
    with services.database.unit_of_work(None) as uow:
        # The address is sealed in the outbox row (under the master key, not an organization's
        # key: finding the organization would be a lookup, docs/privacy.md "Personal data at rest").
        services.job_queue.enqueue(uow, SEND_PASSWORD_RESET.request({
            "organization_code": code,
            "email_sealed": services.secret_box.seal(address.encode("utf-8"), RESET_ADDRESS_CONTEXT),
            "request": {"ip_address": request.ip_address, "user_agent": (request.user_agent or "")[:512] or None,
                        "method": request.method, "path": request.path, "request_id": request.request_id},
        }))
        uow.commit()


def send_password_reset_job(services: IdentityServices, delivery: JobDelivery) -> None:
    """The `send_password_reset` job (high queue). When the account exists and is active, a
    single-use token valid for one hour replaces any earlier one and the link is mailed; the mail
    is sent before the token's transaction commits, so a mail that fails leaves no token and the
    outbox retries the job (backoff, then `failed`). Otherwise the request is only audited."""
    payload = delivery.payload
    code = str(payload["organization_code"])
    # A message queued before addresses were sealed carries "email" in clear; it is read once.
    address = (services.secret_box.open(str(payload["email_sealed"]), RESET_ADDRESS_CONTEXT).decode("utf-8")
               if "email_sealed" in payload else str(payload["email"]))
    asked = payload.get("request") or {}
    request = RequestInfo(ip_address=asked.get("ip_address"), user_agent=asked.get("user_agent"),
                          method=asked.get("method"), path=asked.get("path"), request_id=asked.get("request_id"))
    with services.database.unit_of_work(None) as uow:
        candidate = uow.users.find_login_candidate(code, address)
    if candidate is None or not candidate.organization_is_active or not candidate.user.is_active:
        services.audit_log.record_independently(services.event(
            "auth.password.reset_requested", request,
            organization_id=candidate.user.organization_id if candidate else None,
            # An existing (inactive) account is named, so its address is sealed under its key and
            # erasure reaches it (docs/privacy.md, "Erasure").
            resource_type="user" if candidate else None, resource_id=candidate.user.id if candidate else None,
            metadata={"outcome": "no_active_account", "organization": code, "email": address.lower()}))
        return
    user = candidate.user
    token = secrets.token_urlsafe(32)
    now = services.now()
    with services.database.unit_of_work(user.organization_id) as uow:
        uow.user_tokens.invalidate_for_user(user.id, "password_reset", now)
        uow.user_tokens.add(UserToken(
            id=uuid.uuid4(), organization_id=user.organization_id, user_id=user.id, purpose="password_reset",
            token_hash=hash_refresh_token(token), expires_at=now + RESET_TOKEN_LIFETIME, created_at=now))
        services.audit_log.record(uow, services.event(
            "auth.password.reset_requested", request, organization_id=user.organization_id, user_id=user.id,
            resource_type="user", resource_id=user.id, outcome=Outcome.ACCEPTED))
        link = f"{services.public_base_url.rstrip('/')}/reset-password?token={token}"
        services.mailer.send(OutgoingMail(
            to=user.email,
            subject="Reset your ReckAI password",
            text_body=(f"Hello {user.name},\n\nA password reset was requested for your ReckAI account. "
                       f"Open this link within one hour to choose a new password:\n\n{link}\n\n"
                       "The link works once. If you did not ask for it, ignore this message."),
        ))
        uow.commit()


def _redeem(services: IdentityServices, purpose: str, token: str) -> UserToken:
    with services.database.unit_of_work(None) as uow:
        found = uow.user_tokens.find_by_hash(purpose, hash_refresh_token(token))
    if found is None or not found.usable(services.now()):
        raise InvalidLinkToken()
    return found


def confirm_password_reset(services: IdentityServices, *, token: str, new_password: str, request: RequestInfo) -> None:
    services.limit("auth_ip", request.ip_address or "unknown")
    found = _redeem(services, "password_reset", token)
    with services.database.unit_of_work(found.organization_id) as uow:
        organization = uow.organizations.get(found.organization_id)
        user = uow.users.get(found.user_id)
        if organization is None or user is None or not user.is_active or not organization.is_active:
            raise InvalidLinkToken()
        set_password(services, uow, user, organization, new_password)
        if not uow.user_tokens.mark_used(found.id, services.now()):
            raise InvalidLinkToken()
        ended = revoke_all_sessions(uow, user.id, services.now(), "password_reset")
        services.audit_log.record(uow, services.event(
            "auth.password.reset", request, organization_id=user.organization_id, user_id=user.id,
            resource_type="user", resource_id=user.id, outcome=Outcome.DONE, metadata={"logins_ended": ended}))
        uow.commit()


def redeem_link_token(services: IdentityServices, purpose: str, token: str) -> UserToken:
    return _redeem(services, purpose, token)


def link_password_rules(services: IdentityServices, purpose: str, token: str) -> list[str]:
    """The password rules of the organization a still-usable link (invitation or reset) belongs to,
    without using the link: the page behind the mail link shows them before the form is sent.
    Raises `InvalidLinkToken` for an unknown, used or expired link."""
    found = _redeem(services, purpose, token)
    with services.database.unit_of_work(found.organization_id) as uow:
        organization = uow.organizations.get(found.organization_id)
        user = uow.users.get(found.user_id)
    if organization is None or user is None or not user.is_active or not organization.is_active:
        raise InvalidLinkToken()
    return describe_password_policy(services.policy_for(organization),
                                    max_bytes=services.password_hasher.max_password_bytes)
