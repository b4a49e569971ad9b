"""The schedule's rules (domain/streams/schedules.py) and the cron calendar (adapters/cronsim):
slots in non-UTC zones, daylight saving, what a tick decides for a slot, and the input checks."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reckai.adapters.cronsim.calendar import CronsimCalendar
from reckai.application.ports.stream_schedules import InvalidCron
from reckai.domain.streams.schedules import (
    Decision,
    InvalidSchedule,
    StreamSchedule,
    check_cron_shape,
    check_expected,
    check_grace,
    decide,
    is_schedules_slot,
)

UTC = dt.UTC
calendar = CronsimCalendar()


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_a_slot_in_lagos_is_an_hour_before_in_utc() -> None:
    # 06:00 in Lagos (UTC+1 all year) is 05:00 UTC
    assert calendar.previous("0 6 * * *", utc(2026, 3, 2, 5, 30), "Africa/Lagos") == utc(2026, 3, 2, 5, 0)
    assert calendar.previous("0 6 * * *", utc(2026, 3, 2, 5, 0), "Africa/Lagos") == utc(2026, 3, 2, 5, 0)  # at it
    assert calendar.previous("0 6 * * *", utc(2026, 3, 2, 4, 59), "Africa/Lagos") == utc(2026, 3, 1, 5, 0)
    assert calendar.following("0 6 * * *", utc(2026, 3, 2, 5, 0), "Africa/Lagos", 2) == [
        utc(2026, 3, 3, 5, 0), utc(2026, 3, 4, 5, 0)]
    # the same expression in UTC and in Kolkata (UTC+05:30)
    assert calendar.previous("0 6 * * *", utc(2026, 3, 2, 5, 30), "UTC") == utc(2026, 3, 1, 6, 0)
    assert calendar.previous("0 6 * * *", utc(2026, 3, 2, 5, 30), "Asia/Kolkata") == utc(2026, 3, 2, 0, 30)


def test_weekdays_are_the_zones_weekdays() -> None:
    # Monday 00:30 in Lagos is Sunday 23:30 UTC: "Mondays at 00:30" is read in Lagos
    assert calendar.following("30 0 * * 1", utc(2026, 3, 1, 0, 0), "Africa/Lagos") == [utc(2026, 3, 1, 23, 30)]


def test_daylight_saving_follows_cron() -> None:
    # New York springs forward on 8 March 2026 at 02:00: the 02:30 slot runs at 03:00 local (07:00 UTC)
    assert calendar.following("30 2 * * *", utc(2026, 3, 7, 12, 0), "America/New_York", 3) == [
        utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30), utc(2026, 3, 10, 6, 30)]
    # ... and falls back on 1 November 2026: 01:30 comes twice, the slot runs once (the first, EDT)
    assert calendar.following("30 1 * * *", utc(2026, 10, 31, 12, 0), "America/New_York", 2) == [
        utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    # 06:00 local is 11:00 UTC before and 10:00 UTC after
    assert calendar.following("0 6 * * *", utc(2026, 3, 7, 12, 0), "America/New_York", 2) == [
        utc(2026, 3, 8, 10, 0), utc(2026, 3, 9, 10, 0)]


@pytest.mark.parametrize("expression, words", [
    ("61 * * * *", "Bad minute"), ("* 24 * * *", "Bad hour"), ("0 6 * * 8", "Bad day-of-week"),
    ("0 6 30 2 *", "Bad day-of-month"), ("0 6 * *", "five fields"), ("0 0 6 * * *", "five fields"),
    ("@daily", "five fields"), ("", "required"), ("x y z a b", "Bad minute")])
def test_bad_expressions_say_why(expression: str, words: str) -> None:
    with pytest.raises(InvalidCron) as caught:
        calendar.check(expression)
    assert words in caught.value.reason


def test_the_expression_in_words() -> None:
    assert calendar.describe("0 6 * * 1-5") == "At 06:00 on Monday through Friday"


def _schedule(grace_minutes: int = 60, left: int = 1, right: int = 1) -> StreamSchedule:
    user = uuid.uuid4()
    return StreamSchedule(id=uuid.uuid4(), organization_id=uuid.uuid4(), stream_id=uuid.uuid4(), cron="0 6 * * *",
                          expected_left=left, expected_right=right, grace_minutes=grace_minutes,
                          effective_from=utc(2026, 3, 1), created_by=user, updated_by=user)


SLOT = utc(2026, 3, 2, 5, 0)


@given(left=st.integers(0, 5), right=st.integers(0, 5), expected_left=st.integers(0, 3),
       expected_right=st.integers(0, 3), minutes_after=st.integers(0, 180), grace=st.integers(0, 120))
def test_a_slot_starts_when_every_side_has_its_files_else_alerts_after_the_grace(
        left: int, right: int, expected_left: int, expected_right: int, minutes_after: int, grace: int) -> None:
    schedule = _schedule(grace, expected_left, expected_right)
    decision = decide(schedule, SLOT, SLOT + dt.timedelta(minutes=minutes_after), {"left": left, "right": right})
    if left >= expected_left and right >= expected_right:
        assert decision is Decision.START_RUN
    elif minutes_after >= grace:
        assert decision is Decision.ALERT
    else:
        assert decision is Decision.WAIT


def test_a_slot_before_the_schedule_is_not_its() -> None:
    schedule = _schedule()
    assert not is_schedules_slot(schedule, utc(2026, 2, 28, 5, 0))
    assert not is_schedules_slot(schedule, None)
    assert is_schedules_slot(schedule, utc(2026, 3, 1))


def test_the_input_checks() -> None:
    assert check_cron_shape("  0   6 * *  * ") == "0 6 * * *"
    assert check_expected(0, 2) == (0, 2)
    for left, right in ((0, 0), (-1, 1), (101, 0), (True, 1)):
        with pytest.raises(InvalidSchedule):
            check_expected(left, right)
    assert check_grace(59, dt.timedelta(hours=1)) == 59
    assert check_grace(10_080, None) == 10_080
    for minutes, gap in ((60, dt.timedelta(hours=1)), (-1, None), (10_081, None)):
        with pytest.raises(InvalidSchedule) as caught:
            check_grace(minutes, gap)
        assert caught.value.field_name == "grace_minutes"
