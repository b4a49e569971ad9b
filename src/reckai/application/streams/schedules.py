"""Stream schedules (issue 15 item 5; docs/streams.md "Schedules"): set, remove and read a stream's
schedule; the tick that starts a slot's run or sends its `expected_file_missing` alert; the alert mail.

A tick (the periodic `tick_stream_schedules` job, or `reckai streams tick`) takes the clock as a
port (`services.now()`, or `now=`). For each schedule it looks at the latest slot (the cron time at
or before now, in the organization's time zone); a slot is decided once:

- the expected files (per side, files added since the stream's last run) have arrived: the run
  starts through `start_stream_run`, and the slot is claimed in the same transaction;
- they have not, and the grace period is over: the slot is claimed and the alert is queued (one
  mail job per recipient, through the outbox) in one transaction;
- otherwise the tick waits (a later tick decides).

The claim is a row with the primary key (schedule, slot) inserted ON CONFLICT DO NOTHING: of N
schedulers ticking the same slot at once, one claims it; the others wait for its transaction and
find it taken, and what they prepared (a run) is rolled back with their transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from reckai.application.context import Caller, Outcome, audit_event
from reckai.application.errors import ApplicationError, FieldError, NotFound, ValidationFailed
from reckai.application.ports.jobs import JobDelivery, JobType, Queue
from reckai.application.ports.mail import InvalidMail, MailRejected, OutgoingMail
from reckai.application.ports.reconciliations import JobsUnitOfWork
from reckai.application.ports.stream_schedules import CronCalendar, InvalidCron
from reckai.application.reconciliations.services import ReconciliationServices
from reckai.application.streams.commands import start_stream_run, stream_event
from reckai.application.streams.errors import StreamNotFound
from reckai.domain.audit.events import AuditEvent
from reckai.domain.identity.permissions import Role
from reckai.domain.reports.settings import InvalidReportSettings, parse_timezone
from reckai.domain.streams.schedules import (
    Decision,
    InvalidSchedule,
    ScheduleSlot,
    SlotOutcome,
    StreamSchedule,
    check_cron_shape,
    check_expected,
    check_grace,
    decide,
    is_schedules_slot,
)
from reckai.domain.streams.streams import SIDES, StreamRun

_log = logging.getLogger("reckai.streams.schedules")

# The periodic tick (high queue: a run due at 06:00 should start at 06:00, not after the cleanup).
TICK_STREAM_SCHEDULES = JobType("tick_stream_schedules", Queue.HIGH, max_attempts=2)
TICK_PERIOD_SECONDS = 60
TICK_TIME_LIMIT_SECONDS = 300
# One alert mail per recipient, retried like other mails (a temporary SMTP failure is retried).
NOTIFY_STREAM_SCHEDULE = JobType("notify_stream_schedule", Queue.HIGH, max_attempts=5)
NOTIFY_TIME_LIMIT_SECONDS = 60

# How many upcoming slots the shortest gap between slots is measured over (grace < that gap).
GAP_SAMPLE = 30
RECENT_SLOTS = 20


@dataclass(frozen=True)
class ScheduleRequest:
    cron: str
    expected_left: int
    expected_right: int
    grace_minutes: int


@dataclass(frozen=True)
class ScheduleView:
    schedule: StreamSchedule
    timezone: str
    description: str
    next_slot: dt.datetime | None
    recent: list[ScheduleSlot]


@dataclass
class TickReport:
    started: list[tuple[uuid.UUID, dt.datetime, int]] = field(default_factory=list)  # stream, slot, run number
    alerted: list[tuple[uuid.UUID, dt.datetime]] = field(default_factory=list)
    refused: list[tuple[uuid.UUID, dt.datetime, str]] = field(default_factory=list)  # ..., error code
    waiting: int = 0  # slots within their grace period, files still missing
    taken: int = 0  # slots another scheduler decided first


class _SlotTaken(Exception):
    """Another scheduler claimed the slot first: this one's run is rolled back."""


def _calendar(services: ReconciliationServices) -> CronCalendar:
    if services.cron_calendar is None:
        raise RuntimeError("no cron calendar is wired (bootstrap sets services.cron_calendar)")
    return services.cron_calendar


def organization_timezone(uow: JobsUnitOfWork, organization_id: uuid.UUID) -> str:
    """The organization's time zone (settings `timezone`, the one reports use; docs/reports.md)."""
    organization = uow.organizations.get(organization_id)
    return parse_timezone((organization.settings or {}).get("timezone") if organization else None)


def _view(services: ReconciliationServices, uow: JobsUnitOfWork, schedule: StreamSchedule) -> ScheduleView:
    calendar = _calendar(services)
    timezone = organization_timezone(uow, schedule.organization_id)
    upcoming = calendar.following(schedule.cron, max(services.now(), schedule.effective_from), timezone)
    return ScheduleView(schedule=schedule, timezone=timezone, description=calendar.describe(schedule.cron),
                        next_slot=upcoming[0] if upcoming else None,
                        recent=uow.stream_schedules.recent_slots(schedule.stream_id, RECENT_SLOTS))


def _schedule_json(schedule: StreamSchedule | None) -> dict[str, Any] | None:
    if schedule is None:
        return None
    return {"cron": schedule.cron, "expected_files": schedule.expected, "grace_minutes": schedule.grace_minutes}


def set_schedule(services: ReconciliationServices, caller: Caller, stream_id: uuid.UUID,
                 request: ScheduleRequest) -> ScheduleView:
    """Set or replace the stream's schedule. Slots before now are not the new schedule's."""
    calendar = _calendar(services)
    try:
        cron = check_cron_shape(request.cron)
        calendar.check(cron)
        left, right = check_expected(request.expected_left, request.expected_right)
    except InvalidSchedule as exc:
        raise ValidationFailed([FieldError(exc.field_name, exc.reason)]) from exc
    except InvalidCron as exc:
        raise ValidationFailed([FieldError("cron", exc.reason)]) from exc
    now = services.now()
    with services.database.unit_of_work(caller.organization_id) as uow:
        if uow.streams.get_for_update(stream_id) is None:
            raise StreamNotFound(stream_id)
        timezone = organization_timezone(uow, caller.organization_id)
        upcoming = calendar.following(cron, now, timezone, GAP_SAMPLE)
        if not upcoming:
            raise ValidationFailed([FieldError("cron", "the expression names no time to come")])
        gap = min((b - a for a, b in pairwise(upcoming)), default=None)
        try:
            grace = check_grace(request.grace_minutes, gap)
        except InvalidSchedule as exc:
            raise ValidationFailed([FieldError(exc.field_name, exc.reason)]) from exc
        current = uow.stream_schedules.get(stream_id)
        schedule = StreamSchedule(
            id=current.id if current else uuid.uuid4(), organization_id=caller.organization_id, stream_id=stream_id,
            cron=cron, expected_left=left, expected_right=right, grace_minutes=grace, effective_from=now,
            created_by=current.created_by if current else caller.acting_user, updated_by=caller.acting_user,
            created_at=current.created_at if current else now, updated_at=now)
        stored = uow.stream_schedules.put(schedule)
        services.audit_log.record(uow, stream_event(
            caller, "stream.schedule_set", stream_id, outcome=Outcome.DONE if current else Outcome.CREATED,
            changes={"from": _schedule_json(current), "to": _schedule_json(stored)}, timezone=timezone))
        view = _view(services, uow, stored)
        uow.commit()
    return view


def remove_schedule(services: ReconciliationServices, caller: Caller, stream_id: uuid.UUID) -> None:
    with services.database.unit_of_work(caller.organization_id) as uow:
        if uow.streams.get_for_update(stream_id) is None:
            raise StreamNotFound(stream_id)
        current = uow.stream_schedules.get(stream_id)
        if current is None or not uow.stream_schedules.remove(stream_id):
            raise NotFound("stream_schedule", stream_id)
        services.audit_log.record(uow, stream_event(caller, "stream.schedule_removed", stream_id,
                                                    outcome=Outcome.DONE, changes={"from": _schedule_json(current)}))
        uow.commit()


def get_schedule(services: ReconciliationServices, caller: Caller, stream_id: uuid.UUID) -> ScheduleView | None:
    """The stream's schedule with its next slot and its recent decisions; None when it has none."""
    with services.database.unit_of_work(caller.organization_id) as uow:
        if uow.streams.get(stream_id) is None:
            raise StreamNotFound(stream_id)
        schedule = uow.stream_schedules.get(stream_id)
        return None if schedule is None else _view(services, uow, schedule)


# --- the tick ----------------------------------------------------------------------------------


def tick_schedules(services: ReconciliationServices, now: dt.datetime | None = None) -> TickReport:
    """Decide every organization's due slots (see the module's docstring). Safe to run in any
    number of processes at once."""
    now = now or services.now()
    report = TickReport()
    with services.database.unit_of_work(None) as uow:
        organizations = list(uow.stream_schedules.organizations_with_schedules())
    for organization_id in organizations:
        tick_organization(services, organization_id, now, report)
    return report


def tick_organization(services: ReconciliationServices, organization_id: uuid.UUID, now: dt.datetime,
                      report: TickReport | None = None) -> TickReport:
    report = report if report is not None else TickReport()
    with services.database.unit_of_work(organization_id) as uow:
        schedules = uow.stream_schedules.list_all()
        try:
            timezone = organization_timezone(uow, organization_id)
        except InvalidReportSettings as exc:
            # Refused when set, so only a hand-edited row gets here: that organization waits, the
            # others are ticked.
            _log.error("stream schedules skipped: the organization's time zone is invalid", extra={
                "action": "streams.schedule_tick_skipped", "organization_id": str(organization_id),
                "metadata": {"error": str(exc)}})
            return report
    for schedule in schedules:
        try:
            _tick_schedule(services, schedule, timezone, now, report)
        except InvalidCron as exc:  # checked when set; a library upgrade reading it otherwise lands here
            _log.error("stream schedule skipped: its cron expression no longer reads", extra={
                "action": "streams.schedule_tick_skipped", "organization_id": str(organization_id),
                "resource_type": "stream", "resource_id": str(schedule.stream_id), "metadata": {"error": exc.reason}})
    return report


def _arrived(uow: JobsUnitOfWork, stream_id: uuid.UUID) -> dict[str, int]:
    """Files per side added to the stream since its last run (the files its next run takes)."""
    waiting = uow.streams.waiting_files(stream_id)
    return {side: sum(1 for f in waiting if f.side == side) for side in SIDES}


def _tick_schedule(services: ReconciliationServices, schedule: StreamSchedule, timezone: str, now: dt.datetime,
                   report: TickReport) -> None:
    slot = _calendar(services).previous(schedule.cron, now, timezone)
    if slot is None or not is_schedules_slot(schedule, slot):
        return
    organization_id = schedule.organization_id
    with services.database.unit_of_work(organization_id) as uow:
        if uow.stream_schedules.slot(schedule.id, slot) is not None:
            return
        stream = uow.streams.get(schedule.stream_id)
        arrived = _arrived(uow, schedule.stream_id)
    if stream is None:
        return
    decision = decide(schedule, slot, now, arrived)
    detail: dict[str, object] = {"expected": schedule.expected, "arrived": arrived, "timezone": timezone}
    if decision is Decision.WAIT:
        report.waiting += 1
    elif decision is Decision.START_RUN:
        _start_slot_run(services, schedule, slot, now, stream.owner_id, detail, report)
    else:
        _alert(services, schedule, slot, now, stream.owner_id, detail, report)


def _slot(schedule: StreamSchedule, slot: dt.datetime, now: dt.datetime, outcome: SlotOutcome,
          detail: dict[str, object], run: StreamRun | None = None) -> ScheduleSlot:
    return ScheduleSlot(schedule_id=schedule.id, organization_id=schedule.organization_id,
                        stream_id=schedule.stream_id, slot=slot, outcome=outcome, decided_at=now,
                        run_number=run.run_number if run else None, job_id=run.job_id if run else None,
                        detail=detail)


def _start_slot_run(services: ReconciliationServices, schedule: StreamSchedule, slot: dt.datetime,
                    now: dt.datetime, owner_id: uuid.UUID, detail: dict[str, object], report: TickReport) -> None:
    def claim(uow: JobsUnitOfWork, run: StreamRun) -> None:
        if not uow.stream_schedules.claim_slot(_slot(schedule, slot, now, SlotOutcome.RUN_STARTED, detail, run)):
            raise _SlotTaken()

    try:
        # The run is created for the stream's owner (its creator on the job: the completion mail
        # goes to the owner); the audit event has no user and names the schedule and slot.
        run = start_stream_run(services, Caller.system(schedule.organization_id), schedule.stream_id,
                               on_behalf_of=owner_id, also=claim,
                               audit_metadata={"schedule_id": str(schedule.id), "slot": slot.isoformat()})
    except _SlotTaken:
        report.taken += 1
        return
    except ApplicationError as refused:
        _refuse(services, schedule, slot, now, owner_id,
                {**detail, "error": {"code": refused.code, "message": refused.message}}, report, refused.code)
        return
    report.started.append((schedule.stream_id, slot, run.run_number))


def _refuse(services: ReconciliationServices, schedule: StreamSchedule, slot: dt.datetime, now: dt.datetime,
            owner_id: uuid.UUID, detail: dict[str, object], report: TickReport, code: str) -> None:
    with services.database.unit_of_work(schedule.organization_id) as uow:
        if not uow.stream_schedules.claim_slot(_slot(schedule, slot, now, SlotOutcome.RUN_REFUSED, detail)):
            report.taken += 1  # another scheduler decided it (and perhaps started the run): not a refusal
            return
        recipients = _notify(services, uow, schedule, slot, owner_id, SlotOutcome.RUN_REFUSED, detail)
        services.audit_log.record(uow, _system_stream_event(
            "stream.scheduled_run_refused", schedule, slot, {**detail, "recipients": [str(r) for r in recipients]}))
        uow.commit()
    report.refused.append((schedule.stream_id, slot, code))


def _system_stream_event(action: str, schedule: StreamSchedule, slot: dt.datetime,
                         detail: dict[str, object]) -> AuditEvent:
    return audit_event(action, None, organization_id=schedule.organization_id, resource_type="stream",
                       resource_id=schedule.stream_id,
                       metadata={"by": "system", "schedule_id": str(schedule.id), "slot": slot.isoformat(), **detail})


def alert_recipients(uow: JobsUnitOfWork, owner_id: uuid.UUID) -> list[uuid.UUID]:
    """The stream's owner and the organization's active admins."""
    admins = [user.id for user in uow.users.list(is_active=True, limit=10_000) if user.role == Role.ADMIN.value]
    return list(dict.fromkeys([owner_id, *admins]))


def _notify(services: ReconciliationServices, uow: JobsUnitOfWork, schedule: StreamSchedule, slot: dt.datetime,
            owner_id: uuid.UUID, event: SlotOutcome, detail: dict[str, object]) -> list[uuid.UUID]:
    """Queue one mail job per recipient in the caller's transaction (sent only if it commits)."""
    recipients = alert_recipients(uow, owner_id)
    for recipient in recipients:
        services.job_queue.enqueue(uow, NOTIFY_STREAM_SCHEDULE.request(
            {"event": event.value, "stream_id": str(schedule.stream_id), "slot": slot.isoformat(),
             "recipient": str(recipient), "expected": schedule.expected, "arrived": detail["arrived"],
             "grace_minutes": schedule.grace_minutes, "error": detail.get("error")},
            organization_id=schedule.organization_id))
    return recipients


def _alert(services: ReconciliationServices, schedule: StreamSchedule, slot: dt.datetime, now: dt.datetime,
           owner_id: uuid.UUID, detail: dict[str, object], report: TickReport) -> None:
    with services.database.unit_of_work(schedule.organization_id) as uow:
        if not uow.stream_schedules.claim_slot(_slot(schedule, slot, now, SlotOutcome.FILE_MISSING, detail)):
            report.taken += 1
            return
        recipients = _notify(services, uow, schedule, slot, owner_id, SlotOutcome.FILE_MISSING, detail)
        services.audit_log.record(uow, _system_stream_event(
            "stream.expected_file_missing", schedule, slot, {**detail, "recipients": [str(r) for r in recipients]}))
        uow.commit()
    report.alerted.append((schedule.stream_id, slot))


# --- the alert mail ----------------------------------------------------------------------------


def _files(counts: Any) -> str:
    counts = counts or {}
    return ", ".join(f"{side} {int(counts.get(side, 0))}" for side in SIDES)


def _mail_text(event: str, stream_name: str, stream_id: uuid.UUID, user_name: str, slot: str, timezone: str,
               payload: dict[str, Any]) -> tuple[str, str]:
    files = (f"Expected files: {_files(payload.get('expected'))}; arrived: {_files(payload.get('arrived'))}.\n\n")
    if event == SlotOutcome.RUN_REFUSED.value:
        error = payload.get("error") or {}
        subject = f"ReckAI: the scheduled run of stream '{stream_name}' was refused"
        what = (f"The stream '{stream_name}' was due to run at {slot} ({timezone}) and its expected files had "
                f"arrived, but the run was refused ({error.get('code', '')}): {error.get('message', '')}\n"
                f"{files}Start the run when it can run (POST /api/streams/:id/runs), or wait for the next slot.")
    else:
        subject = f"ReckAI: expected files missing for stream '{stream_name}'"
        what = (f"The stream '{stream_name}' was due to run at {slot} ({timezone}), but its expected files had "
                f"not arrived {payload.get('grace_minutes', 0)} minutes later (expected_file_missing).\n{files}"
                "Add the files (POST /api/streams/:id/files) and start the run (POST /api/streams/:id/runs), "
                "or wait for the next slot.")
    return subject, f"Hello {user_name},\n\n{what}\n\nStream: /api/streams/{stream_id}\n"


def send_schedule_alert(services: ReconciliationServices, organization_id: uuid.UUID, payload: dict[str, Any]) -> bool:
    """Mail one recipient about a slot: its expected files are missing (`expected_file_missing`), or
    its run was refused (`run_refused`). False when there is nothing to send (recipient or stream
    gone, recipient inactive). MailerUnavailable propagates (the job is retried)."""
    with services.database.unit_of_work(organization_id) as uow:
        user = uow.users.get(uuid.UUID(payload["recipient"]))
        stream = uow.streams.get(uuid.UUID(payload["stream_id"]))
        timezone = organization_timezone(uow, organization_id)
    if user is None or not user.is_active or stream is None or services.mailer is None:
        return False
    slot = dt.datetime.fromisoformat(payload["slot"]).astimezone(ZoneInfo(timezone))
    subject, body = _mail_text(str(payload.get("event")), stream.name, stream.id, user.name,
                               f"{slot:%Y-%m-%d %H:%M}", timezone, payload)
    try:
        services.mailer.send(OutgoingMail(to=user.email, subject=subject, text_body=body))
    except (InvalidMail, MailRejected) as exc:
        _log.warning("stream.schedule_alert_refused", extra={"metadata": {
            "stream_id": str(stream.id), "error": type(exc).__name__}})
        return False
    return True


# --- the jobs as bootstrap registers them ------------------------------------------------------


def tick_stream_schedules_job(services: ReconciliationServices, delivery: JobDelivery) -> None:
    report = tick_schedules(services)
    if report.started or report.alerted or report.refused:
        _log.info("stream schedules ticked", extra={"action": "streams.schedule_tick", "metadata": {
            "started": len(report.started), "alerted": len(report.alerted), "refused": len(report.refused),
            "waiting": report.waiting}})


def notify_stream_schedule_job(services: ReconciliationServices, delivery: JobDelivery) -> None:
    if delivery.organization_id is None:
        return
    send_schedule_alert(services, delivery.organization_id, dict(delivery.payload))
