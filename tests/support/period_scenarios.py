"""Period close scenarios of a stream, run in memory (tests/unit/test_stream_periods.py) and on
PostgreSQL (tests/integration/test_stream_periods_postgres.py): the same assertions on both.

The organization's time zone is the default, Africa/Lagos (UTC+1). Day 1 (31 December) runs at
10:00 Lagos time; its period is closed the next morning; day 2 (1 January) runs at 10:00.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import uuid
import zipfile
from typing import Any

import pytest

from reckai.application.approvals.requests import approve_request
from reckai.application.errors import ValidationFailed
from reckai.application.exceptions.closed_periods import PeriodClosed
from reckai.application.exceptions.exceptions import (
    assign_exceptions,
    bulk_resolve,
    change_exception,
    escalate_overdue,
    resolve_exception,
)
from reckai.application.exceptions.matching import LinkRow, link_rows
from reckai.application.reports.generation import generate_report
from reckai.application.reports.requests import CheckedRequest, new_report
from reckai.application.streams.periods import (
    AdjustmentRequest,
    EarlierPeriodOpen,
    LaterPeriodClosed,
    PeriodNotEnded,
    get_period,
    list_periods,
    request_period_adjustment,
    request_period_close,
    request_period_reopen,
)
from reckai.bootstrap import Container
from reckai.domain.approvals.workflow import Approval, NotAChecker, SelfApprovalForbidden
from reckai.domain.identity.permissions import permissions_for
from reckai.domain.identity.principal import Principal
from reckai.domain.streams.streams import Stream
from tests.contracts.identity_repositories import new_user
from tests.support.streams import StreamWorld, bank_csv, switch_csv

LAGOS = dt.timezone(dt.timedelta(hours=1))

DAY1_BANK = [("2025-12-30", "200000000001", "100.00"), ("2025-12-31", "200000000002", "200.00"),
             ("2025-12-31", "200000000003", "50.00")]
DAY1_SWITCH = [("2025-12-30 10:00:00", "200000000001", "100.00"), ("2025-12-31 23:50:00", "200000000004", "75.00"),
               ("2025-12-29 12:00:00", "200000000005", "40.00")]
DAY2_BANK = [("2026-01-01", "200000000004", "75.00")]
DAY2_SWITCH = [("2026-01-01 00:10:00", "200000000002", "200.00"), ("2026-01-01 08:00:00", "200000000003", "50.00")]


class MovableClock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, day: str, hour: int) -> None:
        self.now = dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=LAGOS).astimezone(dt.UTC)


def clock() -> MovableClock:
    return MovableClock(dt.datetime(2025, 12, 31, 9, tzinfo=dt.UTC))


@dataclasses.dataclass
class People:
    admin: Principal
    analyst: Principal
    supervisor: Principal


def people(world: StreamWorld) -> People:
    made = {}
    with world.container.database.unit_of_work(world.organization_id) as uow:
        for role in ("analyst", "supervisor"):
            user = new_user(world.organization_id, role=role)
            uow.users.add(user)
            made[role] = user.id
        uow.commit()

    def principal(user_id: uuid.UUID, role: str) -> Principal:
        return Principal(user_id, world.organization_id, role, permissions_for(role), None, "jti", f"{role}@x.test",
                         True)

    return People(principal(world.caller.user_id, "admin"), principal(made["analyst"], "analyst"),
                  principal(made["supervisor"], "supervisor"))


def _approve(container: Container, checker: Principal, approval: Approval) -> Any:
    return approve_request(container.workflow, checker, approval.id)


@dataclasses.dataclass
class ClosedDay:
    stream: Stream
    who: People
    items: dict[str, Any]  # by reference: R2, R3, R4, R5 (their exceptions)
    run1_job: uuid.UUID


def close_first_day(world: StreamWorld, moved: MovableClock) -> ClosedDay:
    """Day 1 runs on 31 December; R3's break is ignored that day; the period 2025-12-31 is closed
    the next morning by a period_close approval (maker: the analyst; checker: the supervisor)."""
    who = people(world)
    moved.set("2025-12-31", 10)
    left = world.upload(bank_csv(DAY1_BANK), "p-bank-1.csv", "bank")
    right = world.upload(switch_csv(DAY1_SWITCH), "p-switch-1.csv", "switch")
    stream = world.create(left, right, name="periods")
    world.add(stream, left)
    world.add(stream, right)
    run1 = world.run(stream)
    assert run1.figures is not None and run1.figures["new_exceptions"] == 4
    found = world.exceptions(stream)
    items = {"R2": found[(2, None)], "R3": found[(3, None)], "R4": found[(None, 2)], "R5": found[(None, 3)]}
    change_exception(world.container.workflow, who.admin, items["R3"].id, status="ignored", reason="bank fee")

    moved.set("2025-12-31", 18)
    with pytest.raises(PeriodNotEnded):
        request_period_close(world.container.workflow, who.analyst, stream.id, "2025-12-31")
    moved.set("2026-01-01", 8)
    approval = request_period_close(world.container.workflow, who.analyst, stream.id, "2025-12-31", "day 1 done")
    assert approval.type.value == "period_close" and approval.status.value == "pending"
    with pytest.raises(NotAChecker):  # an analyst makes, never checks
        approve_request(world.container.workflow, who.analyst, approval.id)
    decided = _approve(world.container, who.supervisor, approval)
    assert decided.effect.kind == "period_closed"
    return ClosedDay(stream, who, items, run1.job_id)


def the_snapshot_holds_the_period_figures(world: StreamWorld, moved: MovableClock) -> ClosedDay:
    day = close_first_day(world, moved)
    view = get_period(world.container.workflow, day.who.admin, day.stream.id, "2025-12-31")
    assert view.status == "closed" and view.runs == [1] and view.stored is not None
    assert view.stored.closed_by == day.who.analyst.user_id and view.stored.close_approved_by == day.who.supervisor.user_id
    figures = view.figures
    assert figures["matched_pairs"] == 1 and figures["new_rows"] == {"left": 3, "right": 3}
    assert figures["matched_amounts"] == {"NGN": {"left": 10000, "right": 10000}}  # R1, 100.00 a side
    assert figures["open_items"]["count"] == 3
    assert figures["open_items"]["by_type"] == {"missing_entry": 3}
    # age on 31 December from each item's earliest transaction date: R2, R4 that day, R5 two days before
    assert figures["open_items"]["by_age"]["[0,1)"] == 2 and figures["open_items"]["by_age"]["[1,3)"] == 1
    assert figures["closed_items"] == {"count": 1, "resolved": 0, "ignored": 1, "closed_by_later_match": 0}
    assert figures["amounts"] == {"NGN": {"open_minor": 20000 + 7500 + 4000, "closed_minor": 5000}}
    assert figures["carried_in"] == 0 and figures["carried_out"] == 3
    carried = {i.exception_id: i.carried for i in view.items}
    assert carried == {day.items["R2"].id: True, day.items["R4"].id: True, day.items["R5"].id: True,
                       day.items["R3"].id: False}
    return day


def every_path_refuses_a_closed_periods_exception(world: StreamWorld, moved: MovableClock) -> None:
    """The one check, asked by every door: R3's exception, settled when 2025-12-31 closed, is refused
    to PATCH (reopen, severity), assign, resolve, bulk resolve; the carried items stay workable."""
    day = close_first_day(world, moved)
    services, admin, r3 = world.container.workflow, day.who.admin, day.items["R3"].id
    with pytest.raises(PeriodClosed) as refused:
        change_exception(services, admin, r3, status="open", reason="reopen it")
    assert refused.value.code == "PERIOD_CLOSED" and "2025-12-31" in refused.value.message
    with pytest.raises(PeriodClosed):
        change_exception(services, admin, r3, severity="high", reason="bigger")
    with pytest.raises(PeriodClosed):
        assign_exceptions(services, admin, [r3], admin.user_id)
    with pytest.raises(PeriodClosed) as bulk:
        bulk_resolve(services, admin, [day.items["R5"].id, r3], "written_off", "cleanup")
    assert [d.message.split(":")[0] for d in bulk.value.details] == [str(r3)]
    # a carried item is not frozen
    assign_exceptions(services, admin, [day.items["R5"].id], admin.user_id)
    with world.container.database.unit_of_work(world.organization_id) as uow:
        assert uow.exceptions.get(r3).status.value == "ignored"
        assert uow.exceptions.get(day.items["R5"].id).status.value == "open"


def adjustment_reopens_and_later_match_is_held(world: StreamWorld, moved: MovableClock) -> ClosedDay:
    """An adjustment (period_adjustment, a reason, a checker) reopens R3's exception and is recorded
    against the period; it stays the period's: resolve, ignore and link are still refused, and the
    next run, matching R3, leaves it open (held_by_closed_period). The carried timing differences
    close by a later match as usual, and R5 carries into 2026-01-01 with its age intact."""
    day = close_first_day(world, moved)
    services, who, r3 = world.container.workflow, day.who, day.items["R3"].id
    with pytest.raises(Exception) as not_frozen:  # only what the period settled can be adjusted
        request_period_adjustment(services, who.analyst, day.stream.id, "2025-12-31",
                                  AdjustmentRequest("reopen", [day.items["R5"].id], "why"))
    assert getattr(not_frozen.value, "code", "") == "VALIDATION_ERROR"
    asked = request_period_adjustment(services, who.admin, day.stream.id, "2025-12-31",
                                      AdjustmentRequest("reopen", [r3], "the fee was reversed by the bank"))
    with pytest.raises(SelfApprovalForbidden):  # an admin may check, but never its own request
        approve_request(services, who.admin, asked.id)
    decided = _approve(world.container, who.supervisor, asked)
    assert decided.effect.kind == "period_adjusted"
    with world.container.database.unit_of_work(world.organization_id) as uow:
        item = uow.exceptions.get(r3)
        history = uow.exceptions.history(r3)
        adjustments = uow.stream_periods.adjustments(day.stream.id, "2025-12-31")
    assert item.status.value == "open"
    assert history[-1].action == "reopen" and history[-1].changes["approval_id"] == str(asked.id)
    assert history[-1].changes["period"] == "2025-12-31"
    assert [(a.action, a.exception_ids, a.reason, a.approved_by) for a in adjustments] == [
        ("reopen", (r3,), "the fee was reversed by the bank", who.supervisor.user_id)]
    view = get_period(services, who.admin, day.stream.id, "2025-12-31")
    assert [a.approval_id for a in view.adjustments] == [asked.id]

    with pytest.raises(PeriodClosed):
        resolve_exception(services, who.admin, r3, "written_off", "no")
    with pytest.raises(PeriodClosed):
        change_exception(services, who.admin, r3, status="ignored", reason="again")
    with pytest.raises(PeriodClosed):  # a manual link settling R3's exception (with R5's row)
        link_rows(services, who.admin, day.run1_job, [LinkRow("left", 3), LinkRow("right", 3)], "by hand",
                  reason="amounts differ")

    # the SLA job leaves it too (it escalates the carried R5, overdue by then)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)  # due dates follow the stored creation time
    assert escalate_overdue(services, world.organization_id, later) >= 1
    with world.container.database.unit_of_work(world.organization_id) as uow:
        assert uow.exceptions.get(r3).status.value == "open"
        assert uow.exceptions.get(day.items["R5"].id).status.value == "escalated"

    moved.set("2026-01-01", 10)
    world.day(day.stream, DAY2_BANK, DAY2_SWITCH, "p2")
    run2 = world.run(day.stream)
    assert run2.figures is not None
    assert run2.figures["closed_by_later_match"] == 2  # R2 and R4: carried, not frozen
    assert run2.figures["held_by_closed_period"] == 1  # R3: matched, but its exception is the closed period's
    with world.container.database.unit_of_work(world.organization_id) as uow:
        assert uow.exceptions.get(r3).status.value == "open"
        assert uow.exceptions.get(day.items["R2"].id).status.value == "resolved"

    moved.set("2026-01-02", 9)
    approval = request_period_close(services, who.admin, day.stream.id, "2026-01-01")
    _approve(world.container, who.supervisor, approval)
    january = get_period(services, who.admin, day.stream.id, "2026-01-01").figures
    assert january["runs"] == [2] and january["closed_by_later_match"] == 2
    assert january["matched_amounts"] == {"NGN": {"left": 32500, "right": 32500}}  # R2, R3, R4
    assert january["carried_in"] == 3  # R2, R4 (closed since) and R5 (still open); R3 stays 2025-12-31's
    assert january["closed_items"]["closed_by_later_match"] == 2
    assert january["open_items"]["count"] == 1
    # R5, dated 29 December: [1,3) on 31 December, [3,7) on 1 January: its age runs on
    assert january["open_items"]["by_age"]["[3,7)"] == 1
    assert january["amounts"] == {"NGN": {"open_minor": 4000, "closed_minor": 27500}}
    return day


def a_link_adjustment_links_a_closed_periods_rows(world: StreamWorld, moved: MovableClock) -> None:
    """A manual link settling an exception of a closed period (R3's, reopened by an adjustment) is
    refused the usual way and made through a link adjustment; a link settling none is refused
    as an adjustment (it is made the usual way)."""
    day = close_first_day(world, moved)
    services, who, r3, r5 = world.container.workflow, day.who, day.items["R3"].id, day.items["R5"].id
    reopen = request_period_adjustment(services, who.analyst, day.stream.id, "2025-12-31",
                                       AdjustmentRequest("reopen", [r3], "not a fee after all"))
    _approve(world.container, who.supervisor, reopen)
    moved.now += dt.timedelta(minutes=5)
    with pytest.raises(ValidationFailed) as usual:
        request_period_adjustment(services, who.analyst, day.stream.id, "2025-12-31", AdjustmentRequest(
            "link", [], "same payment", job_id=day.run1_job, rows=[("left", 2), ("right", 2)]))
    assert "the usual way" in usual.value.details[0].message
    asked = request_period_adjustment(services, who.analyst, day.stream.id, "2025-12-31", AdjustmentRequest(
        "link", [], "R3 and R5 are one payment, 10.00 fee", job_id=day.run1_job, rows=[("left", 3), ("right", 3)],
        note="netted"))
    assert asked.metadata["exception_ids"] == [str(r3)]  # the frozen one it settles; R5 is carried, not frozen
    _approve(world.container, who.supervisor, asked)
    with world.container.database.unit_of_work(world.organization_id) as uow:
        settled = [uow.exceptions.get(i) for i in (r3, r5)]
        adjustments = uow.stream_periods.adjustments(day.stream.id, "2025-12-31")
    assert [(i.status.value, i.resolution_code) for i in settled] == [("resolved", "matched_manually")] * 2
    assert [a.action for a in adjustments] == ["reopen", "link"]
    assert adjustments[1].exception_ids == (r3,) and adjustments[1].details["rows"] == [
        {"side": "left", "row_number": 3}, {"side": "right", "row_number": 3}]


def periods_close_in_order_and_reopen_from_the_latest(world: StreamWorld, moved: MovableClock) -> None:
    day = adjustment_reopens_and_later_match_is_held(world, moved)
    services, who = world.container.workflow, day.who
    with pytest.raises(LaterPeriodClosed):
        request_period_reopen(services, who.admin, day.stream.id, "2025-12-31", "late file")
    asked = request_period_reopen(services, who.analyst, day.stream.id, "2026-01-01", "bank re-sent 1 January")
    _approve(world.container, who.supervisor, asked)
    listed = {v.key: v for v in list_periods(services, who.admin, day.stream.id)}
    assert listed["2025-12-31"].status == "closed" and listed["2026-01-01"].status == "reopened"
    # 2026-01-01's settled items can change again: R2 (closed by a later match) reopens by hand
    change_exception(services, who.admin, day.items["R2"].id, status="open", reason="check again")
    # closing it again takes a new snapshot
    again = request_period_close(services, who.admin, day.stream.id, "2026-01-01")
    _approve(world.container, who.supervisor, again)
    view = get_period(services, who.admin, day.stream.id, "2026-01-01")
    assert view.status == "closed" and view.stored is not None and view.stored.times_closed == 2
    assert view.figures["open_items"]["count"] == 2


def an_earlier_open_period_blocks_a_close(world: StreamWorld, moved: MovableClock) -> None:
    who = people(world)
    moved.set("2025-12-31", 10)
    left = world.upload(bank_csv(DAY1_BANK), "o-bank-1.csv", "bank")
    right = world.upload(switch_csv(DAY1_SWITCH), "o-switch-1.csv", "switch")
    stream = world.create(left, right, name="order")
    world.add(stream, left)
    world.add(stream, right)
    world.run(stream)
    moved.set("2026-01-01", 10)
    world.day(stream, DAY2_BANK, DAY2_SWITCH, "o2")
    world.run(stream)
    moved.set("2026-01-02", 10)
    with pytest.raises(EarlierPeriodOpen) as caught:
        request_period_close(world.container.workflow, who.admin, stream.id, "2026-01-01")
    assert caught.value.key == "2025-12-31"
    listed = list_periods(world.container.workflow, who.admin, stream.id)
    assert [(v.key, v.status, v.runs) for v in listed] == [("2025-12-31", "open", [1]), ("2026-01-01", "open", [2])]
    # the next period to close shows what a close now would record: R2, R3, R4 closed since by run 2
    assert listed[0].figures["open_items"]["count"] == 1
    assert listed[0].figures["closed_items"]["closed_by_later_match"] == 3
    assert "open_items" not in listed[1].figures


def _report_tables(world: StreamWorld, who: People, kind: str, first: str, last: str) -> dict[str, list[dict[str, str]]]:
    """A `kind` report as CSV, generated by the medium-queue job's use case, read back table by table."""
    checked = CheckedRequest(kind, "csv", None, dt.date.fromisoformat(first), dt.date.fromisoformat(last), {})
    report = new_report(world.organization_id, who.analyst.user_id, checked, world.container.reconciliations.now())
    with world.container.database.unit_of_work(world.organization_id) as uow:
        uow.reports.add(report)
        uow.commit()
    done = generate_report(world.container.reports, world.organization_id, report.id)
    assert done is not None and done.status.value == "completed", done
    with world.container.storage.open(done.storage_path) as stream, zipfile.ZipFile(io.BytesIO(stream.read())) as z:
        return {name.removesuffix(".csv"): list(csv.DictReader(io.StringIO(z.read(name).decode("utf-8"))))
                for name in z.namelist()}


def the_reports_show_the_periods_figures(world: StreamWorld, moved: MovableClock) -> None:
    """Issue 15 item 6: the daily and aging reports show each stream period of their days, a closed
    one with its snapshot (the figures of the_snapshot_holds_the_period_figures)."""
    day = close_first_day(world, moved)
    daily = _report_tables(world, day.who, "daily", "2025-12-31", "2026-01-01")
    (closed,) = [row for row in daily["stream_periods"] if row["period"] == "2025-12-31"]
    assert (closed["stream"], closed["status"], closed["runs"]) == ("periods", "closed", "1")
    assert (closed["new_rows_left"], closed["new_rows_right"], closed["matched_pairs"]) == ("3", "3", "1")
    assert (closed["carried_in"], closed["open_items"], closed["carried_out"]) == ("0", "3", "3")
    (amounts,) = [row for row in daily["stream_period_amounts"] if row["period"] == "2025-12-31"]
    assert amounts == {"stream": "periods", "period": "2025-12-31", "currency": "NGN", "matched_left": "100.00",
                       "matched_right": "100.00", "open_breaks": "315.00", "closed_breaks": "50.00"}
    aging = _report_tables(world, day.who, "aging", "2025-12-31", "2026-01-01")
    (aged,) = [row for row in aging["stream_period_aging"] if row["period"] == "2025-12-31"]
    assert (aged["status"], aged["[0,1)"], aged["[1,3)"], aged["[3,7)"]) == ("closed", "2", "1", "0")


__all__ = ["DAY1_BANK", "DAY1_SWITCH", "MovableClock", "bank_csv", "clock", "switch_csv"]
