"""Stream scenarios, run over the in-memory container (tests/unit/test_streams.py) and PostgreSQL
(tests/integration/test_streams_postgres.py): the same assertions on both adapters."""

from __future__ import annotations

from typing import Any

import pytest

from reckai.application.exceptions.exceptions import assign_exceptions, change_exception, comment_on_exception
from reckai.application.streams.errors import (
    DuplicateStreamFile,
    FileAlreadyUsed,
    FileLayoutChanged,
    NothingToRun,
)
from reckai.domain.identity.permissions import permissions_for
from reckai.domain.identity.principal import Principal
from tests.support import reconciliation_jobs as rj
from tests.support.streams import StreamWorld, bank_csv, switch_csv

DAY1_BANK = [("2025-12-30", "100000000001", "100.00"), ("2025-12-31", "100000000002", "200.00"),
             ("2025-12-31", "100000000003", "50.00")]
DAY1_SWITCH = [("2025-12-30 10:00:00", "100000000001", "100.00"), ("2025-12-31 23:50:00", "100000000004", "75.00")]
DAY2_BANK = [("2026-01-01", "100000000004", "75.00"), ("2026-01-01", "100000000006", "10.00")]
DAY2_SWITCH = [("2026-01-01 00:10:00", "100000000002", "200.00"), ("2026-01-01 09:00:00", "100000000006", "10.00")]
DAY3_BANK = [("2026-01-02", "100000000007", "30.00")]
DAY3_SWITCH = [("2026-01-02 08:00:00", "100000000007", "30.00")]


def three_days(world: StreamWorld) -> None:
    """Day 1: one match, three breaks; day 2: the two timing differences (one across the year end)
    clear against the new files and their exceptions close as a system action, the third break is
    found again (same exception); a person ignores it; day 3: it stays closed and out of the input."""
    left1, right1 = world.upload(bank_csv(DAY1_BANK), "bank-1.csv", "bank"), \
        world.upload(switch_csv(DAY1_SWITCH), "switch-1.csv", "switch")
    stream = world.create(left1, right1)
    world.add(stream, left1)
    world.add(stream, right1)
    run1 = world.run(stream)
    assert run1.figures is not None
    assert run1.figures["matched_pairs"] == 1
    assert run1.figures["new_exceptions"] == 3
    assert run1.figures["open_rows_after"] == {"left": 2, "right": 1}
    first = world.exceptions(stream)
    assert set(first) == {(2, None), (3, None), (None, 2)}
    r3 = first[(3, None)]
    # A person starts working on R3's break and assigns it: that state must carry on.
    principal = Principal(world.caller.user_id, world.organization_id, "admin", permissions_for("admin"), None,
                          "jti", "admin@example.com", True)
    change_exception(world.container.workflow, principal, r3.id, status="in_progress")
    assign_exceptions(world.container.workflow, principal, [r3.id], world.caller.user_id)
    comment_on_exception(world.container.workflow, principal, r3.id, "asked the bank")

    world.day(stream, DAY2_BANK, DAY2_SWITCH, "2")
    run2 = world.run(stream)
    assert run2.figures is not None
    assert run1.job_id.version == run2.job_id.version == 7  # time-ordered ids (jobs.new_job_id)
    assert run2.figures["carried_rows"] == {"left": 2, "right": 1}
    assert run2.figures["new_rows"] == {"left": 2, "right": 2}
    assert run2.figures["matched_pairs"] == 3
    assert run2.figures["closed_by_later_match"] == 2
    assert run2.figures["new_exceptions"] == 0 and run2.figures["exceptions_found_again"] == 1
    assert run2.figures["open_rows_after"] == {"left": 1, "right": 0}
    second = world.exceptions(stream)
    assert set(second) == set(first)  # never a duplicate
    for key in ((2, None), (None, 2)):
        closed = second[key]
        assert closed.status.value == "resolved" and closed.resolved_by is None
        assert closed.resolution_code == "matched_in_later_run"
        assert closed.resolution_note.startswith("matched in run 2 with")
    carried = second[(3, None)]
    assert carried.id == r3.id and carried.status.value == "in_progress"
    assert carried.assigned_to == world.caller.user_id and carried.due_at == r3.due_at  # SLA clock carries on
    with world.container.database.unit_of_work(world.organization_id) as uow:
        history = uow.exceptions.history(second[(2, None)].id)
    closing = [h for h in history if h.to_status == "resolved"]
    assert len(closing) == 1 and closing[0].actor_id is None and set(closing[0].changes["rows"]) == {"left", "right"}

    with world.container.database.unit_of_work(world.organization_id) as uow:
        assert [c.content for c in uow.exceptions.comments(r3.id)] == ["asked the bank"]
    change_exception(world.container.workflow, principal, r3.id, status="ignored", reason="bank fee, posted elsewhere")
    world.day(stream, DAY3_BANK, DAY3_SWITCH, "3")
    run3 = world.run(stream)
    assert run3.figures is not None
    assert run3.figures["settled_since_last_run"] == {"left": 1, "right": 0}
    assert run3.figures["carried_rows"] == {"left": 0, "right": 0}
    assert run3.figures["new_exceptions"] == 0 and run3.figures["open_rows_after"] == {"left": 0, "right": 0}
    assert world.exceptions(stream)[(3, None)].status.value == "ignored"


def rerun_gives_no_new_exception(world: StreamWorld) -> None:
    left, right = world.upload(bank_csv(DAY1_BANK), "b.csv", "bank"), world.upload(switch_csv(DAY1_SWITCH), "s.csv",
                                                                                    "switch")
    stream = world.create(left, right, name="re-run")
    world.add(stream, left)
    world.add(stream, right)
    world.run(stream)
    before = {key: item.id for key, item in world.exceptions(stream).items()}
    for _ in range(2):
        again = world.run(stream)  # no new file: the open items only
        assert again.figures is not None
        assert again.figures["new_exceptions"] == 0
        assert again.figures["exceptions_found_again"] == len(before)
        assert {key: item.id for key, item in world.exceptions(stream).items()} == before


def files_are_refused_with_a_reason(world: StreamWorld) -> None:
    left, right = world.upload(bank_csv(DAY1_BANK), "b.csv", "bank"), world.upload(switch_csv(DAY1_SWITCH), "s.csv",
                                                                                    "switch")
    stream = world.create(left, right, name="refusals")
    world.add(stream, left)
    same_bytes = world.upload(bank_csv(DAY1_BANK), "b-again.csv", "bank")
    with pytest.raises(DuplicateStreamFile) as duplicate:
        world.add(stream, same_bytes)
    assert duplicate.value.earlier_file_id == left
    with pytest.raises(FileAlreadyUsed):
        world.add(stream, left)
    changed = dict(rj.profile()["left"]["mapping"])
    changed["fields"] = {**changed["fields"], "description": {"column": "reference"}}
    other_layout = world.upload(bank_csv(DAY2_BANK), "b2.csv", "bank", mapping=changed)
    with pytest.raises(FileLayoutChanged) as layout:
        world.add(stream, other_layout)
    assert [d[0] for d in layout.value.differences] == ["fields.description.column"]
    assert layout.value.details[0].field == "mapping.fields.description.column"
    fresh = world.create(left, right, name="nothing yet")
    with pytest.raises(NothingToRun):
        world.run(fresh)


def a_file_repeating_earlier_rows_does_not_bring_them_twice(world: StreamWorld) -> None:
    left, right = world.upload(bank_csv(DAY1_BANK), "b.csv", "bank"), world.upload(switch_csv(DAY1_SWITCH), "s.csv",
                                                                                    "switch")
    stream = world.create(left, right, name="overlap")
    world.add(stream, left)
    world.add(stream, right)
    world.run(stream)
    before = {key: item.id for key, item in world.exceptions(stream).items()}
    # An overlapping export: yesterday's R3 again (other bytes: another, unmapped balance) and a new row.
    overlap = world.upload(bank_csv([DAY1_BANK[2], DAY2_BANK[1]], balance="1.00"), "b-overlap.csv", "bank")
    world.add(stream, overlap)
    run = world.run(stream)
    assert run.figures is not None
    assert run.figures["repeated_rows"] == {"left": 1, "right": 0}
    assert run.figures["new_rows"] == {"left": 1, "right": 0}
    assert run.figures["new_exceptions"] == 1 and run.figures["exceptions_found_again"] == 3
    after = {key: item.id for key, item in world.exceptions(stream).items()}
    assert {k: v for k, v in after.items() if k in before} == before and set(after) - set(before) == {(4, None)}


def a_remapped_file_joins_the_run_with_its_current_version(world: StreamWorld) -> None:
    """Issue 16 item 4 and streams: a file whose first mapping does not fit the stream is re-mapped
    (a new version) and then taken; a re-map after it was taken that leaves the stream's layout
    stops the run with the reason; re-mapped back, the run reads that newest version, and the rows
    and their identity are those of the stream's layout."""
    from reckai.application.files.mapping import confirm_mapping

    left, right = world.upload(bank_csv(DAY1_BANK), "b.csv", "bank"), world.upload(switch_csv(DAY1_SWITCH), "s.csv",
                                                                                    "switch")
    stream = world.create(left, right, name="re-mapped")
    template = rj.profile()["left"]["mapping"]
    changed = {**template, "fields": {**template["fields"], "description": {"column": "reference"}}}
    day1 = world.upload(bank_csv(DAY1_BANK, balance="9.00"), "b-day1.csv", "bank", mapping=changed)
    with pytest.raises(FileLayoutChanged):
        world.add(stream, day1)
    files = world.container.files
    assert confirm_mapping(files, world.caller, day1, template).normalized.version == 2  # type: ignore[union-attr]
    world.add(stream, day1)
    world.add(stream, right)
    confirm_mapping(files, world.caller, day1, changed)  # version 3, another layout than the stream's
    with pytest.raises(FileLayoutChanged) as layout:
        world.run(stream)
    assert [d[0] for d in layout.value.differences] == ["fields.description.column"]
    assert confirm_mapping(files, world.caller, day1, template).normalized.version == 4  # type: ignore[union-attr]
    run = world.run(stream)
    with world.container.database.unit_of_work(world.organization_id) as uow:
        versions = {link.file_id: link.file_version for link in uow.reconciliation_jobs.linked_files(run.job_id)}
        taken = [uow.streams.row(stream.id, "left", seq) for seq in (1, 2, 3)]
    assert versions == {day1: 4, right: 1}
    assert [(row.key.file_id, row.key.row_number) for row in taken if row is not None] == [
        (day1, 1), (day1, 2), (day1, 3)]
    assert run.figures is not None
    assert run.figures["matched_pairs"] == 1 and run.figures["new_exceptions"] == 3
    assert run.figures["open_rows_after"] == {"left": 2, "right": 1}
    assert set(world.exceptions(stream)) == {(2, None), (3, None), (None, 2)}


def a_forced_job_inherits_the_earlier_jobs_exceptions(world: StreamWorld) -> tuple[Any, Any]:
    """Issue 15 item 3: a one-off job forced over two files already reconciled together, read at
    the same versions, takes the state of the earlier job's exceptions by key, as a system action
    (resolved stays resolved with its resolution, in progress and assigned carry with the SLA
    clock and comments, untouched stays open), the earlier job's exceptions only read; one audit
    row. A job after a re-map (other versions: rows numbered anew) inherits nothing. Returns the
    (earlier, forced) job ids."""
    from reckai.application.exceptions.exceptions import resolve_exception
    from reckai.application.files.mapping import confirm_mapping
    from reckai.application.ports.audit import AuditQuery
    from reckai.application.ports.workflow import ExceptionQuery
    from reckai.application.reconciliations.commands import StartRequest, start_reconciliation
    from reckai.application.reconciliations.worker import run_reconciliation_attempt

    left = world.upload(bank_csv(DAY1_BANK, balance="5.00"), "b-forced.csv", "bank")
    right = world.upload(switch_csv(DAY1_SWITCH, note="F"), "s-forced.csv", "switch")

    def job(name: str, force: bool = False) -> tuple[Any, dict[tuple[str, int | None, int | None], Any]]:
        started = start_reconciliation(world.services, world.caller, StartRequest(
            name=name, left_file_id=left, right_file_id=right, rule_ids=[world.rule_id], force=force))
        assert run_reconciliation_attempt(world.services, world.organization_id, started.id, 1, "pytest") == "completed"
        return started.id, exceptions(started.id)

    def exceptions(job_id: Any) -> dict[tuple[str, int | None, int | None], Any]:
        with world.container.database.unit_of_work(world.organization_id) as uow:
            items = uow.exceptions.list(ExceptionQuery(job_id=job_id, limit=50)).items
        return {(e.type, e.left_row, e.right_row): e for e in items}

    first, earlier = job("first")
    assert len(earlier) == 3
    resolved_key, worked_key, open_key = sorted(earlier, key=lambda k: (k[1] is None, k[1] or 0, k[2] or 0))
    principal = Principal(world.caller.user_id, world.organization_id, "admin", permissions_for("admin"), None,
                          "jti", "admin@example.com", True)
    workflow = world.container.workflow
    assert resolve_exception(workflow, principal, earlier[resolved_key].id, "corrected_at_source",
                             "the bank corrected it").approval is None
    change_exception(workflow, principal, earlier[worked_key].id, status="in_progress")
    assign_exceptions(workflow, principal, [earlier[worked_key].id], world.caller.user_id)
    comment_on_exception(workflow, principal, earlier[worked_key].id, "asked the bank")
    earlier = exceptions(first)

    forced, later = job("again", force=True)
    assert set(later) == set(earlier)
    for key, item in later.items():
        assert item.inherited_from == earlier[key].id and item.due_at == earlier[key].due_at
    closed = later[resolved_key]
    assert (closed.status.value, closed.resolution_code, closed.resolution_note, closed.resolved_by,
            closed.resolved_at) == ("resolved", "corrected_at_source", "the bank corrected it",
                                    world.caller.user_id, earlier[resolved_key].resolved_at)
    worked = later[worked_key]
    assert (worked.status.value, worked.assigned_to) == ("in_progress", world.caller.user_id)
    assert (later[open_key].status.value, later[open_key].assigned_to) == ("open", None)
    with world.container.database.unit_of_work(world.organization_id) as uow:
        assert [c.content for c in uow.exceptions.comments(worked.id)] == ["asked the bank"]
        history = [h for h in uow.exceptions.history(worked.id) if h.action == "inherit"]
        summary = uow.reconciliation_jobs.get(forced).summary  # type: ignore[union-attr]
    assert len(history) == 1 and history[0].actor_id is None
    assert history[0].changes["note"] == f"inherited from exception {earlier[worked_key].id} of job {first}"
    assert summary["inherited"] == {"from_job_id": str(first), "exceptions": 3}
    assert exceptions(first) == earlier  # only read
    audit = world.container.audit_log.list_records(world.organization_id, AuditQuery(
        action="exception.inherited", resource_id=forced)).records
    assert [(r.event.user_id, (r.event.metadata or {}).get("count")) for r in audit] == [(None, 3)]

    # re-mapped since: the rows are another version's; nothing is inherited (and no force needed)
    template = rj.profile()["left"]["mapping"]
    confirm_mapping(world.container.files, world.caller, left,
                    {**template, "fields": {**template["fields"], "description": {"column": "reference"}}})
    remapped, fresh = job("re-mapped")
    assert all(item.status.value == "open" and item.inherited_from is None for item in fresh.values())
    with world.container.database.unit_of_work(world.organization_id) as uow:
        assert uow.reconciliation_jobs.get(remapped).summary["inherited"] == {  # type: ignore[union-attr]
            "from_job_id": str(forced), "exceptions": 0,
            "skipped": "a file was re-mapped since the earlier job: its rows are numbered anew"}
    return first, forced
