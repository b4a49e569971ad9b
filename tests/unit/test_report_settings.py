"""The organization settings reports read (domain/reports/settings.py), the report types in
`workflow.approval_required_for`, and the report lifecycle (domain/reports/report.py)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from reckai.domain.approvals.metadata import validate_metadata
from reckai.domain.approvals.workflow import ApprovalType, InvalidApproval
from reckai.domain.exceptions.errors import InvalidWorkflowSettings
from reckai.domain.exceptions.policy import parse_workflow_settings
from reckai.domain.reports.report import Report, ReportStateError, ReportStatus
from reckai.domain.reports.settings import InvalidReportSettings, ReportSettings, parse_report_settings


def test_defaults_are_lagos_and_thirty_days() -> None:
    assert parse_report_settings(None) == ReportSettings("Africa/Lagos", 30)
    assert parse_report_settings({"timezone": "Europe/London", "reports": {"expiry_days": 7}}) == \
        ReportSettings("Europe/London", 7)


@pytest.mark.parametrize(("raw", "field"), [
    ({"timezone": "Mars/Olympus"}, "timezone"), ({"timezone": 3}, "timezone"), ({"timezone": ""}, "timezone"),
    ({"reports": {"expiry_days": 0}}, "reports.expiry_days"), ({"reports": {"expiry_days": True}}, "reports.expiry_days"),
    ({"reports": {"expiry_days": "30"}}, "reports.expiry_days"), ({"reports": {"expiry_days": 3651}}, "reports.expiry_days"),
    ({"reports": {"keep": 1}}, "reports.keep"), ({"reports": []}, "reports"),
])
def test_a_malformed_setting_is_refused_never_defaulted(raw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidReportSettings) as refused:
        parse_report_settings(raw)
    assert refused.value.field == field


def test_a_day_is_a_day_in_the_organization_time_zone() -> None:
    lagos = ReportSettings()
    start, end = lagos.day_bounds(dt.date(2026, 3, 1), dt.date(2026, 3, 1))
    assert start == dt.datetime(2026, 2, 28, 23, tzinfo=dt.UTC) and end == dt.datetime(2026, 3, 1, 23, tzinfo=dt.UTC)
    assert lagos.local_date(dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)) == dt.date(2026, 3, 2)


def test_report_types_in_approval_required_for() -> None:
    every = parse_workflow_settings({"workflow": {"approval_required_for": ["report_generation"]}})
    assert all(every.report_requires_approval(t) for t in ("daily", "aging", "sla", "channel_trend", "audit"))
    one = parse_workflow_settings({"workflow": {"approval_required_for": ["report_generation:audit"]}})
    assert one.report_requires_approval("audit") and not one.report_requires_approval("daily")
    assert not parse_workflow_settings(None).report_requires_approval("audit")
    with pytest.raises(InvalidWorkflowSettings):
        parse_workflow_settings({"workflow": {"approval_required_for": ["report_generation:weekly"]}})


def test_timezone_and_expiry_are_changed_through_a_system_setting_approval() -> None:
    assert validate_metadata(ApprovalType.SYSTEM_SETTING, {"key": "timezone", "value": "Africa/Nairobi"})
    assert validate_metadata(ApprovalType.SYSTEM_SETTING, {"key": "reports", "value": {"expiry_days": 90}})
    with pytest.raises(InvalidApproval) as refused:
        validate_metadata(ApprovalType.SYSTEM_SETTING, {"key": "reports", "value": {"expiry_days": -1}})
    assert "metadata.value.expiry_days" in refused.value.details
    with pytest.raises(InvalidApproval):
        validate_metadata(ApprovalType.SYSTEM_SETTING, {"key": "timezone", "value": "Nowhere/Land"})


def test_the_lifecycle_refuses_what_it_does_not_allow() -> None:
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    report = Report(id=uuid.uuid4(), organization_id=uuid.uuid4(), type="aging", format="csv", storage_path="k",
                    generated_by=uuid.uuid4(), generated_at=now)
    with pytest.raises(ReportStateError):
        report.completed(size_bytes=1, sha256="a" * 64, data_as_of=now, now=now, expires_at=now)
    with pytest.raises(ReportStateError):
        report.expired(now)
    done = report.started(now).completed(size_bytes=1, sha256="a" * 64, data_as_of=now, now=now, expires_at=now)
    assert done.expired(now).status is ReportStatus.EXPIRED and done.deleted(now).status is ReportStatus.DELETED
    with pytest.raises(ReportStateError):
        done.deleted(now).deleted(now)
    with pytest.raises(ReportStateError):
        done.expired(now).deleted(now)
    assert len(report.started(now).failed("x" * 5000, now).error_message or "") == 1000
