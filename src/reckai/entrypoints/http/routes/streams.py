"""Streams (issue 15). docs/streams.md.

    GET  /api/streams                 ?page= &per_page=
    POST /api/streams                 create a stream (mapping template per side, pinned rules)
    GET  /api/streams/{id}            the stream, its files, its runs with their figures
    PUT  /api/streams/{id}            name, owner, re-pin the rules (their active, approved versions)
    POST /api/streams/{id}/files      a normalized file no job used joins the next run
    POST /api/streams/{id}/runs       run N+1: a reconciliation job over the new files plus the open items
    GET  /api/streams/{id}/rows/{side}/{seq}   what a stream row number stands for (file, row, key)
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from reckai.application.context import Caller
from reckai.application.streams.commands import (
    CreateStreamRequest,
    SideRequest,
    UpdateStreamRequest,
    add_stream_file,
    create_stream,
    start_stream_run,
    update_stream,
)
from reckai.application.streams.queries import get_stream, get_stream_row, list_streams
from reckai.application.streams.schedules import get_schedule
from reckai.bootstrap import Container
from reckai.domain.identity.principal import Principal
from reckai.domain.streams.streams import Stream, StreamFile, StreamRun
from reckai.entrypoints.http.auth import request_info
from reckai.entrypoints.http.envelope import Pagination, Success, ok, paginated
from reckai.entrypoints.http.routes.stream_schedules import ScheduleBody, schedule_body


class SideBody(msgspec.Struct, forbid_unknown_fields=True):
    file_type: Annotated[str | None, msgspec.Meta(
        description="The side's file type (bank, settlement, switch, card, gl); with template_file_id, "
                    "defaults to that file's type.", examples=["bank"])] = None
    mapping: Annotated[dict[str, Any] | None, msgspec.Meta(
        description="The side's mapping template (docs/mapping.md); give it or template_file_id.",
        examples=[{"parse": {"format": "csv", "delimiter": ",", "header_row": 1},
                   "fields": {"amount": {"column": "amount", "scale": "major"}}}])] = None
    template_file_id: Annotated[uuid.UUID | None, msgspec.Meta(
        description="A file whose confirmed mapping becomes the side's template.",
        examples=["5b1e7c3a-9d24-4f68-8a0b-3c6e2d9f1a47"])] = None


class StreamCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(description="A name unique in the organization (at most 255 characters).",
                                      examples=["POS card vs bank account 0123"])]
    left: Annotated[SideBody, msgspec.Meta(description="The left side's template.",
                                           examples=[{"template_file_id": "5b1e7c3a-9d24-4f68-8a0b-3c6e2d9f1a47"}])]
    right: Annotated[SideBody, msgspec.Meta(description="The right side's template.",
                                            examples=[{"template_file_id": "e8d4a2f6-1c37-4b95-9e0d-7a5c3b1f8e26"}])]
    currency: Annotated[str, msgspec.Meta(description="The stream's ISO 4217 currency.", examples=["NGN"])]
    rule_ids: Annotated[list[uuid.UUID] | None, msgspec.Meta(
        description="The rules to pin (their active, approved versions); absent: every active rule for the two "
                    "file types.", examples=[["7f3a9b2c-6e14-4d85-b0a7-1c9e5d3f2b68"]])] = None
    leading_side: Annotated[Literal["left", "right"] | None, msgspec.Meta(
        description="The side whose rows drive the report (the book of record).", examples=["right"])] = None
    options: Annotated[dict[str, Any], msgspec.Meta(
        description="Job options of docs/reconciliation-jobs.md except currency.",
        examples=[{"cutoff": {"days": 1}}])] = msgspec.field(default_factory=dict)
    owner_id: Annotated[uuid.UUID | None, msgspec.Meta(
        description="The stream's owner (an active user); default: the creator.",
        examples=["0c9e4b7a-2f61-4d38-a5e9-6b1d3c8f7a20"])] = None


class StreamUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str | None, msgspec.Meta(description="A new name.", examples=["POS vs bank 0123 (NGN)"])] = None
    owner_id: Annotated[uuid.UUID | None, msgspec.Meta(
        description="A new owner (an active user).", examples=["0c9e4b7a-2f61-4d38-a5e9-6b1d3c8f7a20"])] = None
    rule_ids: Annotated[list[uuid.UUID] | None, msgspec.Meta(
        description="Re-pin: the active, approved versions of these rules.",
        examples=[["7f3a9b2c-6e14-4d85-b0a7-1c9e5d3f2b68"]])] = None


class StreamFileCreate(msgspec.Struct, forbid_unknown_fields=True):
    file_id: Annotated[uuid.UUID, msgspec.Meta(
        description="A normalized file no reconciliation used.", examples=["5b1e7c3a-9d24-4f68-8a0b-3c6e2d9f1a47"])]
    side: Annotated[Literal["left", "right"] | None, msgspec.Meta(
        description="The side; absent: the side whose file type is the file's.", examples=["left"])] = None


class SideTemplate(msgspec.Struct):
    file_type: str
    mapping: dict[str, Any]


class PinnedRuleBody(msgspec.Struct):
    rule_id: uuid.UUID
    version: int
    name: str


class StreamFileBody(msgspec.Struct):
    file_id: uuid.UUID
    side: str
    checksum: str
    added_at: dt.datetime | None
    job_id: uuid.UUID | None


class StreamRunBody(msgspec.Struct):
    stream_id: uuid.UUID
    run_number: int
    job_id: uuid.UUID
    status: str | None
    created_at: dt.datetime | None
    figures: dict[str, Any] | None


class StreamRowBody(msgspec.Struct):
    side: str
    stream_row: int
    file_id: uuid.UUID
    row_number: int  # in its file (what GET /api/files/:id shows)
    fingerprint: str
    occurrence: int
    run_number: int  # the run that took it


class StreamPeriodBody(msgspec.Struct):
    period: str
    granularity: str
    status: str  # closed, reopened (GET /api/streams/:id/periods also lists open ones)
    figures: dict[str, Any]
    closed_at: dt.datetime
    times_closed: int


class StreamBody(msgspec.Struct):
    id: uuid.UUID
    name: str
    left: SideTemplate
    right: SideTemplate
    rules: list[PinnedRuleBody]
    leading_side: str | None
    currency: str
    options: dict[str, Any]
    owner_id: uuid.UUID
    created_by: uuid.UUID
    created_at: dt.datetime | None
    updated_at: dt.datetime | None
    files: list[StreamFileBody] | None = None
    runs: list[StreamRunBody] | None = None
    open_items: dict[str, int] | None = None  # rows per side open after the last completed run
    schedule: ScheduleBody | None = None  # its schedule with the next slot (GET /api/streams/:id only)
    periods: list[StreamPeriodBody] | None = None  # closed (or reopened) periods with their snapshot


def _caller(principal: Principal, request: Request[Any, Any, Any]) -> Caller:
    return Caller.of(principal, request_info(request))


def _stream_body(stream: Stream) -> StreamBody:
    return StreamBody(
        id=stream.id, name=stream.name, left=SideTemplate(stream.left.file_type, stream.left.mapping),
        right=SideTemplate(stream.right.file_type, stream.right.mapping),
        rules=[PinnedRuleBody(rule.rule_id, rule.version, rule.name) for rule in stream.rules],
        leading_side=stream.leading_side, currency=stream.currency, options=dict(stream.options),
        owner_id=stream.owner_id, created_by=stream.created_by, created_at=stream.created_at,
        updated_at=stream.updated_at)


def _file_body(stream_file: StreamFile) -> StreamFileBody:
    return StreamFileBody(file_id=stream_file.file_id, side=stream_file.side, checksum=stream_file.checksum,
                          added_at=stream_file.added_at, job_id=stream_file.job_id)


def _run_body(run: StreamRun, status: str | None) -> StreamRunBody:
    return StreamRunBody(stream_id=run.stream_id, run_number=run.run_number, job_id=run.job_id, status=status,
                         created_at=run.created_at, figures=run.figures)


class StreamController(Controller):
    path = "/api/streams"

    @get("/", opt={"permission": "streams:read"}, sync_to_thread=True, summary="List streams")
    def list_streams(self, request: Request[Any, Any, Any], container: NamedDependency[Container],
                     principal: NamedDependency[Principal],
                     pagination: NamedDependency[Pagination]) -> Success[list[StreamBody]]:
        """The organization's streams, newest first, one page (`meta`: page, per_page, total)."""
        streams, total = list_streams(container.reconciliations, _caller(principal, request),
                                      page=pagination.page, per_page=pagination.per_page)
        return paginated([_stream_body(stream) for stream in streams], pagination, total)

    @post("/", opt={"permission": "streams:write", "errors": {
        409: "STREAM_NAME_TAKEN: the organization has a stream of that name.",
        422: "FILE_NOT_READY: a template file has no confirmed mapping; NO_ACTIVE_RULES; INVALID_RECONCILIATION."}},
          status_code=201, sync_to_thread=True, summary="Create a stream")
    def create_stream(self, data: JSONBody[StreamCreate], request: Request[Any, Any, Any],
                      container: NamedDependency[Container],
                      principal: NamedDependency[Principal]) -> Success[StreamBody]:
        """Create a stream: a mapping template per side, the pinned rule versions, leading side, currency."""
        stream = create_stream(container.reconciliations, _caller(principal, request), CreateStreamRequest(
            name=data.name, currency=data.currency, rule_ids=data.rule_ids, leading_side=data.leading_side,
            options=dict(data.options), owner_id=data.owner_id,
            left=SideRequest(data.left.file_type, data.left.mapping, data.left.template_file_id),
            right=SideRequest(data.right.file_type, data.right.mapping, data.right.template_file_id)))
        return ok(_stream_body(stream))

    @get("/{stream_id:uuid}", opt={"permission": "streams:read"}, sync_to_thread=True, summary="Read a stream")
    def read_stream(self, stream_id: FromPath[uuid.UUID], request: Request[Any, Any, Any],
                    container: NamedDependency[Container],
                    principal: NamedDependency[Principal]) -> Success[StreamBody]:
        """The stream, its files, its runs with their figures, its open items after the last run, its
        schedule with the next slot, and its closed periods with their snapshot (every period: GET
        /api/streams/:id/periods)."""
        details = get_stream(container.reconciliations, _caller(principal, request), stream_id)
        body = _stream_body(details.stream)
        body.files = [_file_body(f) for f in details.files]
        body.runs = [_run_body(r.run, r.job.status.value if r.job else None) for r in details.runs]
        completed = [r.run for r in details.runs if r.job is not None and r.job.status.value == "completed"]
        if completed and completed[-1].figures:
            body.open_items = dict(completed[-1].figures.get("open_rows_after") or {})
        schedule = get_schedule(container.reconciliations, _caller(principal, request), stream_id)
        body.schedule = schedule_body(schedule) if schedule is not None else None
        body.periods = [StreamPeriodBody(p.key, p.granularity, p.status, p.figures, p.closed_at, p.times_closed)
                        for p in details.periods]
        return ok(body)

    @get("/{stream_id:uuid}/rows/{side:str}/{seq:int}", opt={"permission": "streams:read"}, sync_to_thread=True,
         summary="Look up a stream row number")
    def read_row(self, stream_id: FromPath[uuid.UUID], side: FromPath[Literal["left", "right"]],
                 seq: FromPath[Annotated[int, Parameter(ge=1, le=2**63 - 1)]], request: Request[Any, Any, Any],
                 container: NamedDependency[Container], principal: NamedDependency[Principal]) -> Success[StreamRowBody]:
        """What a stream row number (a run's match `left_row`/`right_row`) stands for: file, row, key."""
        found = get_stream_row(container.reconciliations, _caller(principal, request), stream_id, side, seq)
        key = found.key
        return ok(StreamRowBody(side=key.side, stream_row=key.seq, file_id=key.file_id, row_number=key.row_number,
                                fingerprint=key.fingerprint, occurrence=key.occurrence, run_number=found.run_number))

    @put("/{stream_id:uuid}", opt={"permission": "streams:write", "errors": {
        409: "STREAM_NAME_TAKEN: another stream has that name.", 422: "NO_ACTIVE_RULES: a rule is not approved."}},
         sync_to_thread=True, summary="Change a stream")
    def update_stream(self, stream_id: FromPath[uuid.UUID], data: JSONBody[StreamUpdate],
                      request: Request[Any, Any, Any], container: NamedDependency[Container],
                      principal: NamedDependency[Principal]) -> Success[StreamBody]:
        """Rename, change the owner, or re-pin the rules to their active, approved versions."""
        stream = update_stream(container.reconciliations, _caller(principal, request), stream_id,
                               UpdateStreamRequest(name=data.name, owner_id=data.owner_id, rule_ids=data.rule_ids))
        return ok(_stream_body(stream))

    @post("/{stream_id:uuid}/files", opt={"permission": "streams:write", "errors": {
        409: "FILE_ALREADY_USED: in a stream or reconciled by a job; STREAM_FILE_DUPLICATE: same SHA-256 as a file "
             "the stream took.",
        422: "FILE_NOT_READY: not normalized; FILE_LAYOUT_CHANGED: its mapping differs from the side's template "
             "(one detail per difference)."}},
          status_code=201, sync_to_thread=True, summary="Add a file to a stream")
    def add_file(self, stream_id: FromPath[uuid.UUID], data: JSONBody[StreamFileCreate],
                 request: Request[Any, Any, Any], container: NamedDependency[Container],
                 principal: NamedDependency[Principal]) -> Success[StreamFileBody]:
        """A normalized file no job used joins the stream's next run, if it fits the side's template."""
        added = add_stream_file(container.reconciliations, _caller(principal, request), stream_id, data.file_id,
                                data.side)
        return ok(_file_body(added))

    @post("/{stream_id:uuid}/runs", opt={"permission": "streams:write", "errors": {
        403: "QUOTA_EXCEEDED: the organization has started its tier's jobs for this month; EMAIL_NOT_VERIFIED: "
             "the caller is an administrator whose e-mail address is not verified yet.",
        409: "STREAM_RUN_IN_PROGRESS: the last run has not finished; STREAM_NOTHING_TO_RUN: no new file and no "
             "earlier run."}},
          status_code=201, sync_to_thread=True, summary="Start a stream's next run")
    def start_run(self, stream_id: FromPath[uuid.UUID], request: Request[Any, Any, Any],
                  container: NamedDependency[Container],
                  principal: NamedDependency[Principal]) -> Success[StreamRunBody]:
        """Run N+1: a reconciliation job over the stream's new files plus its open items."""
        run = start_stream_run(container.reconciliations, _caller(principal, request), stream_id)
        return ok(_run_body(run, "pending"))


ROUTE_HANDLERS = [StreamController]
