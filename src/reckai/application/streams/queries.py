"""list_streams, get_stream (docs/streams.md)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from reckai.application.context import Caller
from reckai.application.errors import NotFound
from reckai.application.ports.streams import StoredRow
from reckai.application.reconciliations.services import ReconciliationServices
from reckai.application.streams.errors import StreamNotFound
from reckai.domain.reconciliation.jobs import ReconciliationJob
from reckai.domain.streams.periods import StreamPeriod
from reckai.domain.streams.streams import Stream, StreamFile, StreamRun


@dataclass(frozen=True)
class RunDetails:
    run: StreamRun
    job: ReconciliationJob | None


@dataclass(frozen=True)
class StreamDetails:
    stream: Stream
    files: list[StreamFile]
    runs: list[RunDetails]
    periods: list[StreamPeriod] = field(default_factory=list)  # closed (or reopened) periods, oldest first


def get_stream_row(services: ReconciliationServices, caller: Caller, stream_id: uuid.UUID, side: str,
                   seq: int) -> StoredRow:
    """What a stream row number (the `left_row`/`right_row` of a stream run's matches) stands for."""
    with services.database.unit_of_work(caller.organization_id) as uow:
        if uow.streams.get(stream_id) is None:
            raise StreamNotFound(stream_id)
        found = uow.streams.row(stream_id, side, seq)
        if found is None:
            raise NotFound("stream_row", f"{side}/{seq}")
        return found


def list_streams(services: ReconciliationServices, caller: Caller, *, page: int,
                 per_page: int) -> tuple[list[Stream], int]:
    with services.database.unit_of_work(caller.organization_id) as uow:
        return uow.streams.list(limit=per_page, offset=(page - 1) * per_page)


def get_stream(services: ReconciliationServices, caller: Caller, stream_id: uuid.UUID) -> StreamDetails:
    with services.database.unit_of_work(caller.organization_id) as uow:
        stream = uow.streams.get(stream_id)
        if stream is None:
            raise StreamNotFound(stream_id)
        runs = [RunDetails(run, uow.reconciliation_jobs.get(run.job_id)) for run in uow.streams.runs(stream_id)]
        return StreamDetails(stream, uow.streams.files(stream_id), runs, uow.stream_periods.list(stream_id))
