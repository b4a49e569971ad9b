"""The organization settings reports read (issue 14). SETTINGS-REGISTRY: these two keys are kept
here, small and apart, so that the settings registry can take them over at merge.

    organizations.settings = {"timezone": "Africa/Lagos", "reports": {"expiry_days": 30}, ...}

- `timezone` (IANA name, default Africa/Lagos): every "day" of a report (its period, the daily
  figures, the aging of an item) is a day in this zone.
- `reports.expiry_days` (1..3650, default 30): a completed report's file is deleted this many days
  after it was generated (the row stays, status `expired`).

Which report types need a checker is `workflow.approval_required_for`
(domain/exceptions/policy.py): `report_generation` (every type) or `report_generation:<type>`.
A malformed value is refused, never replaced by the default.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Africa/Lagos"
DEFAULT_EXPIRY_DAYS = 30
MAX_EXPIRY_DAYS = 3650


class InvalidReportSettings(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ReportSettings:
    timezone: str = DEFAULT_TIMEZONE
    expiry_days: int = DEFAULT_EXPIRY_DAYS

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_date(self, moment: dt.datetime) -> dt.date:
        return moment.astimezone(self.zone).date()

    def day_bounds(self, first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """[start of `first`, start of the day after `last`) in this zone, as aware UTC datetimes."""
        zone = self.zone
        start = dt.datetime.combine(first, dt.time(), zone).astimezone(dt.UTC)
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
        return start, end


def parse_timezone(raw: Any) -> str:
    if raw is None:
        return DEFAULT_TIMEZONE
    if not isinstance(raw, str) or not raw or len(raw) > 64:
        raise InvalidReportSettings("timezone", "must be an IANA time zone name such as \"Africa/Lagos\"")
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidReportSettings("timezone", f"unknown time zone {raw!r}") from None
    return raw


def parse_report_settings(organization_settings: Mapping[str, Any] | None) -> ReportSettings:
    settings = organization_settings or {}
    reports = settings.get("reports")
    expiry_days = DEFAULT_EXPIRY_DAYS
    if reports is not None:
        if not isinstance(reports, Mapping):
            raise InvalidReportSettings("reports", "must be an object")
        unknown = set(reports) - {"expiry_days"}
        if unknown:
            raise InvalidReportSettings(f"reports.{min(unknown)}", "unknown key")
        raw = reports.get("expiry_days", DEFAULT_EXPIRY_DAYS)
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_EXPIRY_DAYS:
            raise InvalidReportSettings("reports.expiry_days", f"must be a whole number of days from 1 to "
                                                               f"{MAX_EXPIRY_DAYS}")
        expiry_days = raw
    return ReportSettings(timezone=parse_timezone(settings.get("timezone")), expiry_days=expiry_days)
