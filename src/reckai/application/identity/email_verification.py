"""E-mail verification (issue 17 item 8; docs/identity.md, "E-mail verification").

A public sign-up queues a `send_email_verification` job (the outbox: retried with backoff like the
password-reset mail). The job stores a single-use token (its SHA-256 only, valid 72 hours; a new one
replaces any earlier unused one) and mails a link to the page `/verify-email`, sending the mail
before the token's transaction commits: a mail that fails leaves no token and the outbox retries.
Opening the link shows a button; pressing it (a POST with CSRF protection, so a mail scanner that
follows links verifies nothing) calls `confirm_email_verification`, which the JSON route
`POST /api/auth/email-verification/confirm` calls too. Until then the administrator is refused the
gated actions (application/identity/verification_gate.py); `POST /api/auth/email-verification/resend`
queues a new mail.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass

from reckai.application.context import NO_REQUEST, Outcome, RequestInfo
from reckai.application.errors import NotFound
from reckai.application.identity.common import IdentityServices
from reckai.application.identity.errors import InvalidLinkToken
from reckai.application.identity.passwords import redeem_link_token
from reckai.application.job_types import SEND_EMAIL_VERIFICATION
from reckai.application.ports.jobs import JobDelivery
from reckai.application.ports.mail import OutgoingMail
from reckai.application.ports.unit_of_work import UnitOfWork
from reckai.domain.identity.entities import User, UserToken
from reckai.domain.identity.principal import Principal
from reckai.domain.identity.tokens import hash_refresh_token

EMAIL_VERIFICATION_PURPOSE = "email_verification"
VERIFICATION_LIFETIME = dt.timedelta(hours=72)
VERIFY_EMAIL_PATH = "/verify-email"


def queue_verification_mail(uow: UnitOfWork, services: IdentityServices, user: User) -> None:
    """Queue the verification mail in `uow`'s transaction: it leaves after the commit. The payload
    names the user only (no address in the outbox); the job reads the address when it runs."""
    services.job_queue.enqueue(uow, SEND_EMAIL_VERIFICATION.request(
        {"user_id": str(user.id)}, organization_id=user.organization_id))


def send_email_verification_job(services: IdentityServices, delivery: JobDelivery) -> None:
    """The `send_email_verification` job (high queue). Nothing to do when the user is gone,
    deactivated or verified meanwhile; otherwise a fresh token replaces earlier ones and the link is
    mailed before the token commits (a failed mail leaves nothing; the outbox retries the job)."""
    if delivery.organization_id is None:
        return
    user_id = uuid.UUID(str(delivery.payload["user_id"]))
    token = secrets.token_urlsafe(32)
    with services.database.unit_of_work(delivery.organization_id) as uow:
        user = uow.users.get(user_id)
        organization = uow.organizations.get(delivery.organization_id)
        if user is None or organization is None or not user.is_active or user.is_email_verified:
            return
        now = services.now()
        uow.user_tokens.invalidate_for_user(user.id, EMAIL_VERIFICATION_PURPOSE, now)
        expires_at = now + VERIFICATION_LIFETIME
        uow.user_tokens.add(UserToken(
            id=uuid.uuid4(), organization_id=user.organization_id, user_id=user.id,
            purpose=EMAIL_VERIFICATION_PURPOSE, token_hash=hash_refresh_token(token), expires_at=expires_at,
            created_at=now))
        services.audit_log.record(uow, services.event(
            "user.email_verification_sent", NO_REQUEST, organization_id=user.organization_id, user_id=None,
            resource_type="user", resource_id=user.id, outcome=Outcome.DONE,
            metadata={"expires_at": expires_at.isoformat()}))
        link = f"{services.public_base_url.rstrip('/')}{VERIFY_EMAIL_PATH}?token={token}"
        services.mailer.send(OutgoingMail(
            to=user.email,
            subject="Confirm your e-mail address for ReckAI",
            text_body=(f"Hello {user.name},\n\nPlease confirm that this is your address for {organization.name} "
                       f"(organization code {organization.code}) on ReckAI. Open this link within 72 hours and "
                       f"press the button on the page:\n\n{link}\n\nUntil then you can sign in, but not add "
                       "users or start reconciliation jobs. The link works once. If you did not sign up, "
                       "ignore this message."),
        ))
        uow.commit()


@dataclass(frozen=True)
class ResendOutcome:
    already_verified: bool
    queued: bool


def resend_email_verification(services: IdentityServices, principal: Principal, *,
                              request: RequestInfo) -> ResendOutcome:
    """The caller's own verification mail, again (any earlier link stops working when the new one
    is sent). Nothing is queued for an address already verified."""
    services.limit("auth_account", f"email-verification:{principal.user_id}")
    with services.database.unit_of_work(principal.organization_id) as uow:
        user = uow.users.get(principal.user_id)
        if user is None or not user.is_active:  # the guard read it active a moment ago
            raise NotFound("user", principal.user_id)
        if user.is_email_verified:
            return ResendOutcome(already_verified=True, queued=False)
        queue_verification_mail(uow, services, user)
        services.audit_log.record(uow, services.event(
            "user.email_verification_requested", request, organization_id=user.organization_id, user_id=user.id,
            resource_type="user", resource_id=user.id, outcome=Outcome.ACCEPTED))
        uow.commit()
    return ResendOutcome(already_verified=False, queued=True)


def check_verification_link(services: IdentityServices, token: str) -> None:
    """InvalidLinkToken unless `token` is a usable verification link of an active user: the page
    checks it before showing the button, without using it."""
    found = redeem_link_token(services, EMAIL_VERIFICATION_PURPOSE, token)
    with services.database.unit_of_work(found.organization_id) as uow:
        organization = uow.organizations.get(found.organization_id)
        user = uow.users.get(found.user_id)
    if organization is None or user is None or not user.is_active or not organization.is_active:
        raise InvalidLinkToken()


def confirm_email_verification(services: IdentityServices, *, token: str, request: RequestInfo) -> uuid.UUID:
    """Use the link's token: the user's address is verified from the next request on. Unknown,
    used or expired tokens are one answer (InvalidLinkToken); a token works once, even under a race
    (`mark_used` in the same transaction)."""
    services.limit("auth_ip", request.ip_address or "unknown")
    found = redeem_link_token(services, EMAIL_VERIFICATION_PURPOSE, token)
    with services.database.unit_of_work(found.organization_id) as uow:
        organization = uow.organizations.get(found.organization_id)
        user = uow.users.get(found.user_id)
        if organization is None or user is None or not user.is_active or not organization.is_active:
            raise InvalidLinkToken()
        if not uow.user_tokens.mark_used(found.id, services.now()):
            raise InvalidLinkToken()
        user.is_email_verified = True
        uow.users.update(user)
        services.audit_log.record(uow, services.event(
            "user.email_verified", request, organization_id=user.organization_id, user_id=user.id,
            resource_type="user", resource_id=user.id, outcome=Outcome.DONE))
        uow.commit()
    return found.user_id
