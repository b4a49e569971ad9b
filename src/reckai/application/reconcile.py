"""Use case: reconcile two files with a profile, for `reckai reconcile` (entrypoints/cli/reconcile.py).

The API's reconciliation jobs do not come here: they run in `application.reconciliations.worker`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reckai.application.ports.matching import (
    CanonicalSource,
    ReconciliationTables,
    SourceFileError,
    TabularMatchingEngine,
)
from reckai.domain.reconciliation.profile import (
    ProfileError,
    ReconciliationPeriod,
    ReconciliationProfile,
    SideSpec,
    parse_profile,
)
from reckai.domain.reconciliation.result_checks import ResultWarning, result_warnings

Progress = Callable[[str, int, int], None]  # (stage, step, total steps)
REJECTED_EXAMPLES = 20  # rejected rows listed in summary.json per side (the count covers them all)


@dataclass
class ReconcileOutcome:
    result: ReconciliationTables
    left_row_errors: list[Any] = field(default_factory=list)
    right_row_errors: list[Any] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    # per side whose profile mapping is "auto": the detected proposal (mapping used, field confidences)
    auto_mappings: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[ResultWarning] = field(default_factory=list)  # an implausible result (result_checks)

    def summary(self) -> dict[str, Any]:
        summary = self.result.summary()
        summary["rejected_rows"] = {"left": len(self.left_row_errors), "right": len(self.right_row_errors)}
        if self.left_row_errors or self.right_row_errors:  # the first ones, as `reckai reconcile` names them
            summary["rejected_row_examples"] = {
                side: [error.to_dict() for error in errors[:REJECTED_EXAMPLES]]
                for side, errors in (("left", self.left_row_errors), ("right", self.right_row_errors)) if errors}
        summary["warnings"] = [w.to_dict() for w in self.warnings]
        if self.auto_mappings:
            summary["auto_mappings"] = self.auto_mappings
        summary["seconds"] = {stage: round(seconds, 4) for stage, seconds in self.stage_seconds.items()}
        return summary


def load_profile(path: str | Path) -> ReconciliationProfile:
    """Read and validate a profile JSON file; raises ProfileError with the offending path."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(str(path), f"cannot read the profile: {exc.strerror or exc}") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(str(path), f"not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    return parse_profile(raw)


def reconcile_files(left_path: str, right_path: str, profile: ReconciliationProfile,
                    period: ReconciliationPeriod | None, source: CanonicalSource,
                    engine: TabularMatchingEngine[Any], progress: Progress | None = None) -> ReconcileOutcome:
    report = progress or (lambda stage, step, total: None)
    seconds: dict[str, float] = {}
    auto_mappings: dict[str, dict[str, Any]] = {}
    mappings = {"left": _side_mapping(profile.left, left_path, source, "left", auto_mappings),
                "right": _side_mapping(profile.right, right_path, source, "right", auto_mappings)}
    keep_raw = bool(profile.raw_fields())

    def read(side: str, path: str) -> tuple[Any, list[Any]]:
        started = time.perf_counter()
        table = source.read(path, mappings[side], keep_raw=keep_raw)
        seconds[f"read_{side}"] = time.perf_counter() - started
        return table

    report("reading both files", 1, 2)
    # The two files are read at once: the reader spends much of its time in polars, which releases
    # the GIL, so on two cores the reads overlap (read_left and read_right are each one's own wall).
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="reckai-read") as pool:
        reading = {side: pool.submit(read, side, path) for side, path in (("left", left_path), ("right", right_path))}
        (left, left_errors), (right, right_errors) = reading["left"].result(), reading["right"].result()
    report("matching and classifying", 2, 2)
    started = time.perf_counter()
    result = engine.reconcile_tables(left, right, profile, period)
    total_engine = time.perf_counter() - started
    seconds.update(result.stage_seconds)
    if "explanations" not in seconds:  # wording not timed yet (done on first use, or untimed): the remainder
        seconds["explanations"] = max(0.0, total_engine - sum(result.stage_seconds.values()))
    summary = result.summary()
    warnings = result_warnings(profile, left_rows=summary["rows"]["left"], right_rows=summary["rows"]["right"],
                               matched_rows=sum(summary["matched_rows"].values()),
                               direction_rows=result.direction_rows)
    return ReconcileOutcome(result, left_errors, right_errors, seconds, auto_mappings, warnings)


def _side_mapping(side: SideSpec, path: str, source: CanonicalSource, name: str,
                  auto_mappings: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The side's mapping; for "auto", the one an upload of the file proposes (docs/profile.md,
    auto-mapped sides): the same proposal function, so both read the same file the same way."""
    if side.mapping is not None:
        return side.mapping
    proposal = source.propose(path)
    if proposal.missing_required:
        raise SourceFileError(path, f"auto-detection found no column for {', '.join(proposal.missing_required)}; "
                                    f"give the {name} side an explicit mapping in the profile")
    mapping: dict[str, Any] = json.loads(json.dumps(proposal.mapping))
    auto_mappings[name] = {"mapping": mapping, "fields": [f.to_dict() for f in proposal.fields]}
    return mapping
