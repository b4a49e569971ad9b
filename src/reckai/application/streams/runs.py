"""A stream run inside the reconciliation worker (docs/streams.md, "A run").

The run is an ordinary reconciliation job (claim, lease, heartbeat, cancel, sweeper, failure
messages: docs/reconciliation-jobs.md); only its input and its persist step differ:

- input per side: the rows open after the last completed run (its stored carry Parquet), less those
  a person closed since (resolved or ignored, or matched by hand: their exceptions were resolved),
  then the rows of the new files whose key the stream does not hold yet;
- persist, in ONE transaction with the job's completion: the new breaks only (a break whose rows the
  stream already has an exception about is that exception, found again), the new rows' keys, the
  links between the new exceptions and the rows, and the closing of every still-active earlier
  exception whose row a clean match took in this run (a system action, closing_needs_checker with
  Closer.LATER_MATCH), then the new carry Parquet.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from reckai.application.context import audit_event
from reckai.application.exceptions.closed_periods import frozen_exceptions
from reckai.application.exceptions.closing import close_by_later_match
from reckai.application.ports.reconciliations import JobsUnitOfWork
from reckai.application.ports.streams import (
    CLOSED_EXCEPTION_STATUSES,
    ExceptionOrigin,
    KeyProbe,
    StreamOutcome,
    StreamSideInput,
)
from reckai.application.reconciliations.job_types import NOTIFY_RECONCILIATION
from reckai.application.reconciliations.services import system_event
from reckai.domain.exceptions.lifecycle import SYSTEM_RESOLUTION_CODE
from reckai.domain.ingestion.storage_keys import processed_key
from reckai.domain.reconciliation import jobs as job_rules
from reckai.domain.reconciliation.jobs import JobCounts, Stage, StaleAttempt
from reckai.domain.reconciliation.profile import ReconciliationProfile
from reckai.domain.streams.streams import SIDES, StreamRun, later_match_note

if TYPE_CHECKING:
    from reckai.application.reconciliations.worker import _Attempt


class StreamRunFailed(Exception):
    """The stream run cannot start (no stream engine in this worker, carried items unreadable)."""


def _settled(uow_factory: Any, stream_id: uuid.UUID, side: str, seqs: Sequence[int]) -> set[int]:
    """Carried rows a person closed since: no active exception, and one a person resolved or ignored."""
    with uow_factory() as uow:
        breaks = uow.streams.breaks(stream_id, active_only=False, seqs=[(side, seq) for seq in seqs])
    active: set[int] = set()
    closed_by_person: set[int] = set()
    for found in breaks:
        seq = found.left_seq if side == "left" else found.right_seq
        if seq is None:
            continue
        if found.status not in CLOSED_EXCEPTION_STATUSES:
            active.add(seq)
        elif found.resolution_code != SYSTEM_RESOLUTION_CODE:
            closed_by_person.add(seq)
    return closed_by_person - active


def _known_keys(uow_factory: Any, seconds: dict[str, float], stream_id: uuid.UUID, side: str,
                keys: Sequence[KeyProbe]) -> set[tuple[str, int]]:
    started = time.perf_counter()
    with uow_factory() as uow:
        found: set[tuple[str, int]] = uow.streams.known_keys(stream_id, side, keys)
    seconds["load.known_keys"] = round(seconds.get("load.known_keys", 0.0) + time.perf_counter() - started, 4)
    return found


def run_stream(attempt: _Attempt, profile: ReconciliationProfile, background: Callable[..., Any]) -> None:
    """`background(action)` runs the outputs writer beside the COPY (the worker's _Background)."""
    services, job = attempt.services, attempt.job
    engine = services.stream_engine
    if engine is None:
        raise StreamRunFailed("This worker cannot run streams (no stream engine). Nothing was saved.")
    info = job.snapshot["stream"]
    stream_id, run_number = uuid.UUID(info["stream_id"]), int(info["run_number"])
    organization_id = attempt.organization_id

    def unit_of_work() -> Any:
        return services.database.unit_of_work(organization_id)

    normalized: dict[str, list[tuple[dict[str, Any], Any]]] = {side: [] for side in SIDES}
    for side in SIDES:
        for file in info["files"][side]:
            normalized[side].append((file, attempt._timed("normalize", partial(attempt._normalize, side, file))))
    attempt._advance(Stage.LOADING)
    tables: dict[str, list[tuple[uuid.UUID, Any]]] = {side: [] for side in SIDES}
    for side in SIDES:
        for file, stored in normalized[side]:
            tables[side].append((uuid.UUID(file["file_id"]),
                                 attempt._timed("load", partial(attempt._load, side, file, stored))))
    carried = None
    if info.get("carry_key"):
        with services.storage.open(info["carry_key"]) as stream:
            carried = stream.read()
    with unit_of_work() as uow:
        first_seqs = {side: uow.streams.last_seq(stream_id, side) + 1 for side in SIDES}
    inputs: dict[str, StreamSideInput] = {}
    for side in SIDES:
        inputs[side] = attempt._timed("load", partial(
            engine.side_input, side, tables.pop(side), carried, first_seqs[side],
            partial(_known_keys, unit_of_work, attempt.seconds, stream_id, side),
            partial(_settled, unit_of_work, stream_id, side)))
    left, right = inputs["left"], inputs["right"]
    total_rows = left.carried_rows + left.new_rows + right.carried_rows + right.new_rows
    attempt._advance(Stage.MATCHING, total_rows=total_rows)
    with unit_of_work() as uow:
        carried_rows = [("left", seq) for seq in left.carried_seqs()] + [("right", seq) for seq in right.carried_seqs()]
        carried_set = set(carried_rows)
        known = {(side, seq) for found in uow.streams.breaks(stream_id, active_only=False, seqs=carried_rows)
                 for side, seq in (("left", found.left_seq), ("right", found.right_seq))
                 if seq is not None and (side, seq) in carried_set}
        files = uow.streams.files(stream_id)
        declined_rows = uow.declined_pairs.declined_among([f.file_id for f in files if f.side == "left"],
                                                          [f.file_id for f in files if f.side == "right"])
    declined: set[tuple[int, int]] = set()
    if declined_rows:
        left_seqs = left.seqs_of([(pair[0].file_id, pair[0].row_number) for pair in declined_rows])
        right_seqs = right.seqs_of([(pair[1].file_id, pair[1].row_number) for pair in declined_rows])
        for pair in declined_rows:
            left_seq = left_seqs.get((pair[0].file_id, pair[0].row_number))
            right_seq = right_seqs.get((pair[1].file_id, pair[1].row_number))
            if left_seq is not None and right_seq is not None:
                declined.add((left_seq, right_seq))
    attempt.declined = declined
    run = attempt._timed("match", lambda: services.engine.run(
        engine.engine_table(left), engine.engine_table(right), profile, None, attempt.heartbeat.check,
        excluded_pairs=declined))
    for name, seconds in run.stage_seconds.items():
        attempt.seconds[f"match.{name}"] = round(seconds, 4)
    outcome = attempt._timed("match", lambda: engine.outcome(run, left, right, known))
    attempt._advance(Stage.PERSISTING, processed_rows=total_rows)
    writer = background(lambda: attempt._timed("write_outputs", lambda: attempt._write_outputs(run)))
    try:
        _persist(attempt, run, outcome, left, right, stream_id, run_number, writer)
    finally:
        writer.join()


def _persist(attempt: _Attempt, run: Any, outcome: StreamOutcome, left: StreamSideInput, right: StreamSideInput,
             stream_id: uuid.UUID, run_number: int, writer: Any) -> None:
    services, job = attempt.services, attempt.job
    check = attempt.heartbeat.check
    carry_key = processed_key(job.organization_id, job.id, "open-items", "parquet")
    with services.database.unit_of_work(attempt.organization_id) as uow:
        started = time.perf_counter()
        lap = started

        def timed(part: str) -> None:
            nonlocal lap
            attempt.seconds[f"persist.{part}"] = round(time.perf_counter() - lap, 4)
            lap = time.perf_counter()

        match_rows, exception_rows = uow.reconciliation_results.replace_results(
            job.id, job.attempt, run.match_chunks(check), outcome.exception_chunks(check))
        timed("results")
        uow.streams.add_rows(stream_id, run_number, [*left.new_keys, *right.new_keys])
        timed("row_keys")
        uow.streams.link_exceptions(stream_id, run_number, _links(uow.streams.job_exception_origins(job.id), left, right))
        timed("links")
        now = services.now()
        closed = _close_matched(attempt, uow, outcome, stream_id, run_number, now)
        timed("closings")
        attempt.seconds["persist"] = round(time.perf_counter() - started, 4)
        outputs = writer.result()
        check()
        services.storage.put(carry_key, [outcome.carry_parquet()], content_type="application/vnd.apache.parquet")
        check()
        current = uow.reconciliation_jobs.get_for_update(job.id)
        if current is None:
            raise StaleAttempt(job.id, "the job was deleted")
        for file in job.snapshot["stream"]["files"]["left"] + job.snapshot["stream"]["files"]["right"]:
            stored = uow.files.get(uuid.UUID(file["file_id"]))
            if stored is not None and stored.status != "processed":
                uow.files.mark_processed(stored.id, now)
        figures = {
            "run_number": run_number,
            "new_rows": {"left": left.new_rows, "right": right.new_rows},
            "repeated_rows": {"left": left.repeated_rows, "right": right.repeated_rows},
            "carried_rows": {"left": left.carried_rows, "right": right.carried_rows},
            "settled_since_last_run": {"left": left.settled_rows, "right": right.settled_rows},
            "matched_pairs": run.matched_pairs,
            "carried_rows_matched": len(outcome.matched_carried),
            "closed_by_later_match": closed,
            "held_by_closed_period": attempt.held_by_closed_period,
            "new_exceptions": outcome.new_exceptions,
            "exceptions_found_again": outcome.found_again,
            "open_rows_after": dict(outcome.open_rows),
            "matched_amounts": outcome.matched_amounts,
        }
        uow.streams.update_run(StreamRun(stream_id, run_number, job.id, job.created_by, carry_key=carry_key,
                                         figures=figures))
        attempt.seconds["total"] = round(time.perf_counter() - attempt._started, 4)
        summary = {
            "rows": {"left": run.left_rows, "right": run.right_rows},
            "matched_pairs": run.matched_pairs, "suggested_pairs": run.suggested_pairs,
            "exceptions": exception_rows, "exceptions_by_type": run.exceptions_by_type,
            "stored_match_rows": match_rows, "outputs": outputs,
            "declined_pairs_excluded": len(attempt.declined), "reversals_netted": run.reversals_netted,
            "stream": figures,
        }
        total_rows = run.left_rows + run.right_rows
        completed = job_rules.complete(
            current, attempt=job.attempt, worker=attempt.worker, now=now, stage_seconds=attempt.seconds,
            summary=summary, counts=JobCounts(total_rows=total_rows, processed_rows=total_rows,
                                              matched_rows=run.matched_rows, exception_rows=run.exception_rows))
        uow.reconciliation_jobs.update(completed)
        services.audit_log.record(uow, system_event(
            "reconciliation.job.completed", job.organization_id, job.id, attempt=job.attempt,
            matched_rows=completed.matched_rows, exception_rows=completed.exception_rows,
            match_rate=str(completed.match_rate), processing_time_seconds=completed.processing_time_seconds,
            stream_id=str(stream_id), run_number=run_number))
        services.job_queue.enqueue(uow, NOTIFY_RECONCILIATION.request({"job_id": str(job.id)},
                                                                      organization_id=job.organization_id))
        uow.commit()


def _links(origins: Sequence[ExceptionOrigin], left: StreamSideInput,
           right: StreamSideInput) -> list[tuple[uuid.UUID, int | None, int | None]]:
    """(exception id, left seq, right seq) of the run's new exceptions, from their rows' origins."""
    left_seqs = left.seqs_of([(o.left_file_id, o.left_row) for o in origins if o.left_file_id and o.left_row])
    right_seqs = right.seqs_of([(o.right_file_id, o.right_row) for o in origins if o.right_file_id and o.right_row])
    links = []
    for origin in origins:
        left_seq = left_seqs.get((origin.left_file_id, origin.left_row)) \
            if origin.left_file_id and origin.left_row else None
        right_seq = right_seqs.get((origin.right_file_id, origin.right_row)) \
            if origin.right_file_id and origin.right_row else None
        if left_seq is not None or right_seq is not None:
            links.append((origin.exception_id, left_seq, right_seq))
    return links


def _close_matched(attempt: _Attempt, uow: JobsUnitOfWork, outcome: StreamOutcome, stream_id: uuid.UUID,
                   run_number: int, now: dt.datetime) -> int:
    """Close, as the system, every still-active exception of the stream about a carried row a clean
    match of this run took. Each is audited with both rows of the match."""
    if not outcome.matched_carried:
        return 0
    matched = set(outcome.matched_carried)
    closed = 0
    candidates = uow.streams.breaks(stream_id, active_only=True, seqs=outcome.matched_carried)
    # the one check of every change (closed_periods.py): an exception a closed period froze (one an
    # adjustment reopened) is left as it is; only another adjustment closes it
    frozen = frozen_exceptions(uow, [found.exception_id for found in candidates])
    attempt.held_by_closed_period = len(frozen)
    for found in candidates:
        if found.exception_id in frozen:
            continue
        side = "left" if ("left", found.left_seq) in matched else "right"
        seq = found.left_seq if side == "left" else found.right_seq
        pair = outcome.partner(side, seq) if seq is not None else None
        item = uow.exceptions.get_for_update(found.exception_id)
        if item is None or pair is None:
            continue
        rows = {pair.side: {"file_id": str(pair.file_id), "row": pair.row_number, "stream_row": pair.seq},
                pair.partner_side: {"file_id": str(pair.partner_file_id), "row": pair.partner_row_number,
                                    "stream_row": pair.partner_seq}}
        note = later_match_note(run_number, side, pair.partner_side, str(pair.partner_file_id),
                                pair.partner_row_number)
        close_by_later_match(uow.exceptions, item, at=now, note=note, rows=rows)
        attempt.services.audit_log.record(uow, audit_event(
            "exception.resolved", None, organization_id=attempt.organization_id, resource_type="exception",
            resource_id=item.id, metadata={"by": "system", "resolution_code": SYSTEM_RESOLUTION_CODE,
                                           "resolution_note": note, "stream_id": str(stream_id),
                                           "run_number": run_number, "job_id": str(attempt.job.id), "rows": rows,
                                           "amount": str(item.amount)}))
        closed += 1
    return closed
