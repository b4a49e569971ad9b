"""The `metadata` schema of each approval type: what a maker must state for a checker to decide.

`validate_metadata(type, raw)` returns a normalised copy (ids as lower-case strings, amounts as
integers in minor units) or raises InvalidApproval with every problem keyed by its field path
(`metadata.entries.1.amount_minor`). Unknown keys are refused, so a misspelt field never turns
into a silently ignored one. Keys the system adds after validation (the rule version, the preview,
the export) are written by the use cases, never accepted from a client.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from reckai.domain.approvals.workflow import ApprovalType, InvalidApproval
from reckai.domain.exceptions.errors import InvalidWorkflowSettings
from reckai.domain.exceptions.lifecycle import ResolutionCode
from reckai.domain.exceptions.policy import parse_workflow_settings
from reckai.domain.identity.entities import LINE_BREAK_MESSAGE, USER_ROLES, has_line_break
from reckai.domain.identity.password_policy import PasswordPolicy, PolicyLoosened
from reckai.domain.reports.settings import InvalidReportSettings, parse_report_settings
from reckai.domain.settings_registry import (
    OperatorValues,
    SettingInvalid,
    org_setting_groups,
    validate_org_group,
)
from reckai.domain.streams.periods import (
    ADJUSTMENT_ACTIONS,
    MAX_ADJUSTED_EXCEPTIONS,
    MAX_LINKED_ROWS,
    InvalidPeriod,
    Period,
)

REPORT_TYPES = ("daily", "aging", "channel_trend", "sla", "audit")  # spec §1 reports.type
REPORT_FORMATS = ("pdf", "excel", "csv")
RULE_ACTIONS = ("create", "update", "deactivate")
USER_ONBOARDING_ACTIONS = ("create", "change_role")
# "workflow" and the other groups of settings an organization may override come from the settings
# registry (domain/settings_registry.py): a setting added there can be changed here too.
SETTING_KEYS = tuple(sorted({"password_policy", "organization", *org_setting_groups(),
                             "timezone", "reports"}))  # the last two: domain/reports/settings.py (issue 14)
# key "organization": what PUT /api/settings changes (name and domain are columns, the rest
# organizations.settings keys), for organizations that require a system_setting approval.
ORGANIZATION_SETTING_FIELDS = ("name", "domain", "password_policy", "user_onboarding_requires_approval")
MAX_ENTRIES = 500
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")

Problems = dict[str, str]


def _uuid(raw: Mapping[str, Any], key: str, problems: Problems, required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            problems[f"metadata.{key}"] = "is required"
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        problems[f"metadata.{key}"] = "must be a UUID"
        return None


def _text(raw: Mapping[str, Any], key: str, problems: Problems, limit: int, required: bool = True,
          path: str | None = None) -> str | None:
    path = path or f"metadata.{key}"
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems[path] = "is required"
        return None
    if not isinstance(value, str):
        problems[path] = "must be a string"
        return None
    if len(value) > limit:
        problems[path] = f"is longer than {limit} characters"
        return None
    return value.strip()


def _choice(raw: Mapping[str, Any], key: str, choices: tuple[str, ...], problems: Problems,
            required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            problems[f"metadata.{key}"] = "is required"
        return None
    if value not in choices:
        problems[f"metadata.{key}"] = f"must be one of {list(choices)}"
        return None
    return str(value)


def _rule_configuration(raw: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    action = _choice(raw, "action", RULE_ACTIONS, problems)
    out: dict[str, Any] = {"action": action}
    out["rule_id"] = _uuid(raw, "rule_id", problems, required=action in ("update", "deactivate"))
    if action == "create" and raw.get("rule_id") is not None:
        problems["metadata.rule_id"] = "a new rule has no id yet"
    definition = raw.get("definition")
    if action in ("create", "update"):
        if not isinstance(definition, Mapping):
            problems["metadata.definition"] = "the rule definition (an object) is required"
        else:
            out["definition"] = dict(definition)
    elif definition is not None:
        problems["metadata.definition"] = "a deactivation carries no definition"
    out["preview_job_id"] = _uuid(raw, "preview_job_id", problems, required=False)
    return out


def _ledger_posting(raw: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    currency = raw.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        problems["metadata.currency"] = "must be an ISO 4217 code in capitals (NGN)"
    value_date = raw.get("value_date")
    if value_date is not None:
        try:
            dt.date.fromisoformat(str(value_date))
        except ValueError:
            problems["metadata.value_date"] = "must be a date YYYY-MM-DD"
    entries_raw = raw.get("entries")
    entries: list[dict[str, Any]] = []
    if not isinstance(entries_raw, list) or not 2 <= len(entries_raw) <= MAX_ENTRIES:
        problems["metadata.entries"] = f"must be a list of 2 to {MAX_ENTRIES} entries"
        entries_raw = []
    debit = credit = 0
    for index, entry in enumerate(entries_raw):
        path = f"metadata.entries.{index}"
        if not isinstance(entry, Mapping):
            problems[path] = "must be an object with account, direction, amount_minor"
            continue
        unknown = set(entry) - {"account", "direction", "amount_minor", "narration"}
        if unknown:
            problems[path] = f"unknown key(s) {sorted(unknown)}"
        account = entry.get("account")
        if not isinstance(account, str) or not _ACCOUNT.match(account):
            problems[f"{path}.account"] = "must be an account code (letters, digits . _ : / -, at most 64)"
        direction = entry.get("direction")
        if direction not in ("debit", "credit"):
            problems[f"{path}.direction"] = "must be debit or credit"
        amount = entry.get("amount_minor")
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount < 10**17:
            problems[f"{path}.amount_minor"] = "must be a positive integer amount in minor units"
            amount = 0
        narration = _text(entry, "narration", problems, 255, required=False, path=f"{path}.narration")
        if direction == "debit":
            debit += amount
        elif direction == "credit":
            credit += amount
        entries.append({"account": account, "direction": direction, "amount_minor": amount,
                        "narration": narration})
    if entries and not any(key.startswith("metadata.entries") for key in problems) and debit != credit:
        problems["metadata.entries"] = f"debits ({debit}) and credits ({credit}) must balance"
    return {"currency": currency, "value_date": value_date, "entries": entries,
            "exception_id": _uuid(raw, "exception_id", problems, required=False),
            "total_minor": debit}


def _user_onboarding(raw: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    """`action` create (the default: a new user, from email, name, role) or change_role (an
    existing user, `user_id`, raised to `role`; the rest comes from the stored user)."""
    action = _choice(raw, "action", USER_ONBOARDING_ACTIONS, problems, required=False) or "create"
    role = _choice(raw, "role", tuple(sorted(USER_ROLES)), problems)
    if action == "change_role":
        for key in ("email", "name"):
            if key in raw:
                problems[f"metadata.{key}"] = "a role change names the user by user_id only"
        return {"action": action, "user_id": _uuid(raw, "user_id", problems), "role": role}
    if "user_id" in raw:
        problems["metadata.user_id"] = "a new user has no id yet"
    email = _text(raw, "email", problems, 255)
    if email is not None and not _EMAIL.match(email):
        problems["metadata.email"] = "must be an e-mail address"
    name = _text(raw, "name", problems, 255)
    if name is not None and has_line_break(name):
        problems["metadata.name"] = LINE_BREAK_MESSAGE  # a name goes into mail headers and log lines
    return {"email": email.lower() if email else None, "name": name, "role": role}


def _exception_resolution(raw: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    return {"exception_id": _uuid(raw, "exception_id", problems),
            "resolution_code": _choice(raw, "resolution_code", tuple(c.value for c in ResolutionCode), problems),
            "resolution_note": _text(raw, "resolution_note", problems, 4000)}


def _report_generation(raw: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    parameters = raw.get("parameters", {})
    if not isinstance(parameters, Mapping):
        problems["metadata.parameters"] = "must be an object"
        parameters = {}
    return {"report_type": _choice(raw, "report_type", REPORT_TYPES, problems),
            "format": _choice(raw, "format", REPORT_FORMATS, problems),
            "job_id": _uuid(raw, "job_id", problems, required=False),
            "parameters": dict(parameters)}


def _system_setting(raw: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    key = _choice(raw, "key", SETTING_KEYS, problems)
    if "value" not in raw:
        problems["metadata.value"] = "is required"
    value = raw.get("value")
    if key == "workflow":
        try:
            parse_workflow_settings({"workflow": value})
        except InvalidWorkflowSettings as exc:
            problems[f"metadata.value.{exc.field}".rstrip(".")] = exc.message
    elif key == "password_policy":
        try:
            PasswordPolicy.from_organization_settings({"password_policy": value})
        except (PolicyLoosened, TypeError, ValueError) as exc:
            problems["metadata.value"] = str(exc) or "not a valid password policy"
    elif key == "organization":
        value = _organization_settings(value, problems)
    elif key in ("timezone", "reports"):  # SETTINGS-REGISTRY (issue 14): domain/reports/settings.py
        try:
            parse_report_settings({key: value})
        except InvalidReportSettings as exc:
            problems[f"metadata.value.{exc.field.removeprefix(key).lstrip('.')}".rstrip(".")] = exc.message
    elif key is not None and key in org_setting_groups():
        # the registry's own bounds here; the operator's (narrower) ones when the request is
        # checked and again when it is applied (application/settings_changes.py)
        try:
            value = validate_org_group(OperatorValues(), key, value)
        except SettingInvalid as exc:
            problems[f"metadata.value.{exc.name.removeprefix(key + '.')}".rstrip(".")] = exc.message
    return {"key": key, "value": value}


def _organization_settings(value: Any, problems: Problems) -> dict[str, Any] | None:
    if not isinstance(value, Mapping) or not value:
        problems["metadata.value"] = "must be an object with at least one of " + ", ".join(ORGANIZATION_SETTING_FIELDS)
        return None
    for unknown in sorted(set(value) - set(ORGANIZATION_SETTING_FIELDS)):
        problems[f"metadata.value.{unknown}"] = "unknown key"
    clean: dict[str, Any] = {}
    if "name" in value:
        clean["name"] = _text(value, "name", problems, 255, path="metadata.value.name")
        if clean["name"] is not None and has_line_break(clean["name"]):
            problems["metadata.value.name"] = LINE_BREAK_MESSAGE
    if "domain" in value:
        domain = value["domain"]
        if domain is not None and (not isinstance(domain, str) or len(domain.strip()) > 255):
            problems["metadata.value.domain"] = "must be a string of at most 255 characters, or null"
        clean["domain"] = (domain.strip() or None) if isinstance(domain, str) else None
    if "password_policy" in value:
        try:
            PasswordPolicy.from_organization_settings({"password_policy": value["password_policy"]})
        except (PolicyLoosened, TypeError, ValueError) as exc:
            problems["metadata.value.password_policy"] = str(exc) or "not a valid password policy"
        clean["password_policy"] = value["password_policy"]
    if "user_onboarding_requires_approval" in value:
        if not isinstance(value["user_onboarding_requires_approval"], bool):
            problems["metadata.value.user_onboarding_requires_approval"] = "must be true or false"
        clean["user_onboarding_requires_approval"] = value["user_onboarding_requires_approval"]
    return clean


def _period(raw: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    out: dict[str, Any] = {"stream_id": _uuid(raw, "stream_id", problems)}
    try:
        out["period"] = Period.parse(str(raw.get("period") or "")).key
    except InvalidPeriod as exc:
        problems["metadata.period"] = exc.reason
    return out


def _period_close(raw: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    return {**_period(raw, problems), "note": _text(raw, "note", problems, 4000, required=False)}


def _period_reopen(raw: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    return {**_period(raw, problems), "reason": _text(raw, "reason", problems, 4000)}


def _period_adjustment(raw: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    """reopen, resolve, ignore: the exceptions by id; link: the rows of a job (the use case adds the
    exceptions the link settles, as `exception_ids`)."""
    action = _choice(raw, "action", ADJUSTMENT_ACTIONS, problems)
    out = {**_period(raw, problems), "action": action, "reason": _text(raw, "reason", problems, 4000)}
    if action == "link":
        for key in ("exception_ids", "resolution_code", "resolution_note"):
            if raw.get(key) is not None:
                problems[f"metadata.{key}"] = "a link adjustment names its rows (job_id, rows), not exceptions"
        out["job_id"] = _uuid(raw, "job_id", problems)
        out["note"] = _text(raw, "note", problems, 4000, required=False)
        out["rows"] = _rows(raw, problems)
        return out
    for key in ("job_id", "rows", "note"):
        if raw.get(key) is not None:
            problems[f"metadata.{key}"] = "only a link adjustment names rows"
    ids = raw.get("exception_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_ADJUSTED_EXCEPTIONS:
        problems["metadata.exception_ids"] = f"must be a list of 1 to {MAX_ADJUSTED_EXCEPTIONS} exception ids"
    else:
        clean = []
        for index, value in enumerate(ids):
            try:
                clean.append(str(uuid.UUID(str(value))))
            except ValueError:
                problems[f"metadata.exception_ids.{index}"] = "must be a UUID"
        out["exception_ids"] = list(dict.fromkeys(clean))
    if action == "resolve":
        out["resolution_code"] = _choice(raw, "resolution_code", tuple(c.value for c in ResolutionCode), problems)
        out["resolution_note"] = _text(raw, "resolution_note", problems, 4000, required=False)
    else:
        for key in ("resolution_code", "resolution_note"):
            if raw.get(key) is not None:
                problems[f"metadata.{key}"] = "only a resolve adjustment carries a resolution"
    return out


def _rows(raw: Mapping[str, Any], problems: Problems) -> list[dict[str, Any]]:
    rows = raw.get("rows")
    if not isinstance(rows, list) or not 2 <= len(rows) <= MAX_LINKED_ROWS:
        problems["metadata.rows"] = f"must be a list of 2 to {MAX_LINKED_ROWS} rows {{side, row_number}}"
        return []
    clean = []
    for index, row in enumerate(rows):
        side = row.get("side") if isinstance(row, Mapping) else None
        number = row.get("row_number") if isinstance(row, Mapping) else None
        if side not in ("left", "right") or isinstance(number, bool) or not isinstance(number, int) or number < 1:
            problems[f"metadata.rows.{index}"] = "must be {side: left|right, row_number: a whole number >= 1}"
            continue
        clean.append({"side": side, "row_number": number})
    return clean


def _data_export(raw: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    return {"scope": _choice(raw, "scope", ("organization",), problems)}


def _data_erasure(raw: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    reason = _text(raw, "reason", problems, 200, required=False)
    if reason is not None and any(char in reason for char in "\r\n"):
        problems["metadata.reason"] = "must be one line"
    return {"user_id": _uuid(raw, "user_id", problems), "reason": reason}


_SCHEMAS: dict[ApprovalType, tuple[frozenset[str], Callable[[Mapping[str, Any], Problems], dict[str, Any]]]] = {
    ApprovalType.RULE_CONFIGURATION: (frozenset({"action", "rule_id", "definition", "preview_job_id"}),
                                      _rule_configuration),
    ApprovalType.LEDGER_POSTING: (frozenset({"currency", "value_date", "entries", "exception_id"}), _ledger_posting),
    ApprovalType.USER_ONBOARDING: (frozenset({"action", "email", "name", "role", "user_id"}), _user_onboarding),
    ApprovalType.EXCEPTION_RESOLUTION: (frozenset({"exception_id", "resolution_code", "resolution_note"}),
                                        _exception_resolution),
    ApprovalType.REPORT_GENERATION: (frozenset({"report_type", "format", "job_id", "parameters"}),
                                     _report_generation),
    ApprovalType.SYSTEM_SETTING: (frozenset({"key", "value"}), _system_setting),
    ApprovalType.PERIOD_CLOSE: (frozenset({"stream_id", "period", "note"}), _period_close),
    ApprovalType.PERIOD_REOPEN: (frozenset({"stream_id", "period", "reason"}), _period_reopen),
    ApprovalType.PERIOD_ADJUSTMENT: (frozenset({"stream_id", "period", "action", "exception_ids", "reason",
                                                "resolution_code", "resolution_note", "job_id", "rows", "note"}),
                                     _period_adjustment),
    ApprovalType.DATA_EXPORT: (frozenset({"scope"}), _data_export),
    ApprovalType.DATA_ERASURE: (frozenset({"user_id", "reason"}), _data_erasure),
}


def validate_metadata(approval_type: ApprovalType, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidApproval("invalid metadata", {"metadata": "must be an object"})
    allowed, check = _SCHEMAS[approval_type]
    problems: Problems = {}
    for key in sorted(set(raw) - allowed):
        problems[f"metadata.{key}"] = f"unknown key for {approval_type.value}"
    normalised = check(raw, problems)
    if problems:
        raise InvalidApproval(f"invalid metadata for {approval_type.value}", problems)
    return {key: value for key, value in normalised.items() if value is not None}
