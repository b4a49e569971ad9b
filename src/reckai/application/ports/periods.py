"""Ports of a stream's periods (issue 15 item 4; docs/streams.md, "Periods").

Repository contract (PostgreSQL and in-memory alike; tests/contracts/period_repositories.py runs
the same tests over both): reads see only the bound organization's rows.

`begin_adjustment` is the one approved way to change a frozen exception: it records the adjustment
and marks the transaction as applying it (PostgreSQL: a transaction-local setting naming the
approval, which the freeze trigger of migration 0024 checks together with the adjustment row
written in the same transaction). `adjusting()` answers which adjustment, if any, this
transaction applies.
"""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import NamedTuple, Protocol

from reckai.domain.streams.periods import PeriodAdjustment, PeriodItem, StreamPeriod


class FrozenIn(NamedTuple):
    stream_id: uuid.UUID
    period_key: str


class ExceptionFacts(NamedTuple):
    """An exception of a stream, as a period's figures need it."""

    exception_id: uuid.UUID
    first_run: int  # the run that found it
    type: str
    status: str
    currency: str | None
    amount_minor: int | None
    amount: Decimal | None
    earliest: dt.date | None  # earliest transaction date of its rows (domain/exceptions/aging.py)
    resolution_code: str | None


class StreamPeriodRepository(Protocol):
    def get(self, stream_id: uuid.UUID, period_key: str) -> StreamPeriod | None: ...

    def list(self, stream_id: uuid.UUID) -> builtins.list[StreamPeriod]:
        """Every period of the stream that was ever closed, oldest first."""
        ...

    def save(self, period: StreamPeriod) -> None:
        """Insert or replace the period (status, figures, who closed or reopened it)."""
        ...

    def replace_items(self, stream_id: uuid.UUID, period_key: str, items: Sequence[PeriodItem],
                      runs: Sequence[tuple[int, uuid.UUID]]) -> None:
        """The period's exceptions as they stood at close, and its runs (run number, job id),
        replacing those of an earlier close of the same period."""
        ...

    def items(self, stream_id: uuid.UUID, period_key: str) -> builtins.list[PeriodItem]: ...

    def frozen(self, exception_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, FrozenIn]:
        """Those of these exceptions a closed period froze (settled at its close), and which period."""
        ...

    def frozen_in_stream(self, stream_id: uuid.UUID) -> set[uuid.UUID]:
        """Every exception of the stream a closed period froze."""
        ...

    def exception_facts(self, stream_id: uuid.UUID) -> builtins.list[ExceptionFacts]:
        """Every exception of the stream with what a period's figures need, in one read."""
        ...

    def begin_adjustment(self, adjustment: PeriodAdjustment) -> None:
        """Record the adjustment and let this transaction change the exceptions it names."""
        ...

    def adjusting(self) -> PeriodAdjustment | None:
        """The adjustment this transaction applies, if any."""
        ...

    def adjustments(self, stream_id: uuid.UUID, period_key: str) -> builtins.list[PeriodAdjustment]:
        """Oldest first."""
        ...


class PeriodsUnitOfWork(Protocol):
    @property
    def stream_periods(self) -> StreamPeriodRepository: ...
