"""`reckai org tier`: an operator moves an organization to another subscription tier.

Nobody chooses a tier over the API: a public sign-up always lands on the standard tier
(organizations.SIGNUP_TIER). The operator's change takes effect at once (the quota row and the
features are replaced in the same transaction as the tier), and a downgrade is refused when the
organization already uses more than the new tier allows, naming each quota it exceeds: active
users, stored bytes, reconciliation jobs this month (docs/identity.md, "Subscription tiers").
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from reckai.application.context import Outcome, RequestInfo, audit_event
from reckai.application.errors import Conflict, FieldError, NotFound, ValidationFailed
from reckai.application.identity.organizations import SUBSCRIPTION_TIERS, TierDefaults
from reckai.application.ports.audit import AuditLog
from reckai.application.ports.reconciliations import JobsUnitOfWork
from reckai.application.ports.unit_of_work import Database
from reckai.domain.identity.entities import OrganizationQuota

GIB = 1024**3


class TierBelowUsage(Conflict):
    """A downgrade to a tier whose quotas the organization already exceeds; one detail per quota."""

    code = "TIER_BELOW_USAGE"

    def __init__(self, tier: str, details: list[FieldError]) -> None:
        super().__init__(f"the organization uses more than the {tier} tier allows", tuple(details))
        self.tier = tier


@dataclass(frozen=True)
class TierChange:
    organization_id: uuid.UUID
    previous_tier: str
    tier: str
    quota: OrganizationQuota


def _exceeded(uow: JobsUnitOfWork, tier: TierDefaults, now: dt.datetime) -> list[FieldError]:
    users = uow.users.count(is_active=True)
    stored = uow.files.total_size_bytes()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    jobs = uow.reconciliation_jobs.count_created_since(month_start)
    problems = []
    if users > tier.max_users:
        problems.append(FieldError("max_users", f"{users} active users; the tier allows {tier.max_users}"))
    if stored > tier.max_storage_gb * GIB:
        problems.append(FieldError("max_storage_gb", f"{stored} bytes stored; the tier allows "
                                                     f"{tier.max_storage_gb} GB"))
    if jobs > tier.max_jobs_per_month:
        problems.append(FieldError("max_jobs_per_month", f"{jobs} jobs this month; the tier allows "
                                                         f"{tier.max_jobs_per_month}"))
    return problems


def change_subscription_tier(database: Database[JobsUnitOfWork], audit_log: AuditLog, now: dt.datetime, *,
                             organization_code: str, tier: str, request: RequestInfo) -> TierChange:
    if tier not in SUBSCRIPTION_TIERS:
        raise ValidationFailed([FieldError("tier", f"must be one of {', '.join(SUBSCRIPTION_TIERS)}")])
    defaults = SUBSCRIPTION_TIERS[tier]
    with database.unit_of_work(None) as uow:
        organization_id = uow.organizations.find_id_by_code(organization_code.strip().lower())
    if organization_id is None:
        raise NotFound("organization", organization_code)
    with database.unit_of_work(organization_id) as uow:
        organization = uow.organizations.get(organization_id)
        quota = uow.quotas.get_for_update(organization_id)  # uploads, starts and creations wait for us
        if organization is None or quota is None:
            raise NotFound("organization", organization_code)
        problems = _exceeded(uow, defaults, now)
        if problems:
            raise TierBelowUsage(tier, problems)
        previous = organization.subscription_tier
        organization.subscription_tier = tier
        organization.max_users, organization.max_storage_gb = defaults.max_users, defaults.max_storage_gb
        uow.organizations.update(organization)
        new_quota = OrganizationQuota(
            organization_id=organization_id, max_users=defaults.max_users, max_storage_gb=defaults.max_storage_gb,
            max_jobs_per_month=defaults.max_jobs_per_month, max_file_size_mb=defaults.max_file_size_mb,
            features=dict(defaults.features))
        uow.quotas.update(new_quota)
        audit_log.record(uow, audit_event(
            "organization.tier_changed", request, organization_id=organization_id, user_id=None,
            resource_type="organization", resource_id=organization_id, outcome=Outcome.DONE,
            metadata={"from": previous, "to": tier, "by": "operator",
                      "quotas": {"max_users": defaults.max_users, "max_storage_gb": defaults.max_storage_gb,
                                 "max_jobs_per_month": defaults.max_jobs_per_month,
                                 "max_file_size_mb": defaults.max_file_size_mb}}))
        uow.commit()
    return TierChange(organization_id, previous, tier, new_quota)
