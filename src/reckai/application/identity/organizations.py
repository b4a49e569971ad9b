"""Organizations: onboarding (public sign-up or `reckai org create`) and organization settings."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reckai.application.context import Outcome, RequestInfo
from reckai.application.errors import FieldError, NotFound, ValidationFailed
from reckai.application.identity.common import IdentityServices, require_single_line
from reckai.application.identity.email_verification import queue_verification_mail
from reckai.application.identity.errors import ApprovalRequired, OrganizationCodeTaken, SignupDisabled
from reckai.application.identity.users import USER_ONBOARDING_SETTING
from reckai.application.ports.repositories import DuplicateEntity
from reckai.domain.exceptions.policy import DEFAULT_RESOLUTION_APPROVAL_THRESHOLD, approval_required
from reckai.domain.identity.entities import Organization, OrganizationQuota
from reckai.domain.identity.password_policy import DEFAULT_POLICY, PasswordPolicy, PolicyLoosened
from reckai.domain.identity.principal import Principal
from reckai.domain.settings_registry import EffectiveSetting, effective_settings

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,49}$")


@dataclass(frozen=True)
class TierDefaults:
    max_users: int
    max_storage_gb: int
    max_jobs_per_month: int
    max_file_size_mb: int
    features: Mapping[str, bool]


# subscription_tier -> default quotas and feature flags (spec §3.2). "standard" is the spec's
# column defaults.
SUBSCRIPTION_TIERS: Mapping[str, TierDefaults] = {
    "standard": TierDefaults(10, 100, 1000, 100, {"mfa": True, "approvals": True, "api_access": True,
                                                  "advanced_matching": False, "sso": False}),
    "professional": TierDefaults(50, 500, 10_000, 250, {"mfa": True, "approvals": True, "api_access": True,
                                                        "advanced_matching": True, "sso": False}),
    "enterprise": TierDefaults(500, 2000, 100_000, 1000, {"mfa": True, "approvals": True, "api_access": True,
                                                          "advanced_matching": True, "sso": True}),
}


# Where every public sign-up lands, whatever its body asks: only an operator changes a tier
# (`reckai org tier`, application/identity/tiers.py).
SIGNUP_TIER = "standard"


@dataclass(frozen=True)
class OnboardedOrganization:
    organization_id: uuid.UUID
    code: str
    admin_user_id: uuid.UUID


def onboard_organization(
    services: IdentityServices, *, name: str, code: str, domain: str | None, subscription_tier: str,
    admin_email: str, admin_name: str, admin_password: str, request: RequestInfo, public: bool,
) -> OnboardedOrganization:
    """Create the organization, its first admin, its quota row (from the tier) and its features.
    `public` is a sign-up over HTTP: refused when the deployment switched public sign-up off, and
    always on the standard tier (an anonymous body never chooses its quotas)."""
    if public and not services.allow_public_signup:
        raise SignupDisabled()
    if public:
        services.limit("auth_ip", request.ip_address or "unknown")
        subscription_tier = SIGNUP_TIER
    require_single_line(name=name, admin_name=admin_name)
    code = code.strip().lower()
    problems = []
    if not CODE_PATTERN.match(code):
        problems.append(FieldError("code", "must be 2-50 characters: lower-case letters, digits and '-'"))
    if subscription_tier not in SUBSCRIPTION_TIERS:
        problems.append(FieldError("subscription_tier", f"must be one of {', '.join(SUBSCRIPTION_TIERS)}"))
    if problems:
        raise ValidationFailed(problems)
    services.require_acceptable_password(admin_password, DEFAULT_POLICY, email=admin_email, name=admin_name,
                                         field_name="admin_password")
    with services.database.unit_of_work(None) as uow:
        try:
            created = uow.organizations.create_with_admin(
                name=name.strip(), code=code, domain=domain, admin_email=admin_email.strip(),
                admin_name=admin_name.strip(), admin_password_hash=services.password_hasher.hash(admin_password))
        except DuplicateEntity:
            raise OrganizationCodeTaken() from None
        uow.commit()
    tier = SUBSCRIPTION_TIERS[subscription_tier]
    with services.database.unit_of_work(created.organization_id) as uow:
        organization = uow.organizations.get(created.organization_id)
        quota = uow.quotas.get(created.organization_id)
        assert organization is not None and quota is not None
        organization.subscription_tier = subscription_tier
        organization.max_users, organization.max_storage_gb = tier.max_users, tier.max_storage_gb
        # A new organization's resolutions above this need a checker from day one (docs/workflow.md);
        # changed later only through a system_setting approval.
        organization.settings = {**(organization.settings or {}), "workflow": {
            "resolution_approval_threshold": dict(DEFAULT_RESOLUTION_APPROVAL_THRESHOLD)}}
        uow.organizations.update(organization)
        uow.quotas.update(OrganizationQuota(
            organization_id=organization.id, max_users=tier.max_users, max_storage_gb=tier.max_storage_gb,
            max_jobs_per_month=tier.max_jobs_per_month, max_file_size_mb=tier.max_file_size_mb,
            features=dict(tier.features)))
        admin = uow.users.get(created.admin_user_id)
        assert admin is not None
        if public:
            # Nobody vouched for the address a sign-up typed: the admin proves it through the link
            # before adding users or starting jobs (application/identity/email_verification.py).
            queue_verification_mail(uow, services, admin)
        else:
            # An operator created the organization and took the address from its customer.
            admin.is_email_verified = True
            uow.users.update(admin)
        common = {"organization_id": organization.id, "user_id": created.admin_user_id}
        services.audit_log.record(uow, services.event(
            "organization.created", request, resource_type="organization", resource_id=organization.id, outcome=Outcome.CREATED,
            metadata={"organization": code, "subscription_tier": subscription_tier,
                      "channel": "signup" if public else "operator"}, **common))
        services.audit_log.record(uow, services.event(
            "user.created", request, resource_type="user", resource_id=created.admin_user_id, outcome=Outcome.CREATED,
            metadata={"role": "admin", "email": admin_email.strip(), "email_verified": not public}, **common))
        uow.commit()
    return OnboardedOrganization(created.organization_id, code, created.admin_user_id)


@dataclass(frozen=True)
class OrganizationSettingsView:
    organization: Organization
    quota: OrganizationQuota
    password_policy: PasswordPolicy
    password_policy_overrides: Mapping[str, Any]
    user_onboarding_requires_approval: bool
    # Every registered setting as it applies to the organization, with its source (default,
    # operator, org): domain/settings_registry.py.
    effective: Sequence[EffectiveSetting] = ()


def read_settings(services: IdentityServices, principal: Principal) -> OrganizationSettingsView:
    with services.database.unit_of_work(principal.organization_id) as uow:
        organization = uow.organizations.get(principal.organization_id)
        quota = uow.quotas.get(principal.organization_id)
    if organization is None or quota is None:
        raise NotFound("organization", principal.organization_id)
    stored = organization.settings or {}
    return OrganizationSettingsView(
        organization=organization,
        quota=quota,
        password_policy=services.policy_for(organization),
        password_policy_overrides=dict(stored.get("password_policy") or {}),
        user_onboarding_requires_approval=bool(stored.get(USER_ONBOARDING_SETTING, False)),
        effective=effective_settings(services.operator_settings, stored),
    )


def settings_changes(*, name: str | None = None, domain: str | None = None,
                     password_policy: Mapping[str, Any] | None = None,
                     user_onboarding_requires_approval: bool | None = None) -> dict[str, Any]:
    """The fields of PUT /api/settings that were given (None means unchanged), as one mapping: what
    `apply_settings_changes` applies, directly or when a `system_setting` approval is approved."""
    given = {"name": name, "domain": domain,
             "password_policy": dict(password_policy) if password_policy is not None else None,
             USER_ONBOARDING_SETTING: user_onboarding_requires_approval}
    return {key: value for key, value in given.items() if value is not None}


def apply_settings_changes(organization: Organization, changes: Mapping[str, Any]) -> list[str]:
    """Validate `changes` and apply them to `organization` in place; returns the changed fields.

    Password policy overrides replace the stored ones and may only tighten the platform's. An
    invalid change raises ValidationFailed and leaves the organization as it was."""
    stored = dict(organization.settings or {})
    name, domain = organization.name, organization.domain
    changed: list[str] = []
    if "password_policy" in changes:
        try:
            DEFAULT_POLICY.tightened(**dict(changes["password_policy"]))
        except PolicyLoosened as exc:
            raise ValidationFailed([FieldError(v.field, v.message) for v in exc.violations]) from None
        except TypeError:
            raise ValidationFailed([FieldError("password_policy", "has an invalid value")]) from None
        stored["password_policy"] = dict(changes["password_policy"])
        changed.append("password_policy")
    if USER_ONBOARDING_SETTING in changes:
        stored[USER_ONBOARDING_SETTING] = bool(changes[USER_ONBOARDING_SETTING])
        changed.append(USER_ONBOARDING_SETTING)
    if "name" in changes:
        name = str(changes["name"]).strip()
        require_single_line(name=name)
        changed.append("name")
    if "domain" in changes:
        domain = str(changes["domain"] or "").strip() or None
        changed.append("domain")
    try:
        Organization(**{**organization.__dict__, "name": name, "domain": domain})  # the entity's own checks
    except ValueError as exc:
        raise ValidationFailed([FieldError(getattr(exc, "field", ""), str(exc))]) from None
    organization.name, organization.domain, organization.settings = name, domain, stored
    return changed


def write_settings(
    services: IdentityServices, principal: Principal, *, name: str | None = None, domain: str | None = None,
    password_policy: Mapping[str, Any] | None = None, user_onboarding_requires_approval: bool | None = None,
    request: RequestInfo,
) -> OrganizationSettingsView:
    """Change the settings at once, unless the organization requires a `system_setting` approval:
    then, once the changes are validated, ApprovalRequired (PUT /api/settings requests one)."""
    changes = settings_changes(name=name, domain=domain, password_policy=password_policy,
                               user_onboarding_requires_approval=user_onboarding_requires_approval)
    with services.database.unit_of_work(principal.organization_id) as uow:
        organization = uow.organizations.get(principal.organization_id)
        if organization is None:
            raise NotFound("organization", principal.organization_id)
        needs_checker = approval_required(organization.settings, "system_setting")
        changed = apply_settings_changes(organization, changes)
        if changed and needs_checker:
            raise ApprovalRequired("system_setting")
        uow.organizations.update(organization)
        services.audit_log.record(uow, services.event(
            "organization.settings_changed", request, organization_id=organization.id, user_id=principal.user_id,
            resource_type="organization", resource_id=organization.id, outcome=Outcome.DONE,
            metadata={"fields": changed, "policy": dict(password_policy) if password_policy is not None else None}))
        uow.commit()
    return read_settings(services, principal)
