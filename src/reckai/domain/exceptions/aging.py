"""How old a break is (issue 14: the dashboard and the aging report; docs/reports.md).

Age is counted in whole days from the earliest transaction date of the exception's rows (its
`transaction_date` and the dates of its left and right rows as the job recorded them in
`evidence`), so an item carried from one run to the next keeps its age. PostgreSQL computes the
same date in `exceptions_earliest_date` (migration 0019).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

# [low, high) in days; None: no upper bound
AGE_BUCKETS: tuple[tuple[int, int | None], ...] = ((0, 1), (1, 3), (3, 7), (7, 30), (30, None))
OLDEST_BUCKET_DAYS = AGE_BUCKETS[-1][0]  # from this age on, every item is in the last bucket
NO_DATE = "no_date"
_ISO_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def bucket_label(low: int, high: int | None) -> str:
    return f"[{low},{high if high is not None else 'inf'})"


BUCKET_LABELS: tuple[str, ...] = tuple(bucket_label(low, high) for low, high in AGE_BUCKETS)


def age_bucket(earliest: dt.date | None, today: dt.date) -> str:
    """The bucket label for an item first dated `earliest`, seen on `today`. A date after today
    (a future-dated row) is age 0; no date at all is its own bucket, `no_date`."""
    if earliest is None:
        return NO_DATE
    age = max((today - earliest).days, 0)
    for (low, high), label in zip(AGE_BUCKETS, BUCKET_LABELS, strict=True):
        if age >= low and (high is None or age < high):
            return label
    raise AssertionError("the buckets cover every non-negative age")


def _evidence_day(side: Any) -> dt.date | None:
    if not isinstance(side, Mapping):
        return None
    value = side.get("date")
    match = _ISO_DAY.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def earliest_transaction_date(transaction_date: dt.date | None,
                              evidence: Mapping[str, Any] | None) -> dt.date | None:
    days = [transaction_date, *(_evidence_day((evidence or {}).get(side)) for side in ("left", "right"))]
    known = [day for day in days if day is not None]
    return min(known) if known else None
