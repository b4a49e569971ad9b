"""`/api/settings`: the caller's organization settings (settings:read admin+analyst,
settings:write admin): name, domain, password policy (tighten only), user-onboarding approval,
and `effective`: every registered setting with its value and source (default, operator, org).
When the organization requires a `system_setting` approval, PUT answers 202 with the request and
the unchanged settings; they change when a checker approves (docs/identity.md)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from reckai.application.approvals.optional import change_settings_or_request_approval
from reckai.application.context import RequestInfo
from reckai.application.identity import organizations as org_cases
from reckai.application.identity.common import IdentityServices
from reckai.bootstrap import Container
from reckai.domain.approvals.workflow import Approval
from reckai.domain.identity.principal import Principal
from reckai.domain.settings_registry import EffectiveSetting
from reckai.entrypoints.http.envelope import Success, ok
from reckai.entrypoints.http.routes.approvals import ApprovalBody, approval_body


def _tighten(what: str, example: Any) -> Any:
    return msgspec.Meta(description=f"{what} May only tighten the default policy (a looser value is refused).",
                        examples=[example])


class PasswordPolicyBody(msgspec.Struct, forbid_unknown_fields=True):
    """Only the rules sent change; the others keep their value."""

    min_length: Annotated[int | None, _tighten("Minimum password length (default 8).", 12)] = None
    require_uppercase: Annotated[bool | None, _tighten("Require an uppercase letter.", True)] = None
    require_lowercase: Annotated[bool | None, _tighten("Require a lowercase letter.", True)] = None
    require_digit: Annotated[bool | None, _tighten("Require a digit.", True)] = None
    require_special: Annotated[bool | None, _tighten("Require a character that is not a letter or digit.",
                                                     True)] = None
    history_size: Annotated[int | None, _tighten("How many recent passwords may not be reused (default 5).",
                                                 10)] = None
    max_age_days: Annotated[int | None, _tighten("Days before a password must be changed (default 90).", 60)] = None
    lockout_threshold: Annotated[int | None, _tighten("Failed sign-ins before the account locks (default 5).",
                                                      3)] = None
    lockout_minutes: Annotated[int | None, _tighten("How long a locked account stays locked (default 30).",
                                                    60)] = None


class SettingsUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str | None, msgspec.Meta(description="The organization's display name.",
                                             examples=["First Bank Plc"])] = None
    domain: Annotated[str | None, msgspec.Meta(description="The organization's e-mail domain.",
                                               examples=["firstbank.example"])] = None
    password_policy: Annotated[PasswordPolicyBody | None, msgspec.Meta(
        description="Rules to tighten (see PasswordPolicyBody).", examples=[{"min_length": 12, "history_size": 10}])
    ] = None
    user_onboarding_requires_approval: Annotated[bool | None, msgspec.Meta(
        description="Whether creating a user (and raising a role) needs a checker's approval.", examples=[True])] = None


class QuotaBody(msgspec.Struct):
    max_users: int
    max_storage_gb: int
    max_jobs_per_month: int
    max_file_size_mb: int
    features: dict[str, Any]


class EffectiveSettingBody(msgspec.Struct):
    """One registered setting as it applies to the organization (domain/settings_registry.py)."""

    name: str
    value: Any
    source: str  # default | operator | org
    type: str
    default: Any
    description: str
    org_overridable: bool
    # integers an organization may override: the range the operator allows it
    org_minimum: int | None = None
    org_maximum: int | None = None
    unit: str | None = None
    env: str | None = None  # the variable an operator sets it with, if any
    # a stored organization value that no longer holds (not used), and why
    ignored_org_value: str | None = None


def effective_body(effective: EffectiveSetting) -> EffectiveSettingBody:
    setting = effective.setting
    low, high = effective.org_bounds or (None, None)
    return EffectiveSettingBody(
        name=setting.name, value=effective.value, source=effective.source, type=setting.type,
        default=setting.parse(setting.default), description=setting.description,
        org_overridable=setting.org_overridable, org_minimum=low, org_maximum=high, unit=setting.unit,
        env=setting.env, ignored_org_value=effective.ignored_org_value)


class SettingsBody(msgspec.Struct):
    organization_id: str
    name: str
    code: str
    domain: str | None
    subscription_tier: str
    is_active: bool
    password_policy: dict[str, Any]
    password_policy_overrides: dict[str, Any]
    user_onboarding_requires_approval: bool
    quotas: QuotaBody
    # Every registered setting with its effective value and source, from the one registry: a
    # setting added there appears here without a change to this route.
    effective: list[EffectiveSettingBody] = msgspec.field(default_factory=list)
    # Set only on a 202 from PUT: the change waits for this system_setting approval.
    pending_approval: ApprovalBody | None = None


def settings_body(view: org_cases.OrganizationSettingsView, pending: Approval | None = None) -> SettingsBody:
    org, quota = view.organization, view.quota
    return SettingsBody(
        organization_id=str(org.id), name=org.name, code=org.code, domain=org.domain,
        subscription_tier=org.subscription_tier, is_active=bool(org.is_active),
        password_policy=dataclasses.asdict(view.password_policy),
        password_policy_overrides=dict(view.password_policy_overrides),
        user_onboarding_requires_approval=view.user_onboarding_requires_approval,
        quotas=QuotaBody(quota.max_users, quota.max_storage_gb, quota.max_jobs_per_month, quota.max_file_size_mb,
                         dict(quota.features or {})),
        effective=[effective_body(e) for e in view.effective],
        pending_approval=approval_body(pending) if pending is not None else None,
    )


class SettingsController(Controller):
    path = "/api/settings"

    @get("/", opt={"permission": "settings:read"}, sync_to_thread=True, summary="Read the organization's settings")
    def read(self, principal: NamedDependency[Principal],
             identity: NamedDependency[IdentityServices]) -> Success[SettingsBody]:
        """Name, code, domain, tier, the effective password policy and the organization's overrides, the
        onboarding-approval flag and the quotas."""
        return ok(settings_body(org_cases.read_settings(identity, principal)))

    @put("/", opt={"permission": "settings:write", "errors": {
        409: "CONFLICT: a settings change is already waiting for a checker."}},
         sync_to_thread=True, summary="Change the organization's settings")
    def write(self, data: JSONBody[SettingsUpdate], principal: NamedDependency[Principal],
              identity: NamedDependency[IdentityServices], container: NamedDependency[Container],
              request_info: NamedDependency[RequestInfo]) -> Response[Success[SettingsBody]]:
        """Changes the fields sent (the password policy may only tighten). 200 when applied, or 202 with
        `pending_approval` when the organization requires a checker for settings changes."""
        policy = None
        if data.password_policy is not None:
            policy = {k: v for k, v in msgspec.structs.asdict(data.password_policy).items() if v is not None}
        outcome = change_settings_or_request_approval(
            identity, container.workflow, principal, name=data.name, domain=data.domain,
            password_policy=policy, user_onboarding_requires_approval=data.user_onboarding_requires_approval,
            request=request_info)
        return Response(ok(settings_body(outcome.settings, outcome.approval)),
                        status_code=202 if outcome.approval is not None else 200)


ROUTE_HANDLERS = [SettingsController]
