"""The domain of a forced re-run's inheritance (domain/exceptions/inheritance.py and
ExceptionItem.inherit; docs/decisions/forced-job-inheritance.md)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reckai.domain.exceptions.errors import InvalidTransition
from reckai.domain.exceptions.inheritance import counterparts, reads_the_same_rows
from reckai.domain.exceptions.lifecycle import (
    INHERITED_FIELDS,
    BreakAction,
    ExceptionItem,
    ExceptionStatus,
    Resolution,
    inheritance_changes,
)
from reckai.domain.exceptions.policy import SlaPolicy

SLA = SlaPolicy()
T0 = dt.datetime(2025, 12, 31, 9, 0, tzinfo=dt.UTC)
LEFT, RIGHT = uuid.uuid4(), uuid.uuid4()
USER = uuid.uuid4()


def _item(job: uuid.UUID, kind: str = "missing_entry", left_row: int | None = 1, right_row: int | None = None,
          at: dt.datetime = T0, severity: str = "medium") -> ExceptionItem:
    return ExceptionItem.new(organization_id=uuid.uuid4(), job_id=job, type=kind, severity=severity,
                             description="d", created_at=at, sla=SLA, left_file_id=LEFT if left_row else None,
                             left_row=left_row, right_file_id=RIGHT if right_row else None, right_row=right_row)


def test_an_inheriting_exception_takes_the_state_and_keeps_the_invariants() -> None:
    earlier_job, later_job = uuid.uuid4(), uuid.uuid4()
    earlier = _item(earlier_job)
    earlier.override_severity("critical", reason="big customer", actor_id=USER, at=T0, sla=SLA)
    earlier.close(BreakAction.RESOLVE, actor_id=USER, at=T0 + dt.timedelta(hours=1),
                  resolution=Resolution.of("written_off", "below the write-off limit"))
    later = _item(later_job, at=T0 + dt.timedelta(days=2))
    at = T0 + dt.timedelta(days=2, minutes=1)
    entry = later.inherit(earlier, earlier_job_id=earlier_job, at=at, comments=2)
    assert {f: getattr(later, f) for f in INHERITED_FIELDS} == {f: getattr(earlier, f) for f in INHERITED_FIELDS}
    assert (later.inherited_from, later.updated_at, later.job_id) == (earlier.id, at, later_job)
    assert later.due_at == T0 + dt.timedelta(hours=4)  # the earlier SLA clock, of the overridden severity
    later.check_invariants(SLA)
    assert (entry.action, entry.actor_id, entry.from_status, entry.to_status) == ("inherit", None, "open", "resolved")
    assert entry.changes == inheritance_changes(earlier.id, earlier_job, "resolved", 2)
    assert entry.changes["note"] == f"inherited from exception {earlier.id} of job {earlier_job}"
    with pytest.raises(InvalidTransition):  # once, and only into a new (open) exception
        later.inherit(earlier, earlier_job_id=earlier_job, at=at)


def test_counterparts_pair_by_key_in_written_order() -> None:
    earlier_job, later_job = uuid.uuid4(), uuid.uuid4()
    a, b1, b2, only_earlier = (_item(earlier_job, left_row=1), _item(earlier_job, "duplicate", 5),
                               _item(earlier_job, "duplicate", 5), _item(earlier_job, left_row=3))
    new_a, new_b, only_new, other_type = (_item(later_job, left_row=1), _item(later_job, "duplicate", 5),
                                          _item(later_job, left_row=None, right_row=9),
                                          _item(later_job, "amount_mismatch", left_row=3))
    pairs = counterparts([new_a, new_b, only_new, other_type], [a, b1, b2, only_earlier])
    assert pairs == {new_a.id: a.id, new_b.id: b1.id}


@given(st.lists(st.tuples(st.sampled_from(["missing_entry", "duplicate"]), st.integers(1, 4)), max_size=12),
       st.lists(st.tuples(st.sampled_from(["missing_entry", "duplicate"]), st.integers(1, 4)), max_size=12))
def test_counterparts_are_one_to_one_and_same_keyed(new_keys: list[tuple[str, int]],
                                                     earlier_keys: list[tuple[str, int]]) -> None:
    earlier_job, later_job = uuid.uuid4(), uuid.uuid4()
    new = [_item(later_job, kind, row) for kind, row in new_keys]
    earlier = [_item(earlier_job, kind, row) for kind, row in earlier_keys]
    pairs = counterparts(new, earlier)
    by_id = {item.id: item for item in new + earlier}
    assert len(set(pairs.values())) == len(pairs)
    assert all((by_id[n].type, by_id[n].left_row) == (by_id[e].type, by_id[e].left_row) for n, e in pairs.items())
    for key in set(new_keys) | set(earlier_keys):  # as many pairs per key as the fewer side holds
        assert sum(1 for n in pairs if (by_id[n].type, by_id[n].left_row) == key) == min(
            new_keys.count(key), earlier_keys.count(key))


def test_the_same_rows_means_the_same_files_at_known_equal_versions() -> None:
    assert reads_the_same_rows({LEFT: 1, RIGHT: 2}, {LEFT: 1, RIGHT: 2})
    assert not reads_the_same_rows({LEFT: 2, RIGHT: 2}, {LEFT: 1, RIGHT: 2})  # re-mapped since
    assert not reads_the_same_rows({LEFT: None, RIGHT: 2}, {LEFT: None, RIGHT: 2})  # unknown
    assert not reads_the_same_rows({LEFT: 1}, {LEFT: 1, RIGHT: 2})
    assert not reads_the_same_rows({}, {})


def test_an_escalated_or_in_progress_state_carries() -> None:
    earlier_job = uuid.uuid4()
    earlier = _item(earlier_job)
    earlier.apply(BreakAction.START, actor_id=USER, at=T0)
    earlier.assign(USER, actor_id=USER, at=T0)
    earlier.apply(BreakAction.ESCALATE, actor_id=USER, at=T0 + dt.timedelta(minutes=5))
    later = _item(uuid.uuid4(), at=T0 + dt.timedelta(days=1))
    later.inherit(earlier, earlier_job_id=earlier_job, at=T0 + dt.timedelta(days=1))
    assert (later.status, later.assigned_to, later.escalated_at) == (
        ExceptionStatus.ESCALATED, USER, T0 + dt.timedelta(minutes=5))
    later.check_invariants(SLA)
