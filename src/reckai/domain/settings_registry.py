"""The one registry of settings an organization lives under (docs/decisions/settings-registry.md).

Each entry names a setting once: its name, type, default, validation, bounds, the environment
variable an operator sets (if any) and whether an organization may override it (within the
operator's bounds). Everything else reads the registry: the operator's values are parsed from the
environment with it (`operator_values`), an organization's stored values are validated with it
(`validate_org_value`, the `system_setting` approval), the code that applies a setting asks
`effective_value`, and `GET /api/settings` lists `effective_settings`, so a setting added here
appears there without touching the route.

Sources, strongest last: `default` (the entry), `operator` (the deployment's environment),
`org` (the organization's `organizations.settings`, at the path named by the setting's name:
`rate_limits.upload` is `settings["rate_limits"]["upload"]`). For an integer an organization may
override, the operator also sets the bounds an organization's value must lie within
(`<ENV>_ORG_MIN`, `<ENV>_ORG_MAX`; the entry's `minimum`/`maximum` by default).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from reckai.domain.exceptions.errors import InvalidWorkflowSettings
from reckai.domain.exceptions.policy import DEFAULT_SLA_HOURS, parse_workflow_settings
from reckai.domain.identity.password_policy import DEFAULT_POLICY, PasswordPolicy, PolicyLoosened
from reckai.domain.reports.settings import (
    DEFAULT_EXPIRY_DAYS,
    DEFAULT_TIMEZONE,
    MAX_EXPIRY_DAYS,
    parse_timezone,
)
from reckai.domain.retention import (
    DEFAULT_RESULTS_DAYS,
    DEFAULT_SESSIONS_DAYS,
    DEFAULT_UPLOADS_DAYS,
    LEGAL_HOLD_SETTING,
    RESULTS_SETTING,
    SESSIONS_SETTING,
    UPLOADS_SETTING,
    LegalHold,
)

Source = Literal["default", "operator", "org"]
SettingType = Literal["integer", "boolean", "object", "list", "string"]


class SettingInvalid(ValueError):
    """A value the registry refuses for `name` (an operator's, an organization's); never clamped."""

    code = "INVALID_SETTING"

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message
        self.details = {name: message}


@dataclass(frozen=True)
class Setting:
    name: str  # dotted; also where an organization's value is stored in organizations.settings
    type: SettingType
    default: Any
    description: str
    minimum: int | None = None  # integers: the widest range anyone may set
    maximum: int | None = None
    org_overridable: bool = False
    env: str | None = None  # the environment variable an operator sets; None: no operator value
    # Extra checks after the type and bounds: returns the clean value (what the consumer gets),
    # raises SettingInvalid (or ValueError/TypeError, reported as invalid).
    validate: Callable[[Any], Any] | None = None
    unit: str | None = None

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))

    def parse(self, raw: Any, *, bounds: tuple[int, int] | None = None) -> Any:
        if self.type == "integer":
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise SettingInvalid(self.name, "must be a whole number")
            low, high = bounds or (self.minimum, self.maximum)
            if (low is not None and raw < low) or (high is not None and raw > high):
                raise SettingInvalid(self.name, f"must be from {low} to {high}")
        elif self.type == "boolean" and not isinstance(raw, bool):
            raise SettingInvalid(self.name, "must be true or false")
        elif self.type == "object" and not isinstance(raw, Mapping):
            raise SettingInvalid(self.name, "must be an object")
        elif self.type == "list" and not isinstance(raw, list):
            raise SettingInvalid(self.name, "must be a list")
        elif self.type == "string" and not isinstance(raw, str):
            raise SettingInvalid(self.name, "must be text")
        if self.validate is None:
            return raw
        try:
            return self.validate(raw)
        except SettingInvalid:
            raise
        except InvalidWorkflowSettings as exc:
            raise SettingInvalid(self.name, exc.message.split(": ", 1)[-1]) from None
        except PolicyLoosened as exc:
            raise SettingInvalid(self.name, "; ".join(f"{v.field}: {v.message}" for v in exc.violations)) from None
        except (ValueError, TypeError) as exc:
            raise SettingInvalid(self.name, str(exc) or "is not valid") from None


def _workflow(key: str) -> Callable[[Any], Any]:
    """The workflow policy's own parser (domain/exceptions/policy.py) is the validation, so the
    registry and the closing rule can never disagree about what a value means."""

    def validate(raw: Any) -> Any:
        parsed = parse_workflow_settings({"workflow": {key: raw}})
        if key == "sla_hours":
            return dict(parsed.sla.hours)
        if key == "resolution_approval_threshold":
            return {currency: str(amount) for currency, amount in parsed.resolution_thresholds.items()}
        if key == "approval_required_for":
            return sorted(parsed.approval_required_for)
        return raw

    return validate


def _password_policy(raw: Any) -> dict[str, Any]:
    return dataclasses.asdict(PasswordPolicy.from_organization_settings({"password_policy": raw}))


# Limits per tier; the window, key subject and failure policy of each tier are the tier's shape
# (application/ports/rate_limit.py), not settings.
_PER_MINUTE, _PER_HOUR = "requests per minute", "requests per hour"

# THE REGISTRY. Adding a setting is one entry here (docs/decisions/settings-registry.md).
SETTINGS: tuple[Setting, ...] = (
    Setting("rate_limits.auth_ip", "integer", 30, "Sign-in attempts per minute from one client address "
            "(the spec's 5 locked out an office behind one NAT; docs/identity.md).",
            minimum=1, maximum=10_000, env="AUTH_IP_LIMIT_PER_MINUTE", unit=_PER_MINUTE),
    Setting("rate_limits.auth_account", "integer", 5, "Sign-in attempts per minute for one account.",
            minimum=1, maximum=100, env="RATE_LIMIT_AUTH_ACCOUNT_PER_MINUTE", unit=_PER_MINUTE),
    Setting("rate_limits.api", "integer", 100, "API requests per minute per user.",
            minimum=1, maximum=100_000, org_overridable=True, env="RATE_LIMIT_API_PER_MINUTE", unit=_PER_MINUTE),
    Setting("rate_limits.upload", "integer", 10, "Accepted file uploads per hour per user (a refused upload "
            "is not counted).", minimum=1, maximum=10_000, org_overridable=True,
            env="RATE_LIMIT_UPLOAD_PER_HOUR", unit=_PER_HOUR),
    Setting("rate_limits.report", "integer", 5, "Report requests per hour per user.",
            minimum=1, maximum=10_000, org_overridable=True, env="RATE_LIMIT_REPORT_PER_HOUR", unit=_PER_HOUR),
    Setting("rate_limits.export", "integer", 3, "Data export requests (POST /api/privacy/exports) per hour per "
            "user: each builds a zip of a person's or the organization's data (docs/privacy.md).",
            minimum=1, maximum=1_000, org_overridable=True, env="RATE_LIMIT_EXPORT_PER_HOUR", unit=_PER_HOUR),
    Setting("rate_limits.export_organization", "integer", 10, "Data export requests per hour for the whole "
            "organization, all its users together (docs/privacy.md).", minimum=1, maximum=1_000,
            org_overridable=True, env="RATE_LIMIT_EXPORT_ORGANIZATION_PER_HOUR", unit=_PER_HOUR),
    Setting("workflow.sla_hours", "object", dict(DEFAULT_SLA_HOURS),
            "Hours an exception may stay open, by severity (docs/workflow.md, SLA).",
            org_overridable=True, validate=_workflow("sla_hours")),
    Setting("workflow.resolution_approval_threshold", "object", {},
            "Currency (or *) -> amount at or above which closing an exception needs a checker; "
            "empty: none does (docs/workflow.md).", org_overridable=True,
            validate=_workflow("resolution_approval_threshold")),
    Setting("workflow.approval_required_for", "list", [],
            "Optional request types the organization routes through maker-checker.",
            org_overridable=True, validate=_workflow("approval_required_for")),
    Setting("workflow.checker_cooling_off_days", "integer", 7,
            "Days a user the requester created or last changed may not check their requests.",
            minimum=1, maximum=365, org_overridable=True, unit="days"),
    Setting("user_onboarding_requires_approval", "boolean", False,
            "Whether creating a user or changing a role waits for a checker.", org_overridable=True),
    Setting("password_policy", "object", dataclasses.asdict(DEFAULT_POLICY),
            "The password policy; an organization may only tighten the platform's.",
            org_overridable=True, validate=_password_policy),
    Setting(UPLOADS_SETTING, "integer", DEFAULT_UPLOADS_DAYS,
            "Days an uploaded file (as uploaded and normalized) is kept; then the retention job deletes it, "
            "unless a stream, a running job, an open exception or a pending approval still refers to it "
            "(docs/privacy.md, Retention).", minimum=30, maximum=36_500, org_overridable=True,
            env="RETENTION_UPLOADS_DAYS", unit="days"),
    Setting(RESULTS_SETTING, "integer", DEFAULT_RESULTS_DAYS,
            "Days a finished reconciliation job is kept with its results, exceptions, comments and stored outputs "
            "(counted from its creation); then the retention job deletes it, unless it is a stream's run, an "
            "exception of it is still open or a pending approval names it; decided approvals are kept as long, "
            "from their decision, while nothing they authorised exists (docs/privacy.md, Retention).",
            minimum=365, maximum=36_500, org_overridable=True, env="RETENTION_RESULTS_DAYS", unit="days"),
    Setting(SESSIONS_SETTING, "integer", DEFAULT_SESSIONS_DAYS,
            "At most this many days after a session ended (expired or revoked) its row (device, address, "
            "times) is deleted; the session sweeper normally deletes it sooner (docs/privacy.md, Retention).",
            minimum=1, maximum=DEFAULT_SESSIONS_DAYS, org_overridable=True, env="RETENTION_SESSIONS_DAYS",
            unit="days"),
    # The reports' two (domain/reports/settings.py parses them where they are used; the registry
    # shows them with their source and validates a change through the same parsers).
    Setting("timezone", "string", DEFAULT_TIMEZONE,
            "The organization's time zone (IANA name): every \"day\" of a report, the dashboard, a stream's "
            "period and schedule is a day in this zone.", org_overridable=True, validate=parse_timezone),
    Setting("reports.expiry_days", "integer", DEFAULT_EXPIRY_DAYS,
            "Days a generated report's file is kept; then it is deleted and the report marked expired "
            "(docs/reports.md).", minimum=1, maximum=MAX_EXPIRY_DAYS, org_overridable=True, unit="days"),
    Setting(LEGAL_HOLD_SETTING, "object", {},
            "A legal hold: {until: YYYY-MM-DD, reason}. Until the end of that day the retention job deletes none "
            "of the organization's data; {} is no hold (docs/privacy.md, Legal holds).", org_overridable=True,
            validate=lambda raw: LegalHold.parse(raw).as_setting()),
)
REGISTRY: Mapping[str, Setting] = {setting.name: setting for setting in SETTINGS}


@dataclass(frozen=True)
class OperatorValues:
    """What the deployment set: values by setting name, and the bounds an organization's value
    must lie within (integers an organization may override)."""

    values: Mapping[str, Any] = field(default_factory=dict)
    org_bounds: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def bounds_for(self, setting: Setting) -> tuple[int, int] | None:
        if setting.type != "integer" or not setting.org_overridable:
            return None
        return self.org_bounds.get(setting.name) or (_int(setting.minimum), _int(setting.maximum))


def _int(value: int | None) -> int:
    assert value is not None, "an integer setting an organization overrides declares its minimum and maximum"
    return value


def operator_values(environ: Mapping[str, str]) -> OperatorValues:
    """Parse the operator's environment variables for every registered setting; an invalid value
    is an error at start-up (SettingInvalid names the variable), never ignored."""
    values: dict[str, Any] = {}
    bounds: dict[str, tuple[int, int]] = {}
    for setting in SETTINGS:
        if setting.env is None:
            continue
        text = environ.get(setting.env, "").strip()
        if text:
            values[setting.name] = _from_text(setting, setting.env, text)
        if setting.type == "integer" and setting.org_overridable:
            low = _from_text(setting, f"{setting.env}_ORG_MIN", environ.get(f"{setting.env}_ORG_MIN", "").strip()
                             or str(setting.minimum))
            high = _from_text(setting, f"{setting.env}_ORG_MAX", environ.get(f"{setting.env}_ORG_MAX", "").strip()
                              or str(setting.maximum))
            if low > high:
                raise SettingInvalid(f"{setting.env}_ORG_MIN", f"must not be above {setting.env}_ORG_MAX ({high})")
            bounds[setting.name] = (low, high)
    return OperatorValues(values, bounds)


def _from_text(setting: Setting, variable: str, text: str) -> Any:
    if setting.type == "integer":
        try:
            raw: Any = int(text)
        except ValueError:
            raise SettingInvalid(variable, f"must be a whole number, not {text!r}") from None
    elif setting.type == "boolean":
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise SettingInvalid(variable, f"must be true or false, not {text!r}")
        raw = text.lower() in ("true", "1", "yes")
    else:
        raise SettingInvalid(variable, "cannot be set from the environment")
    try:
        return setting.parse(raw)
    except SettingInvalid as exc:
        raise SettingInvalid(variable, exc.message) from None


def validate_org_value(operator: OperatorValues, name: str, raw: Any) -> Any:
    """An organization's value for `name`, refused unless the setting may be overridden and the
    value is valid and within the operator's bounds."""
    setting = REGISTRY.get(name)
    if setting is None:
        raise SettingInvalid(name, "unknown setting")
    if not setting.org_overridable:
        raise SettingInvalid(name, "is set by the operator only")
    return setting.parse(raw, bounds=operator.bounds_for(setting))


def org_setting_groups() -> frozenset[str]:
    """The `organizations.settings` keys that hold a group of registered settings an organization
    may override (`rate_limits`, `workflow`): each is a `system_setting` approval key."""
    return frozenset(s.path[0] for s in SETTINGS if s.org_overridable and len(s.path) > 1)


def validate_org_group(operator: OperatorValues, group: str, value: Any) -> dict[str, Any]:
    """An organization's whole value for a group (`{"upload": 20, "api": 300}` for `rate_limits`):
    every key a registered setting it may override, every value valid within the operator's
    bounds. Returns what to store (the values as given, once all hold); SettingInvalid names the
    first offending key."""
    if not isinstance(value, Mapping):
        raise SettingInvalid(group, "must be an object")
    for key in sorted(value):
        validate_org_value(operator, f"{group}.{key}", value[key])
    return dict(value)


@dataclass(frozen=True)
class EffectiveSetting:
    setting: Setting
    value: Any
    source: Source
    org_bounds: tuple[int, int] | None = None
    # An organization's stored value that does not hold (outside bounds the operator narrowed
    # since, or malformed): not used, and said so.
    ignored_org_value: str | None = None


def _stored(organization_settings: Mapping[str, Any] | None, path: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = organization_settings or {}
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def effective_setting(setting: Setting, operator: OperatorValues,
                      organization_settings: Mapping[str, Any] | None) -> EffectiveSetting:
    bounds = operator.bounds_for(setting)
    source: Source = "operator" if setting.name in operator.values else "default"
    value = operator.values[setting.name] if source == "operator" else setting.parse(setting.default)
    present, stored = _stored(organization_settings, setting.path) if setting.org_overridable else (False, None)
    if present and stored is not None:
        try:
            return EffectiveSetting(setting, setting.parse(stored, bounds=bounds), "org", bounds)
        except SettingInvalid as exc:
            return EffectiveSetting(setting, value, source, bounds, ignored_org_value=exc.message)
    return EffectiveSetting(setting, value, source, bounds)


def effective_settings(operator: OperatorValues,
                       organization_settings: Mapping[str, Any] | None) -> list[EffectiveSetting]:
    """Every registered setting as it applies to the organization, with where its value comes from."""
    return [effective_setting(setting, operator, organization_settings) for setting in SETTINGS]


def effective_value(name: str, operator: OperatorValues, organization_settings: Mapping[str, Any] | None) -> Any:
    return effective_setting(REGISTRY[name], operator, organization_settings).value
