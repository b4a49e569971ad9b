"""The cron calendar (application/ports/stream_schedules.py:CronCalendar) on cronsim.

Expressions are read in the organization's time zone: cronsim iterates over aware datetimes in that
zone and follows Debian cron on daylight-saving changes (a time skipped by the clock change runs at
the first moment after it; a repeated time runs once). Results are returned in UTC.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from reckai.application.ports.stream_schedules import CronCalendar, InvalidCron
from reckai.domain.streams.schedules import InvalidSchedule, check_cron_shape

# cronsim's own error messages ("Bad minute") name the field; with the shape checked first they are
# clear enough to show as they are.


def _read(expression: str, start: dt.datetime, *, reverse: bool = False) -> CronSim:
    try:
        cleaned = check_cron_shape(expression)
        return CronSim(cleaned, start, reverse=reverse)
    except InvalidSchedule as exc:
        raise InvalidCron(exc.reason) from exc
    except CronSimError as exc:
        raise InvalidCron(f"{exc} in {expression!r}") from exc


class CronsimCalendar:
    def check(self, expression: str) -> None:
        _read(expression, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))

    def previous(self, expression: str, at: dt.datetime, timezone: str) -> dt.datetime | None:
        # cronsim's reverse iteration is strictly before its start: a slot exactly at `at` counts.
        start = (at + dt.timedelta(microseconds=1)).astimezone(ZoneInfo(timezone))
        try:
            return next(_read(expression, start, reverse=True)).astimezone(dt.UTC)
        except StopIteration:
            return None

    def following(self, expression: str, after: dt.datetime, timezone: str, count: int = 1) -> list[dt.datetime]:
        iterator = _read(expression, after.astimezone(ZoneInfo(timezone)))
        found: list[dt.datetime] = []
        for moment in iterator:
            found.append(moment.astimezone(dt.UTC))
            if len(found) >= count:
                break
        return found

    def describe(self, expression: str) -> str:
        return str(_read(expression, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).explain())


_check: type[CronCalendar] = CronsimCalendar
