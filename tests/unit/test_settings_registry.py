"""The settings registry (domain/settings_registry.py): operator values from the environment,
organization values within the operator's bounds, and the effective value with its source."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reckai.domain.settings_registry import (
    REGISTRY,
    SETTINGS,
    OperatorValues,
    SettingInvalid,
    effective_setting,
    effective_settings,
    operator_values,
    org_setting_groups,
    validate_org_group,
)
from reckai.settings import Settings, SettingsError


def test_every_entry_is_well_formed() -> None:
    assert len(REGISTRY) == len(SETTINGS)
    for setting in SETTINGS:
        assert setting.parse(setting.default) is not None  # the default passes its own validation
        if setting.type == "integer" and setting.org_overridable:
            assert setting.minimum is not None and setting.maximum is not None
    assert {"rate_limits", "workflow"} <= org_setting_groups()


def test_operator_values_are_parsed_and_refused_by_name() -> None:
    operator = operator_values({"RATE_LIMIT_UPLOAD_PER_HOUR": "25", "RATE_LIMIT_UPLOAD_PER_HOUR_ORG_MAX": "40"})
    assert operator.values == {"rate_limits.upload": 25}
    assert operator.org_bounds["rate_limits.upload"] == (1, 40)
    for environ, variable in (({"RATE_LIMIT_API_PER_MINUTE": "lots"}, "RATE_LIMIT_API_PER_MINUTE"),
                              ({"AUTH_IP_LIMIT_PER_MINUTE": "0"}, "AUTH_IP_LIMIT_PER_MINUTE"),
                              ({"RATE_LIMIT_REPORT_PER_HOUR_ORG_MIN": "9", "RATE_LIMIT_REPORT_PER_HOUR_ORG_MAX": "3"},
                               "RATE_LIMIT_REPORT_PER_HOUR_ORG_MIN")):
        with pytest.raises(SettingInvalid) as refused:
            operator_values(environ)
        assert refused.value.name == variable
        with pytest.raises(SettingsError, match=variable):
            Settings.from_env({"RECKAI_MODE": "embedded", **environ})


def test_sources_and_a_stored_value_outside_the_operators_bounds() -> None:
    operator = operator_values({"RATE_LIMIT_UPLOAD_PER_HOUR": "4", "RATE_LIMIT_UPLOAD_PER_HOUR_ORG_MAX": "6"})
    upload = REGISTRY["rate_limits.upload"]
    assert (effective_setting(upload, OperatorValues(), None).value,
            effective_setting(upload, OperatorValues(), None).source) == (10, "default")
    assert (effective_setting(upload, operator, {}).value, effective_setting(upload, operator, {}).source) == (4, "operator")
    chosen = effective_setting(upload, operator, {"rate_limits": {"upload": 6}})
    assert (chosen.value, chosen.source, chosen.ignored_org_value) == (6, "org", None)
    narrowed = effective_setting(upload, operator, {"rate_limits": {"upload": 50}})  # allowed before; not now
    assert (narrowed.value, narrowed.source, narrowed.ignored_org_value) == (4, "operator", "must be from 1 to 6")
    auth = effective_setting(REGISTRY["rate_limits.auth_ip"], operator, {"rate_limits": {"auth_ip": 10_000}})
    assert (auth.value, auth.source) == (30, "default")  # operator-only: an organization's value is not read


def test_org_groups_are_validated_key_by_key() -> None:
    operator = operator_values({"RATE_LIMIT_API_PER_MINUTE_ORG_MAX": "500"})
    assert validate_org_group(operator, "rate_limits", {"api": 500, "upload": 20}) == {"api": 500, "upload": 20}
    for value, name, message in (({"api": 501}, "rate_limits.api", "must be from 1 to 500"),
                                 ({"api": True}, "rate_limits.api", "must be a whole number"),
                                 ({"auth_account": 50}, "rate_limits.auth_account", "is set by the operator only"),
                                 ({"uploads": 5}, "rate_limits.uploads", "unknown setting"),
                                 ([5], "rate_limits", "must be an object")):
        with pytest.raises(SettingInvalid) as refused:
            validate_org_group(operator, "rate_limits", value)
        assert (refused.value.name, refused.value.message) == (name, message)
    with pytest.raises(SettingInvalid, match="workflow.sla_hours"):
        validate_org_group(OperatorValues(), "workflow", {"sla_hours": {"urgent": 2}})


@given(st.dictionaries(st.sampled_from(["api", "upload", "report", "auth_ip", "bogus"]),
                       st.one_of(st.integers(-5, 200_000), st.booleans(), st.text(max_size=3)), max_size=4))
def test_any_stored_rate_limits_give_a_valid_effective_value(stored: dict[str, Any]) -> None:
    """Whatever an organization's row holds, every effective limit is a whole number within the
    range the operator allows (the stored value, or the operator's/default when it does not hold)."""
    operator = operator_values({"RATE_LIMIT_API_PER_MINUTE_ORG_MAX": "1000"})
    for effective in effective_settings(operator, {"rate_limits": stored}):
        if not effective.setting.name.startswith("rate_limits."):
            continue
        assert isinstance(effective.value, int) and not isinstance(effective.value, bool) and effective.value >= 1
        if effective.source == "org":
            low, high = effective.org_bounds or (0, 0)
            assert low <= effective.value <= high
