"""MFA enrolment (TOTP): enable (re-authentication required) then verify (activates, gives the
one-time recovery codes)."""

from __future__ import annotations

from dataclasses import dataclass

from reckai.application.errors import NotFound
from reckai.application.identity.common import IdentityServices, RequestInfo
from reckai.application.identity.errors import InvalidMfaCode, MfaStateConflict, ReauthenticationFailed
from reckai.application.identity.login import _record_failure
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
        organization = uow.organizations.get(principal.organization_id)
        user = uow.users.get(principal.user_id)
        if user is None or organization is None:
            raise NotFound("user", principal.user_id)
        if not services.password_hasher.verify(password, user.password_hash):
            _record_failure(services, uow, user, organization, request, "auth.mfa.enable_failed",
                            "bad_current_password")
            raise ReauthenticationFailed()
        if user.mfa_enabled:
            raise MfaStateConflict("MFA is already enabled for this account")
        enrollment = services.totp.new_enrollment(account_name=f"{organization.code}:{user.email}",
                                                  issuer=services.totp_issuer)
        user.mfa_secret = services.secret_box.seal(enrollment.secret.encode(), f"mfa:{user.id}")
        uow.users.update(user)
        uow.mfa.reset_totp_step(user.id)
        services.audit_log.record(uow, services.event(
            "auth.mfa.enrollment_started", request, organization_id=user.organization_id, user_id=user.id,
            resource_type="user", resource_id=user.id, status=200))
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
                resource_type="user", resource_id=user.id, status=401))
            uow.commit()
            raise InvalidMfaCode()
        codes = generate_recovery_codes()
        uow.mfa.replace_recovery_codes(user.id, [hash_recovery_code(c) for c in codes], services.now())
        user.mfa_enabled = True
        uow.users.update(user)
        services.audit_log.record(uow, services.event(
            "auth.mfa.enrolled", request, organization_id=user.organization_id, user_id=user.id,
            resource_type="user", resource_id=user.id, status=200, metadata={"count": len(codes)}))
        uow.commit()
    return codes
