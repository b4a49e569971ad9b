"""The right to erasure (GDPR Art. 17; issue 17 item 5; docs/privacy.md, "Erasure").

Two paths to one effect (`erase_user`, in one transaction):

- `POST /api/users/:id/erase`: an admin asks; it becomes a `data_erasure` approval, and a checker
  other than the requester (the approval workflow's rules, segregation of duties included)
  approves it; the erasure runs in the decision's transaction.
- `reckai privacy erase --org CODE --user ID`: an operator with access to the deployment, for a
  request that reached the organization's controller outside the application (or an organization
  with no second person to check). No approval; audited as a system event with `by: operator`
  and the operator's reason, like `reckai org reset-mfa`.

The effect: the user row pseudonymised (domain/identity/erasure.py), every session revoked, live
access tokens refused (token version), mailed links (invitation, reset, verification) invalidated,
MFA secret, replay state and recovery codes removed, and the person's audit key destroyed, so the
personal values of their audit rows written since issue 17 item 5 read as `[erased]`; the rows and
the hash chain are unchanged (`reckai audit verify` passes). Audited as `privacy.user.erased`.

A legal hold of the organization (`retention.legal_hold`, the retention setting) refuses erasure
until its date, both when it is requested and when it would be applied, naming the hold's end.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reckai.application.approvals.common import WorkflowServices
from reckai.application.approvals.handlers import ApprovalHandler
from reckai.application.approvals.requests import request_approval
from reckai.application.context import NO_REQUEST, Outcome, RequestInfo
from reckai.application.errors import Conflict, FieldError, NotFound, ValidationFailed
from reckai.application.identity.common import IdentityServices, revoke_all_sessions
from reckai.application.identity.errors import LastAdmin
from reckai.application.ports.unit_of_work import UnitOfWork
from reckai.application.ports.workflow import WorkflowUnitOfWork
from reckai.domain.approvals.workflow import Approval, ApprovalEffect, InvalidApproval
from reckai.domain.identity.entities import USER_TOKEN_PURPOSES, User
from reckai.domain.identity.erasure import is_erased, pseudonymise
from reckai.domain.identity.principal import Principal
from reckai.domain.retention import LEGAL_HOLD_SETTING, LegalHold
from reckai.domain.settings_registry import effective_value


class ErasureUnderLegalHold(Conflict):
    """The organization is under a legal hold: nothing of it may be erased until the hold's date."""

    code = "LEGAL_HOLD"

    def __init__(self, hold: LegalHold) -> None:
        until = hold.until.isoformat() if hold.until else "an unknown date"
        super().__init__(f"Erasure is refused: the organization is under a legal hold until {until} "
                         f"(to the end of that day, UTC): {hold.reason}")
        self.until = hold.until
        self.reason = hold.reason


class UserAlreadyErased(Conflict):
    code = "USER_ALREADY_ERASED"

    def __init__(self, user_id: uuid.UUID) -> None:
        super().__init__(f"user {user_id} has been erased already")
        self.user_id = user_id


@dataclass(frozen=True)
class Erasure:
    user: User
    sessions_revoked: int
    links_invalidated: int
    key_destroyed: bool


def legal_hold(services: IdentityServices, uow: UnitOfWork, organization_id: uuid.UUID) -> LegalHold:
    organization = uow.organizations.get(organization_id)
    settings = organization.settings if organization is not None else {}
    return LegalHold.parse(effective_value(LEGAL_HOLD_SETTING, services.operator_settings, settings))


def erasable_user(services: IdentityServices, uow: UnitOfWork, organization_id: uuid.UUID, user_id: uuid.UUID,
                  now: dt.datetime) -> User:
    """The user, if erasure may go ahead now; else the refusal (not found, erased already, a legal
    hold, the organization's last active admin)."""
    user = uow.users.get(user_id)
    if user is None:
        raise NotFound("user", user_id)
    if is_erased(user):
        raise UserAlreadyErased(user_id)
    hold = legal_hold(services, uow, organization_id)
    if hold.active(now):
        raise ErasureUnderLegalHold(hold)
    if user.is_active and user.role == "admin" and not any(
            other.role == "admin" and other.id != user.id for other in uow.users.list(is_active=True, limit=100_000)):
        raise LastAdmin()
    return user


def erase_user(services: IdentityServices, uow: UnitOfWork, organization_id: uuid.UUID, user_id: uuid.UUID, *,
               actor: uuid.UUID | None, now: dt.datetime, request: RequestInfo | None,
               details: dict[str, Any]) -> Erasure:
    """The erasure itself, in the caller's unit of work (the caller commits)."""
    user = erasable_user(services, uow, organization_id, user_id, now)
    pseudonymise(user, str(services.password_hasher.hash(secrets.token_urlsafe(24))), now, actor)
    uow.users.update(user)
    sessions = revoke_all_sessions(uow, user.id, now, "erased")
    links = sum(uow.user_tokens.invalidate_for_user(user.id, purpose, now) for purpose in sorted(USER_TOKEN_PURPOSES))
    uow.mfa.reset_totp_step(user.id)
    uow.mfa.replace_recovery_codes(user.id, [], now)
    key_destroyed = uow.subject_keys.destroy(user.id)
    services.audit_log.record(uow, services.event(
        "privacy.user.erased", request or NO_REQUEST, organization_id=organization_id, user_id=actor, resource_type="user",
        resource_id=user.id, outcome=Outcome.DONE,
        # Plain names: `session...` and `...key...` would be redacted (docs/audit.md, "Redaction").
        metadata={**details, "sign_ins_revoked": sessions, "links_invalidated": links,
                  "personal_audit_data_erased": key_destroyed}))
    return Erasure(user, sessions, links, key_destroyed)


def request_erasure(services: IdentityServices, workflow: WorkflowServices, principal: Principal,
                    request_info: RequestInfo, user_id: uuid.UUID, reason: str | None) -> Approval:
    """POST /api/users/:id/erase: a `data_erasure` approval for a checker (nothing is erased yet).
    A refusal for a legal hold is audited (in its own transaction) and raised."""
    try:
        with services.database.unit_of_work(principal.organization_id) as uow:
            erasable_user(services, uow, principal.organization_id, user_id, services.now())
    except ErasureUnderLegalHold as refusal:
        services.audit_log.record_independently(services.event(
            "privacy.erasure.requested", request_info, organization_id=principal.organization_id,
            user_id=principal.user_id, resource_type="user", resource_id=user_id, outcome=Outcome.REFUSED,
            metadata={"refused": "legal_hold", "legal_hold_until": refusal.until.isoformat() if refusal.until else None}))
        raise
    try:
        approval = request_approval(
            workflow, principal, type="data_erasure", title="Erase a user's personal data",
            description="Pseudonymise the user, end their sessions and links, and destroy the key of the personal "
                        "data in their audit rows (docs/privacy.md, \"Erasure\"). This cannot be undone.",
            metadata={"user_id": str(user_id), "reason": reason}, request=request_info)
    except InvalidApproval as exc:
        raise ValidationFailed([FieldError(k.removeprefix("metadata."), v) for k, v in exc.details.items()],
                               exc.message) from None
    with services.database.unit_of_work(principal.organization_id) as uow:
        services.audit_log.record(uow, services.event(
            "privacy.erasure.requested", request_info, organization_id=principal.organization_id,
            user_id=principal.user_id, resource_type="user", resource_id=user_id, outcome=Outcome.ACCEPTED,
            metadata={"approval_id": str(approval.id)}))
        uow.commit()
    return approval


def operator_erase_user(services: IdentityServices, *, organization_code: str, user_id: uuid.UUID, reason: str | None,
                        request: RequestInfo) -> Erasure:
    """`reckai privacy erase`: the same erasure by an operator, without an approval (see the module)."""
    with services.database.unit_of_work(None) as uow:
        organization_id = uow.organizations.find_id_by_code(organization_code.strip().lower())
    if organization_id is None:
        raise NotFound("organization", organization_code)
    with services.database.unit_of_work(organization_id) as uow:
        erasure = erase_user(services, uow, organization_id, user_id, actor=None, now=services.now(),
                             request=request, details={"by": "operator", "reason": reason})
        uow.commit()
    return erasure


def data_erasure_handler(services: IdentityServices) -> ApprovalHandler:
    """`data_erasure`: a plain request (checked when made); approving it erases the user."""

    def check(uow: WorkflowUnitOfWork, metadata: dict[str, Any]) -> None:
        assert uow.organization_id is not None
        erasable_user(services, uow, uow.organization_id, uuid.UUID(str(metadata["user_id"])), services.now())

    def apply(uow: WorkflowUnitOfWork, checker: Principal, approval: Approval,
              request: RequestInfo | None) -> ApprovalEffect:
        now = approval.reviewed_at or services.now()
        user_id = uuid.UUID(str(approval.metadata["user_id"]))
        erasure = erase_user(services, uow, approval.organization_id, user_id, actor=checker.user_id, now=now,
                             request=request, details={"by": "approval", "approval_id": str(approval.id),
                                                       "requested_by": str(approval.requested_by)})
        return ApprovalEffect("user_erased", "user", user_id, {
            "sign_ins_revoked": erasure.sessions_revoked, "personal_audit_data_erased": erasure.key_destroyed})

    def subject(uow: WorkflowUnitOfWork, may: Callable[[str], bool], approval: Approval) -> dict[str, Any]:
        user = uow.users.get(uuid.UUID(str(approval.metadata["user_id"])))
        if user is None:
            return {}
        view: dict[str, Any] = {"id": str(user.id), "role": user.role, "is_active": user.is_active,
                                "erased": is_erased(user)}
        if may("users:read"):
            view.update(email=user.email, name=user.name)
        return {"user": view}

    def snapshot(uow: WorkflowUnitOfWork, approval: Approval) -> dict[str, Any]:
        """The user to be erased, without anything personal (the snapshot is stored in the request's
        metadata, which erasure does not rewrite): a role or activation changed meanwhile refuses
        the approval as a changed subject."""
        user = uow.users.get(uuid.UUID(str(approval.metadata["user_id"])))
        if user is None:
            return {"user_id": str(approval.metadata["user_id"]), "user": None}
        return {"user_id": str(user.id), "role": user.role, "is_active": bool(user.is_active),
                "erased": is_erased(user)}

    return ApprovalHandler(apply=apply, check=check, subject=subject, snapshot=snapshot)
