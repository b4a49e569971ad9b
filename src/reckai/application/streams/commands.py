"""create_stream, update_stream, add_stream_file, start_stream_run (docs/streams.md)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from reckai.application.context import Caller, Outcome, audit_event
from reckai.application.errors import FieldError, QuotaExceeded, ValidationFailed
from reckai.application.files.common import rules_from_rows
from reckai.application.identity.verification_gate import require_verified_email
from reckai.application.ports.reconciliations import JobFileLink, JobsUnitOfWork
from reckai.application.ports.repositories import DuplicateEntity
from reckai.application.reconciliations.commands import FILE_TYPE_LABELS, OPTION_KEYS, file_entry
from reckai.application.reconciliations.errors import FileNotReady, InvalidReconciliation, NoRules
from reckai.application.reconciliations.job_types import RUN_RECONCILIATION
from reckai.application.reconciliations.services import ReconciliationServices
from reckai.application.streams.errors import (
    DuplicateStreamFile,
    FileAlreadyUsed,
    FileLayoutChanged,
    NothingToRun,
    StreamNameTaken,
    StreamNotFound,
    StreamRunInProgress,
)
from reckai.domain.audit.events import AuditEvent
from reckai.domain.identity.verification import GatedAction
from reckai.domain.reconciliation import jobs as job_rules
from reckai.domain.reconciliation.jobs import JobStatus
from reckai.domain.reconciliation.profile import ProfileError, parse_profile
from reckai.domain.streams import streams as stream_rules
from reckai.domain.streams.streams import (
    SIDES,
    InvalidStream,
    PinnedRule,
    Stream,
    StreamFile,
    StreamRun,
    StreamSide,
    mapping_differences,
)

STREAM_OPTION_KEYS = OPTION_KEYS - {"currency"}  # the currency is the stream's own field


@dataclass(frozen=True)
class SideRequest:
    file_type: str | None = None
    mapping: dict[str, Any] | None = None
    template_file_id: uuid.UUID | None = None  # take the confirmed mapping of this file


@dataclass(frozen=True)
class CreateStreamRequest:
    name: str
    left: SideRequest
    right: SideRequest
    currency: str
    rule_ids: list[uuid.UUID] | None = None
    leading_side: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    owner_id: uuid.UUID | None = None


@dataclass(frozen=True)
class UpdateStreamRequest:
    name: str | None = None
    owner_id: uuid.UUID | None = None
    rule_ids: list[uuid.UUID] | None = None  # re-pin: the active, approved versions of these rules


def stream_event(caller: Caller, action: str, stream_id: uuid.UUID, *, outcome: Outcome | None = None,
                 **metadata: Any) -> AuditEvent:
    return audit_event(action, caller.request, organization_id=caller.organization_id, user_id=caller.user_id,
                       resource_type="stream", resource_id=stream_id, outcome=outcome, metadata=metadata or None)


def _invalid(exc: InvalidStream) -> ValidationFailed:
    return ValidationFailed([FieldError(exc.field_name, exc.reason)])


def _side(uow: JobsUnitOfWork, side: str, request: SideRequest) -> StreamSide:
    if (request.mapping is None) == (request.template_file_id is None):
        raise ValidationFailed([FieldError(side, "give either mapping or template_file_id")])
    file_type = request.file_type
    mapping = request.mapping
    if request.template_file_id is not None:
        file = uow.files.get(request.template_file_id)
        if file is None:
            raise FileNotReady(side, request.template_file_id, "no such file")
        mapping = rules_from_rows(uow.data_mappings.list_for_file(file.id))
        if mapping is None:
            raise FileNotReady(side, file.id, "it has no confirmed mapping (POST /api/files/:id/map)")
        file_type = file_type or file.file_type
    if file_type not in FILE_TYPE_LABELS:
        raise ValidationFailed([FieldError(f"{side}.file_type", f"must be one of {sorted(FILE_TYPE_LABELS)}")])
    assert mapping is not None
    return StreamSide(file_type, mapping)


def _pin(uow: JobsUnitOfWork, rule_ids: list[uuid.UUID] | None, pair: tuple[str, str]) -> tuple[PinnedRule, ...]:
    if rule_ids is not None:
        if not rule_ids:
            raise ValidationFailed([FieldError("rule_ids", "give at least one rule, or leave it out")])
        found = {r.rule_id: r for r in uow.matching_rules.active_versions(rule_ids)}
        missing = [str(i) for i in rule_ids if i not in found]
        if missing:
            raise NoRules(f"these rules are not active and approved: {', '.join(missing)}")
        versions = [found[i] for i in dict.fromkeys(rule_ids)]
    else:
        versions = [r for r in uow.matching_rules.active_versions() if r.applies_to in (None, pair)]
        if not versions:
            raise NoRules(f"the organization has no active, approved rule for {pair[0]} against {pair[1]} files; "
                          "approve one or pass rule_ids")
    return tuple(PinnedRule(r.rule_id, r.version, r.name, dict(r.definition)) for r in versions)


def stream_profile(stream: Stream, run_name: str) -> dict[str, Any]:
    """The profile (docs/profile.md) every run of the stream uses."""
    options = stream.options
    profile: dict[str, Any] = {
        "name": run_name,
        "left": {"label": options.get("left_label") or FILE_TYPE_LABELS.get(stream.left.file_type, "Left"),
                 "direction": options.get("left_direction"), "mapping": stream.left.mapping},
        "right": {"label": options.get("right_label") or FILE_TYPE_LABELS.get(stream.right.file_type, "Right"),
                  "direction": options.get("right_direction"), "mapping": stream.right.mapping},
        "leading_side": stream.leading_side,
        "rules": [{**rule.definition, "name": rule.name, "version": rule.version} for rule in stream.rules],
        "currency": stream.currency,
    }
    for key in ("settlement_side", "cutoff", "reference_label", "severity"):
        if key in options:
            profile[key] = options[key]
    return profile


def _check_profile(stream: Stream) -> None:
    try:
        parse_profile(stream_profile(stream, stream.name))
    except ProfileError as exc:
        raise InvalidReconciliation(exc.path, exc.reason) from exc


def create_stream(services: ReconciliationServices, caller: Caller, request: CreateStreamRequest) -> Stream:
    unknown = set(request.options) - STREAM_OPTION_KEYS
    if unknown:
        raise ValidationFailed([FieldError("options", f"unknown option(s) {sorted(unknown)}")])
    try:
        name = stream_rules.check_name(request.name)
        currency = stream_rules.check_currency(request.currency)
        leading = stream_rules.check_leading_side(request.leading_side)
    except InvalidStream as exc:
        raise _invalid(exc) from exc
    with services.database.unit_of_work(caller.organization_id) as uow:
        left, right = _side(uow, "left", request.left), _side(uow, "right", request.right)
        owner = request.owner_id or caller.acting_user
        owner_user = uow.users.get(owner)
        if owner_user is None or not owner_user.is_active:
            raise ValidationFailed([FieldError("owner_id", "is not an active user of the organization")])
        stream = Stream(id=uuid.uuid4(), organization_id=caller.organization_id, name=name, left=left, right=right,
                        rules=_pin(uow, request.rule_ids, (left.file_type, right.file_type)), leading_side=leading,
                        currency=currency, owner_id=owner, created_by=caller.acting_user,
                        options=dict(request.options), created_at=services.now(), updated_at=services.now())
        _check_profile(stream)
        try:
            stream = uow.streams.add(stream)
        except DuplicateEntity as exc:
            raise StreamNameTaken(name) from exc
        services.audit_log.record(uow, stream_event(
            caller, "stream.created", stream.id, outcome=Outcome.CREATED, name=stream.name, currency=stream.currency,
            leading_side=stream.leading_side, file_types=[left.file_type, right.file_type],
            rules=[{"rule_id": str(r.rule_id), "version": r.version} for r in stream.rules]))
        uow.commit()
    return stream


def update_stream(services: ReconciliationServices, caller: Caller, stream_id: uuid.UUID,
                  request: UpdateStreamRequest) -> Stream:
    with services.database.unit_of_work(caller.organization_id) as uow:
        stream = uow.streams.get_for_update(stream_id)
        if stream is None:
            raise StreamNotFound(stream_id)
        changes: dict[str, Any] = {}
        updated = stream
        if request.name is not None:
            try:
                updated = replace(updated, name=stream_rules.check_name(request.name))
            except InvalidStream as exc:
                raise _invalid(exc) from exc
            changes["name"] = {"from": stream.name, "to": updated.name}
        if request.owner_id is not None:
            owner = uow.users.get(request.owner_id)
            if owner is None or not owner.is_active:
                raise ValidationFailed([FieldError("owner_id", "is not an active user of the organization")])
            updated = replace(updated, owner_id=request.owner_id)
            changes["owner_id"] = {"from": str(stream.owner_id), "to": str(request.owner_id)}
        if request.rule_ids is not None:
            updated = replace(updated, rules=_pin(uow, request.rule_ids, (stream.left.file_type,
                                                                           stream.right.file_type)))
            _check_profile(updated)
            changes["rules"] = {"from": [{"rule_id": str(r.rule_id), "version": r.version} for r in stream.rules],
                                "to": [{"rule_id": str(r.rule_id), "version": r.version} for r in updated.rules]}
        updated = replace(updated, updated_at=services.now())
        try:
            uow.streams.update(updated)
        except DuplicateEntity as exc:
            raise StreamNameTaken(updated.name) from exc
        services.audit_log.record(uow, stream_event(caller, "stream.updated", stream_id, outcome=Outcome.DONE,
                                                    changes=changes))
        uow.commit()
    return updated


def add_stream_file(services: ReconciliationServices, caller: Caller, stream_id: uuid.UUID, file_id: uuid.UUID,
                    side: str | None = None) -> StreamFile:
    """A `normalized` file no job used joins the stream's next run, if its layout fits the side's
    template and the stream did not take the same content (SHA-256) before."""
    with services.database.unit_of_work(caller.organization_id) as uow:
        stream = uow.streams.get_for_update(stream_id)
        if stream is None:
            raise StreamNotFound(stream_id)
        file = uow.files.get(file_id)
        if file is None:
            raise FileNotReady("stream", file_id, "no such file")
        if side is None:
            sides = [s for s in SIDES if stream.side(s).file_type == file.file_type]
            if len(sides) != 1:
                raise ValidationFailed([FieldError("side", "give the side (left or right): the file's type "
                                                           f"'{file.file_type}' does not tell it")])
            side = sides[0]
        if side not in SIDES:
            raise ValidationFailed([FieldError("side", "must be left or right")])
        template = stream.side(side)
        if file.file_type != template.file_type:
            raise ValidationFailed([FieldError("file_id", f"is a {file.file_type} file; the stream's {side} side "
                                                           f"takes {template.file_type} files")])
        if file.status != "normalized":
            raise FileNotReady(side, file_id, f"its status is {file.status}; a stream takes normalized files "
                                              "that no reconciliation used")
        if (other := uow.streams.stream_of_file(file_id)) is not None:
            raise FileAlreadyUsed(f"the file is in stream {other} already")
        if (job := uow.streams.job_using_file(file_id)) is not None:
            raise FileAlreadyUsed(f"reconciliation job {job} used this file; a stream takes files no job used")
        if not file.checksum:
            raise FileNotReady(side, file_id, "it has no SHA-256 checksum")
        if (earlier := uow.streams.file_taken_by_checksum(stream_id, file.checksum)) is not None:
            raise DuplicateStreamFile(earlier)
        mapping = rules_from_rows(uow.data_mappings.list_for_file(file_id))
        differences = mapping_differences(template.mapping, mapping or {})
        if differences:
            raise FileLayoutChanged(side, differences)
        added = StreamFile(stream_id=stream_id, file_id=file_id, side=side, checksum=file.checksum,
                           added_by=caller.acting_user, added_at=services.now())
        uow.streams.add_file(added)
        services.audit_log.record(uow, stream_event(caller, "stream.file_added", stream_id, outcome=Outcome.CREATED,
                                                    file_id=str(file_id), side=side, checksum=file.checksum))
        uow.commit()
    return added


def _file_entry(uow: JobsUnitOfWork, stream: Stream, stream_file: StreamFile) -> dict[str, Any]:
    """The run's entry for a file joining it: its current normalized version (a re-map since the
    file was added made a newer one: that is the one the run reads), whose mapping must still have
    the layout of the stream's side template."""
    file = uow.files.get(stream_file.file_id)
    if file is None:
        raise FileNotReady(stream_file.side, stream_file.file_id, "the file was deleted")
    entry = file_entry(uow, file, stream_file.side)
    differences = mapping_differences(stream.side(stream_file.side).mapping, entry["mapping"] or {})
    if differences:
        raise FileLayoutChanged(stream_file.side, differences)
    return entry


def start_stream_run(services: ReconciliationServices, caller: Caller, stream_id: uuid.UUID, *,
                     on_behalf_of: uuid.UUID | None = None,
                     also: Callable[[JobsUnitOfWork, StreamRun], None] | None = None,
                     audit_metadata: Mapping[str, Any] | None = None) -> StreamRun:
    """Run N+1: a reconciliation job over the stream's waiting files plus the rows still open after
    the last completed run (docs/streams.md). One run of a stream at a time.

    A system caller (the scheduler) names the user the run is created for (`on_behalf_of`); `also`
    runs in the same transaction once the run is written (what it raises undoes the run)."""
    require_verified_email(caller, GatedAction.START_JOB)
    now = services.now()
    created_by = on_behalf_of or caller.acting_user
    with services.database.unit_of_work(caller.organization_id) as uow:
        quota = uow.quotas.get_for_update(caller.organization_id)
        if quota is not None:
            month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            if uow.reconciliation_jobs.count_created_since(month_start) >= quota.max_jobs_per_month:
                raise QuotaExceeded("max_jobs_per_month", quota.max_jobs_per_month)
        stream = uow.streams.get_for_update(stream_id)
        if stream is None:
            raise StreamNotFound(stream_id)
        runs = uow.streams.runs(stream_id)
        carried_from: StreamRun | None = None
        for run in runs:
            job = uow.reconciliation_jobs.get(run.job_id)
            if job is not None and job.status in (JobStatus.PENDING, JobStatus.PROCESSING):
                raise StreamRunInProgress(run.run_number, run.job_id)
            if job is not None and job.status is JobStatus.COMPLETED:
                carried_from = run
        waiting = uow.streams.waiting_files(stream_id)
        if not waiting and carried_from is None:
            raise NothingToRun()
        run_number = (runs[-1].run_number if runs else 0) + 1
        name = f"{stream.name}: run {run_number}"[:255]
        profile = stream_profile(stream, name)
        try:
            parse_profile(profile)
        except ProfileError as exc:
            raise InvalidReconciliation(exc.path, exc.reason) from exc
        files = {side: [_file_entry(uow, stream, f) for f in waiting if f.side == side] for side in SIDES}
        snapshot = {
            "profile": profile,
            "rules": [{"rule_id": str(r.rule_id), "version": r.version, "name": r.name} for r in stream.rules],
            "stream": {"stream_id": str(stream_id), "run_number": run_number, "files": files,
                       "carried_from_run": carried_from.run_number if carried_from else None,
                       "carry_key": carried_from.carry_key if carried_from else None},
        }
        job = job_rules.new_job(job_id=job_rules.new_job_id(now), organization_id=caller.organization_id, name=name,
                                created_by=created_by, snapshot=snapshot, now=now,
                                previous_job_id=carried_from.job_id if carried_from else None,
                                leading_side=stream.leading_side, max_attempts=services.settings.max_attempts)
        job = uow.reconciliation_jobs.add(job)
        versions = {uuid.UUID(entry["file_id"]): entry["version"] for side in SIDES for entry in files[side]}
        uow.reconciliation_jobs.link_files(job.id, [JobFileLink(f.file_id, f.side, versions.get(f.file_id))
                                                    for f in waiting])
        uow.streams.assign_files(stream_id, [f.file_id for f in waiting], job.id)
        run = StreamRun(stream_id=stream_id, run_number=run_number, job_id=job.id, created_by=created_by,
                        created_at=now)
        uow.streams.add_run(run)
        if also is not None:  # before the audit record: its chain-head lock is the transaction's last
            also(uow, run)
        services.job_queue.enqueue(uow, RUN_RECONCILIATION.request(
            {"job_id": str(job.id), "attempt": job.attempt}, organization_id=caller.organization_id))
        services.audit_log.record(uow, stream_event(
            caller, "stream.run_started", stream_id, outcome=Outcome.CREATED, run_number=run_number,
            job_id=str(job.id), files=[str(f.file_id) for f in waiting],
            carried_from_run=carried_from.run_number if carried_from else None, **(audit_metadata or {})))
        uow.commit()
    return run


__all__ = ["CreateStreamRequest", "SideRequest", "UpdateStreamRequest", "add_stream_file", "create_stream",
           "start_stream_run", "stream_profile", "update_stream"]
