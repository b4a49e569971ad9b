"""Stream schedules (issue 15 item 5). docs/streams.md "Schedules".

    GET    /api/streams/{id}/schedule   the schedule, its next slot and its recent decided slots
    PUT    /api/streams/{id}/schedule   set or replace it (cron in the organization's time zone)
    DELETE /api/streams/{id}/schedule   remove it
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from reckai.application.context import Caller
from reckai.application.errors import NotFound
from reckai.application.streams.schedules import (
    ScheduleRequest,
    ScheduleView,
    get_schedule,
    remove_schedule,
    set_schedule,
)
from reckai.bootstrap import Container
from reckai.domain.identity.principal import Principal
from reckai.domain.streams.schedules import ScheduleSlot
from reckai.entrypoints.http.auth import request_info
from reckai.entrypoints.http.envelope import Success, ok


class ExpectedFilesBody(msgspec.Struct, forbid_unknown_fields=True):
    left: Annotated[int, msgspec.Meta(description="Files expected on the left side per slot (0 to 100).",
                                      examples=[1])] = 0
    right: Annotated[int, msgspec.Meta(description="Files expected on the right side per slot (0 to 100).",
                                       examples=[1])] = 0


class ScheduleUpdate(msgspec.Struct, forbid_unknown_fields=True):
    cron: Annotated[str, msgspec.Meta(
        description="Five-field cron expression (minute hour day-of-month month day-of-week), read in the "
                    "organization's time zone (settings `timezone`).", examples=["0 6 * * 1-5"])]
    expected_files: Annotated[ExpectedFilesBody, msgspec.Meta(
        description="Files per side that must have arrived (added to the stream since its last run) for the "
                    "slot's run to start; at least one in all.", examples=[{"left": 1, "right": 1}])]
    grace_minutes: Annotated[int, msgspec.Meta(
        description="Minutes after the slot to wait for missing files before the expected_file_missing alert; "
                    "shorter than the time between two slots.", examples=[60])] = 0


class ScheduleSlotBody(msgspec.Struct):
    slot: dt.datetime
    outcome: str  # run_started, expected_file_missing, run_refused
    decided_at: dt.datetime
    run_number: int | None
    job_id: uuid.UUID | None
    detail: dict[str, Any]


class ScheduleBody(msgspec.Struct):
    stream_id: uuid.UUID
    cron: str
    description: str
    timezone: str
    expected_files: dict[str, int]
    grace_minutes: int
    next_slot: dt.datetime | None
    effective_from: dt.datetime
    created_by: uuid.UUID
    updated_by: uuid.UUID
    created_at: dt.datetime | None
    updated_at: dt.datetime | None
    recent_slots: list[ScheduleSlotBody]


def _slot_body(slot: ScheduleSlot) -> ScheduleSlotBody:
    return ScheduleSlotBody(slot=slot.slot, outcome=slot.outcome.value, decided_at=slot.decided_at,
                            run_number=slot.run_number, job_id=slot.job_id, detail=dict(slot.detail))


def schedule_body(view: ScheduleView) -> ScheduleBody:
    schedule = view.schedule
    return ScheduleBody(stream_id=schedule.stream_id, cron=schedule.cron, description=view.description,
                        timezone=view.timezone, expected_files=schedule.expected,
                        grace_minutes=schedule.grace_minutes, next_slot=view.next_slot,
                        effective_from=schedule.effective_from, created_by=schedule.created_by,
                        updated_by=schedule.updated_by, created_at=schedule.created_at,
                        updated_at=schedule.updated_at, recent_slots=[_slot_body(s) for s in view.recent])


def _caller(principal: Principal, request: Request[Any, Any, Any]) -> Caller:
    return Caller.of(principal, request_info(request))


class StreamScheduleController(Controller):
    path = "/api/streams/{stream_id:uuid}/schedule"

    @get("/", opt={"permission": "streams:read"}, sync_to_thread=True, summary="Read a stream's schedule")
    def read_schedule(self, stream_id: FromPath[uuid.UUID], request: Request[Any, Any, Any],
                      container: NamedDependency[Container],
                      principal: NamedDependency[Principal]) -> Success[ScheduleBody]:
        """The stream's schedule, its next slot (UTC) and its recently decided slots; 404 when it has none."""
        view = get_schedule(container.reconciliations, _caller(principal, request), stream_id)
        if view is None:
            raise NotFound("stream_schedule", stream_id)
        return ok(schedule_body(view))

    @put("/", opt={"permission": "streams:write", "errors": {
        400: "VALIDATION_ERROR: the cron expression, expected files or grace period (one detail per field)."}},
         sync_to_thread=True, summary="Set a stream's schedule")
    def set_schedule(self, stream_id: FromPath[uuid.UUID], data: JSONBody[ScheduleUpdate],
                     request: Request[Any, Any, Any], container: NamedDependency[Container],
                     principal: NamedDependency[Principal]) -> Success[ScheduleBody]:
        """Set or replace the schedule: at each slot the run starts if the expected files have arrived;
        if not, after the grace period, the owner and the admins get an expected_file_missing mail."""
        view = set_schedule(container.reconciliations, _caller(principal, request), stream_id, ScheduleRequest(
            cron=data.cron, expected_left=data.expected_files.left, expected_right=data.expected_files.right,
            grace_minutes=data.grace_minutes))
        return ok(schedule_body(view))

    @delete("/", opt={"permission": "streams:write"}, status_code=200, sync_to_thread=True,
            summary="Remove a stream's schedule")
    def remove_schedule(self, stream_id: FromPath[uuid.UUID], request: Request[Any, Any, Any],
                        container: NamedDependency[Container],
                        principal: NamedDependency[Principal]) -> Success[dict[str, Any]]:
        """Remove the schedule and its decided slots (the runs it started stay). Audited."""
        remove_schedule(container.reconciliations, _caller(principal, request), stream_id)
        return ok({"stream_id": str(stream_id), "schedule": None})


ROUTE_HANDLERS = [StreamScheduleController]
