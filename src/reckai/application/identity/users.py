"""Users of one organization: create (under the max_users quota, reserved with a row lock),
update (role change and deactivation take effect at once), deactivate, invite and accept."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from reckai.application.context import Outcome, RequestInfo
from reckai.application.errors import FieldError, NotFound, QuotaExceeded, ValidationFailed
from reckai.application.identity.common import (
    EventSubject,
    IdentityServices,
    require_single_line,
    revoke_all_sessions,
)
from reckai.application.identity.errors import ApprovalRequired, EmailTaken, InvalidLinkToken, LastAdmin
from reckai.application.identity.passwords import redeem_link_token, set_password
from reckai.application.identity.verification_gate import require_verified_email
from reckai.application.ports.mail import OutgoingMail
from reckai.application.ports.repositories import DuplicateEntity
from reckai.application.ports.unit_of_work import UnitOfWork
from reckai.domain.approvals.separation import is_checker_role, is_raise_to_checker_role
from reckai.domain.exceptions.policy import USER_ONBOARDING_FLAG, approval_required
from reckai.domain.identity.entities import USER_ORDERS, USER_ROLES, User, UserToken
from reckai.domain.identity.principal import Principal
from reckai.domain.identity.tokens import hash_refresh_token
from reckai.domain.identity.verification import GatedAction

INVITATION_LIFETIME = dt.timedelta(hours=72)
USER_ONBOARDING_SETTING = USER_ONBOARDING_FLAG


def _require_role(role: str) -> None:
    if role not in USER_ROLES:
        raise ValidationFailed([FieldError("role", f"must be one of {', '.join(sorted(USER_ROLES))}")])


def _unusable_password_hash(services: IdentityServices) -> str:
    """A hash of a random secret nobody knows: the account cannot sign in until it accepts an
    invitation (or an administrator sets a password)."""
    return str(services.password_hasher.hash(secrets.token_urlsafe(24)))


def _reserve_user_slot(uow: UnitOfWork, organization_id: uuid.UUID) -> None:
    """Lock the quota row, then count: two concurrent creations serialise here and cannot both
    take the last slot."""
    quota = uow.quotas.get_for_update(organization_id)
    if quota is None:
        raise NotFound("organization_quota", organization_id)
    if uow.users.count(is_active=True) >= quota.max_users:
        raise QuotaExceeded("max_users", quota.max_users)


def list_users(services: IdentityServices, principal: Principal, *, limit: int, offset: int,
               sort: str = "created_at") -> tuple[Sequence[User], int]:
    """One page of the organization's users in the order `sort` names (`USER_ORDERS`, '-' prefix
    for descending). Names and e-mail addresses are stored encrypted, so those two orders are
    applied after decryption, not in SQL (docs/privacy.md, "Listing users by name or e-mail")."""
    descending, order_by = sort.startswith("-"), sort.lstrip("-+")
    if order_by not in USER_ORDERS:
        raise ValidationFailed([FieldError("sort", f"must be one of {list(USER_ORDERS)}, '-' prefix for descending")])
    with services.database.unit_of_work(principal.organization_id) as uow:
        return (uow.users.list(limit=limit, offset=offset, order_by=order_by, descending=descending),
                uow.users.count())


def get_user(services: IdentityServices, principal: Principal, user_id: uuid.UUID) -> User:
    with services.database.unit_of_work(principal.organization_id) as uow:
        user = uow.users.get(user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user


def create_user(
    services: IdentityServices, principal: Principal, *, email: str, name: str, role: str,
    password: str | None, request: RequestInfo, approval_id: uuid.UUID | None = None,
) -> User:
    """Without a password the account waits for an invitation; with one, the password is
    provisional (the user must change it at first sign-in). When the organization requires a
    `user_onboarding` approval (its flag, or `workflow.approval_required_for`), and always for a
    role that may decide approvals or is admin (segregation of duties, docs/workflow.md), this
    raises ApprovalRequired unless `approval_id` names the approved request; POST /api/users then
    requests one instead (application/approvals/optional.py)."""
    require_verified_email(principal, GatedAction.ADD_USER)
    require_single_line(name=name)
    _require_role(role)
    with services.database.unit_of_work(principal.organization_id) as uow:
        organization = uow.organizations.get(principal.organization_id)
        if organization is None:
            raise NotFound("organization", principal.organization_id)
        if approval_id is None and (is_checker_role(role)
                                    or approval_required(organization.settings, "user_onboarding")):
            raise ApprovalRequired("user_onboarding")
        if password is not None:
            services.require_acceptable_password(password, services.policy_for(organization), email=email, name=name)
        _reserve_user_slot(uow, principal.organization_id)
        now = services.now()
        user = User(
            id=uuid.uuid4(), organization_id=principal.organization_id, email=email.strip(), name=name.strip(),
            role=role, password_hash=_unusable_password_hash(services),
            password_changed_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC), created_by=principal.user_id,
            created_at=now, updated_at=now,
        )
        try:
            user = uow.users.add(user)
        except DuplicateEntity:
            raise EmailTaken() from None
        if password is not None:
            set_password(services, uow, user, organization, password, field_name="password", expired=True)
        services.audit_log.record(uow, services.event(
            "user.created", request, organization_id=principal.organization_id, user_id=principal.user_id,
            resource_type="user", resource_id=user.id, outcome=Outcome.CREATED,
            metadata={"role": role, "email": user.email, "approval_id": str(approval_id) if approval_id else None}))
        uow.commit()
        return uow_user(services, principal.organization_id, user.id)


def operator_add_user(services: IdentityServices, *, organization_code: str, email: str, name: str, role: str,
                      password: str, request: RequestInfo) -> User:
    """`reckai org add-user`: an operator adds a user with a provisional password (changed at first
    sign-in). The way an organization gets its first checker besides its admin: over the API a
    checker's account needs another checker's approval (segregation of duties). Nobody of the
    organization made it (created_by stays empty), so no cooling-off applies; audited as a system
    event (`user.created`, metadata.by = operator)."""
    _require_role(role)
    with services.database.unit_of_work(None) as uow:
        organization_id = uow.organizations.find_id_by_code(organization_code.strip().lower())
    if organization_id is None:
        raise NotFound("organization", organization_code)
    with services.database.unit_of_work(organization_id) as uow:
        organization = uow.organizations.get(organization_id)
        if organization is None:
            raise NotFound("organization", organization_code)
        services.require_acceptable_password(password, services.policy_for(organization), email=email, name=name)
        _reserve_user_slot(uow, organization_id)
        now = services.now()
        try:
            # The operator took the address from the organization: verified (docs/identity.md).
            user = uow.users.add(User(
                id=uuid.uuid4(), organization_id=organization_id, email=email.strip(), name=name.strip(), role=role,
                password_hash=_unusable_password_hash(services),
                password_changed_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC), created_at=now, updated_at=now,
                is_email_verified=True))
        except DuplicateEntity:
            raise EmailTaken() from None
        set_password(services, uow, user, organization, password, field_name="password", expired=True)
        services.audit_log.record(uow, services.event(
            "user.created", request, organization_id=organization_id, user_id=None, resource_type="user",
            resource_id=user.id, outcome=Outcome.CREATED, metadata={"role": role, "email": user.email, "by": "operator"}))
        uow.commit()
    return uow_user(services, organization_id, user.id)


def uow_user(services: IdentityServices, organization_id: uuid.UUID, user_id: uuid.UUID) -> User:
    with services.database.unit_of_work(organization_id) as uow:
        user = uow.users.get(user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user


def _other_active_admins(uow: UnitOfWork, user_id: uuid.UUID) -> int:
    return sum(1 for u in uow.users.list(is_active=True, limit=100_000) if u.role == "admin" and u.id != user_id)


def update_user(
    services: IdentityServices, principal: Principal, user_id: uuid.UUID, *, name: str | None = None,
    role: str | None = None, is_active: bool | None = None, request: RequestInfo,
) -> User:
    """A raise to a role that may decide approvals (or admin) is never applied here: it raises
    ApprovalRequired, and PUT /api/users/:id requests a `user_onboarding` approval with
    action change_role instead (application/approvals/optional.py)."""
    require_single_line(name=name)
    if role is not None:
        _require_role(role)
    with services.database.unit_of_work(principal.organization_id) as uow:
        user = uow.users.get(user_id)
        if user is None:
            raise NotFound("user", user_id)
        if role is not None and is_raise_to_checker_role(user.role, role):
            if name is not None or is_active is not None:
                raise ValidationFailed([FieldError("role", "a raise to a role that may approve needs a checker's "
                                                   "approval: send the role change alone")])
            raise ApprovalRequired("user_onboarding")
        previous_role, was_active = user.role, bool(user.is_active)
        demoting = role is not None and role != "admin" and user.role == "admin"
        deactivating = is_active is False and was_active
        if (demoting or deactivating) and user.role == "admin" and _other_active_admins(uow, user.id) == 0:
            raise LastAdmin()
        if is_active is True and not was_active:
            _reserve_user_slot(uow, principal.organization_id)
        if name is not None:
            user.name = name.strip()
        changed_role = role is not None and role != previous_role
        if changed_role:
            user.role = role  # type: ignore[assignment]
        if is_active is not None:
            user.is_active = is_active
        if changed_role or deactivating:
            user.token_version += 1  # live access tokens die now, not in 15 minutes
        now = services.now()
        if changed_role or (is_active is not None and is_active != was_active):
            user.changed_by(principal.user_id, now)  # segregation of duties: a cooling-off starts
        uow.users.update(user)
        common = EventSubject(organization_id=principal.organization_id, user_id=principal.user_id,
                              resource_type="user", resource_id=user.id)
        if deactivating:
            revoke_all_sessions(uow, user.id, now, "deactivated")
            services.audit_log.record(uow, services.event("user.deactivated", request, outcome=Outcome.DONE, **common))
        if is_active is True and not was_active:
            services.audit_log.record(uow, services.event("user.reactivated", request, outcome=Outcome.DONE, **common))
        if changed_role:
            services.audit_log.record(uow, services.event(
                "user.role_changed", request, outcome=Outcome.DONE, metadata={"from": previous_role, "to": role},
                **common))
        if name is not None:
            services.audit_log.record(uow, services.event("user.updated", request, outcome=Outcome.DONE,
                                                          metadata={"fields": ["name"]}, **common))
        uow.commit()
    return uow_user(services, principal.organization_id, user_id)


def deactivate_user(services: IdentityServices, principal: Principal, user_id: uuid.UUID, *, request: RequestInfo) -> User:
    """DELETE /api/users/:id: the row and its audit history stay; the user is deactivated, every
    session revoked and every live access token refused at once."""
    with services.database.unit_of_work(principal.organization_id) as uow:
        user = uow.users.get(user_id)
        if user is None:
            raise NotFound("user", user_id)
        if user.is_active:
            if user.role == "admin" and _other_active_admins(uow, user.id) == 0:
                raise LastAdmin()
            user.is_active = False
            user.token_version += 1
            user.changed_by(principal.user_id, services.now())
            uow.users.update(user)
            revoke_all_sessions(uow, user.id, services.now(), "deactivated")
            services.audit_log.record(uow, services.event(
                "user.deleted", request, organization_id=principal.organization_id, user_id=principal.user_id,
                resource_type="user", resource_id=user.id, outcome=Outcome.DONE, metadata={"mode": "deactivated"}))
            uow.commit()
    return uow_user(services, principal.organization_id, user_id)


@dataclass(frozen=True)
class Invitation:
    user_id: uuid.UUID
    expires_at: dt.datetime


def invite_user(services: IdentityServices, principal: Principal, user_id: uuid.UUID, *, request: RequestInfo) -> Invitation:
    """Mail a single-use link (72 hours) with which the user sets a password. A new invitation
    replaces an earlier unused one. The mail is sent before the token is committed: if the mailer
    fails, nothing is stored and the error says so (503)."""
    require_verified_email(principal, GatedAction.ADD_USER)
    token = secrets.token_urlsafe(32)
    with services.database.unit_of_work(principal.organization_id) as uow:
        user = uow.users.get(user_id)
        organization = uow.organizations.get(principal.organization_id)
        if user is None or organization is None:
            raise NotFound("user", user_id)
        if not user.is_active:
            raise ValidationFailed([FieldError("user", "is deactivated")], "A deactivated user cannot be invited")
        now = services.now()
        uow.user_tokens.invalidate_for_user(user.id, "invitation", now)
        expires_at = now + INVITATION_LIFETIME
        uow.user_tokens.add(UserToken(
            id=uuid.uuid4(), organization_id=user.organization_id, user_id=user.id, purpose="invitation",
            token_hash=hash_refresh_token(token), expires_at=expires_at, created_by=principal.user_id,
            created_at=now))
        services.audit_log.record(uow, services.event(
            "user.invited", request, organization_id=principal.organization_id, user_id=principal.user_id,
            resource_type="user", resource_id=user.id, outcome=Outcome.DONE))
        link = f"{services.public_base_url.rstrip('/')}/accept-invitation?token={token}"
        services.mailer.send(OutgoingMail(
            to=user.email,
            subject=f"You are invited to {organization.name} on ReckAI",
            text_body=(f"Hello {user.name},\n\nYou have been invited to join {organization.name} "
                       f"(organization code {organization.code}) on ReckAI. Open this link within 72 hours "
                       f"to choose your password:\n\n{link}\n\nThe link works once."),
        ))
        uow.commit()
    return Invitation(user_id=user.id, expires_at=expires_at)


def accept_invite(services: IdentityServices, *, token: str, password: str, request: RequestInfo) -> uuid.UUID:
    services.limit("auth_ip", request.ip_address or "unknown")
    found = redeem_link_token(services, "invitation", token)
    with services.database.unit_of_work(found.organization_id) as uow:
        organization = uow.organizations.get(found.organization_id)
        user = uow.users.get(found.user_id)
        if organization is None or user is None or not user.is_active or not organization.is_active:
            raise InvalidLinkToken()
        set_password(services, uow, user, organization, password, field_name="password")
        user.is_email_verified = True
        uow.users.update(user)
        if not uow.user_tokens.mark_used(found.id, services.now()):
            raise InvalidLinkToken()
        services.audit_log.record(uow, services.event(
            "user.invitation_accepted", request, organization_id=user.organization_id, user_id=user.id,
            resource_type="user", resource_id=user.id, outcome=Outcome.DONE))
        uow.commit()
    return found.user_id
