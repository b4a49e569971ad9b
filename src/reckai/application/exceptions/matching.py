"""Manual matching: confirm or decline the engine's suggested pairs, link unmatched rows by hand.

The engine's output (`reconciliation_matches`) is immutable; people's decisions are new
`match_groups` rows (status `manual` or `declined`, created_by the person) with their members. A
declined pair is also remembered in `declined_pairs`, which later jobs consult (DeclinedPairs port)
so the same rows are not suggested again. Exceptions about rows that a person matched are resolved
with code `matched_manually` in the same transaction.

Confirming and linking close exceptions, so both go through the closing rule (closing.py) with
the *stored* amounts of the rows (the files' normalized form, `RowAmounts`) and of the exceptions
they settle: at or above the threshold nothing is matched until a checker approves the
`exception_resolution` request (metadata.action `link` or `confirm`). A client's `amount_minor`
is never used: one that disagrees with the stored row is refused.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reckai.application.approvals.common import WorkflowJobsUnitOfWork, WorkflowServices
from reckai.application.context import RequestInfo
from reckai.application.errors import FieldError, NotFound, PermissionDenied, ValidationFailed
from reckai.application.exceptions.closing import (
    close,
    closing_decision,
    request_closing_approval,
    stake_text,
)
from reckai.application.ports.reconciliations import JobsUnitOfWork
from reckai.application.ports.workflow import StoredRowAmount, WorkflowUnitOfWork
from reckai.domain.approvals.workflow import Approval
from reckai.domain.exceptions.errors import InvalidBreakValue, ReasonRequired
from reckai.domain.exceptions.lifecycle import (
    MAX_NOTE_LENGTH,
    MAX_REASON_LENGTH,
    BreakAction,
    ExceptionItem,
    Resolution,
)
from reckai.domain.exceptions.manual_matching import MatchGroup, MatchMember, RowRef, manual_group
from reckai.domain.exceptions.policy import StakedAmount
from reckai.domain.identity.permissions import has_permission
from reckai.domain.identity.principal import Principal
from reckai.domain.ingestion.canonical import minor_unit_exponent

DEFAULT_LINK_NOTE = "matched by hand"  # only when the analyst wrote neither a note nor a reason


@dataclass(frozen=True)
class LinkRow:
    side: str
    row_number: int
    amount_minor: int | None = None  # tolerated for old clients; must equal the stored amount


@dataclass(frozen=True)
class MatchOutcome:
    group: MatchGroup  # stored; or, while a checker must approve, the match as it would be stored
    approval: Approval | None = None

    @property
    def pending_approval(self) -> bool:
        return self.approval is not None


@dataclass(frozen=True)
class StoredRows:
    members: list[MatchMember]  # with their stored amounts
    currency: str

    def staked(self) -> list[StakedAmount]:
        exponent = minor_unit_exponent(self.currency)
        return [StakedAmount.of_minor(m.amount_minor or 0, self.currency, exponent) for m in self.members]

    def described(self) -> list[dict[str, Any]]:
        return [{"side": m.side, "row_number": m.row.row_number, "amount_minor": m.amount_minor,
                 "currency": self.currency} for m in self.members]


def _require_writer(principal: Principal) -> None:
    if not has_permission(principal.role, "exceptions:write"):
        raise PermissionDenied("exceptions:write")


def stored_rows(services: WorkflowServices, uow: WorkflowJobsUnitOfWork, files: Mapping[str, uuid.UUID],
                rows: Sequence[LinkRow], job_id: uuid.UUID) -> StoredRows:
    """The rows as stored (amount and currency from the normalized version of the file the job
    read, whatever re-map came later), or a 400 naming
    each row that is not stored, or whose client-sent amount differs from the stored one."""
    problems: list[FieldError] = []
    for index, row in enumerate(rows):
        if row.side not in files:
            problems.append(FieldError(f"rows.{index}.side", "must be left or right"))
        elif row.row_number < 1:
            problems.append(FieldError(f"rows.{index}.row_number", "must be >= 1"))
    if problems:
        raise ValidationFailed(problems)
    if services.row_amounts is None:
        raise RuntimeError("manual matching needs the stored row amounts (WorkflowServices.row_amounts)")
    stored: dict[str, dict[int, StoredRowAmount]] = {}
    for side in {row.side for row in rows}:
        normalized = uow.normalized_files.for_job(job_id, files[side])
        stored[side] = services.row_amounts.amounts(normalized.storage_path, [r.row_number for r in rows
                                                                             if r.side == side]) if normalized else {}
    members, currencies = [], set()
    for index, row in enumerate(rows):
        found = stored[row.side].get(row.row_number)
        if found is None:
            problems.append(FieldError(f"rows.{index}.row_number",
                                       f"the job's {row.side} file has no stored row {row.row_number}"))
            continue
        if row.amount_minor is not None and row.amount_minor != found.amount_minor:
            problems.append(FieldError(f"rows.{index}.amount_minor",
                                       f"the stored row's amount is {found.amount_minor}; amounts are read from "
                                       "the stored rows (leave amount_minor out)"))
        currencies.add(found.currency.upper())
        members.append(MatchMember(row.side, RowRef(files[row.side], row.row_number), found.amount_minor))
    if problems:
        raise ValidationFailed(problems)
    if len(currencies) > 1:
        raise InvalidBreakValue("rows", f"rows in different currencies ({', '.join(sorted(currencies))}) "
                                        "cannot be matched")
    return StoredRows(members, currencies.pop() if currencies else "")


def _suggestion(uow: WorkflowJobsUnitOfWork, job_id: uuid.UUID, left_row: int, right_row: int) -> MatchGroup:
    found = uow.matches.suggestion(job_id, left_row, right_row)
    if found is None:
        raise NotFound("suggested_match", f"{job_id}:{left_row}:{right_row}")
    decided = [g for g in uow.matches.groups_with_rows(job_id, [m.row for m in found.members])
               if g.status in ("manual", "declined") and {m.row for m in g.members} == {m.row for m in found.members}]
    if decided:
        found.status = decided[0].status  # already decided by someone: the domain refuses a second decision
    return found


def _matched_exceptions(uow: WorkflowJobsUnitOfWork, job_id: uuid.UUID, rows: Sequence[RowRef]) -> list[ExceptionItem]:
    """The job's active exceptions about exactly these rows (a match settles them), locked in id order."""
    wanted = set(rows)
    ids = []
    for item in uow.exceptions.about_rows(job_id, rows):
        about = {RowRef(f, r) for f, r in ((item.left_file_id, item.left_row), (item.right_file_id, item.right_row))
                 if f is not None and r is not None}
        if about and about <= wanted:
            ids.append(item.id)
    locked = [uow.exceptions.get_for_update(exception_id) for exception_id in sorted(set(ids), key=str)]
    return [item for item in locked if item is not None]  # None: deleted since listed (its job was deleted)


def _staked(rows: StoredRows, items: Sequence[ExceptionItem]) -> list[StakedAmount]:
    return rows.staked() + [amount for item in items for amount in item.staked_amounts()]


def _settle(uow: WorkflowJobsUnitOfWork, items: Sequence[ExceptionItem], *, actor_id: uuid.UUID, now: dt.datetime,
            resolution: Resolution, changes: Mapping[str, Any]) -> list[str]:
    for item in items:  # from open, `close` records the implicit start
        close(uow, item, BreakAction.RESOLVE, actor_id=actor_id, at=now, resolution=resolution, changes=changes)
    return [str(item.id) for item in items]


# --- confirming a suggestion ---


def _confirmation(services: WorkflowServices, uow: WorkflowJobsUnitOfWork, job_id: uuid.UUID, left_row: int,
                  right_row: int, user_id: uuid.UUID, now: dt.datetime) -> tuple[MatchGroup, StoredRows]:
    group = _suggestion(uow, job_id, left_row, right_row)
    group.confirm(user_id, now)
    rows = stored_rows(services, uow, uow.matches.job_files(job_id),
                       [LinkRow(m.side, m.row.row_number) for m in group.members], job_id)
    group.members = rows.members
    group.id, group.created_by, group.created_at = uuid.uuid4(), user_id, now
    return group, rows


def confirm_suggestion(services: WorkflowServices, principal: Principal, job_id: uuid.UUID, left_row: int,
                       right_row: int, request: RequestInfo | None = None) -> MatchOutcome:
    _require_writer(principal)
    with services.database.unit_of_work(principal.organization_id) as uow:
        now = services.now()
        group, rows = _confirmation(services, uow, job_id, left_row, right_row, principal.user_id, now)
        items = _matched_exceptions(uow, job_id, [m.row for m in group.members])
        decision = closing_decision(uow, principal.organization_id, _staked(rows, items))
        if decision.needs_checker:
            approval = request_closing_approval(
                services, uow, principal, action="confirm", items=items, decision=decision,
                title=f"Confirm suggested match {left_row}/{right_row}{stake_text(decision)}",
                description=f"Confirm the engine's suggested match of left row {left_row} and right row {right_row}.",
                details={"job_id": str(job_id), "left_row": left_row, "right_row": right_row,
                         "resolution_code": "matched_manually"}, now=now, request=request)
            group.status = "pending_approval"
            uow.commit()
            return MatchOutcome(group, approval)
        resolved = _confirm(uow, group, items, principal.user_id, now, {})
        services.record(uow, principal, "match.confirmed", request, organization_id=principal.organization_id,
                        resource_type="match_group", resource_id=group.id,
                        metadata={"job_id": str(job_id), "left_row": left_row, "right_row": right_row,
                                  "resolved_exceptions": resolved})
        uow.commit()
        return MatchOutcome(group)


def _confirm(uow: WorkflowJobsUnitOfWork, group: MatchGroup, items: Sequence[ExceptionItem], actor_id: uuid.UUID,
             now: dt.datetime, approval: Mapping[str, Any]) -> list[str]:
    group.evidence = {**group.evidence, **approval}
    uow.matches.add(group)
    return _settle(uow, items, actor_id=actor_id, now=now,
                   resolution=Resolution.of("matched_manually", "confirmed the engine's suggested match"),
                   changes={"match_group_id": str(group.id), **approval})


def apply_confirmation(services: WorkflowServices, uow: WorkflowJobsUnitOfWork, approval: Approval,
                       checker: Principal) -> tuple[MatchGroup, list[str]]:
    """A checker approved a confirmation that needed one: confirm it now, as the maker."""
    meta, now = approval.metadata, approval.reviewed_at
    assert now is not None
    job_id = uuid.UUID(meta["job_id"])
    group, _rows = _confirmation(services, uow, job_id, int(meta["left_row"]), int(meta["right_row"]),
                                 approval.requested_by, now)
    items = _matched_exceptions(uow, job_id, [m.row for m in group.members])
    return group, _confirm(uow, group, items, approval.requested_by, now,
                           {"approval_id": str(approval.id), "approved_by": str(checker.user_id)})


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


# --- linking rows by hand ---


def _clean(text: str | None, field: str, limit: int) -> str | None:
    cleaned = (text or "").strip()
    if len(cleaned) > limit:
        raise InvalidBreakValue(field, f"is longer than {limit} characters")
    return cleaned or None


def _link(services: WorkflowServices, uow: WorkflowJobsUnitOfWork, organization_id: uuid.UUID, job_id: uuid.UUID,
          rows: Sequence[LinkRow], note: str | None, reason: str | None, user_id: uuid.UUID,
          now: dt.datetime) -> tuple[MatchGroup, StoredRows, list[ExceptionItem]]:
    """The manual match these rows would make, from the stored rows: refused when a row is already
    matched, and when the amounts differ without a reason."""
    files = uow.matches.job_files(job_id)
    if not files:
        raise NotFound("reconciliation_job", job_id)
    stored = stored_rows(services, uow, files, rows, job_id)
    taken = uow.matches.matched_rows(job_id, [m.row for m in stored.members])
    group = manual_group(organization_id=organization_id, job_id=job_id, members=stored.members,
                         already_matched=taken, user_id=user_id, at=now, note=note)
    if group.evidence["difference_minor"] != 0 and reason is None:
        raise ReasonRequired("linking rows whose amounts differ")
    group.evidence = {**group.evidence, "reason": reason, "currency": stored.currency}
    return group, stored, _matched_exceptions(uow, job_id, [m.row for m in stored.members])


def _link_resolution(note: str | None, reason: str | None) -> Resolution:
    return Resolution.of("matched_manually", note or reason or DEFAULT_LINK_NOTE)


def link_rows(services: WorkflowServices, principal: Principal, job_id: uuid.UUID, rows: Sequence[LinkRow],
              note: str | None, request: RequestInfo | None = None, *, reason: str | None = None) -> MatchOutcome:
    _require_writer(principal)
    note, reason = _clean(note, "note", MAX_NOTE_LENGTH), _clean(reason, "reason", MAX_REASON_LENGTH)
    with services.database.unit_of_work(principal.organization_id) as uow:
        now = services.now()
        group, stored, items = _link(services, uow, principal.organization_id, job_id, rows, note, reason,
                                     principal.user_id, now)
        difference = group.evidence["difference_minor"]
        decision = closing_decision(uow, principal.organization_id, _staked(stored, items))
        if decision.needs_checker:
            resolution = _link_resolution(note, reason)
            approval = request_closing_approval(
                services, uow, principal, action="link", items=items, decision=decision,
                title=f"Link {len(stored.members)} rows by hand{stake_text(decision)}",
                description=resolution.note,
                details={"job_id": str(job_id), "rows": [{"side": m.side, "row_number": m.row.row_number}
                                                         for m in stored.members],
                         "note": note, "reason": reason, "group_id": str(group.id), "difference_minor": difference,
                         "resolution_code": "matched_manually", "resolution_note": resolution.note},
                now=now, request=request)
            group.status = "pending_approval"
            uow.commit()
            return MatchOutcome(group, approval)
        resolved = _store_link(uow, group, items, principal.user_id, now, note, reason, {})
        services.record(uow, principal, "match.linked", request, organization_id=principal.organization_id,
                        resource_type="match_group", resource_id=group.id,
                        metadata={"job_id": str(job_id), "rows": len(stored.members), "resolved_exceptions": resolved,
                                  "difference_minor": difference, "currency": stored.currency, "reason": reason})
        uow.commit()
        return MatchOutcome(group)


def _store_link(uow: WorkflowJobsUnitOfWork, group: MatchGroup, items: Sequence[ExceptionItem], actor_id: uuid.UUID,
                now: dt.datetime, note: str | None, reason: str | None, approval: Mapping[str, Any]) -> list[str]:
    group.evidence = {**group.evidence, **approval}
    uow.matches.add(group)
    return _settle(uow, items, actor_id=actor_id, now=now, resolution=_link_resolution(note, reason),
                   changes={"match_group_id": str(group.id), "difference_minor": group.evidence["difference_minor"],
                            "reason": reason, **approval})


def planned_link(services: WorkflowServices, uow: WorkflowJobsUnitOfWork, organization_id: uuid.UUID,
                 job_id: uuid.UUID, rows: Sequence[LinkRow], note: str | None, reason: str | None,
                 user_id: uuid.UUID, now: dt.datetime) -> tuple[MatchGroup, list[ExceptionItem]]:
    """The manual match these rows would make and the active exceptions it would settle (a period
    adjustment links rows of a closed period's exceptions: application/streams/periods.py)."""
    note, reason = _clean(note, "note", MAX_NOTE_LENGTH), _clean(reason, "reason", MAX_REASON_LENGTH)
    group, _stored, items = _link(services, uow, organization_id, job_id, rows, note, reason, user_id, now)
    return group, items


def store_planned_link(uow: WorkflowJobsUnitOfWork, group: MatchGroup, items: Sequence[ExceptionItem],
                       actor_id: uuid.UUID, now: dt.datetime, note: str | None, reason: str | None,
                       approval: Mapping[str, Any]) -> list[str]:
    """Store the match and settle its exceptions (through the closing door, `close`)."""
    note, reason = _clean(note, "note", MAX_NOTE_LENGTH), _clean(reason, "reason", MAX_REASON_LENGTH)
    return _store_link(uow, group, items, actor_id, now, note, reason, approval)


def apply_link(services: WorkflowServices, uow: WorkflowJobsUnitOfWork, approval: Approval,
               checker: Principal) -> tuple[MatchGroup, list[str]]:
    """A checker approved a link that needed one: make it now, as the maker, from the stored rows."""
    meta, now = approval.metadata, approval.reviewed_at
    assert now is not None
    rows = [LinkRow(str(r["side"]), int(r["row_number"])) for r in meta["rows"]]
    group, _stored, items = _link(services, uow, approval.organization_id, uuid.UUID(meta["job_id"]), rows,
                                  meta.get("note"), meta.get("reason"), approval.requested_by, now)
    group.id = uuid.UUID(meta["group_id"])
    return group, _store_link(uow, group, items, approval.requested_by, now, meta.get("note"), meta.get("reason"),
                              {"approval_id": str(approval.id), "approved_by": str(checker.user_id)})


def rows_as_stored(services: WorkflowServices, uow: WorkflowJobsUnitOfWork, metadata: Mapping[str, Any]) -> Any:
    """For a link or confirmation waiting for a checker: its rows with their stored amounts now
    (part of the approval's snapshot); a description of the problem when they cannot be read."""
    job_id = uuid.UUID(metadata["job_id"])
    if "rows" in metadata:
        rows = [LinkRow(str(r["side"]), int(r["row_number"])) for r in metadata["rows"]]
    else:
        rows = [LinkRow("left", int(metadata["left_row"])), LinkRow("right", int(metadata["right_row"]))]
    try:
        return stored_rows(services, uow, uow.matches.job_files(job_id), rows, job_id).described()
    except (ValidationFailed, InvalidBreakValue) as exc:
        return {"unreadable": str(exc)}


def declined_row_pairs(uow: WorkflowUnitOfWork | JobsUnitOfWork, left_file_id: uuid.UUID, right_file_id: uuid.UUID) -> set[tuple[int, int]]:
    """For a reconciliation job about to suggest matches between these two files: the (left_row,
    right_row) pairs a person declined before. The job drops them from its suggestions."""
    return {(left.row_number, right.row_number)
            for left, right in uow.declined_pairs.declined_among([left_file_id], [right_file_id])
            if left.file_id == left_file_id and right.file_id == right_file_id}
