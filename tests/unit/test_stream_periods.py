"""Period close of a stream over the in-memory adapters (the same scenarios run on PostgreSQL in
tests/integration/test_stream_periods_postgres.py, where the database's freeze is also tested)."""

from __future__ import annotations

import datetime as dt

import pytest

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.bootstrap import bootstrap_in_memory
from tests.support import period_scenarios as scenarios
from tests.support.streams import StreamWorld, stream_world


@pytest.fixture
def moved() -> scenarios.MovableClock:
    return scenarios.clock()


@pytest.fixture
def world(moved: scenarios.MovableClock) -> StreamWorld:
    return stream_world(bootstrap_in_memory(scanner=InMemoryScanner(), clock=moved))


def test_closing_through_an_approval_snapshots_the_period(world: StreamWorld, moved: scenarios.MovableClock) -> None:
    scenarios.the_snapshot_holds_the_period_figures(world, moved)


def test_every_path_refuses_an_exception_of_a_closed_period(world: StreamWorld,
                                                             moved: scenarios.MovableClock) -> None:
    scenarios.every_path_refuses_a_closed_periods_exception(world, moved)


def test_an_adjustment_reopens_and_a_later_match_is_held(world: StreamWorld, moved: scenarios.MovableClock) -> None:
    scenarios.adjustment_reopens_and_later_match_is_held(world, moved)


def test_a_link_adjustment_links_a_closed_periods_rows(world: StreamWorld, moved: scenarios.MovableClock) -> None:
    scenarios.a_link_adjustment_links_a_closed_periods_rows(world, moved)


def test_periods_close_in_order_and_reopen_from_the_latest(world: StreamWorld,
                                                           moved: scenarios.MovableClock) -> None:
    scenarios.periods_close_in_order_and_reopen_from_the_latest(world, moved)


def test_an_earlier_open_period_blocks_a_close(world: StreamWorld, moved: scenarios.MovableClock) -> None:
    scenarios.an_earlier_open_period_blocks_a_close(world, moved)


def test_post_api_approvals_makes_the_same_requests(world: StreamWorld, moved: scenarios.MovableClock) -> None:
    """The three types through the generic request (POST /api/approvals): the periods' own use cases
    run (propose), with the same checks; the checker's decision applies them."""
    from reckai.application.approvals.requests import approve_request, request_approval
    from reckai.application.errors import ValidationFailed
    from reckai.application.streams.periods import PeriodNotEnded, get_period

    day = scenarios.close_first_day(world, moved)
    services, who = world.container.workflow, day.who
    with pytest.raises(PeriodNotEnded):
        request_approval(services, who.analyst, type="period_close", title="close", description="d",
                         metadata={"stream_id": str(day.stream.id), "period": "2026-01-01"})
    stream_id, r3 = str(day.stream.id), str(day.items["R3"].id)

    def adjustment(action: str, **extra: str) -> dict[str, object]:
        return {"stream_id": stream_id, "period": "2025-12-31", "action": action, "exception_ids": [r3],
                "reason": "posted after all", **extra}

    with pytest.raises(ValidationFailed) as refused:  # R3 is ignored: its lifecycle allows a reopen only
        request_approval(services, who.analyst, type="period_adjustment", title="t", description="d",
                         metadata=adjustment("resolve", resolution_code="written_off"))
    assert "cannot be resolved" in refused.value.details[0].message
    for action, extra in (("reopen", {}), ("resolve", {"resolution_code": "written_off"})):
        asked = request_approval(services, who.analyst, type="period_adjustment", title="t", description="d",
                                 metadata=adjustment(action, **extra))
        assert asked.type.value == "period_adjustment" and "snapshot" in asked.metadata
        approve_request(services, who.supervisor, asked.id)
        moved.now += dt.timedelta(minutes=5)
    with world.container.database.unit_of_work(world.organization_id) as uow:
        item = uow.exceptions.get(day.items["R3"].id)
        adjustments = uow.stream_periods.adjustments(day.stream.id, "2025-12-31")
    assert item.status.value == "resolved" and item.resolution_code == "written_off"
    assert [a.action for a in adjustments] == ["reopen", "resolve"]
    reopen = request_approval(services, who.admin, type="period_reopen", title="t", description="d",
                              metadata={"stream_id": str(day.stream.id), "period": "2025-12-31", "reason": "late"})
    approve_request(services, who.supervisor, reopen.id)
    assert get_period(services, who.admin, day.stream.id, "2025-12-31").status == "reopened"


def test_the_daily_and_aging_reports_show_the_periods(world: StreamWorld, moved: scenarios.MovableClock) -> None:
    scenarios.the_reports_show_the_periods_figures(world, moved)
