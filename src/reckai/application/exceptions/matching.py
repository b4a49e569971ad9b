"""Manual matching: confirm or decline the engine's suggested pairs, link unmatched rows by hand.

The engine's output (`reconciliation_matches`) is immutable; people's decisions are new
`match_groups` rows (status `manual` or `declined`, created_by the person) with their members. A
declined pair is also remembered in `declined_pairs`, which later jobs consult (DeclinedPairs port)
so the same rows are not suggested again. Exceptions about rows that a person matched are resolved
with code `matched_manually` in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reckai.application.approvals.common import WorkflowJobsUnitOfWork, WorkflowServices
from reckai.application.context import RequestInfo
from reckai.application.errors import FieldError, NotFound, PermissionDenied, ValidationFailed
from reckai.application.ports.reconciliations import JobsUnitOfWork
from reckai.application.ports.workflow import WorkflowUnitOfWork
from reckai.domain.exceptions.lifecycle import BreakAction, Resolution
from reckai.domain.exceptions.manual_matching import MatchGroup, MatchMember, RowRef, manual_group
from reckai.domain.identity.permissions import has_permission
from reckai.domain.identity.principal import Principal


@dataclass(frozen=True)
class LinkRow:
    side: str
    row_number: int
    amount_minor: int | None = None


def _require_writer(principal: Principal) -> None:
    if not has_permission(principal.role, "exceptions:write"):
        raise PermissionDenied("exceptions:write")


def _suggestion(uow: WorkflowJobsUnitOfWork, job_id: uuid.UUID, left_row: int, right_row: int) -> MatchGroup:
    found = uow.matches.suggestion(job_id, left_row, right_row)
    if found is None:
        raise NotFound("suggested_match", f"{job_id}:{left_row}:{right_row}")
    decided = [g for g in uow.matches.groups_with_rows(job_id, [m.row for m in found.members])
               if g.status in ("manual", "declined") and {m.row for m in g.members} == {m.row for m in found.members}]
    if decided:
        found.status = decided[0].status  # already decided by someone: the domain refuses a second decision
    return found


def confirm_suggestion(services: WorkflowServices, principal: Principal, job_id: uuid.UUID, left_row: int,
                       right_row: int, request: RequestInfo | None = None) -> MatchGroup:
    _require_writer(principal)
    with services.database.unit_of_work(principal.organization_id) as uow:
        group = _suggestion(uow, job_id, left_row, right_row)
        now = services.now()
        group.confirm(principal.user_id, now)
        group.id, group.created_by, group.created_at = uuid.uuid4(), principal.user_id, now
        uow.matches.add(group)
        resolved = _resolve_matched_exceptions(uow, principal, job_id, [m.row for m in group.members], now)
        services.record(uow, principal, "match.confirmed", request, organization_id=principal.organization_id,
                        resource_type="match_group", resource_id=group.id,
                        metadata={"job_id": str(job_id), "left_row": left_row, "right_row": right_row,
                                  "resolved_exceptions": resolved})
        uow.commit()
        return group


def decline_suggestion(services: WorkflowServices, principal: Principal, job_id: uuid.UUID, left_row: int,
                       right_row: int, reason: str | None, request: RequestInfo | None = None) -> MatchGroup:
    _require_writer(principal)
    with services.database.unit_of_work(principal.organization_id) as uow:
        group = _suggestion(uow, job_id, left_row, right_row)
        now = services.now()
        pairs = group.decline(principal.user_id, now, (reason or "").strip() or None)
        group.id, group.created_by, group.created_at = uuid.uuid4(), principal.user_id, now
        uow.matches.add(group)
        for pair in pairs:
            uow.declined_pairs.add(pair)
        services.record(uow, principal, "match.declined", request, organization_id=principal.organization_id,
                        resource_type="match_group", resource_id=group.id,
                        metadata={"job_id": str(job_id), "left_row": left_row, "right_row": right_row,
                                  "reason": reason})
        uow.commit()
        return group


def link_rows(services: WorkflowServices, principal: Principal, job_id: uuid.UUID, rows: Sequence[LinkRow],
              note: str | None, request: RequestInfo | None = None) -> MatchGroup:
    _require_writer(principal)
    with services.database.unit_of_work(principal.organization_id) as uow:
        files = uow.matches.job_files(job_id)
        if not files:
            raise NotFound("reconciliation_job", job_id)
        members = []
        for index, row in enumerate(rows):
            if row.side not in files:
                raise ValidationFailed([FieldError(f"rows.{index}.side", "must be left or right")])
            if row.row_number < 1:
                raise ValidationFailed([FieldError(f"rows.{index}.row_number", "must be >= 1")])
            members.append(MatchMember(row.side, RowRef(files[row.side], row.row_number), row.amount_minor))
        now = services.now()
        taken = uow.matches.matched_rows(job_id, [m.row for m in members])
        group = manual_group(organization_id=principal.organization_id, job_id=job_id, members=members,
                             already_matched=taken, user_id=principal.user_id, at=now, note=note)
        uow.matches.add(group)
        resolved = _resolve_matched_exceptions(uow, principal, job_id, [m.row for m in members], now)
        services.record(uow, principal, "match.linked", request, organization_id=principal.organization_id,
                        resource_type="match_group", resource_id=group.id,
                        metadata={"job_id": str(job_id), "rows": len(members), "resolved_exceptions": resolved})
        uow.commit()
        return group


def declined_row_pairs(uow: WorkflowUnitOfWork | JobsUnitOfWork, left_file_id: uuid.UUID, right_file_id: uuid.UUID) -> set[tuple[int, int]]:
    """For a reconciliation job about to suggest matches between these two files: the (left_row,
    right_row) pairs a person declined before. The job drops them from its suggestions."""
    return {(left.row_number, right.row_number)
            for left, right in uow.declined_pairs.declined_among([left_file_id], [right_file_id])
            if left.file_id == left_file_id and right.file_id == right_file_id}


def _resolve_matched_exceptions(uow: WorkflowJobsUnitOfWork, principal: Principal, job_id: uuid.UUID, rows: list[RowRef],
                                now: Any) -> list[str]:
    """Exceptions of the job about exactly these rows are settled by the manual match."""
    wanted = set(rows)
    resolved = []
    resolution = Resolution.of("matched_manually", "matched by hand")
    for item in uow.exceptions.about_rows(job_id, rows):
        about = {RowRef(f, r) for f, r in ((item.left_file_id, item.left_row), (item.right_file_id, item.right_row))
                 if f is not None and r is not None}
        if not about or not about <= wanted:
            continue
        locked = uow.exceptions.get_for_update(item.id)
        if locked is None:  # deleted since it was listed (its job was deleted): nothing to resolve
            continue
        if locked.allows(BreakAction.START) and not locked.allows(BreakAction.RESOLVE):
            uow.exceptions.add_history(locked.apply(BreakAction.START, actor_id=principal.user_id, at=now))
        uow.exceptions.add_history(locked.apply(BreakAction.RESOLVE, actor_id=principal.user_id, at=now,
                                            resolution=resolution))
        uow.exceptions.update(locked)
        resolved.append(str(locked.id))
    return resolved
