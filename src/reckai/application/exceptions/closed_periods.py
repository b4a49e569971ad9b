"""The one check every change of an exception passes: does a closed period of a stream hold it?
(docs/streams.md, "Periods"; docs/decisions/period-close.md)

An exception a closed period froze (settled at the period's close) changes only inside an approved
`period_adjustment` that names it: the adjustment use case opens that path
(`uow.stream_periods.begin_adjustment`), and the database's trigger (migration 0024) refuses any
other UPDATE or DELETE of it. Every path asks here first, so the person gets a clear 409 instead of
the trigger's refusal: PATCH (status, severity, reopen, ignore), assign, resolve and bulk resolve
(`_lock_checked`), every closing (`closing.close`, and a closing request waiting for a checker),
manual links and confirmations (through `close`), and a stream run closing an exception by a later
match (`frozen_exceptions`: the run leaves a frozen exception as it is).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from reckai.application.errors import Conflict, FieldError
from reckai.application.ports.periods import FrozenIn, PeriodsUnitOfWork


class PeriodClosed(Conflict):
    """The change touches exceptions of a closed period: only a period_adjustment may."""

    code = "PERIOD_CLOSED"

    def __init__(self, frozen: dict[uuid.UUID, FrozenIn]) -> None:
        first = next(iter(frozen.values()))
        super().__init__(
            f"{len(frozen)} exception(s) belong to closed period {first.period_key} of stream {first.stream_id}; "
            f"ask for an adjustment (POST /api/streams/{first.stream_id}/periods/{first.period_key}/adjustments)",
            tuple(FieldError("exception_ids", f"{exception_id}: period {where.period_key} of stream "
                                              f"{where.stream_id} is closed")
                  for exception_id, where in sorted(frozen.items(), key=lambda kv: str(kv[0]))))
        self.frozen = frozen


def frozen_exceptions(uow: PeriodsUnitOfWork, exception_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, FrozenIn]:
    """Those of these exceptions a closed period holds and this transaction may not change (it is
    not applying an approved adjustment of that period naming them)."""
    frozen = uow.stream_periods.frozen(set(exception_ids))
    if not frozen:
        return {}
    adjusting = uow.stream_periods.adjusting()
    return {exception_id: where for exception_id, where in frozen.items()
            if adjusting is None or exception_id not in adjusting.exception_ids
            or (adjusting.stream_id, adjusting.period_key) != (where.stream_id, where.period_key)}


def refuse_if_period_closed(uow: PeriodsUnitOfWork, exception_ids: Collection[uuid.UUID]) -> None:
    blocked = frozen_exceptions(uow, exception_ids)
    if blocked:
        raise PeriodClosed(blocked)
