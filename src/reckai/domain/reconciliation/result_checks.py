"""Signs that a reconciliation's result is implausible: the run completed, but a person should look
before trusting it (issue 16: a confirmed mapping read a switch file's unsigned amounts as credits,
the job kept the side's debits, and completed with a 0.00 % match rate and no word of warning).

One function for `reckai reconcile` (summary.json, stderr) and a job (its `warnings`, the
completion mail). docs/reconciliation-jobs.md "Warnings".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reckai.domain.reconciliation.profile import ReconciliationProfile


@dataclass(frozen=True)
class ResultWarning:
    code: str  # NO_MATCHES | DIRECTION_FILTER_EMPTY
    message: str
    side: str | None = None  # left | right, for a side's warning

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "side": self.side, "message": self.message}


def result_warnings(profile: ReconciliationProfile, *, left_rows: int, right_rows: int, matched_rows: int,
                    direction_rows: dict[str, int]) -> list[ResultWarning]:
    """`direction_rows`: per side with a direction filter, how many of its rows have that direction."""
    warnings: list[ResultWarning] = []
    rows = {"left": left_rows, "right": right_rows}
    for side, spec in (("left", profile.left), ("right", profile.right)):
        kept = direction_rows.get(side)
        if spec.direction is not None and rows[side] and kept == 0:
            warnings.append(ResultWarning(
                "DIRECTION_FILTER_EMPTY",
                f"none of the {rows[side]} rows of the {spec.label} side ({side}) is a {spec.direction}, so none took "
                f"part in matching: the side keeps {spec.direction}s only. Check the direction in the file's mapping "
                "(unsigned amounts read 'from sign' are all credits; try POST /api/files/:id/map?dry_run=true) or "
                "the side's direction", side=side))
    if left_rows and right_rows and matched_rows == 0:
        warnings.append(ResultWarning(
            "NO_MATCHES",
            f"no row matched although both sides have rows ({left_rows} and {right_rows}): the match rate is "
            "0 %. A mapping reading a field wrongly (direction, amount scale, dates, the reference column), "
            "files of different periods, or rules that do not fit these files are the usual causes"))
    return warnings
