"""The stream's domain rules: a file's layout against the template, the stream's fields, and the
system closing of an exception by a later match."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from reckai.domain.exceptions.errors import InvalidBreakValue, InvalidTransition
from reckai.domain.exceptions.lifecycle import (
    SYSTEM_RESOLUTION_CODE,
    BreakAction,
    ExceptionItem,
    Resolution,
    parse_resolution_code,
)
from reckai.domain.exceptions.policy import SlaPolicy
from reckai.domain.streams.streams import InvalidStream, check_currency, check_name, mapping_differences

AT = dt.datetime(2026, 1, 2, 8, tzinfo=dt.UTC)


def test_mapping_differences_name_each_leaf_that_differs() -> None:
    template = {"parse": {"format": "csv", "delimiter": ","},
                "fields": {"amount": {"column": "amount", "scale": "major"}, "reference": {"column": "rrn"}}}
    assert mapping_differences(template, template) == []
    changed = {"parse": {"format": "csv", "delimiter": ";"},
               "fields": {"amount": {"column": "Amount", "scale": "major"}, "narration": {"column": "n"}}}
    assert mapping_differences(template, changed) == [
        ("fields.amount.column", "amount", "Amount"), ("fields.narration", None, {"column": "n"}),
        ("fields.reference", {"column": "rrn"}, None), ("parse.delimiter", ",", ";")]


def test_stream_fields_are_checked() -> None:
    assert check_name("  POS vs bank ") == "POS vs bank"
    for bad in ("", " ", "x" * 256):
        with pytest.raises(InvalidStream):
            check_name(bad)
    assert check_currency("NGN") == "NGN"
    for bad in ("ngn", "NAIRA", "", "N1N"):
        with pytest.raises(InvalidStream):
            check_currency(bad)


def _item() -> ExceptionItem:
    return ExceptionItem.new(organization_id=uuid.uuid4(), job_id=uuid.uuid4(), type="missing_entry",
                             severity="low", description="d", created_at=AT, sla=SlaPolicy())


def test_a_later_match_resolves_as_the_system_and_keeps_the_invariants() -> None:
    item = _item()
    entry = item.close_by_later_match(at=AT, note="matched in run 2 with right row 5 of file f", code=SYSTEM_RESOLUTION_CODE,
                                      rows={"left": {"row": 3}, "right": {"row": 5}})
    assert item.status.value == "resolved" and item.resolved_by is None and item.resolved_at == AT
    assert item.resolution_code == SYSTEM_RESOLUTION_CODE
    assert entry.actor_id is None and entry.changes["by"] == "system" and entry.to_status == "resolved"
    item.check_invariants(SlaPolicy())
    with pytest.raises(InvalidTransition):  # resolved (or ignored) stays closed
        item.close_by_later_match(at=AT, note="again", code=SYSTEM_RESOLUTION_CODE, rows={})
    # a person may reopen it, with a reason, like any resolved exception
    item.apply(BreakAction.REOPEN, actor_id=uuid.uuid4(), at=AT, reason="the match was wrong")
    item.check_invariants(SlaPolicy())


def test_no_person_can_send_the_system_resolution_code() -> None:
    with pytest.raises(InvalidBreakValue):
        parse_resolution_code(SYSTEM_RESOLUTION_CODE)
    with pytest.raises(InvalidBreakValue):
        Resolution.of(SYSTEM_RESOLUTION_CODE, "note")
