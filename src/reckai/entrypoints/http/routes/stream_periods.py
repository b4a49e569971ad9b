"""A stream's periods (issue 15 items 4 and 6). docs/streams.md, "Periods".

    GET  /api/streams/{id}/periods                         ?granularity=day|month  each period with its figures
    GET  /api/streams/{id}/periods/{period}                one period: figures, its exceptions at close, adjustments
    POST /api/streams/{id}/periods/{period}/close          ask for a period_close approval (202)
    POST /api/streams/{id}/periods/{period}/reopen         ask for a period_reopen approval (202)
    POST /api/streams/{id}/periods/{period}/adjustments    ask for a period_adjustment approval (202)

`{period}` is a day `YYYY-MM-DD` or a month `YYYY-MM` in the organization's time zone.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from reckai.application.context import RequestInfo
from reckai.application.ports.repositories import FrozenByClosedPeriod
from reckai.application.streams.periods import (
    AdjustmentRequest,
    PeriodView,
    get_period,
    list_periods,
    request_period_adjustment,
    request_period_close,
    request_period_reopen,
)
from reckai.bootstrap import Container
from reckai.domain.identity.principal import Principal
from reckai.entrypoints.http.envelope import Success, ok
from reckai.entrypoints.http.routes.approvals import ApprovalBody, approval_body

PeriodKey = Annotated[str, Parameter(description="A day YYYY-MM-DD or a month YYYY-MM (organization's time zone).",
                                     max_length=10)]


class PeriodClose(msgspec.Struct, forbid_unknown_fields=True):
    note: Annotated[str | None, msgspec.Meta(
        description="What the checker should know (becomes the approval's description).",
        examples=["All December files in; 3 timing differences carry into January."])] = None


class PeriodReopen(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(description="Why the closed period must open again (required).",
                                        examples=["The bank re-sent 31 December with two missing rows."])]


class AdjustedRow(msgspec.Struct, forbid_unknown_fields=True):
    side: Annotated[Literal["left", "right"], msgspec.Meta(description="The row's side.", examples=["left"])]
    row_number: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1, description="The row's number in the job's file.",
                                            examples=[3])]


class PeriodAdjustmentCreate(msgspec.Struct, forbid_unknown_fields=True):
    action: Annotated[Literal["reopen", "resolve", "ignore", "link"], msgspec.Meta(
        description="What to do: reopen, resolve or ignore exceptions the closed period settled, or link rows "
                    "whose match settles such exceptions.", examples=["reopen"])]
    reason: Annotated[str, msgspec.Meta(description="Why the closed period's figures change (required).",
                                        examples=["Written off in error: the bank posted it on 2 January."])]
    exception_ids: Annotated[list[uuid.UUID], msgspec.Meta(
        description="reopen, resolve, ignore: exceptions this closed period settled at its close (1 to 500).",
        examples=[["3f9c2a7e-5b18-4d64-9a0e-7c2b1d8f6e53"]])] = msgspec.field(default_factory=list)
    resolution_code: Annotated[str | None, msgspec.Meta(
        description="For a resolve: the resolution code (as for resolving an exception).",
        examples=["written_off"])] = None
    resolution_note: Annotated[str | None, msgspec.Meta(
        description="For a resolve: the resolution note (default: the reason).",
        examples=["below materiality"])] = None
    job_id: Annotated[uuid.UUID | None, msgspec.Meta(
        description="For a link: the run's job whose rows are linked.",
        examples=["9d2e6f1a-3b7c-4e58-a0d4-2c8f5b1e7a93"])] = None
    rows: Annotated[list[AdjustedRow], msgspec.Meta(
        description="For a link: the rows (2 to 50), as for POST /api/exceptions/matching/link.",
        examples=[[{"side": "left", "row_number": 3}, {"side": "right", "row_number": 3}]])] = \
        msgspec.field(default_factory=list)
    note: Annotated[str | None, msgspec.Meta(description="For a link: the match's note.",
                                             examples=["bank fee netted"])] = None


class PeriodItemBody(msgspec.Struct):
    exception_id: uuid.UUID
    carried: bool  # still open at close: carried into the next period
    status_at_close: str


class PeriodAdjustmentBody(msgspec.Struct):
    id: uuid.UUID
    approval_id: uuid.UUID
    action: str
    exception_ids: list[uuid.UUID]
    reason: str
    requested_by: uuid.UUID
    approved_by: uuid.UUID
    applied_at: dt.datetime


class PeriodBody(msgspec.Struct):
    period: str
    granularity: str
    status: str  # open, closed, reopened
    timezone: str
    runs: list[int]
    figures: dict[str, Any]
    closed_at: dt.datetime | None = None
    closed_by: uuid.UUID | None = None
    close_approved_by: uuid.UUID | None = None
    times_closed: int = 0
    reopened_at: dt.datetime | None = None
    items: list[PeriodItemBody] | None = None
    adjustments: list[PeriodAdjustmentBody] | None = None


def period_body(view: PeriodView) -> PeriodBody:
    stored = view.stored
    return PeriodBody(period=view.key, granularity=view.granularity, status=view.status, timezone=view.timezone,
                      runs=view.runs, figures=view.figures, closed_at=stored.closed_at if stored else None,
                      closed_by=stored.closed_by if stored else None,
                      close_approved_by=stored.close_approved_by if stored else None,
                      times_closed=stored.times_closed if stored else 0,
                      reopened_at=stored.reopened_at if stored else None)


_ERRORS = {
    409: "PERIOD_ALREADY_CLOSED; PERIOD_NOT_CLOSED; EARLIER_PERIOD_OPEN (periods close in order); "
         "LATER_PERIOD_CLOSED (they reopen from the latest); PERIOD_REQUEST_PENDING; STREAM_RUN_IN_PROGRESS.",
    422: "PERIOD_NOT_ENDED: the period has not ended in the organization's time zone; VALIDATION_ERROR.",
}


class StreamPeriodController(Controller):
    path = "/api/streams/{stream_id:uuid}/periods"

    @get("/", opt={"permission": "streams:read"}, sync_to_thread=True, summary="List a stream's periods")
    def list_periods(self, stream_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                     container: NamedDependency[Container],
                     granularity: Annotated[Literal["day", "month"] | None, QueryParameter(
                         required=False,
                         description="day or month; default: that of the stream's closed periods (day)")] = None,
                     ) -> Success[list[PeriodBody]]:
        """Every period with runs or a close, oldest first: a closed one's snapshot (runs' new rows, matches,
        carried rows, closings by a later match; open items by type and age bucket; amounts per currency in
        minor units); an open one's runs' figures, and for the next one to close what a close now would record."""
        return ok([period_body(v) for v in list_periods(container.workflow, principal, stream_id, granularity)])

    @get("/{period:str}", opt={"permission": "streams:read"}, sync_to_thread=True, summary="Read a stream's period")
    def read_period(self, stream_id: FromPath[uuid.UUID], period: FromPath[PeriodKey],
                    principal: NamedDependency[Principal], container: NamedDependency[Container]) -> Success[PeriodBody]:
        """One period: its figures, its exceptions as they stood at close (carried or settled) and the
        adjustments made to it."""
        view = get_period(container.workflow, principal, stream_id, period)
        body = period_body(view)
        body.items = [PeriodItemBody(i.exception_id, i.carried, i.status_at_close) for i in view.items]
        body.adjustments = [PeriodAdjustmentBody(a.id, a.approval_id, a.action, list(a.exception_ids), a.reason,
                                                 a.requested_by, a.approved_by, a.applied_at) for a in view.adjustments]
        return ok(body)

    @post("/{period:str}/close", opt={"permission": "streams:write", "errors": _ERRORS}, status_code=202,
          sync_to_thread=True, summary="Ask to close a stream's period")
    def close_period(self, stream_id: FromPath[uuid.UUID], period: FromPath[PeriodKey],
                     data: JSONBody[PeriodClose], principal: NamedDependency[Principal],
                     container: NamedDependency[Container],
                     request_info: NamedDependency[RequestInfo]) -> Response[Success[ApprovalBody]]:
        """A period_close approval: once a checker (supervisor or admin, never the maker) approves it, the
        period's figures are snapshotted and the exceptions it settled become read-only."""
        approval = request_period_close(container.workflow, principal, stream_id, period, data.note, request_info)
        return Response(ok(approval_body(approval)), status_code=202)

    @post("/{period:str}/reopen", opt={"permission": "streams:write", "errors": _ERRORS}, status_code=202,
          sync_to_thread=True, summary="Ask to reopen a stream's closed period")
    def reopen_period(self, stream_id: FromPath[uuid.UUID], period: FromPath[PeriodKey],
                      data: JSONBody[PeriodReopen], principal: NamedDependency[Principal],
                      container: NamedDependency[Container],
                      request_info: NamedDependency[RequestInfo]) -> Response[Success[ApprovalBody]]:
        """A period_reopen approval: approved, the period's exceptions can change again until it is closed
        again (a new snapshot)."""
        approval = request_period_reopen(container.workflow, principal, stream_id, period, data.reason, request_info)
        return Response(ok(approval_body(approval)), status_code=202)

    @post("/{period:str}/adjustments", opt={"permission": "streams:write", "errors": _ERRORS}, status_code=202,
          sync_to_thread=True, summary="Ask to adjust a stream's closed period")
    def adjust_period(self, stream_id: FromPath[uuid.UUID], period: FromPath[PeriodKey],
                      data: JSONBody[PeriodAdjustmentCreate], principal: NamedDependency[Principal],
                      container: NamedDependency[Container],
                      request_info: NamedDependency[RequestInfo]) -> Response[Success[ApprovalBody]]:
        """A period_adjustment approval to reopen, resolve or ignore exceptions the closed period settled, or
        to link rows whose match settles such exceptions; approved, the change is made and recorded against
        the period."""
        approval = request_period_adjustment(container.workflow, principal, stream_id, period, AdjustmentRequest(
            data.action, list(data.exception_ids), data.reason, data.resolution_code, data.resolution_note,
            data.job_id, [(row.side, row.row_number) for row in data.rows], data.note), request_info)
        return Response(ok(approval_body(approval)), status_code=202)


ROUTE_HANDLERS = [StreamPeriodController]
# the database's freeze (migration 0024) refusing a change the application's check let through (a
# period closed meanwhile): a 409 like the check's own PERIOD_CLOSED, never a 500
ERROR_STATUSES = {FrozenByClosedPeriod: 409}
