"""`reckai org offboard --code CODE`: an organization leaves the service (issue 17 item 7;
docs/privacy.md, "Offboarding").

Refused while a legal hold is active or an export is being generated (a pending one is failed),
and unless the organization has a completed organization
export (`POST /api/privacy/exports` scope organization, still downloadable) or the operator gives
`--without-export --reason ...` (audited). Then, in one transaction under the organization's
row-level security: the organization row becomes a tombstone (name and sign-in code replaced by
pseudonyms, domain cleared, settings replaced by the tombstone marker, inactive: sign-in and
every token refused), every user is deactivated with their token version bumped and their
sessions revoked, the key material is shredded (`shred_organization_data_keys`), and
`organization.offboarded` is audited in the organization's own chain. After the commit every
stored object of the organization (uploads, normalized files, job outputs, reports, exports,
quarantined uploads) is deleted, and `organization.offboard.objects_deleted` audits how many.

The rows stay: the audit chain (append-only, seven years) and the foreign keys into it need the
organization and its users, and the chain stays verifiable (`reckai audit verify --organization`).
Re-running on a tombstone only retries the objects' deletion.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from reckai.application.context import Outcome, RequestInfo, audit_event
from reckai.application.errors import Conflict, FieldError, NotFound, ValidationFailed
from reckai.application.identity.common import revoke_all_sessions
from reckai.application.ports.privacy import PrivacyUnitOfWork
from reckai.application.ports.storage import StorageError
from reckai.application.privacy.services import PrivacyServices
from reckai.domain.identity.entities import User
from reckai.domain.ingestion.storage_keys import QUARANTINE_ROOT, organization_prefix
from reckai.domain.privacy.exports import ExportStatus
from reckai.domain.privacy.offboarding import (
    OFFBOARDED_NAME,
    clean_override_reason,
    is_offboarded,
    offboarded_code,
    tombstone_settings,
)
from reckai.domain.retention import LEGAL_HOLD_SETTING, LegalHold
from reckai.domain.settings_registry import OperatorValues, effective_value

_log = logging.getLogger("reckai.privacy.offboarding")
_USERS_PAGE = 500


class ExportRequired(Conflict):
    """No completed organization export to hand over, and no audited override."""

    code = "EXPORT_REQUIRED"

    def __init__(self) -> None:
        super().__init__("the organization has no completed organization export (POST /api/privacy/exports scope "
                         "organization, approved and generated, not expired); export first, or offboard with "
                         "--without-export --reason")


class ExportInProgress(Conflict):
    """An export is being generated: its zip would land in storage after the objects were deleted."""

    code = "EXPORT_IN_PROGRESS"

    def __init__(self, export_id: uuid.UUID) -> None:
        super().__init__(f"export {export_id} is being generated; offboard once it has finished")


class LegalHoldActive(Conflict):
    code = "LEGAL_HOLD"

    def __init__(self, hold: LegalHold) -> None:
        until = hold.until.isoformat() if hold.until else "?"
        super().__init__(f"the organization is under a legal hold until {until} ({hold.reason}); "
                         "its data cannot be deleted")


@dataclass(frozen=True)
class ShreddedKeys:
    """What `shred_organization_data_keys` destroyed."""

    mfa_secrets: int = 0  # users' sealed TOTP secrets, cleared
    recovery_codes: int = 0  # users whose recovery codes were deleted
    data_keys: int = 0  # the organization's data key (issue 17 item 4): 1, or 0 where there is none (memory)


@dataclass
class Offboarding:
    organization_id: uuid.UUID
    already_offboarded: bool
    export_id: uuid.UUID | None = None
    without_export_reason: str | None = None
    users_deactivated: int = 0
    sessions_revoked: int = 0
    keys: ShreddedKeys = field(default_factory=ShreddedKeys)
    objects_deleted: int = 0
    objects_not_deleted: list[str] = field(default_factory=list)


def shred_organization_data_keys(uow: PrivacyUnitOfWork, organization_id: uuid.UUID, user_ids: Iterable[uuid.UUID],
                                 at: dt.datetime) -> ShreddedKeys:
    """An offboarded organization's key material, destroyed in the tombstone's transaction: its data
    key (`uow.data_keys.shred()`: the users' e-mails and names, the invitees' in its approvals, and
    the blind index that finds a user at sign-in can no longer be read or matched), the users' TOTP
    secrets (sealed with the service's key) and recovery codes. The per-person audit keys (erasure,
    item 5) are kept: the audit trail is kept 7 years under a legal obligation (docs/privacy.md)."""
    secrets = codes = 0
    for user_id in user_ids:
        user = uow.users.get(user_id)
        if user is None:
            continue
        if user.mfa_secret or user.mfa_enabled:
            user.mfa_secret, user.mfa_enabled = None, False
            uow.users.update(user)
            secrets += 1
        if uow.mfa.unused_recovery_codes(user_id):
            codes += 1
        uow.mfa.replace_recovery_codes(user_id, [], at)
    return ShreddedKeys(mfa_secrets=secrets, recovery_codes=codes, data_keys=uow.data_keys.shred())


def offboard_organization(services: PrivacyServices, *, organization_code: str, without_export_reason: str | None,
                          operator_settings: OperatorValues, request: RequestInfo) -> Offboarding:
    code = organization_code.strip().lower()
    reason = None
    if without_export_reason is not None:
        try:
            reason = clean_override_reason(without_export_reason)
        except ValueError as exc:
            raise ValidationFailed([FieldError("reason", str(exc))]) from None
    with services.database.unit_of_work(None) as uow:
        organization_id = uow.organizations.find_id_by_code(code) or uow.organizations.find_id_by_code(
            offboarded_code(code))
    if organization_id is None:
        raise NotFound("organization", code)
    now = services.now()
    with services.database.unit_of_work(organization_id) as uow:
        organization = uow.organizations.get(organization_id)
        if organization is None:
            raise NotFound("organization", code)
        outcome = Offboarding(organization_id, already_offboarded=is_offboarded(organization.settings))
        if not outcome.already_offboarded:
            hold = LegalHold.parse(effective_value(LEGAL_HOLD_SETTING, operator_settings, organization.settings))
            if hold.active(now):
                raise LegalHoldActive(hold)
            _stop_unfinished_exports(uow, now)
            export = uow.data_exports.latest_completed_organization_export()
            if export is None and reason is None:
                raise ExportRequired()
            outcome.export_id = export.id if export is not None else None
            outcome.without_export_reason = reason if export is None else None
            _tombstone(services, uow, outcome, organization.subscription_tier, now, request)
            uow.commit()
    _delete_objects(services, outcome, request)
    return outcome


def _stop_unfinished_exports(uow: PrivacyUnitOfWork, now: dt.datetime) -> None:
    """A pending export is failed under its row lock (its job, started later, then does nothing);
    a running one refuses the offboarding (its zip would be stored after the objects' deletion)."""
    for unfinished in uow.data_exports.unfinished():
        locked = uow.data_exports.get_for_update(unfinished.id)
        if locked is None:
            continue
        if locked.status is ExportStatus.RUNNING:
            raise ExportInProgress(locked.id)
        if locked.status is ExportStatus.PENDING:
            uow.data_exports.update(locked.failed("the organization was offboarded", now))


def _tombstone(services: PrivacyServices, uow: PrivacyUnitOfWork, outcome: Offboarding, tier: str,
               now: dt.datetime, request: RequestInfo) -> None:
    organization_id = outcome.organization_id
    organization = uow.organizations.get(organization_id)
    assert organization is not None
    users: list[User] = []
    while True:
        page = uow.users.list(limit=_USERS_PAGE, offset=len(users))
        users.extend(page)
        if len(page) < _USERS_PAGE:
            break
    for user in users:
        outcome.sessions_revoked += revoke_all_sessions(uow, user.id, now, "organization_offboarded")
        if user.is_active:
            outcome.users_deactivated += 1
        user.is_active = False
        user.token_version += 1  # live access tokens die now
        uow.users.update(user)
    outcome.keys = shred_organization_data_keys(uow, organization_id, [user.id for user in users], now)
    # Audited before the row changes, in the organization's own chain (the tombstone keeps its id).
    services.audit_log.record(uow, audit_event(
        "organization.offboarded", request, organization_id=organization_id, resource_type="organization",
        resource_id=organization_id, outcome=Outcome.DONE,
        metadata={"by": "operator", "export_id": str(outcome.export_id) if outcome.export_id else None,
                  "without_export": outcome.without_export_reason is not None,
                  "override_reason": outcome.without_export_reason, "subscription_tier": tier,
                  "users_deactivated": outcome.users_deactivated, "revoked_logins": outcome.sessions_revoked,
                  "second_factors_cleared": outcome.keys.mfa_secrets,
                  "data_encryption_destroyed": outcome.keys.data_keys}))
    uow.organizations.change_code(organization_id, offboarded_code(organization.code))
    organization.name = OFFBOARDED_NAME
    organization.domain = None
    organization.is_active = False
    organization.settings = tombstone_settings(at=now, export_id=outcome.export_id,
                                               override_reason=outcome.without_export_reason)
    uow.organizations.update(organization)


def _delete_objects(services: PrivacyServices, outcome: Offboarding, request: RequestInfo) -> None:
    """Every stored object of the organization, after the tombstone's commit (nothing can add one
    any more: sign-in is refused and the periodic jobs skip inactive organizations). A delete that
    fails is listed, logged and left for a re-run of the command."""
    organization_id = outcome.organization_id
    for prefix in (organization_prefix(organization_id), f"{QUARANTINE_ROOT}/{organization_id}/"):
        try:
            keys = list(services.storage.list_keys(prefix))
        except StorageError:
            outcome.objects_not_deleted.append(prefix)
            _log.error("offboarding.objects_not_listed", extra={"object": prefix})
            continue
        for key in keys:
            try:
                services.storage.delete(key)
                outcome.objects_deleted += 1
            except StorageError:
                outcome.objects_not_deleted.append(key)
                _log.error("offboarding.object_not_deleted", extra={"object": key})
    if outcome.objects_deleted or outcome.objects_not_deleted or not outcome.already_offboarded:
        with services.database.unit_of_work(organization_id) as uow:
            services.audit_log.record(uow, audit_event(
                "organization.offboard.objects_deleted", request, organization_id=organization_id,
                resource_type="organization", resource_id=organization_id, outcome=Outcome.DONE,
                metadata={"objects_deleted": outcome.objects_deleted,
                          "objects_not_deleted": len(outcome.objects_not_deleted)}))
            uow.commit()
