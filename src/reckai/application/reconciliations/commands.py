"""start_reconciliation, rename_reconciliation, delete_reconciliation, cancel_reconciliation."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from reckai.application.context import Caller, Outcome
from reckai.application.errors import FieldError, QuotaExceeded, ValidationFailed
from reckai.application.files.common import rules_from_rows
from reckai.application.identity.verification_gate import require_verified_email
from reckai.application.ports.files import ReconciliationFile
from reckai.application.ports.reconciliations import JobFileLink, JobsUnitOfWork, RuleVersion
from reckai.application.ports.storage import StorageError
from reckai.application.reconciliations.errors import (
    FileNotReady,
    InvalidReconciliation,
    JobAlreadyFinishedError,
    JobNotFound,
    JobRunningError,
    NoRules,
)
from reckai.application.reconciliations.job_types import RUN_RECONCILIATION
from reckai.application.reconciliations.services import ReconciliationServices, job_event
from reckai.application.streams.errors import FilesAlreadyReconciled, JobIsStreamRun
from reckai.domain.identity.verification import GatedAction
from reckai.domain.ingestion.storage_keys import processed_prefix
from reckai.domain.reconciliation import jobs as job_rules
from reckai.domain.reconciliation.jobs import ReconciliationJob
from reckai.domain.reconciliation.profile import ProfileError, parse_profile

_log = logging.getLogger("reckai.reconciliation")

READY_FILE_STATUSES = ("mapped", "normalized", "processed", "error")
FILE_TYPE_LABELS = {"bank": "Bank", "settlement": "Settlement", "switch": "Switch", "card": "Card", "gl": "GL"}
# Profile settings a request may give besides the files, rules, leading side and period.
OPTION_KEYS = {"currency", "settlement_side", "cutoff", "reference_label", "severity", "left_label",
               "right_label", "left_direction", "right_direction"}


@dataclass(frozen=True)
class StartRequest:
    name: str
    left_file_id: uuid.UUID
    right_file_id: uuid.UUID
    rule_ids: list[uuid.UUID] | None = None  # None: the active, approved rules for this pair of file types
    leading_side: str | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # Reconcile two files an earlier job already reconciled together (else 409 naming that job).
    force: bool = False


def start_reconciliation(services: ReconciliationServices, caller: Caller, request: StartRequest) -> ReconciliationJob:
    """Create the job `pending` with a snapshot of what it runs with, link its files, and enqueue
    it on the critical queue (through the outbox: it reaches a worker only after this commits)."""
    require_verified_email(caller, GatedAction.START_JOB)
    _check_request(request)
    now = services.now()
    with services.database.unit_of_work(caller.organization_id) as uow:
        quota = uow.quotas.get_for_update(caller.organization_id)  # serialises concurrent starts
        if quota is not None:
            month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            if uow.reconciliation_jobs.count_created_since(month_start) >= quota.max_jobs_per_month:
                raise QuotaExceeded("max_jobs_per_month", quota.max_jobs_per_month)
        left = _ready_file(uow, "left", request.left_file_id)
        right = _ready_file(uow, "right", request.right_file_id)
        jobs = uow.reconciliation_jobs
        earlier = (jobs.latest_for_files(request.left_file_id, request.right_file_id)
                   or jobs.latest_for_files(request.right_file_id, request.left_file_id))
        if earlier is not None and not request.force and not _remapped_since(uow, earlier, (left, right)):
            raise FilesAlreadyReconciled(earlier)
        rules = _rules(uow, request.rule_ids, (left["file_type"], right["file_type"]))
        profile_json = _profile_json(request, left, right, rules)
        try:
            parse_profile(profile_json)
        except ProfileError as exc:
            raise InvalidReconciliation(exc.path, exc.reason) from exc
        snapshot = {
            "profile": profile_json,
            "rules": [{"rule_id": str(r.rule_id), "version": r.version, "name": r.name} for r in rules],
            "files": {"left": left, "right": right},
        }
        period = (request.period_start, request.period_end) if request.period_start and request.period_end else None
        try:
            job = job_rules.new_job(
                job_id=job_rules.new_job_id(now), organization_id=caller.organization_id, name=request.name,
                created_by=caller.acting_user, snapshot=snapshot, now=now,
                previous_job_id=earlier,
                period=period, leading_side=request.leading_side, max_attempts=services.settings.max_attempts)
        except job_rules.InvalidJobName as exc:
            raise ValidationFailed([FieldError("name", exc.reason)]) from exc
        except job_rules.JobRuleViolation as exc:
            raise ValidationFailed([FieldError("", str(exc))]) from exc
        job = uow.reconciliation_jobs.add(job)
        uow.reconciliation_jobs.link_files(job.id, [JobFileLink(request.left_file_id, "left", left["version"]),
                                                    JobFileLink(request.right_file_id, "right", right["version"])])
        services.job_queue.enqueue(uow, RUN_RECONCILIATION.request(
            {"job_id": str(job.id), "attempt": job.attempt}, organization_id=caller.organization_id))
        services.audit_log.record(uow, job_event(caller,
            "reconciliation.job.created", job.id, outcome=Outcome.CREATED, name=job.name,
            left_file_id=str(request.left_file_id), right_file_id=str(request.right_file_id),
            rules=snapshot["rules"], previous_job_id=str(job.previous_job_id) if job.previous_job_id else None,
            **({"forced": True} if earlier is not None else {})))
        uow.commit()
    return job


def _check_request(request: StartRequest) -> None:
    problems = []
    if request.left_file_id == request.right_file_id:
        problems.append(FieldError("right_file_id", "must be another file than left_file_id"))
    if (request.period_start is None) != (request.period_end is None):
        problems.append(FieldError("period", "give both period_start and period_end, or neither"))
    elif request.period_start and request.period_end and request.period_end < request.period_start:
        problems.append(FieldError("period_end", "is before period_start"))
    if request.leading_side not in (None, "left", "right"):
        problems.append(FieldError("leading_side", "must be left, right or null"))
    unknown = set(request.options) - OPTION_KEYS
    if unknown:
        problems.append(FieldError("options", f"unknown option(s) {sorted(unknown)}"))
    if request.rule_ids is not None and not request.rule_ids:
        problems.append(FieldError("rule_ids", "give at least one rule, or leave it out for the active rules"))
    if problems:
        raise ValidationFailed(problems)


def _ready_file(uow: JobsUnitOfWork, side: str, file_id: uuid.UUID) -> dict[str, Any]:
    file = uow.files.get(file_id)
    if file is None:
        raise FileNotReady(side, file_id, "no such file")
    if file.status not in READY_FILE_STATUSES:
        raise FileNotReady(side, file_id, f"its status is {file.status}; confirm its mapping first "
                                          "(POST /api/files/:id/map)")
    return file_entry(uow, file, side)


def file_entry(uow: JobsUnitOfWork, file: ReconciliationFile, side: str) -> dict[str, Any]:
    """The job snapshot's entry for a file: with its current normalized version (the one the job
    reads, whatever re-map comes later) and that version's mapping, when it has one; else its
    confirmed mapping (the worker normalizes it and records the version)."""
    current = uow.normalized_files.get_for_file(file.id) if file.status in ("normalized", "processed") else None
    mapping = current.mapping if current is not None and current.mapping is not None else \
        rules_from_rows(uow.data_mappings.list_for_file(file.id))
    if mapping is None:
        raise FileNotReady(side, file.id, "it has no confirmed mapping (POST /api/files/:id/map)")
    return {"file_id": str(file.id), "name": file.original_filename, "file_type": file.file_type,
            "checksum": file.checksum, "mapping": mapping, "version": current.version if current else None}


def _remapped_since(uow: JobsUnitOfWork, earlier: uuid.UUID, files: tuple[dict[str, Any], ...]) -> bool:
    """True when a file of the earlier job was re-mapped since: that job read another version of it
    than the new job will, so the new job is not a re-run over the same rows."""
    recorded = {link.file_id: link.file_version for link in uow.reconciliation_jobs.linked_files(earlier)}
    return any(file["version"] is not None and recorded.get(uuid.UUID(file["file_id"])) is not None
               and recorded[uuid.UUID(file["file_id"])] != file["version"] for file in files)


def _rules(uow: JobsUnitOfWork, rule_ids: list[uuid.UUID] | None, pair: tuple[str, str]) -> list[RuleVersion]:
    if rule_ids is not None:
        found = {r.rule_id: r for r in uow.matching_rules.active_versions(rule_ids)}
        missing = [str(i) for i in rule_ids if i not in found]
        if missing:
            raise NoRules(f"these rules are not active and approved: {', '.join(missing)}")
        return [found[i] for i in dict.fromkeys(rule_ids)]
    rules = [r for r in uow.matching_rules.active_versions() if r.applies_to in (None, pair)]
    if not rules:
        raise NoRules(f"the organization has no active, approved rule for {pair[0]} against {pair[1]} files; "
                      "approve one or pass rule_ids")
    return rules


def _profile_json(request: StartRequest, left: dict[str, Any], right: dict[str, Any],
                  rules: list[RuleVersion]) -> dict[str, Any]:
    options = request.options
    profile: dict[str, Any] = {
        "name": request.name,
        "left": {"label": options.get("left_label") or FILE_TYPE_LABELS.get(left["file_type"], "Left"),
                 "direction": options.get("left_direction"), "mapping": left["mapping"]},
        "right": {"label": options.get("right_label") or FILE_TYPE_LABELS.get(right["file_type"], "Right"),
                  "direction": options.get("right_direction"), "mapping": right["mapping"]},
        "leading_side": request.leading_side,
        "rules": [{**r.definition, "name": r.name, "version": r.version} for r in rules],
    }
    for key in ("currency", "settlement_side", "cutoff", "reference_label", "severity"):
        if key in options:
            profile[key] = options[key]
    return profile


def _load(uow: JobsUnitOfWork, job_id: uuid.UUID, *, lock: bool = False) -> ReconciliationJob:
    repository = uow.reconciliation_jobs
    job = repository.get_for_update(job_id) if lock else repository.get(job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


def rename_reconciliation(services: ReconciliationServices, caller: Caller, job_id: uuid.UUID,
                          name: str) -> ReconciliationJob:
    with services.database.unit_of_work(caller.organization_id) as uow:
        job = _load(uow, job_id, lock=True)
        try:
            renamed = job_rules.rename(job, name, services.now())
        except job_rules.InvalidJobName as exc:
            raise ValidationFailed([FieldError("name", exc.reason)]) from exc
        uow.reconciliation_jobs.update(renamed)
        services.audit_log.record(uow, job_event(caller, "reconciliation.job.renamed", job_id, outcome=Outcome.DONE,
                                                    old_name=job.name, name=renamed.name))
        uow.commit()
    return renamed


def cancel_reconciliation(services: ReconciliationServices, caller: Caller, job_id: uuid.UUID) -> ReconciliationJob:
    """Pending: cancelled at once. Processing: flagged; its worker stops within a heartbeat."""
    with services.database.unit_of_work(caller.organization_id) as uow:
        job = _load(uow, job_id, lock=True)
        try:
            cancelled = job_rules.request_cancel(job, services.now())
        except job_rules.JobAlreadyFinished as exc:
            raise JobAlreadyFinishedError(job_id, exc.status.value) from exc
        uow.reconciliation_jobs.update(cancelled)
        action = "reconciliation.job.cancelled" if cancelled.is_finished else "reconciliation.job.cancel_requested"
        services.audit_log.record(uow, job_event(caller, action, job_id, outcome=Outcome.DONE, previous_status=job.status.value))
        uow.commit()
    return cancelled


def delete_reconciliation(services: ReconciliationServices, caller: Caller, job_id: uuid.UUID) -> None:
    """Admin only (the route's permission). Removes the job, its results and exceptions, and its
    stored outputs (processed/{job_id}/); the uploaded files stay (they may serve other jobs)."""
    with services.database.unit_of_work(caller.organization_id) as uow:
        job = _load(uow, job_id, lock=True)
        try:
            job_rules.check_deletable(job)
        except job_rules.JobIsRunning as exc:
            raise JobRunningError(job_id) from exc
        if (run := uow.streams.run_of_job(job_id)) is not None:
            raise JobIsStreamRun(job_id, run.stream_id, run.run_number)
        uow.reconciliation_jobs.delete(job_id)
        services.audit_log.record(uow, job_event(caller, "reconciliation.job.deleted", job_id, outcome=Outcome.DONE,
                                                    name=job.name, job_status=job.status.value))
        uow.commit()
    delete_outputs(services, caller.organization_id, job_id)


def delete_outputs(services: ReconciliationServices, organization_id: uuid.UUID, job_id: uuid.UUID) -> int:
    """Remove every object under processed/{job_id}/; returns how many. Storage trouble is logged,
    not raised: the rows are gone already and a later delete of the prefix is harmless."""
    removed = 0
    try:
        for key in list(services.storage.list_keys(processed_prefix(organization_id, job_id))):
            services.storage.delete(key)
            removed += 1
    except StorageError as exc:
        _log.error("reconciliation.outputs_cleanup_failed",
                   extra={"metadata": {"job_id": str(job_id), "error": type(exc).__name__}})
    return removed


__all__ = ["StartRequest", "cancel_reconciliation", "delete_outputs", "delete_reconciliation",
           "rename_reconciliation", "start_reconciliation"]
