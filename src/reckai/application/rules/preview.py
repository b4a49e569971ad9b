"""Rule preview: re-run a completed job's data through the same matching engine with a proposed rule
change, and count the matches it would add, remove or change (shown on the approval so the
checker decides on evidence).

The job's snapshot (written when the job was created) holds the profile it ran with; the proposal
replaces (or adds, or for a deactivation removes) the rule of that name. Both runs read the same
normalized files, so the difference is the rule change alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from reckai.application.errors import Conflict, FieldError, NotFound, ValidationFailed
from reckai.application.ports.reconciliations import JobsUnitOfWork
from reckai.domain.reconciliation.profile import ProfileError, ReconciliationPeriod, parse_profile
from reckai.domain.reconciliation.rule_versions import diff_results

MAX_PREVIEW_ROWS = 2_000_000  # both files together; a bigger job is previewed on a worker, not in a request


class JobRulePreview:
    """RulePreview over the reconciliation jobs' snapshots and normalized files.

    `loader()` returns the job feature's JobMatchingEngine, whose `load(parquet bytes)` reads a
    normalized file into the engine's table type; `engine.reconcile(left, right, profile, period)`
    is a MatchingEngine (application/ports/matching.py).
    """

    def __init__(self, storage: Any, loader: Callable[[], Any], engine: Any) -> None:
        self.storage = storage
        self.loader = loader
        self.engine = engine

    def preview(self, uow: JobsUnitOfWork, organization_id: uuid.UUID, job_id: uuid.UUID, rule_id: uuid.UUID | None,
                rule_name: str, definition: dict[str, Any]) -> dict[str, Any]:
        job = uow.reconciliation_jobs.get(job_id)
        if job is None:
            raise NotFound("reconciliation_job", job_id)
        if getattr(job.status, "value", job.status) != "completed":
            raise Conflict("only a completed reconciliation can be used for a preview")
        snapshot = job.snapshot or {}
        try:
            current_raw = dict(snapshot["profile"])
            files = {side: snapshot["files"][side] for side in ("left", "right")}
        except (KeyError, TypeError):
            raise Conflict("this reconciliation has no snapshot to preview against") from None
        proposed_raw = {**current_raw, "rules": _replace_rule(current_raw.get("rules") or [], rule_name, definition)}
        try:
            current = parse_profile(current_raw)
            proposed = parse_profile(proposed_raw) if proposed_raw["rules"] else None
        except ProfileError as exc:
            raise ValidationFailed([FieldError(f"definition.{exc.path}", exc.reason)]) from exc
        loader = self.loader()
        if loader is None:
            raise Conflict("rule previews need the reconciliation engine, which this process does not have")
        tables = {}
        for side, file in files.items():
            normalized = uow.normalized_files.for_job(job_id, uuid.UUID(file["file_id"]))
            if normalized is None:
                raise Conflict(f"the {side} file of this reconciliation is no longer normalized")
            if normalized.row_count > MAX_PREVIEW_ROWS:
                raise Conflict("this reconciliation is too large to preview in a request")
            with self.storage.open(normalized.storage_path) as stream:
                tables[side] = loader.load(stream.read())
        period = (ReconciliationPeriod(job.period_start, job.period_end)
                  if job.period_start is not None and job.period_end is not None else None)
        before = self.engine.reconcile(tables["left"], tables["right"], current, period)
        if proposed is None:  # deactivating the only rule: nothing would match
            after = type(before)(matches=[], suggestions=[], exceptions=before.exceptions)
        else:
            after = self.engine.reconcile(tables["left"], tables["right"], proposed, period)
        summary = diff_results(before, after)
        summary["job_id"] = str(job_id)
        summary["rule"] = {"id": str(rule_id) if rule_id else None, "name": rule_name}
        return summary


def _replace_rule(rules: list[Any], name: str, definition: dict[str, Any]) -> list[Any]:
    kept = [dict(r) for r in rules if not (isinstance(r, dict) and r.get("name") == name)]
    if definition.get("is_active") is False:
        return kept
    rule = {k: v for k, v in definition.items() if k not in ("applies_to", "is_active")}
    return [*kept, {**rule, "name": name}]
