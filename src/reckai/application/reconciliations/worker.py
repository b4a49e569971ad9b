"""run_reconciliation_attempt (the worker step), sweep_stuck_jobs (the sweeper), notify_job_creator.

One attempt, start to end (docs/reconciliation-jobs.md):

1. claim: the job must be `pending` at exactly this attempt; anything else (a duplicate or stale
   message) returns "ignored" having changed nothing. The worker takes a lease it renews from a
   heartbeat thread, which also notices a requested cancel.
2. normalize the files not normalized yet, load both normalized tables, run the matching engine,
   write processed/{job_id}/results.csv|parquet, then in ONE transaction: replace the job's rows
   (COPY), mark the files processed, and complete the job, fenced on attempt and lease. A worker
   that lost its lease, or a cancelled job, rolls that transaction back: nothing is half-written.
3. Between stages, between the matching engine's passes and between COPY chunks the worker checks
   the heartbeat's flags, so a cancel stops it within about one heartbeat plus one pass.
4. Any failure ends the job `failed` with a message saying what to do; never a stuck `processing`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from reckai.application.errors import ApplicationError
from reckai.application.exceptions.matching import declined_row_pairs
from reckai.application.files.common import rules_from_rows
from reckai.application.ports.mail import InvalidMail, MailRejected, OutgoingMail
from reckai.application.ports.matching import MatchingError, SourceFileError
from reckai.application.ports.reconciliations import JobsUnitOfWork, MatchRun, ResultsRejected
from reckai.application.ports.storage import StorageError
from reckai.application.reconciliations.job_types import NOTIFY_RECONCILIATION, RUN_RECONCILIATION
from reckai.application.reconciliations.services import ReconciliationServices, system_event
from reckai.application.streams.runs import StreamRunFailed, run_stream
from reckai.domain.exceptions.inheritance import reads_the_same_rows
from reckai.domain.ingestion.storage_keys import processed_key
from reckai.domain.reconciliation import jobs as job_rules
from reckai.domain.reconciliation.jobs import (
    CancelRequested,
    JobCounts,
    JobStatus,
    ReconciliationJob,
    Stage,
    StaleAttempt,
    SweepAction,
)
from reckai.domain.reconciliation.profile import (
    ProfileError,
    ReconciliationPeriod,
    ReconciliationProfile,
    parse_profile,
)
from reckai.domain.reconciliation.result_checks import result_warnings

_log = logging.getLogger("reckai.reconciliation")


class FileStepFailed(Exception):
    """A file of the job could not be normalized or read; the message names it and the fix."""


class _Heartbeat:
    """Renews the lease every `interval` seconds and reads the cancel flag at the same time."""

    def __init__(self, services: ReconciliationServices, organization_id: uuid.UUID, job_id: uuid.UUID,
                 attempt: int, worker: str) -> None:
        self._services = services
        self._key = (organization_id, job_id, attempt, worker)
        self.cancel = threading.Event()
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"reckai-lease-{job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def check(self) -> None:
        _, job_id, attempt, _ = self._key
        if self.lost.is_set():
            raise StaleAttempt(job_id, f"attempt {attempt} lost its lease")
        if self.cancel.is_set():
            raise CancelRequested(job_id)

    def _loop(self) -> None:
        services = self._services
        organization_id, job_id, attempt, worker = self._key
        lease = dt.timedelta(seconds=services.settings.lease_seconds)
        while not self._stop.wait(services.settings.heartbeat_seconds):
            try:
                with services.database.unit_of_work(organization_id) as uow:
                    job = uow.reconciliation_jobs.get_for_update(job_id)
                    if job is None:
                        self.lost.set()
                        return
                    renewed = job_rules.renew_lease(job, attempt=attempt, worker=worker, now=services.now(),
                                                    lease=lease)
                    uow.reconciliation_jobs.update(renewed)
                    uow.commit()
                if renewed.cancel_requested:
                    self.cancel.set()
            except StaleAttempt:
                self.lost.set()
                return
            except Exception as exc:  # noqa: BLE001 - keep beating; the lease covers short outages
                _log.warning("reconciliation.heartbeat_failed",
                             extra={"metadata": {"job_id": str(job_id), "error": type(exc).__name__}})


def run_reconciliation_attempt(services: ReconciliationServices, organization_id: uuid.UUID, job_id: uuid.UUID,
                               attempt: int, worker: str) -> str:
    """Run one attempt; returns "completed", "failed", "cancelled", "ignored" or "superseded"."""
    lease = dt.timedelta(seconds=services.settings.lease_seconds)
    with services.database.unit_of_work(organization_id) as uow:
        job = uow.reconciliation_jobs.get_for_update(job_id)
        if job is None:
            return "ignored"
        try:
            claimed = job_rules.claim(job, attempt=attempt, worker=worker, now=services.now(), lease=lease)
        except (StaleAttempt, CancelRequested) as exc:
            _log.info("reconciliation.message_ignored", extra={"metadata": {"job_id": str(job_id), "reason": str(exc)}})
            return "ignored"
        uow.reconciliation_jobs.update(claimed)
        uow.commit()
    heartbeat = _Heartbeat(services, organization_id, job_id, attempt, worker)
    heartbeat.start()
    attempt_run = _Attempt(services, claimed, worker, heartbeat)
    try:
        attempt_run.run()
        return "completed"
    except CancelRequested:
        return attempt_run.finish_cancelled()
    except StaleAttempt as exc:
        _log.warning("reconciliation.attempt_superseded", extra={"metadata": {"job_id": str(job_id), "reason": str(exc)}})
        return "superseded"
    except Exception as exc:  # noqa: BLE001 - every failure must end the job `failed`, with a message
        return attempt_run.finish_failed(exc)
    finally:
        heartbeat.stop()


class _Background:
    """Run `action` in a thread; `result()` waits and returns its value or raises its error."""

    def __init__(self, action: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(action,), name="reckai-job-outputs", daemon=True)
        self._thread.start()

    def _run(self, action: Callable[[], Any]) -> None:
        try:
            self._value = action()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            self._error = exc

    def join(self) -> None:
        self._thread.join()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class _Attempt:
    def __init__(self, services: ReconciliationServices, job: ReconciliationJob, worker: str,
                 heartbeat: _Heartbeat) -> None:
        self.services = services
        self.job = job
        self.worker = worker
        self.heartbeat = heartbeat
        self.seconds: dict[str, float] = {}
        self.stage = Stage.NORMALIZING
        self._started = time.perf_counter()
        self.declined: set[tuple[int, int]] = set()
        self.held_by_closed_period = 0  # a stream run: exceptions a closed period kept from closing

    @property
    def organization_id(self) -> uuid.UUID:
        return self.job.organization_id

    def _advance(self, stage: Stage, **counts: int) -> None:
        self.heartbeat.check()
        self.stage = stage
        with self.services.database.unit_of_work(self.organization_id) as uow:
            job = uow.reconciliation_jobs.get_for_update(self.job.id)
            if job is None:
                raise StaleAttempt(self.job.id, "the job was deleted")
            uow.reconciliation_jobs.update(job_rules.advance(
                job, attempt=self.job.attempt, worker=self.worker, stage=stage, now=self.services.now(),
                stage_seconds=self.seconds, **counts))
            uow.commit()

    def _timed(self, name: str, action: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return action()
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 4)

    def run(self) -> None:
        services, job = self.services, self.job
        snapshot = job.snapshot
        try:
            profile = parse_profile(snapshot["profile"])
        except (ProfileError, KeyError) as exc:
            raise ProfileError("snapshot", str(exc)) from exc
        if "stream" in snapshot:  # a stream's run: its new files plus its open items (docs/streams.md)
            run_stream(self, profile, _Background)
            return
        period = ReconciliationPeriod(job.period_start, job.period_end) if job.period_start and job.period_end else None
        files = {side: snapshot["files"][side] for side in ("left", "right")}
        normalized: dict[str, Any] = {}
        for side in ("left", "right"):
            normalized[side] = self._timed("normalize", partial(self._normalize, side, files[side]))
        self._advance(Stage.LOADING)
        tables: dict[str, Any] = {}
        for side in ("left", "right"):
            tables[side] = self._timed("load", partial(self._load, side, files[side], normalized[side]))
        total_rows = sum(int(getattr(table, "height", 0)) for table in tables.values())
        self._advance(Stage.MATCHING, total_rows=total_rows)
        left_id, right_id = uuid.UUID(files["left"]["file_id"]), uuid.UUID(files["right"]["file_id"])
        self.declined = self._declined_pairs(left_id, right_id)
        outcome: MatchRun = self._timed("match", lambda: services.engine.run(
            tables.pop("left"), tables.pop("right"), profile, period, self.heartbeat.check,
            excluded_pairs=self.declined))
        for name, seconds in outcome.stage_seconds.items():
            self.seconds[f"match.{name}"] = round(seconds, 4)
        self._advance(Stage.PERSISTING, processed_rows=total_rows)
        # Storage and PostgreSQL are other processes: the outputs are written while the rows are
        # COPYed, and the job completes only once both are done (_persist joins the writer).
        writer = _Background(lambda: self._timed("write_outputs", lambda: self._write_outputs(outcome)))
        try:
            self._persist(outcome, writer, left_id, right_id, profile)
        finally:
            writer.join()

    def _declined_pairs(self, left_id: uuid.UUID, right_id: uuid.UUID) -> set[tuple[int, int]]:
        """(left_row, right_row) pairs of these two files a person declined (issue 7, manual
        matching): the engine never matches nor suggests them again (docs/workflow.md)."""
        with self.services.database.unit_of_work(self.organization_id) as uow:
            return declined_row_pairs(uow, left_id, right_id)

    def _normalize(self, side: str, file: dict[str, Any]) -> Any:
        """The normalized version of the file this job reads: the one its link recorded (at creation
        over a normalized file; a re-map since then made a newer one the job does not read), else
        the file's current version (normalized now if it is not yet), recorded on the link."""
        services, file_id = self.services, uuid.UUID(file["file_id"])
        with services.database.unit_of_work(self.organization_id) as uow:
            current = uow.files.get(file_id)
            link = next((link for link in uow.reconciliation_jobs.linked_files(self.job.id)
                         if link.file_id == file_id), None)
            recorded = link.file_version if link is not None else None
            if current is not None and recorded is not None:
                kept = uow.normalized_files.get_version(file_id, recorded)
                if kept is None:
                    raise FileStepFailed(f"Version {recorded} of the {side} file '{file['name']}', which this "
                                         "reconciliation reads, is gone. Start a new reconciliation.")
                self.heartbeat.check()
                return kept
            mapping = rules_from_rows(uow.data_mappings.list_for_file(file_id)) if current else None
            normalized = uow.normalized_files.get_for_file(file_id) if current else None
        if current is None:
            raise FileStepFailed(f"The {side} file '{file['name']}' was deleted after this reconciliation was "
                                 "created. Upload it again and start a new reconciliation.")
        if mapping != file["mapping"]:
            raise FileStepFailed(f"The mapping of the {side} file '{file['name']}' changed after this reconciliation "
                                 "was created. Start a new reconciliation to use the new mapping.")
        if normalized is None or current.status not in ("normalized", "processed"):
            if services.normalize_file is None:
                raise FileStepFailed(f"The {side} file '{file['name']}' is not normalized and this worker cannot "
                                     "normalize files.")
            try:
                normalized = services.normalize_file(self.organization_id, file_id)
            except ApplicationError as exc:
                raise FileStepFailed(f"The {side} file '{file['name']}' could not be normalized: {exc.message} "
                                     "Fix the file or its mapping (POST /api/files/:id/map), then start the "
                                     "reconciliation again.") from exc
        if link is not None:
            with services.database.unit_of_work(self.organization_id) as uow:
                uow.reconciliation_jobs.record_file_version(self.job.id, file_id, normalized.version)
                uow.commit()
        self.heartbeat.check()
        return normalized

    def _load(self, side: str, file: dict[str, Any], normalized: Any) -> Any:
        with self.services.storage.open(normalized.storage_path) as stream:
            data = stream.read()
        try:
            table = self.services.engine.load(data)
        except SourceFileError as exc:
            raise FileStepFailed(f"The normalized form of the {side} file '{file['name']}' is unreadable "
                                 f"({exc.reason}). Confirm its mapping again to normalize it anew, then start "
                                 "the reconciliation again.") from exc
        self.heartbeat.check()
        return table

    def _write_outputs(self, outcome: MatchRun) -> dict[str, str]:
        storage, job = self.services.storage, self.job
        keys = {"csv": processed_key(job.organization_id, job.id, "results", "csv"),
                "parquet": processed_key(job.organization_id, job.id, "results", "parquet")}
        storage.put(keys["csv"], [outcome.results_csv()], content_type="text/csv")
        self.heartbeat.check()
        storage.put(keys["parquet"], [outcome.results_parquet()], content_type="application/vnd.apache.parquet")
        self.heartbeat.check()
        return keys

    def _persist(self, outcome: MatchRun, writer: _Background, left_id: uuid.UUID, right_id: uuid.UUID,
                 profile: ReconciliationProfile) -> None:
        services, job = self.services, self.job
        check = self.heartbeat.check
        with services.database.unit_of_work(self.organization_id) as uow:
            started = time.perf_counter()
            exceptions_started: list[float] = []
            match_rows, exception_rows = uow.reconciliation_results.replace_results(
                job.id, job.attempt, outcome.match_chunks(check),
                _marking_start(outcome.exception_chunks(left_id, right_id, check), exceptions_started))
            finished = time.perf_counter()
            self.seconds["persist"] = round(finished - started, 4)
            if exceptions_started:  # the matches are written first, then the exceptions
                self.seconds["persist.matches"] = round(exceptions_started[0] - started, 4)
                self.seconds["persist.exceptions"] = round(finished - exceptions_started[0], 4)
            inheritance = self._timed("persist.inherit", lambda: self._inherit(uow))
            outputs = writer.result()  # raises what the writer raised: nothing is committed then
            check()
            current = uow.reconciliation_jobs.get_for_update(job.id)
            if current is None:
                raise StaleAttempt(job.id, "the job was deleted")
            now = services.now()
            for file_id in (left_id, right_id):
                uow.files.mark_processed(file_id, now)
            self.seconds["total"] = round(time.perf_counter() - self._started, 4)
            summary = {
                "rows": {"left": outcome.left_rows, "right": outcome.right_rows},
                "matched_pairs": outcome.matched_pairs, "suggested_pairs": outcome.suggested_pairs,
                "exceptions": exception_rows, "exceptions_by_type": outcome.exceptions_by_type,
                "stored_match_rows": match_rows, "outputs": outputs,
                "declined_pairs_excluded": len(self.declined), "reversals_netted": outcome.reversals_netted,
                "warnings": [w.to_dict() for w in result_warnings(
                    profile, left_rows=outcome.left_rows, right_rows=outcome.right_rows,
                    matched_rows=outcome.matched_rows, direction_rows=outcome.direction_rows)],
                **({"inherited": inheritance} if inheritance is not None else {}),
            }
            total_rows = outcome.left_rows + outcome.right_rows
            completed = job_rules.complete(
                current, attempt=job.attempt, worker=self.worker, now=now, stage_seconds=self.seconds,
                summary=summary, counts=JobCounts(total_rows=total_rows, processed_rows=total_rows,
                                                  matched_rows=outcome.matched_rows,
                                                  exception_rows=outcome.exception_rows))
            uow.reconciliation_jobs.update(completed)
            if inheritance is not None:  # a system action: one audit row for the job, with the count
                services.audit_log.record(uow, system_event(
                    "exception.inherited", job.organization_id, job.id, by="system",
                    previous_job_id=inheritance["from_job_id"], count=inheritance["exceptions"],
                    **({"skipped": inheritance["skipped"]} if "skipped" in inheritance else {})))
            services.audit_log.record(uow, system_event(
                "reconciliation.job.completed", job.organization_id, job.id, attempt=job.attempt,
                matched_rows=completed.matched_rows, exception_rows=completed.exception_rows,
                match_rate=str(completed.match_rate), processing_time_seconds=completed.processing_time_seconds))
            services.job_queue.enqueue(uow, NOTIFY_RECONCILIATION.request({"job_id": str(job.id)},
                                                                          organization_id=job.organization_id))
            uow.commit()

    def _inherit(self, uow: JobsUnitOfWork) -> dict[str, Any] | None:
        """A forced re-run (`previous_job_id`): its exceptions take the state of the earlier job's
        with the same key, as a system action (docs/decisions/forced-job-inheritance.md), when
        this job reads the rows the earlier job read (the same files at the same normalized
        versions: the same row numbers). The caller audits it (one row for the job, with the
        count) late in the transaction, as the audit chain's lock asks."""
        services, job = self.services, self.job
        earlier_id = job.previous_job_id
        if earlier_id is None:
            return None
        jobs = uow.reconciliation_jobs
        earlier = jobs.get(earlier_id)
        skipped = None
        if earlier is None or earlier.status is not JobStatus.COMPLETED:
            skipped = "the earlier job is gone or did not complete"
        elif not reads_the_same_rows(*({link.file_id: link.file_version for link in jobs.linked_files(job_id)}
                                       for job_id in (job.id, earlier_id))):
            skipped = "a file was re-mapped since the earlier job: its rows are numbered anew"
        count = 0 if skipped else uow.reconciliation_results.inherit_exceptions(job.id, earlier_id,
                                                                               at=services.now())
        outcome: dict[str, Any] = {"from_job_id": str(earlier_id), "exceptions": count}
        if skipped:
            outcome["skipped"] = skipped
        return outcome

    def finish_cancelled(self) -> str:
        services, job = self.services, self.job
        with services.database.unit_of_work(self.organization_id) as uow:
            current = uow.reconciliation_jobs.get_for_update(job.id)
            if current is None:
                return "superseded"
            try:
                cancelled = job_rules.acknowledge_cancel(current, attempt=job.attempt, worker=self.worker,
                                                         now=services.now(), stage_seconds=self.seconds)
            except StaleAttempt:
                return "superseded"
            uow.reconciliation_jobs.update(cancelled)
            services.audit_log.record(uow, system_event("reconciliation.job.cancelled", job.organization_id, job.id,
                                                        attempt=job.attempt, stage=self.stage.value))
            uow.commit()
        from reckai.application.reconciliations.commands import delete_outputs

        delete_outputs(services, job.organization_id, job.id)
        return "cancelled"

    def finish_failed(self, exc: BaseException) -> str:
        services, job = self.services, self.job
        message = describe_failure(exc, self.stage)
        if not isinstance(exc, FileStepFailed | StreamRunFailed | ProfileError | ResultsRejected):
            _log.error("reconciliation.job.failed", exc_info=exc,
                       extra={"metadata": {"job_id": str(job.id), "stage": self.stage.value}})
        with services.database.unit_of_work(self.organization_id) as uow:
            current = uow.reconciliation_jobs.get_for_update(job.id)
            if current is None:
                return "superseded"
            try:
                failed = job_rules.fail(current, attempt=job.attempt, worker=self.worker, message=message,
                                        now=services.now(), stage_seconds=self.seconds)
            except StaleAttempt:
                return "superseded"
            uow.reconciliation_jobs.update(failed)
            services.audit_log.record(uow, system_event("reconciliation.job.failed", job.organization_id, job.id,
                                                        attempt=job.attempt, stage=self.stage.value,
                                                        error=failed.error_message))
            services.job_queue.enqueue(uow, NOTIFY_RECONCILIATION.request({"job_id": str(job.id)},
                                                                          organization_id=job.organization_id))
            uow.commit()
        return "failed"


def _marking_start(chunks: Iterable[bytes], started: list[float]) -> Iterator[bytes]:
    started.append(time.perf_counter())  # runs when the repository first asks for a chunk
    yield from chunks


def describe_failure(exc: BaseException, stage: Stage) -> str:
    """An error_message a person can act on (no stack traces, no internals)."""
    if isinstance(exc, FileStepFailed | StreamRunFailed):
        return str(exc)
    if isinstance(exc, ProfileError):
        return (f"The rules or mappings saved with this reconciliation are not valid ({exc.path}: {exc.reason}). "
                "Fix the rules or mappings and start a new reconciliation.")
    if isinstance(exc, StorageError):
        return (f"File storage could not be used during the '{stage.value}' stage ({type(exc).__name__}). "
                "Nothing was saved. Check that the storage service is reachable, then start the reconciliation "
                "again.")
    if isinstance(exc, ResultsRejected):
        return f"The results could not be saved ({exc.reason}). Nothing was saved; report this with the job id."
    if isinstance(exc, MatchingError):
        return f"The matching engine could not run: {exc}. Check the rules of this reconciliation."
    if isinstance(exc, MemoryError):
        return ("The worker ran out of memory while matching. Give the workers more memory or split the files "
                "into smaller periods, then start the reconciliation again.")
    if isinstance(exc, ApplicationError):
        return f"{exc.message} (during the '{stage.value}' stage)."
    return (f"An unexpected error ({type(exc).__name__}) stopped the reconciliation during the '{stage.value}' "
            "stage. Nothing was saved. The worker log has the details under this job's id; start the "
            "reconciliation again, and report it if it happens again.")


# --- the sweeper -------------------------------------------------------------------------------

def sweep_stuck_jobs(services: ReconciliationServices, limit: int = 100) -> dict[str, int]:
    """Take back jobs whose worker died (lease expired): a new attempt while attempts remain, else
    `failed` with a clear message; re-send the message of jobs pending too long. Idempotent."""
    settings = services.settings
    with services.database.unit_of_work(None) as uow:
        stuck = uow.reconciliation_jobs.find_stuck(limit, settings.pending_resend_seconds)
    done = {action.value: 0 for action in SweepAction}
    for item in stuck:
        with services.database.unit_of_work(item.organization_id) as uow:
            job = uow.reconciliation_jobs.get_for_update(item.job_id)
            if job is None:
                continue
            decision = job_rules.sweep(job, services.now(), dt.timedelta(seconds=settings.pending_resend_seconds))
            if decision.action is SweepAction.NOTHING:
                continue
            updated = decision.job
            uow.reconciliation_jobs.update(updated)
            if decision.action in (SweepAction.REQUEUE, SweepAction.RESEND):
                services.job_queue.enqueue(uow, RUN_RECONCILIATION.request(
                    {"job_id": str(updated.id), "attempt": updated.attempt}, organization_id=updated.organization_id))
            if decision.action is SweepAction.REQUEUE:
                services.audit_log.record(uow, system_event("reconciliation.job.requeued", updated.organization_id,
                                                            updated.id, attempt=updated.attempt))
            elif decision.action is SweepAction.GIVE_UP:
                services.audit_log.record(uow, system_event("reconciliation.job.failed", updated.organization_id,
                                                            updated.id, attempt=updated.attempt,
                                                            error=updated.error_message))
                services.job_queue.enqueue(uow, NOTIFY_RECONCILIATION.request(
                    {"job_id": str(updated.id)}, organization_id=updated.organization_id))
            elif decision.action is SweepAction.CANCEL:
                services.audit_log.record(uow, system_event("reconciliation.job.cancelled", updated.organization_id,
                                                            updated.id, attempt=updated.attempt))
            uow.commit()
        done[decision.action.value] += 1
        _log.info("reconciliation.sweep", extra={"metadata": {"job_id": str(item.job_id),
                                                              "action": decision.action.value}})
    return done


# --- notification ------------------------------------------------------------------------------

def _warnings_text(summary: dict[str, Any] | None) -> str:
    """The job's warnings (result_checks) as a paragraph of the completion mail; empty when none."""
    warnings = (summary or {}).get("warnings") or []
    if not warnings:
        return ""
    lines = "".join(f"- {w.get('message', '')}\n" for w in warnings)
    return f"Warnings: the result looks implausible, check it before relying on it:\n{lines}\n"


def notify_job_creator(services: ReconciliationServices, organization_id: uuid.UUID, job_id: uuid.UUID) -> bool:
    """Mail the job's creator that it completed or failed. False when there is nothing to send
    (job deleted, still running, creator gone or inactive). MailerUnavailable propagates (retried)."""
    with services.database.unit_of_work(organization_id) as uow:
        job = uow.reconciliation_jobs.get(job_id)
        user = uow.users.get(job.created_by) if job is not None else None
    if job is None or user is None or not user.is_active or services.mailer is None:
        return False
    if job.status is JobStatus.COMPLETED:
        subject = f"Reconciliation '{job.name}' completed"
        body = (f"Hello {user.name},\n\nThe reconciliation '{job.name}' completed.\n"
                f"Rows: {job.total_rows}; matched rows: {job.matched_rows} ({job.match_rate}%); rows in exceptions: "
                f"{job.exception_rows}.\nProcessing time: {job.processing_time_seconds} s.\n\n"
                f"{_warnings_text(job.summary)}"
                f"Results: /api/reconciliations/{job.id}/results\n")
    elif job.status is JobStatus.FAILED:
        subject = f"Reconciliation '{job.name}' failed"
        body = (f"Hello {user.name},\n\nThe reconciliation '{job.name}' failed:\n\n{job.error_message}\n\n"
                f"Details: /api/reconciliations/{job.id}\n")
    else:
        return False
    try:
        services.mailer.send(OutgoingMail(to=user.email, subject=subject, text_body=body))
    except (InvalidMail, MailRejected) as exc:
        _log.warning("reconciliation.notification_refused",
                     extra={"metadata": {"job_id": str(job_id), "error": type(exc).__name__}})
        return False
    return True
