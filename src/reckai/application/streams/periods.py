"""A stream's periods: close, reopen and adjust through a checker; figures per period (issue 15
items 4 and 6; docs/streams.md "Periods"; docs/decisions/period-close.md).

- `request_period_close` asks for a `period_close` approval; approving it snapshots the period's
  figures and its exceptions (settled ones are frozen, open ones carry into the next period).
- `request_period_reopen` asks for a `period_reopen` approval; approving it lifts the freeze (the
  snapshot stays until the period is closed again).
- `request_period_adjustment` asks for a `period_adjustment` approval to reopen, resolve or ignore
  exceptions a closed period froze, or to link rows whose match settles one; approving it applies the change inside the one path the
  database lets through (`uow.stream_periods.begin_adjustment`) and records it against the period.
- `list_periods` / `get_period`: each period with runs or a close, its figures.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, cast

from reckai.application.approvals import snapshots
from reckai.application.approvals.common import WorkflowJobsUnitOfWork, WorkflowServices
from reckai.application.approvals.handlers import ApprovalHandler
from reckai.application.approvals.requests import announce_request
from reckai.application.context import RequestInfo
from reckai.application.errors import (
    ApplicationError,
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from reckai.application.exceptions import matching
from reckai.application.exceptions.closing import close
from reckai.application.exceptions.matching import LinkRow
from reckai.application.ports.periods import ExceptionFacts
from reckai.application.ports.workflow import WorkflowUnitOfWork
from reckai.application.streams.errors import StreamNotFound, StreamRunInProgress
from reckai.domain.approvals.workflow import Approval, ApprovalEffect, ApprovalType
from reckai.domain.exceptions.lifecycle import BreakAction, ExceptionItem, HistoryEntry, Resolution
from reckai.domain.exceptions.manual_matching import MatchGroup
from reckai.domain.identity.permissions import may_request_approval
from reckai.domain.identity.principal import Principal
from reckai.domain.ingestion.canonical import minor_unit_exponent
from reckai.domain.reconciliation.jobs import JobStatus, ReconciliationJob
from reckai.domain.reports.settings import InvalidReportSettings, parse_report_settings
from reckai.domain.streams.periods import (
    ADJUSTMENT_ACTIONS,
    CLOSED,
    OPEN,
    REOPENED,
    InvalidPeriod,
    ItemFacts,
    Period,
    PeriodAdjustment,
    PeriodItem,
    StreamPeriod,
    check_reason,
    item_figures,
    run_figures,
)
from reckai.domain.streams.streams import Stream, StreamRun

# --- errors ---


class PeriodNotEnded(ApplicationError):
    code = "PERIOD_NOT_ENDED"

    def __init__(self, key: str, end: dt.datetime, timezone: str) -> None:
        super().__init__(f"period {key} has not ended yet in the organization's time zone ({timezone})",
                         [FieldError("period", f"ends at {end.isoformat()} ({timezone}); close it after that")])


class PeriodAlreadyClosed(Conflict):
    code = "PERIOD_ALREADY_CLOSED"

    def __init__(self, key: str) -> None:
        super().__init__(f"period {key} of this stream is closed already")


class PeriodNotClosed(Conflict):
    code = "PERIOD_NOT_CLOSED"

    def __init__(self, key: str) -> None:
        super().__init__(f"period {key} of this stream is not closed")


class EarlierPeriodOpen(Conflict):
    """Periods close in order: an earlier period with runs is not closed."""

    code = "EARLIER_PERIOD_OPEN"

    def __init__(self, key: str) -> None:
        super().__init__(f"close period {key} first: a stream's periods close in order")
        self.key = key


class LaterPeriodClosed(Conflict):
    """Periods reopen from the latest: a later period is closed."""

    code = "LATER_PERIOD_CLOSED"

    def __init__(self, key: str) -> None:
        super().__init__(f"reopen period {key} first: its figures carried this period's open items")
        self.key = key


class PeriodRequestPending(Conflict):
    code = "PERIOD_REQUEST_PENDING"

    def __init__(self, approval_id: uuid.UUID) -> None:
        super().__init__(f"approval {approval_id} about this period is already waiting for a checker")
        self.approval_id = approval_id


def _invalid(exc: InvalidPeriod) -> ValidationFailed:
    return ValidationFailed([FieldError(exc.field_name, exc.reason)])


# --- what a period holds ---


@dataclass(frozen=True)
class PeriodView:
    key: str
    granularity: str
    status: str  # open (never closed), closed, reopened
    timezone: str
    runs: list[int]
    figures: dict[str, Any]  # a closed period's snapshot; else its runs' figures (and, for the next
    # period to close, what a close now would record)
    stored: StreamPeriod | None = None
    items: list[PeriodItem] = field(default_factory=list)
    adjustments: list[PeriodAdjustment] = field(default_factory=list)


def _timezone(uow: WorkflowJobsUnitOfWork, organization_id: uuid.UUID) -> str:
    organization = uow.organizations.get(organization_id)
    try:
        return parse_report_settings(organization.settings if organization else None).timezone
    except InvalidReportSettings:  # pragma: no cover - a stored setting was validated when it was set
        return parse_report_settings(None).timezone


def _stream(uow: WorkflowJobsUnitOfWork, stream_id: uuid.UUID, *, lock: bool) -> Stream:
    stream = uow.streams.get_for_update(stream_id) if lock else uow.streams.get(stream_id)
    if stream is None:
        raise StreamNotFound(stream_id)
    return stream


def _parse(key: str) -> Period:
    try:
        return Period.parse(key)
    except InvalidPeriod as exc:
        raise _invalid(exc) from exc


def _granularity(uow: WorkflowJobsUnitOfWork, stream_id: uuid.UUID, requested: str | None = None) -> str:
    """A stream's periods are of one granularity: that of its first close (day until then)."""
    stored = uow.stream_periods.list(stream_id)
    granularity = stored[0].granularity if stored else (requested or "day")
    if requested is not None and requested != granularity:
        raise ValidationFailed([FieldError("period", f"this stream's periods are {granularity}s "
                                                     f"({'YYYY-MM-DD' if granularity == 'day' else 'YYYY-MM'})")])
    return granularity


def _runs(uow: WorkflowJobsUnitOfWork, stream_id: uuid.UUID) -> list[tuple[StreamRun, ReconciliationJob | None]]:
    return [(run, uow.reconciliation_jobs.get(run.job_id)) for run in uow.streams.runs(stream_id)]


def _run_period(run: StreamRun, granularity: str, timezone: str) -> Period:
    assert run.created_at is not None
    return Period.containing(run.created_at, granularity, timezone)


def _amount_minor(facts: ExceptionFacts) -> int:
    if facts.amount_minor is not None:
        return abs(facts.amount_minor)
    if facts.amount is None:
        return 0
    exponent = minor_unit_exponent(facts.currency or "")
    return abs(int((facts.amount * (Decimal(10) ** exponent)).to_integral_value()))


def _members(uow: WorkflowJobsUnitOfWork, stream_id: uuid.UUID, period: Period, timezone: str,
             runs: Sequence[StreamRun]) -> list[ItemFacts]:
    """The period's exceptions: every exception of the stream a run before the period's end found,
    that no other closed period froze (those of earlier periods still open at their close were
    carried into this one). One read of the stream's exceptions, not one per exception."""
    start, end = period.start(timezone), period.end(timezone)
    started = {run.run_number: run.created_at for run in runs if run.created_at is not None}
    frozen_elsewhere = uow.stream_periods.frozen_in_stream(stream_id)
    facts = []
    for found in uow.stream_periods.exception_facts(stream_id):
        first = started.get(found.first_run)
        if first is None or first >= end or found.exception_id in frozen_elsewhere:
            continue
        facts.append(ItemFacts(found.exception_id, found.type, found.status, (found.currency or "").upper(),
                               _amount_minor(found), found.earliest, carried_in=first < start,
                               resolution_code=found.resolution_code))
    return facts


def _figures(uow: WorkflowJobsUnitOfWork, stream_id: uuid.UUID, period: Period, timezone: str,
             runs: Sequence[tuple[StreamRun, ReconciliationJob | None]], *,
             with_items: bool) -> tuple[dict[str, Any], list[ItemFacts]]:
    mine = [run for run, job in runs if _run_period(run, period.granularity, timezone) == period
            and job is not None and job.status is JobStatus.COMPLETED and run.figures]
    figures: dict[str, Any] = {"period": period.key, "granularity": period.granularity, "timezone": timezone,
                               **run_figures([run.figures or {} for run in mine])}
    if not with_items:
        return figures, []
    facts = _members(uow, stream_id, period, timezone, [run for run, _ in runs])
    return {**figures, **item_figures(facts, period.last_day)}, facts


def _check_closable(uow: WorkflowJobsUnitOfWork, stream_id: uuid.UUID, period: Period, timezone: str,
                    now: dt.datetime) -> list[tuple[StreamRun, ReconciliationJob | None]]:
    if not period.has_ended(now, timezone):
        raise PeriodNotEnded(period.key, period.end(timezone), timezone)
    stored = {p.key: p for p in uow.stream_periods.list(stream_id)}
    if period.key in stored and stored[period.key].is_closed:
        raise PeriodAlreadyClosed(period.key)
    runs = _runs(uow, stream_id)
    end = period.end(timezone)
    for run, job in runs:
        assert run.created_at is not None
        if run.created_at >= end:
            continue
        if job is not None and job.status in (JobStatus.PENDING, JobStatus.PROCESSING):
            raise StreamRunInProgress(run.run_number, run.job_id)
        earlier = _run_period(run, period.granularity, timezone)
        if earlier.key != period.key and earlier.first_day < period.first_day and not (
                earlier.key in stored and stored[earlier.key].is_closed):
            raise EarlierPeriodOpen(earlier.key)
    return runs


def _refuse_if_pending(uow: WorkflowJobsUnitOfWork, stream_id: uuid.UUID, key: str,
                       kinds: tuple[ApprovalType, ...]) -> None:
    for approval in uow.approvals.pending_referring_to("stream_id", str(stream_id)):
        if approval.type in kinds and approval.metadata.get("period") == key:
            raise PeriodRequestPending(approval.id)


def _ask(services: WorkflowServices, uow: WorkflowJobsUnitOfWork, principal: Principal, kind: ApprovalType,
         title: str, description: str, metadata: dict[str, Any], request: RequestInfo | None) -> Approval:
    approval = Approval.request(organization_id=principal.organization_id, type=kind, title=title[:255],
                                description=description, metadata={k: v for k, v in metadata.items() if v is not None},
                                requested_by=principal.user_id, at=services.now())
    snapshots.stamp_snapshot(services, uow, approval)
    uow.approvals.add(approval)
    announce_request(services, uow, principal, approval, request,
                     details={"stream_id": metadata["stream_id"], "period": metadata["period"]})
    return approval


def _require_maker(principal: Principal, kind: ApprovalType) -> None:
    if not may_request_approval(principal.role, kind.value):
        raise PermissionDenied("approvals:create", f"a {principal.role} cannot request a {kind.value} approval")


# --- close ---


def request_period_close(services: WorkflowServices, principal: Principal, stream_id: uuid.UUID, period_key: str,
                         note: str | None = None, request: RequestInfo | None = None) -> Approval:
    """Ask a checker to close the period (a `period_close` approval); nothing changes until then."""
    _require_maker(principal, ApprovalType.PERIOD_CLOSE)
    period = _parse(period_key)
    with services.database.unit_of_work(principal.organization_id) as uow:
        stream = _stream(uow, stream_id, lock=True)
        _granularity(uow, stream_id, period.granularity)
        timezone = _timezone(uow, principal.organization_id)
        _check_closable(uow, stream_id, period, timezone, services.now())
        _refuse_if_pending(uow, stream_id, period.key, (ApprovalType.PERIOD_CLOSE, ApprovalType.PERIOD_REOPEN))
        cleaned = (note or "").strip() or None
        approval = _ask(services, uow, principal, ApprovalType.PERIOD_CLOSE, f"Close {period.key} of {stream.name}",
                        cleaned or f"Close period {period.key} of stream {stream.name}",
                        {"stream_id": str(stream_id), "period": period.key, "note": cleaned}, request)
        uow.commit()
        return approval


def _apply_close(services: WorkflowServices, uow: WorkflowJobsUnitOfWork, checker: Principal,
                 approval: Approval) -> ApprovalEffect:
    meta, now = approval.metadata, approval.reviewed_at
    assert now is not None
    stream_id, period = uuid.UUID(meta["stream_id"]), _parse(meta["period"])
    _stream(uow, stream_id, lock=True)
    _granularity(uow, stream_id, period.granularity)
    timezone = _timezone(uow, approval.organization_id)
    runs = _check_closable(uow, stream_id, period, timezone, now)
    figures, facts = _figures(uow, stream_id, period, timezone, runs, with_items=True)
    earlier = uow.stream_periods.get(stream_id, period.key)
    stored = StreamPeriod(organization_id=approval.organization_id, stream_id=stream_id, key=period.key,
                          granularity=period.granularity, status=CLOSED, timezone=timezone, figures=figures,
                          closed_at=now, closed_by=approval.requested_by, close_approved_by=checker.user_id,
                          close_approval_id=approval.id, times_closed=(earlier.times_closed + 1) if earlier else 1,
                          reopened_at=earlier.reopened_at if earlier else None,
                          reopened_by=earlier.reopened_by if earlier else None,
                          reopen_approval_id=earlier.reopen_approval_id if earlier else None)
    uow.stream_periods.save(stored)
    items = [PeriodItem(f.exception_id, carried=f.status not in ("resolved", "ignored"), status_at_close=f.status)
             for f in facts]
    period_runs = [(run.run_number, run.job_id) for run, _ in runs
                   if _run_period(run, period.granularity, timezone) == period]
    uow.stream_periods.replace_items(stream_id, period.key, items, period_runs)
    summary = {"period": period.key, "runs": figures["runs"], "open_items": figures["open_items"]["count"],
               "closed_items": figures["closed_items"]["count"], "carried_in": figures["carried_in"],
               "amounts": figures["amounts"]}
    services.record(uow, checker, "stream.period_closed", None, organization_id=approval.organization_id,
                    resource_type="stream", resource_id=stream_id,
                    metadata={**summary, "approval_id": str(approval.id),
                              "requested_by": str(approval.requested_by)})
    return ApprovalEffect("period_closed", "stream", stream_id, summary)


# --- reopen ---


def request_period_reopen(services: WorkflowServices, principal: Principal, stream_id: uuid.UUID, period_key: str,
                          reason: str | None, request: RequestInfo | None = None) -> Approval:
    _require_maker(principal, ApprovalType.PERIOD_REOPEN)
    period = _parse(period_key)
    try:
        cleaned = check_reason(reason)
    except InvalidPeriod as exc:
        raise _invalid(exc) from exc
    with services.database.unit_of_work(principal.organization_id) as uow:
        stream = _stream(uow, stream_id, lock=True)
        _check_reopenable(uow, stream_id, period)
        _refuse_if_pending(uow, stream_id, period.key, (ApprovalType.PERIOD_CLOSE, ApprovalType.PERIOD_REOPEN))
        approval = _ask(services, uow, principal, ApprovalType.PERIOD_REOPEN, f"Reopen {period.key} of {stream.name}",
                        cleaned, {"stream_id": str(stream_id), "period": period.key, "reason": cleaned}, request)
        uow.commit()
        return approval


def _check_reopenable(uow: WorkflowJobsUnitOfWork, stream_id: uuid.UUID, period: Period) -> StreamPeriod:
    stored = uow.stream_periods.list(stream_id)
    found = next((p for p in stored if p.key == period.key), None)
    if found is None or not found.is_closed:
        raise PeriodNotClosed(period.key)
    later = [p for p in stored if p.is_closed and p.period.first_day > period.first_day]
    if later:
        raise LaterPeriodClosed(later[-1].key)
    return found


def _apply_reopen(services: WorkflowServices, uow: WorkflowJobsUnitOfWork, checker: Principal,
                  approval: Approval) -> ApprovalEffect:
    meta, now = approval.metadata, approval.reviewed_at
    assert now is not None
    stream_id, period = uuid.UUID(meta["stream_id"]), _parse(meta["period"])
    _stream(uow, stream_id, lock=True)
    found = _check_reopenable(uow, stream_id, period)
    uow.stream_periods.save(replace(found, status=REOPENED, reopened_at=now, reopened_by=approval.requested_by,
                                    reopen_approval_id=approval.id))
    details = {"period": period.key, "reason": meta["reason"]}
    services.record(uow, checker, "stream.period_reopened", None, organization_id=approval.organization_id,
                    resource_type="stream", resource_id=stream_id,
                    metadata={**details, "approval_id": str(approval.id), "requested_by": str(approval.requested_by)})
    return ApprovalEffect("period_reopened", "stream", stream_id, details)


# --- adjustments ---


@dataclass(frozen=True)
class AdjustmentRequest:
    action: str  # reopen, resolve, ignore, link
    exception_ids: list[uuid.UUID]  # reopen, resolve, ignore
    reason: str
    resolution_code: str | None = None
    resolution_note: str | None = None
    job_id: uuid.UUID | None = None  # link: the job whose rows are linked
    rows: list[tuple[str, int]] = field(default_factory=list)  # link: (side, row number)
    note: str | None = None  # link


def _planned_link(services: WorkflowServices, uow: WorkflowJobsUnitOfWork, organization_id: uuid.UUID,
                  stream_id: uuid.UUID, period: Period, job_id: uuid.UUID, rows: Sequence[tuple[str, int]],
                  note: str | None, reason: str, user_id: uuid.UUID,
                  now: dt.datetime) -> tuple[MatchGroup, list[ExceptionItem], list[uuid.UUID]]:
    """The link and the exceptions it settles; refused unless it settles one this closed period
    settled (a link of other rows is made the usual way), or one another closed period holds."""
    group, items = matching.planned_link(services, uow, organization_id, job_id,
                                         [LinkRow(side, number) for side, number in rows], note, reason, user_id, now)
    frozen = uow.stream_periods.frozen([item.id for item in items])
    elsewhere = [str(i) for i, where in frozen.items() if (where.stream_id, where.period_key) != (stream_id, period.key)]
    if elsewhere:
        raise ValidationFailed([FieldError("rows", f"the link settles exception(s) of another closed period: "
                                                   f"{', '.join(elsewhere)}")])
    if not frozen:
        raise ValidationFailed([FieldError("rows", f"the link settles no exception period {period.key} of this stream "
                                                   "settled; link the rows the usual way (POST /api/exceptions/"
                                                   "matching/link)")])
    return group, items, sorted(frozen, key=str)


def _adjusted_items(uow: WorkflowJobsUnitOfWork, stream_id: uuid.UUID, period: Period, action: str,
                    exception_ids: Sequence[uuid.UUID], *, lock: bool) -> list[ExceptionItem]:
    """The exceptions, each one this closed period froze, each allowing the action now."""
    frozen = uow.stream_periods.frozen(exception_ids)
    problems: list[FieldError] = []
    items = []
    for index, exception_id in enumerate(exception_ids):
        where = frozen.get(exception_id)
        if where is None or (where.stream_id, where.period_key) != (stream_id, period.key):
            problems.append(FieldError(f"exception_ids.{index}", f"{exception_id} is not an exception period "
                                                                  f"{period.key} of this stream settled at its close"))
            continue
        item = uow.exceptions.get_for_update(exception_id) if lock else uow.exceptions.get(exception_id)
        if item is None:
            problems.append(FieldError(f"exception_ids.{index}", f"{exception_id}: not found"))
            continue
        allowed = item.allows(BreakAction.REOPEN) if action == "reopen" else item.may_close(BreakAction(action))
        if not allowed:
            problems.append(FieldError(f"exception_ids.{index}", f"{exception_id} is {item.status.value}: it cannot "
                                                                  f"be {'reopened' if action == 'reopen' else action + 'd'}"))
            continue
        items.append(item)
    if problems:
        raise ValidationFailed(problems, "the adjustment cannot be made")
    return items


def request_period_adjustment(services: WorkflowServices, principal: Principal, stream_id: uuid.UUID,
                              period_key: str, adjustment: AdjustmentRequest,
                              request: RequestInfo | None = None) -> Approval:
    """Ask a checker to change exceptions a closed period settled (reopen, resolve or ignore them),
    with a reason; approved, the change is made and recorded against the period."""
    _require_maker(principal, ApprovalType.PERIOD_ADJUSTMENT)
    period = _parse(period_key)
    if adjustment.action not in ADJUSTMENT_ACTIONS:
        raise ValidationFailed([FieldError("action", f"must be one of {', '.join(ADJUSTMENT_ACTIONS)}")])
    if adjustment.action == "link":
        return _request_link_adjustment(services, principal, stream_id, period, adjustment, request)
    if adjustment.action == "resolve" and not adjustment.resolution_code:
        raise ValidationFailed([FieldError("resolution_code", "a resolve adjustment needs a resolution code")])
    try:
        reason = check_reason(adjustment.reason)
        if adjustment.action == "resolve":
            Resolution.of(adjustment.resolution_code or "", adjustment.resolution_note or reason)
    except InvalidPeriod as exc:
        raise _invalid(exc) from exc
    ids = list(dict.fromkeys(adjustment.exception_ids))
    if not 1 <= len(ids) <= 500:
        raise ValidationFailed([FieldError("exception_ids", "give 1 to 500 exception ids")])
    with services.database.unit_of_work(principal.organization_id) as uow:
        stream = _stream(uow, stream_id, lock=True)
        found = uow.stream_periods.get(stream_id, period.key)
        if found is None or not found.is_closed:
            raise PeriodNotClosed(period.key)
        items = _adjusted_items(uow, stream_id, period, adjustment.action, ids, lock=False)
        for approval in uow.approvals.pending_referring_to("stream_id", str(stream_id)):
            if approval.type is ApprovalType.PERIOD_ADJUSTMENT and set(approval.metadata.get("exception_ids") or []) \
                    & {str(i) for i in ids}:
                raise PeriodRequestPending(approval.id)
        metadata = {"stream_id": str(stream_id), "period": period.key, "action": adjustment.action,
                    "exception_ids": [str(i) for i in ids], "reason": reason,
                    "resolution_code": adjustment.resolution_code if adjustment.action == "resolve" else None,
                    "resolution_note": adjustment.resolution_note if adjustment.action == "resolve" else None}
        approval = _ask(services, uow, principal, ApprovalType.PERIOD_ADJUSTMENT,
                        f"Adjust closed period {period.key} of {stream.name}: {adjustment.action} "
                        f"{len(ids)} exception(s)", reason, metadata, request)
        now = services.now()
        for item in items:  # history is not the exception's row: the freeze lets it through
            uow.exceptions.add_history(HistoryEntry(item.id, "approval_requested", principal.user_id, now,
                                                    item.status.value, item.status.value, reason,
                                                    {"approval_id": str(approval.id),
                                                     "action": f"period_adjustment:{adjustment.action}",
                                                     "period": period.key}))
        uow.commit()
        return approval


def _request_link_adjustment(services: WorkflowServices, principal: Principal, stream_id: uuid.UUID, period: Period,
                             adjustment: AdjustmentRequest, request: RequestInfo | None) -> Approval:
    try:
        reason = check_reason(adjustment.reason)
    except InvalidPeriod as exc:
        raise _invalid(exc) from exc
    if adjustment.job_id is None or len(adjustment.rows) < 2:
        raise ValidationFailed([FieldError("rows", "a link adjustment names a job_id and at least two rows")])
    with services.database.unit_of_work(principal.organization_id) as uow:
        stream = _stream(uow, stream_id, lock=True)
        found = uow.stream_periods.get(stream_id, period.key)
        if found is None or not found.is_closed:
            raise PeriodNotClosed(period.key)
        _group, _items, ids = _planned_link(services, uow, principal.organization_id, stream_id, period,
                                            adjustment.job_id, adjustment.rows, adjustment.note, reason,
                                            principal.user_id, services.now())
        for approval in uow.approvals.pending_referring_to("stream_id", str(stream_id)):
            if approval.type is ApprovalType.PERIOD_ADJUSTMENT and set(approval.metadata.get("exception_ids") or []) \
                    & {str(i) for i in ids}:
                raise PeriodRequestPending(approval.id)
        metadata = {"stream_id": str(stream_id), "period": period.key, "action": "link",
                    "job_id": str(adjustment.job_id), "rows": [{"side": side, "row_number": number}
                                                               for side, number in adjustment.rows],
                    "note": (adjustment.note or "").strip() or None, "reason": reason,
                    "exception_ids": [str(i) for i in ids]}
        approval = _ask(services, uow, principal, ApprovalType.PERIOD_ADJUSTMENT,
                        f"Adjust closed period {period.key} of {stream.name}: link {len(adjustment.rows)} rows",
                        reason, metadata, request)
        uow.commit()
        return approval


def _apply_adjustment(services: WorkflowServices, uow: WorkflowJobsUnitOfWork, checker: Principal,
                      approval: Approval) -> ApprovalEffect:
    meta, now = approval.metadata, approval.reviewed_at
    assert now is not None
    stream_id, period = uuid.UUID(meta["stream_id"]), _parse(meta["period"])
    _stream(uow, stream_id, lock=True)
    found = uow.stream_periods.get(stream_id, period.key)
    if found is None or not found.is_closed:
        raise PeriodNotClosed(period.key)
    ids = [uuid.UUID(i) for i in meta["exception_ids"]]
    action, reason = meta["action"], meta["reason"]
    if action == "link":
        return _apply_link_adjustment(services, uow, checker, approval, stream_id, period)
    items = _adjusted_items(uow, stream_id, period, action, ids, lock=True)
    adjustment = PeriodAdjustment(id=uuid.uuid4(), stream_id=stream_id, period_key=period.key,
                                  approval_id=approval.id, action=action, exception_ids=tuple(ids), reason=reason,
                                  requested_by=approval.requested_by, approved_by=checker.user_id, applied_at=now,
                                  details={k: meta[k] for k in ("resolution_code", "resolution_note") if k in meta})
    uow.stream_periods.begin_adjustment(adjustment)  # the one path the freeze lets through
    approved = {"approval_id": str(approval.id), "approved_by": str(checker.user_id),
                "period_adjustment": str(adjustment.id), "period": period.key}
    for item in items:
        if action == "reopen":
            entry = item.apply(BreakAction.REOPEN, actor_id=approval.requested_by, at=now, reason=reason)
            entry.changes.update(approved)
            uow.exceptions.update(item)
            uow.exceptions.add_history(entry)
        elif action == "ignore":
            close(uow, item, BreakAction.IGNORE, actor_id=approval.requested_by, at=now, reason=reason,
                  changes=approved)
        else:
            close(uow, item, BreakAction.RESOLVE, actor_id=approval.requested_by, at=now,
                  resolution=Resolution.of(meta["resolution_code"], meta.get("resolution_note") or reason),
                  changes=approved)
    details = {"period": period.key, "action": action, "exception_ids": [str(i) for i in ids], "reason": reason,
               "adjustment_id": str(adjustment.id)}
    services.record(uow, checker, "stream.period_adjusted", None, organization_id=approval.organization_id,
                    resource_type="stream", resource_id=stream_id,
                    metadata={**details, "approval_id": str(approval.id), "requested_by": str(approval.requested_by)})
    return ApprovalEffect("period_adjusted", "stream", stream_id, details)


def _apply_link_adjustment(services: WorkflowServices, uow: WorkflowJobsUnitOfWork, checker: Principal,
                           approval: Approval, stream_id: uuid.UUID, period: Period) -> ApprovalEffect:
    meta, now = approval.metadata, approval.reviewed_at
    assert now is not None
    rows = [(str(r["side"]), int(r["row_number"])) for r in meta["rows"]]
    group, items, ids = _planned_link(services, uow, approval.organization_id, stream_id, period,
                                      uuid.UUID(meta["job_id"]), rows, meta.get("note"), meta["reason"],
                                      approval.requested_by, now)
    adjustment = PeriodAdjustment(id=uuid.uuid4(), stream_id=stream_id, period_key=period.key,
                                  approval_id=approval.id, action="link", exception_ids=tuple(ids),
                                  reason=meta["reason"], requested_by=approval.requested_by,
                                  approved_by=checker.user_id, applied_at=now,
                                  details={"job_id": meta["job_id"], "rows": meta["rows"], "match_group_id": str(group.id)})
    uow.stream_periods.begin_adjustment(adjustment)  # the one path the freeze lets through
    approved = {"approval_id": str(approval.id), "approved_by": str(checker.user_id),
                "period_adjustment": str(adjustment.id), "period": period.key}
    resolved = matching.store_planned_link(uow, group, items, approval.requested_by, now, meta.get("note"),
                                           meta["reason"], approved)
    details = {"period": period.key, "action": "link", "exception_ids": [str(i) for i in ids],
               "resolved_exceptions": resolved, "match_group_id": str(group.id), "reason": meta["reason"],
               "adjustment_id": str(adjustment.id)}
    services.record(uow, checker, "stream.period_adjusted", None, organization_id=approval.organization_id,
                    resource_type="stream", resource_id=stream_id,
                    metadata={**details, "approval_id": str(approval.id), "requested_by": str(approval.requested_by)})
    return ApprovalEffect("period_adjusted", "stream", stream_id, details)


# --- the approval types (registered in bootstrap) ---


def _subject(workflow_uow: WorkflowUnitOfWork, may: Callable[[str], bool], approval: Approval) -> dict[str, Any]:
    if not may("streams:read"):
        return {}
    uow = cast(WorkflowJobsUnitOfWork, workflow_uow)  # the workflow's units of work hold the streams
    meta = approval.metadata
    stream = uow.streams.get(uuid.UUID(meta["stream_id"]))
    if stream is None:
        return {}
    subject: dict[str, Any] = {"stream": {"id": str(stream.id), "name": stream.name}, "period": meta["period"]}
    if approval.type is ApprovalType.PERIOD_ADJUSTMENT and may("exceptions:read"):
        subject["exceptions"] = [item for item in (uow.exceptions.get(uuid.UUID(i)) for i in meta["exception_ids"])
                                 if item is not None]
    return subject


def _period_snapshot(workflow_uow: WorkflowUnitOfWork, approval: Approval) -> dict[str, Any]:
    """What the checker decides on: the stream and the period's state (status, closes so far)."""
    uow = cast(WorkflowJobsUnitOfWork, workflow_uow)
    meta = approval.metadata
    stream = uow.streams.get(uuid.UUID(meta["stream_id"]))
    stored = uow.stream_periods.get(uuid.UUID(meta["stream_id"]), meta["period"])
    return {"stream": {"id": meta["stream_id"], "name": stream.name if stream else None}, "period": meta["period"],
            "status": stored.status if stored else OPEN, "times_closed": stored.times_closed if stored else 0}


def period_close_handler(services: WorkflowServices) -> ApprovalHandler:
    def propose(principal: Principal, metadata: dict[str, Any], title: str, description: str,
                request: RequestInfo | None) -> Approval:
        return request_period_close(services, principal, uuid.UUID(metadata["stream_id"]), metadata["period"],
                                    metadata.get("note") or description, request)

    def apply(uow: WorkflowUnitOfWork, checker: Principal, approval: Approval,
              request: RequestInfo | None) -> ApprovalEffect:
        return _apply_close(services, cast(WorkflowJobsUnitOfWork, uow), checker, approval)

    return ApprovalHandler(apply=apply, propose=propose, subject=_subject, snapshot=_period_snapshot)


def period_reopen_handler(services: WorkflowServices) -> ApprovalHandler:
    def propose(principal: Principal, metadata: dict[str, Any], title: str, description: str,
                request: RequestInfo | None) -> Approval:
        return request_period_reopen(services, principal, uuid.UUID(metadata["stream_id"]), metadata["period"],
                                     metadata["reason"], request)

    def apply(uow: WorkflowUnitOfWork, checker: Principal, approval: Approval,
              request: RequestInfo | None) -> ApprovalEffect:
        return _apply_reopen(services, cast(WorkflowJobsUnitOfWork, uow), checker, approval)

    return ApprovalHandler(apply=apply, propose=propose, subject=_subject, snapshot=_period_snapshot)


def period_adjustment_handler(services: WorkflowServices) -> ApprovalHandler:
    def propose(principal: Principal, metadata: dict[str, Any], title: str, description: str,
                request: RequestInfo | None) -> Approval:
        return request_period_adjustment(services, principal, uuid.UUID(metadata["stream_id"]), metadata["period"],
                                         AdjustmentRequest(
                                             metadata["action"],
                                             [uuid.UUID(i) for i in metadata.get("exception_ids") or []],
                                             metadata["reason"], metadata.get("resolution_code"),
                                             metadata.get("resolution_note"),
                                             uuid.UUID(metadata["job_id"]) if metadata.get("job_id") else None,
                                             [(r["side"], r["row_number"]) for r in metadata.get("rows") or []],
                                             metadata.get("note")), request)

    def apply(uow: WorkflowUnitOfWork, checker: Principal, approval: Approval,
              request: RequestInfo | None) -> ApprovalEffect:
        return _apply_adjustment(services, cast(WorkflowJobsUnitOfWork, uow), checker, approval)

    def withdraw(uow: WorkflowUnitOfWork, principal: Principal, approval: Approval, action: str) -> None:
        for exception_id in approval.metadata.get("exception_ids") or []:
            item = uow.exceptions.get(uuid.UUID(exception_id))
            if item is not None:
                uow.exceptions.add_history(HistoryEntry(item.id, action, principal.user_id, services.now(),
                                                        item.status.value, item.status.value,
                                                        approval.review_comments, {"approval_id": str(approval.id)}))

    def snapshot(uow: WorkflowUnitOfWork, approval: Approval) -> dict[str, Any]:
        """The exceptions as they were asked about: approving after they changed is refused."""
        return {"exceptions": [item.material() if item is not None else None for item in
                               (uow.exceptions.get(uuid.UUID(i)) for i in approval.metadata["exception_ids"])]}

    return ApprovalHandler(apply=apply, propose=propose, withdraw=withdraw, subject=_subject, snapshot=snapshot)


# --- reading ---


def period_views(uow: WorkflowJobsUnitOfWork, organization_id: uuid.UUID, stream_id: uuid.UUID,
                 granularity: str | None) -> list[PeriodView]:
    """Every period of the stream with runs or a close, oldest first, with its figures (the
    periods route and the daily and aging reports read them here)."""
    _stream(uow, stream_id, lock=False)
    granularity = _granularity(uow, stream_id, granularity)
    timezone = _timezone(uow, organization_id)
    runs = _runs(uow, stream_id)
    stored = {p.key: p for p in uow.stream_periods.list(stream_id)}
    keys: dict[str, Period] = {key: Period.parse(key) for key in stored}
    for run, _job in runs:
        if run.created_at is not None:
            found = _run_period(run, granularity, timezone)
            keys.setdefault(found.key, found)
    views = []
    next_to_close = True
    for key, period in sorted(keys.items(), key=lambda kv: kv[1].first_day):
        run_numbers = [run.run_number for run, _ in runs if _run_period(run, granularity, timezone) == period]
        kept = stored.get(key)
        if kept is not None and kept.is_closed:
            views.append(PeriodView(key, granularity, CLOSED, kept.timezone, run_numbers, kept.figures, kept))
            continue
        # an open (or reopened) period: its runs' figures; the first one also what a close now would record
        figures, _facts = _figures(uow, stream_id, period, timezone, runs, with_items=next_to_close)
        next_to_close = False
        views.append(PeriodView(key, granularity, REOPENED if kept else OPEN, timezone, run_numbers, figures, kept))
    return views


def list_periods(services: WorkflowServices, principal: Principal, stream_id: uuid.UUID,
                 granularity: str | None = None) -> list[PeriodView]:
    with services.database.unit_of_work(principal.organization_id) as uow:
        return period_views(uow, principal.organization_id, stream_id, granularity)


def get_period(services: WorkflowServices, principal: Principal, stream_id: uuid.UUID, period_key: str) -> PeriodView:
    period = _parse(period_key)
    with services.database.unit_of_work(principal.organization_id) as uow:
        views = {v.key: v for v in period_views(uow, principal.organization_id, stream_id, None)}
        view = views.get(period.key)
        if view is None:
            raise NotFound("stream_period", period.key)
        return replace(view, items=uow.stream_periods.items(stream_id, period.key),
                       adjustments=uow.stream_periods.adjustments(stream_id, period.key))


__all__ = [
    "AdjustmentRequest",
    "PeriodView",
    "get_period",
    "list_periods",
    "period_adjustment_handler",
    "period_close_handler",
    "period_reopen_handler",
    "period_views",
    "request_period_adjustment",
    "request_period_close",
    "request_period_reopen",
]
