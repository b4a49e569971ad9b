"""MFA enrolment (TOTP): enable (re-authentication required) then verify (activates, gives the
one-time recovery codes); and an administrator's reset for a user who lost both the authenticator
and the recovery codes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from reckai.application.context import Outcome, RequestInfo
from reckai.application.errors import NotFound
from reckai.application.identity.common import IdentityServices, revoke_all_sessions
from reckai.application.identity.errors import (
    InvalidMfaCode,
    MfaStateConflict,
    SelfMfaReset,
)
from reckai.application.identity.login import reauthenticate
from reckai.application.ports.unit_of_work import UnitOfWork
from reckai.domain.identity.entities import User
from reckai.domain.identity.mfa_rules import generate_recovery_codes, hash_recovery_code
from reckai.domain.identity.principal import Principal


@dataclass(frozen=True)
class MfaEnrollment:
    secret: str
    provisioning_uri: str
    qr_svg: str


def enable_mfa(services: IdentityServices, principal: Principal, *, password: str, request: RequestInfo) -> MfaEnrollment:
    """A new secret, stored sealed, pending until verified. Refused while MFA is on (turning it
    off or re-enrolling is an administrator's reset, not in this flow)."""
    with services.database.unit_of_work(principal.organization_id) as uow:
        user, organization = reauthenticate(services, uow, principal, password, request, "auth.mfa.enable_failed")
        if user.mfa_enabled:
            raise MfaStateConflict("MFA is already enabled for this account")
        enrollment = services.totp.new_enrollment(account_name=f"{organization.code}:{user.email}",
                                                  issuer=services.totp_issuer)
        user.mfa_secret = services.secret_box.seal(enrollment.secret.encode(), f"mfa:{user.id}")
        uow.users.update(user)
        uow.mfa.reset_totp_step(user.id)
        services.audit_log.record(uow, services.event(
            "auth.mfa.enrollment_started", request, organization_id=user.organization_id, user_id=user.id,
            resource_type="user", resource_id=user.id, outcome=Outcome.DONE))
        uow.commit()
    return MfaEnrollment(enrollment.secret, enrollment.provisioning_uri, enrollment.qr_svg)


def verify_mfa(services: IdentityServices, principal: Principal, *, code: str, request: RequestInfo) -> list[str]:
    """Activate MFA with a valid code from the pending secret; returns the recovery codes (shown
    once, stored hashed)."""
    with services.database.unit_of_work(principal.organization_id) as uow:
        user = uow.users.get(principal.user_id)
        if user is None:
            raise NotFound("user", principal.user_id)
        if user.mfa_enabled:
            raise MfaStateConflict("MFA is already enabled for this account")
        if not user.mfa_secret:
            raise MfaStateConflict("Start with POST /api/auth/mfa/enable")
        secret = services.secret_box.open(user.mfa_secret, f"mfa:{user.id}").decode()
        cleaned = code.strip().replace(" ", "")
        step = services.totp.verify(secret, cleaned, last_used_step=uow.mfa.last_totp_step(user.id),
                                    at=services.now())
        if step is None or not uow.mfa.advance_totp_step(user.id, step):
            uow.rollback()
            services.audit_log.record(uow, services.event(
                "auth.mfa.verify_failed", request, organization_id=user.organization_id, user_id=user.id,
                resource_type="user", resource_id=user.id, outcome=Outcome.UNAUTHENTICATED))
            uow.commit()
            raise InvalidMfaCode()
        codes = generate_recovery_codes()
        uow.mfa.replace_recovery_codes(user.id, [hash_recovery_code(c) for c in codes], services.now())
        user.mfa_enabled = True
        uow.users.update(user)
        services.audit_log.record(uow, services.event(
            "auth.mfa.enrolled", request, organization_id=user.organization_id, user_id=user.id,
            resource_type="user", resource_id=user.id, outcome=Outcome.DONE, metadata={"count": len(codes)}))
        uow.commit()
    return codes


def reset_mfa(services: IdentityServices, principal: Principal, user_id: uuid.UUID, *, password: str,
              request: RequestInfo) -> User:
    """POST /api/users/:id/mfa/reset (administrators): turn MFA off for another user of the
    organization so they can enrol again. The administrator re-authenticates with their password;
    nobody resets their own MFA. See `_clear_mfa` for what goes."""
    if user_id == principal.user_id:
        raise SelfMfaReset()
    with services.database.unit_of_work(principal.organization_id) as uow:
        reauthenticate(services, uow, principal, password, request, "auth.mfa.reset_failed")
        user = uow.users.get(user_id)
        if user is None:
            raise NotFound("user", user_id)
        _clear_mfa(services, uow, user, request, actor_id=principal.user_id)
        uow.commit()
        return user


def operator_reset_mfa(services: IdentityServices, *, organization_code: str, email: str,
                       request: RequestInfo) -> tuple[User, int]:
    """`reckai org reset-mfa`: the same reset, by an operator with access to the deployment, for an
    organization whose only administrator lost both factors (the API refuses a self-reset).
    Audited with no acting user (a system event). Returns the user and the sessions revoked."""
    with services.database.unit_of_work(None) as uow:
        organization_id = uow.organizations.find_id_by_code(organization_code.strip().lower())
    if organization_id is None:
        raise NotFound("organization", organization_code)
    with services.database.unit_of_work(organization_id) as uow:
        user = uow.users.get_by_email(email)
        if user is None:
            raise NotFound("user", email)
        revoked = _clear_mfa(services, uow, user, request, actor_id=None)
        uow.commit()
        return user, revoked


def _clear_mfa(services: IdentityServices, uow: UnitOfWork, user: User, request: RequestInfo, *,
               actor_id: uuid.UUID | None) -> int:
    """MFA off: the secret, the replay state and every recovery code go; the user's sessions are
    revoked and live access tokens refused at once (token version); audited with both users."""
    if not user.mfa_enabled and not user.mfa_secret:
        raise MfaStateConflict("MFA is not enabled for this user")
    now = services.now()
    user.mfa_enabled = False
    user.mfa_secret = None
    user.token_version += 1
    if actor_id is not None:  # an administrator's reset: segregation of duties (docs/workflow.md)
        user.changed_by(actor_id, now)
    uow.users.update(user)
    uow.mfa.reset_totp_step(user.id)
    uow.mfa.replace_recovery_codes(user.id, [], now)
    revoked = revoke_all_sessions(uow, user.id, now, "mfa_reset")
    services.audit_log.record(uow, services.event(
        "auth.mfa.reset", request, organization_id=user.organization_id, user_id=actor_id,
        resource_type="user", resource_id=user.id, outcome=Outcome.DONE,
        metadata={"sessions_revoked": revoked, "by": "administrator" if actor_id else "operator"}))
    return revoked
