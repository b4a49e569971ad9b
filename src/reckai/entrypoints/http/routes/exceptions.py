"""`/api/exceptions` (spec §5.1 Exceptions): the break list and detail, status/severity changes,
assignment, comments, resolution (directly or through an approval), bulk actions and manual
matching. Thin: decode, call a use case in application/exceptions, encode. docs/workflow.md."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream

from reckai.application.access import access_event
from reckai.application.approvals.common import WorkflowServices
from reckai.application.context import RequestInfo
from reckai.application.errors import FieldError, ValidationFailed
from reckai.application.exceptions import exceptions as cases
from reckai.application.exceptions import matching
from reckai.application.exceptions.export import export_exceptions
from reckai.application.ports.workflow import EXCEPTION_SORTS, MAX_OFFSET, ExceptionQuery
from reckai.bootstrap import Container
from reckai.domain.approvals.workflow import (
    Approval,
    ApprovalAlreadyDecided,
    ApprovalError,
    ApprovalSubjectChanged,
    InvalidApproval,
    NotAChecker,
    OnlyRequesterMayCancel,
    SelfApprovalForbidden,
)
from reckai.domain.exceptions.errors import (
    BreakError,
    BulkRefused,
    InvalidBreakValue,
    InvalidTransition,
    InvalidWorkflowSettings,
    ReasonRequired,
)
from reckai.domain.exceptions.lifecycle import (
    EXCEPTION_TYPES,
    Comment,
    ExceptionItem,
    ExceptionStatus,
    HistoryEntry,
)
from reckai.domain.exceptions.manual_matching import MatchGroup, MatchStateError
from reckai.domain.exceptions.policy import SEVERITIES
from reckai.domain.identity.principal import Principal
from reckai.domain.reconciliation.rule_versions import RuleVersionError
from reckai.entrypoints.http.envelope import MAX_PER_PAGE, ErrorBody, Success, cursor_parts, encode_cursor, ok
from reckai.entrypoints.http.request import decimal_query
from reckai.entrypoints.http.routes._search import (
    ACCOUNT,
    CHANNEL,
    REFERENCE,
    REFERENCE_PREFIX,
    SECONDARY_REFERENCE,
    SECONDARY_REFERENCE_PREFIX,
    search_keys,
)
from reckai.entrypoints.http.routes.approvals import ApprovalBody, approval_body

# --- bodies ------------------------------------------------------------------------------------


class ExceptionBody(msgspec.Struct):
    id: uuid.UUID
    job_id: uuid.UUID
    type: str
    severity: str
    status: str
    amount: Decimal | None
    currency: str | None
    transaction_date: dt.date | None
    description: str
    ai_explanation: str | None
    ai_confidence: Decimal | None
    suggested_action: str | None
    assigned_to: uuid.UUID | None
    resolved_by: uuid.UUID | None
    resolved_at: dt.datetime | None
    resolution_code: str | None
    resolution_note: str | None
    severity_reason: str | None
    due_at: dt.datetime
    overdue: bool
    escalated_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime | None
    left_file_id: uuid.UUID | None
    left_row: int | None
    right_file_id: uuid.UUID | None
    right_row: int | None
    evidence: dict[str, Any] | None
    # the rows' search keys (upper-cased; the account with any card number masked)
    reference: str | None
    reference_other: str | None
    secondary_reference: str | None
    secondary_reference_other: str | None
    masked_account: str | None
    channel: str | None
    # a forced re-run's exception: the earlier job's exception whose state it took (its history's
    # `inherit` entry names both; docs/reconciliation-jobs.md "Re-run")
    inherited_from: uuid.UUID | None = None


def exception_body(item: ExceptionItem, now: dt.datetime) -> ExceptionBody:
    return ExceptionBody(
        item.id, item.job_id, item.type, item.severity, item.status.value, item.amount, item.currency,
        item.transaction_date, item.description, item.ai_explanation, item.ai_confidence, item.suggested_action,
        item.assigned_to, item.resolved_by, item.resolved_at, item.resolution_code, item.resolution_note,
        item.severity_reason, item.due_at, item.is_overdue(now), item.escalated_at, item.created_at, item.updated_at,
        item.left_file_id, item.left_row, item.right_file_id, item.right_row, item.evidence, item.reference,
        item.reference_other, item.secondary_reference, item.secondary_reference_other, item.masked_account,
        item.channel, item.inherited_from)


class CommentBody(msgspec.Struct):
    id: uuid.UUID
    user_id: uuid.UUID
    content: str
    created_at: dt.datetime


def comment_body(comment: Comment) -> CommentBody:
    return CommentBody(comment.id, comment.user_id, comment.content, comment.created_at)


class HistoryBody(msgspec.Struct):
    id: uuid.UUID
    action: str
    actor_id: uuid.UUID | None
    from_status: str | None
    to_status: str | None
    reason: str | None
    changes: dict[str, Any]
    at: dt.datetime


def history_body(entry: HistoryEntry) -> HistoryBody:
    return HistoryBody(entry.id, entry.action, entry.actor_id, entry.from_status, entry.to_status, entry.reason,
                       entry.changes, entry.at)


class MemberBody(msgspec.Struct):
    side: str
    file_id: uuid.UUID
    row_number: int
    amount_minor: int | None


class MatchBody(msgspec.Struct):
    id: uuid.UUID
    job_id: uuid.UUID
    status: str
    rule_id: uuid.UUID | None
    rule_version: int | None
    confidence: Decimal | None
    evidence: dict[str, Any]
    members: list[MemberBody]
    created_by: uuid.UUID | None
    created_at: dt.datetime | None
    # set when the match waits for a checker (answered 202; status "pending_approval", not stored yet)
    pending_approval: ApprovalBody | None = None


def match_body(group: MatchGroup, approval: Approval | None = None) -> MatchBody:
    confidence = Decimal(str(group.confidence)) if group.confidence is not None else None
    return MatchBody(group.id, group.job_id, group.status, group.rule_id, group.rule_version, confidence,
                     group.evidence, [MemberBody(m.side, m.row.file_id, m.row.row_number, m.amount_minor)
                                      for m in group.members], group.created_by, group.created_at,
                     approval_body(approval) if approval else None)


def _match_outcome(outcome: matching.MatchOutcome) -> Response[Success[MatchBody]]:
    return Response(ok(match_body(outcome.group, outcome.approval)), status_code=202 if outcome.approval else 201)


class ExceptionDetailBody(msgspec.Struct):
    exception: ExceptionBody
    source_rows: dict[str, Any]
    matches: list[MatchBody]
    comments: list[CommentBody]
    history: list[HistoryBody]
    pending_approvals: list[ApprovalBody]


class ExceptionPageMeta(msgspec.Struct):
    page: int
    per_page: int
    total: int
    total_is_lower_bound: bool  # true when there are at least `total` (counting stops at 10,000)
    next_cursor: str | None  # pass as ?cursor= for the next page (keyset; created_at/due_at/updated_at sorts)


class SuccessExceptionPage(msgspec.Struct, kw_only=True):
    success: bool = True
    data: list[ExceptionBody]
    meta: ExceptionPageMeta
    errors: list[ErrorBody] = msgspec.field(default_factory=list)


class ResolveOutcomeBody(msgspec.Struct):
    exception: ExceptionBody
    pending_approval: ApprovalBody | None  # set: the resolution waits for a checker (answered 202)


# --- requests ----------------------------------------------------------------------------------


_STATUS = msgspec.Meta(description="The new status: open, in_progress, resolved, escalated or ignored (allowed "
                                    "moves only; resolving or ignoring may wait for a checker).",
                        examples=["in_progress"])
_SEVERITY = msgspec.Meta(description="Override the severity: low, medium, high or critical (needs `reason`).",
                         examples=["high"])
_REASON = msgspec.Meta(description="Why; required to reopen, to ignore and to override the severity (at most 2,000 "
                                   "characters).", examples=["Duplicate of the 14 May settlement line"])
_RESOLUTION_CODE = msgspec.Meta(
    description="How the break was cleared: matched_manually, corrected_at_source, adjustment_posted, timing_cleared, "
                "duplicate_reversed, written_off, false_positive or other.", examples=["timing_cleared"])
_RESOLUTION_NOTE = msgspec.Meta(description="What was done, for the auditor (at most 4,000 characters).",
                                examples=["Settled on T+1; seen in the 2 June statement"])
_ASSIGNEE = msgspec.Meta(description="The user (id) who works the exception, in the caller's organization; null "
                                     "unassigns.", examples=["3f6c2a9e-8d41-4b7a-9c0e-2b5d7f1a6e93"])
_EXCEPTION_IDS = msgspec.Meta(description="The exceptions to act on (ids); all or nothing: one failing item fails "
                                          "the request and names it.",
                              examples=[["0b7e3c52-1f4d-4a8e-b6c9-5d2e8f7a1c30", "6a1d9e84-2c7b-4f35-8e0a-9b3c6d4f2e71"]])
_JOB_ID = msgspec.Meta(description="The reconciliation job whose rows these are.",
                       examples=["9c2e5a17-4b8d-4e6f-a0c3-7d1b8e2f5a64"])


class ExceptionUpdate(msgspec.Struct, forbid_unknown_fields=True):
    status: Annotated[str | None, _STATUS] = None
    severity: Annotated[str | None, _SEVERITY] = None
    reason: Annotated[str | None, _REASON] = None
    resolution_code: Annotated[str | None, msgspec.Meta(
        description="With status resolved: " + (_RESOLUTION_CODE.description or ""),
        examples=["timing_cleared"])] = None
    resolution_note: Annotated[str | None, _RESOLUTION_NOTE] = None


class Resolve(msgspec.Struct, forbid_unknown_fields=True):
    resolution_code: Annotated[str, _RESOLUTION_CODE]
    resolution_note: Annotated[str, _RESOLUTION_NOTE]


class Assign(msgspec.Struct, forbid_unknown_fields=True):
    assignee_id: Annotated[uuid.UUID | None, _ASSIGNEE]


class CommentCreate(msgspec.Struct, forbid_unknown_fields=True):
    content: Annotated[str, msgspec.Meta(description="The comment's text (plain text; kept with the exception's "
                                                     "history and never edited).",
                                         examples=["Called the acquirer; reversal expected tomorrow"])]


class BulkAssign(msgspec.Struct, forbid_unknown_fields=True):
    exception_ids: Annotated[list[uuid.UUID], _EXCEPTION_IDS]
    assignee_id: Annotated[uuid.UUID | None, _ASSIGNEE]


class BulkResolve(msgspec.Struct, forbid_unknown_fields=True):
    exception_ids: Annotated[list[uuid.UUID], _EXCEPTION_IDS]
    resolution_code: Annotated[str, _RESOLUTION_CODE]
    resolution_note: Annotated[str, _RESOLUTION_NOTE]


class SuggestionDecision(msgspec.Struct, forbid_unknown_fields=True):
    job_id: Annotated[uuid.UUID, _JOB_ID]
    left_row: Annotated[int, msgspec.Meta(description="The suggested pair's left-side row number (as in the job's "
                                                      "results).", examples=[23])]
    right_row: Annotated[int, msgspec.Meta(description="The suggested pair's right-side row number.", examples=[41])]
    reason: Annotated[str | None, msgspec.Meta(description="Why the suggestion is declined (kept on the record).",
                                               examples=["Different merchant; same amount by chance"])] = None


class LinkRowBody(msgspec.Struct, forbid_unknown_fields=True):
    side: Annotated[str, msgspec.Meta(description="Which file the row is in: left or right.", examples=["left"])]
    # the columns are INTEGER and BIGINT: a larger number is refused here, not by the database (500)
    row_number: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1, description="The row's number in its side's "
                                            "normalized file (as in the job's results).", examples=[23])]
    # Never used: amounts come from the stored rows. Kept for old clients; a value that differs
    # from the stored row's amount is refused (400 naming rows.N.amount_minor).
    amount_minor: Annotated[int, msgspec.Meta(
        ge=-(2**63) + 1, le=2**63 - 1,
        description="Deprecated and never used (amounts come from the stored rows); if sent, it must equal the "
                    "stored amount in minor units.", examples=[250000])] | None = None


class LinkRows(msgspec.Struct, forbid_unknown_fields=True):
    job_id: Annotated[uuid.UUID, _JOB_ID]
    rows: Annotated[list[LinkRowBody], msgspec.Meta(
        description="The rows to match together, at least one per side.",
        examples=[[{"side": "left", "row_number": 23}, {"side": "right", "row_number": 41}]])]
    note: Annotated[str | None, msgspec.Meta(description="The analyst's note, kept on the match and as the "
                                                         "resolution note.", examples=["Split settlement"])] = None
    reason: Annotated[str | None, msgspec.Meta(description="Required when the stored amounts of the two sides "
                                                           "differ: why they belong together.",
                                               examples=["Bank charge of 50.00 deducted"])] = None


# --- query parsing -----------------------------------------------------------------------------


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else ()


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        value, item_id = cursor_parts(cursor, 2)
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, uuid.UUID(item_id)
    except ValueError:
        raise ValidationFailed([FieldError("cursor", "is not a cursor this API issued")]) from None


@dataclass(frozen=True)
class ExceptionFilters:
    """The filters of GET /api/exceptions, parsed once for the list and the export."""

    fields: dict[str, Any]  # ExceptionQuery's filter fields
    given: dict[str, Any]  # what the caller sent, for the audit row


def provide_exception_filters(
    principal: NamedDependency[Principal], container: NamedDependency[Container],
    status: Annotated[str | None, QueryParameter(description="comma-separated statuses")] = None,
    severity: Annotated[str | None, QueryParameter(description="comma-separated severities")] = None,
    type: Annotated[str | None, QueryParameter(description="comma-separated exception types")] = None,
    job_id: FromQuery[uuid.UUID | None] = None,
    assigned_to: Annotated[str | None, QueryParameter(description="a user id, 'me' or 'none'")] = None,
    amount_min: Annotated[str | None, QueryParameter(description="on the absolute amount")] = None,
    amount_max: FromQuery[str | None] = None,
    date_from: Annotated[dt.date | None, QueryParameter(description="transaction_date from (inclusive)")] = None,
    date_to: FromQuery[dt.date | None] = None,
    # at most 100 years: a larger age is no filter, and past datetime's range it overflowed (500)
    min_age_hours: Annotated[int | None, QueryParameter(ge=0, le=876_000)] = None,
    max_age_hours: Annotated[int | None, QueryParameter(ge=0, le=876_000)] = None,
    overdue: FromQuery[bool | None] = None,
    reference: REFERENCE = None, reference_prefix: REFERENCE_PREFIX = None,
    secondary_reference: SECONDARY_REFERENCE = None, secondary_reference_prefix: SECONDARY_REFERENCE_PREFIX = None,
    account: ACCOUNT = None, channel: CHANNEL = None,
) -> ExceptionFilters:
    """The controller's `filters` dependency (query parameters shared by the list and the export)."""
    now = container.workflow.now()
    assignee: uuid.UUID | None = None
    if assigned_to == "me":
        assignee = principal.user_id
    elif assigned_to not in (None, "none"):
        try:
            assignee = uuid.UUID(str(assigned_to))
        except ValueError:
            raise ValidationFailed([FieldError("assigned_to", "a user id, 'me' or 'none'")]) from None
    for field, given, allowed in (("status", _csv(status), [s.value for s in ExceptionStatus]),
                                  ("severity", _csv(severity), list(SEVERITIES)),
                                  ("type", _csv(type), list(EXCEPTION_TYPES))):
        if set(given) - set(allowed):
            raise ValidationFailed([FieldError(field, f"each must be one of {allowed}")])
    fields: dict[str, Any] = {
        "statuses": _csv(status), "severities": _csv(severity), "types": _csv(type), "job_id": job_id,
        "assigned_to": assignee, "unassigned": assigned_to == "none",
        "amount_min": decimal_query(amount_min, "amount_min"), "amount_max": decimal_query(amount_max, "amount_max"),
        "date_from": date_from, "date_to": date_to,
        "created_to": now - dt.timedelta(hours=min_age_hours) if min_age_hours is not None else None,
        "created_from": now - dt.timedelta(hours=max_age_hours) if max_age_hours is not None else None,
        "overdue_at": now if overdue else None}
    keys = search_keys(reference, reference_prefix, secondary_reference, secondary_reference_prefix, account, channel)
    fields.update(reference=keys.reference, reference_prefix=keys.reference_prefix,
                  secondary_reference=keys.secondary_reference,
                  secondary_reference_prefix=keys.secondary_reference_prefix, masked_account=keys.masked_account,
                  channels=keys.channels)
    sent = {"status": status, "severity": severity, "type": type, "job_id": job_id, "assigned_to": assigned_to,
            "amount_min": amount_min, "amount_max": amount_max, "date_from": date_from, "date_to": date_to,
            "min_age_hours": min_age_hours, "max_age_hours": max_age_hours, "overdue": overdue, **keys.given()}
    return ExceptionFilters(fields, {k: str(v) for k, v in sent.items() if v is not None})


class ExceptionController(Controller):
    path = "/api/exceptions"
    dependencies = {"filters": Provide(provide_exception_filters, sync_to_thread=False)}  # noqa: RUF012 - a Litestar layer attribute

    @get("/", opt={"permission": "exceptions:read"}, sync_to_thread=True, summary="List exceptions")
    def list_exceptions(
        self, principal: NamedDependency[Principal], container: NamedDependency[Container],
        filters: NamedDependency[ExceptionFilters],
        sort: Annotated[str, QueryParameter(description=f"one of {EXCEPTION_SORTS}; '-' prefix for descending")]
        = "-created_at",
        page: Annotated[int, QueryParameter(ge=1)] = 1,
        per_page: Annotated[int, QueryParameter(ge=1, le=MAX_PER_PAGE)] = 20,
        cursor: FromQuery[str | None] = None,
    ) -> SuccessExceptionPage:
        """The organization's breaks, filtered (status, severity, type, job, assignee, amount, dates, age,
        overdue) and sorted; `page`/`per_page` up to row 10,000, then `cursor` (keyset) from
        `meta.next_cursor`. `meta.total` stops counting at 10,000 (`total_is_lower_bound`)."""
        services = container.workflow
        now = services.now()
        descending = sort.startswith("-")
        sort_field = sort.lstrip("-+")
        if sort_field not in EXCEPTION_SORTS:
            raise ValidationFailed([FieldError("sort", f"must be one of {list(EXCEPTION_SORTS)}")])
        offset = (page - 1) * per_page
        if offset > MAX_OFFSET:
            raise ValidationFailed([FieldError("page", f"pages past {MAX_OFFSET} rows are read with ?cursor=")])
        after = decode_cursor(cursor) if cursor else None
        if after is not None and sort_field not in ("created_at", "due_at", "updated_at"):
            raise ValidationFailed([FieldError("cursor", "works with sort created_at, due_at or updated_at")])
        query = ExceptionQuery(**filters.fields, sort=sort_field, descending=descending,
                               limit=per_page, offset=0 if after else offset, after=after)
        result = cases.list_exceptions(services, principal, query)
        next_cursor = None
        if result.items and len(result.items) == per_page and sort_field in ("created_at", "due_at", "updated_at"):
            last = result.items[-1]
            next_cursor = encode_cursor(getattr(last, sort_field).isoformat(), last.id)
        return SuccessExceptionPage(data=[exception_body(i, now) for i in result.items],
                             meta=ExceptionPageMeta(page, per_page, result.total, result.total_capped, next_cursor))

    @get("/export", opt={"permission": "exceptions:read"}, sync_to_thread=True,
         media_type="application/octet-stream", summary="Export exceptions as CSV or Excel")
    def export(
        self, principal: NamedDependency[Principal], container: NamedDependency[Container],
        filters: NamedDependency[ExceptionFilters], request_info: NamedDependency[RequestInfo],
        format: Annotated[Literal["csv", "excel"], QueryParameter(description="csv or excel (xlsx)")] = "csv",
        sort: Annotated[Literal["created_at", "-created_at", "due_at", "-due_at", "updated_at", "-updated_at"],
                        QueryParameter(description="the export's row order")] = "-created_at",
    ) -> Stream:
        """Every exception matching the filters of GET /api/exceptions (not one page), streamed as
        CSV or as an Excel workbook (further sheets past 1,048,576 rows). Audited."""
        writer = container.table_writers.of(format)
        query = ExceptionQuery(**filters.fields, sort=sort.lstrip("-"), descending=sort.startswith("-"))
        chunks = export_exceptions(container.workflow, principal, query, writer, format, filters.given,
                                   request_info)
        stamp = container.workflow.now().strftime("%Y%m%dT%H%M%SZ")
        # the handler's media type documents a file; the header says which (it wins over the handler's)
        return Stream(chunks, media_type=writer.media_type, headers={
            "content-type": writer.media_type,
            "content-disposition": f'attachment; filename="exceptions-{stamp}.{writer.extension}"'})

    @get("/{exception_id:uuid}", opt={"permission": "exceptions:read"}, sync_to_thread=True,
         summary="Read an exception with its evidence")
    def get_exception(self, exception_id: FromPath[uuid.UUID], principal: NamedDependency[Principal],
                      container: NamedDependency[Container],
                      request_info: NamedDependency[RequestInfo]) -> Success[ExceptionDetailBody]:
        """One break with the source rows of both sides, its matches, comments, history and the approvals
        waiting on it."""
        services = container.workflow
        detail = cases.exception_detail(services, principal, exception_id, container.source_rows)
        container.access_recorder.record(access_event(
            "access.exception.detail", principal, request_info, resource_type="exception", resource_id=exception_id,
            metadata={"job_id": str(detail.exception.job_id), "source_rows": sorted(detail.source_rows)}))
        now = services.now()
        return ok(ExceptionDetailBody(
            exception_body(detail.exception, now), detail.source_rows, [match_body(m) for m in detail.matches],
            [comment_body(c) for c in detail.comments], [history_body(h) for h in detail.history],
            [approval_body(a) for a in detail.pending_approvals]))

    @patch("/{exception_id:uuid}", opt={"permission": "exceptions:write", "errors": {
        409: "INVALID_TRANSITION: the status cannot move there from the current one (the message names both).",
        422: "EXCEPTION_RULE_VIOLATION: a workflow rule refuses the change."}},
           sync_to_thread=True, summary="Change an exception's status or severity")
    def update_exception(self, exception_id: FromPath[uuid.UUID], data: JSONBody[ExceptionUpdate],
                         principal: NamedDependency[Principal], container: NamedDependency[Container],
                         request_info: NamedDependency[RequestInfo]) -> Response[Success[ResolveOutcomeBody]]:
        """Moves the exception through its lifecycle or overrides its severity (with a reason). Resolving or
        ignoring goes through the closing rule: 200 when done, 202 with `pending_approval` when a checker
        must approve first."""
        services = container.workflow
        outcome = cases.change_exception(services, principal, exception_id, status=data.status,
                                         severity=data.severity, reason=data.reason,
                                         resolution_code=data.resolution_code, resolution_note=data.resolution_note,
                                         request=request_info)
        return _outcome(services, outcome)

    @post("/{exception_id:uuid}/resolve", opt={"permission": "exceptions:resolve", "errors": {
        409: "INVALID_TRANSITION: the exception cannot be resolved from its status; CONFLICT: a closing of it "
             "already waits for a checker."}},
          status_code=200, sync_to_thread=True, summary="Resolve an exception")
    def resolve(self, exception_id: FromPath[uuid.UUID], data: JSONBody[Resolve], principal: NamedDependency[Principal],
                container: NamedDependency[Container],
                request_info: NamedDependency[RequestInfo]) -> Response[Success[ResolveOutcomeBody]]:
        """Closes the break with a resolution code and note, through the closing rule: 200 resolved, or 202
        with `pending_approval` when the amount needs a checker."""
        services = container.workflow
        outcome = cases.resolve_exception(services, principal, exception_id, data.resolution_code,
                                          data.resolution_note, request_info)
        return _outcome(services, outcome)

    @post("/{exception_id:uuid}/assign", opt={"permission": "exceptions:write"}, status_code=200, sync_to_thread=True,
          summary="Assign an exception")
    def assign(self, exception_id: FromPath[uuid.UUID], data: JSONBody[Assign], principal: NamedDependency[Principal],
               container: NamedDependency[Container],
               request_info: NamedDependency[RequestInfo]) -> Success[ExceptionBody]:
        """Gives the exception to an active user of the organization (or unassigns it with null); the
        assignee is notified by mail."""
        services = container.workflow
        items = cases.assign_exceptions(services, principal, [exception_id], data.assignee_id, request_info)
        return ok(exception_body(items[0], services.now()))

    @post("/{exception_id:uuid}/comments", opt={"permission": "exceptions:write"}, status_code=201,
          sync_to_thread=True, summary="Comment on an exception")
    def add_comment(self, exception_id: FromPath[uuid.UUID], data: JSONBody[CommentCreate],
                    principal: NamedDependency[Principal], container: NamedDependency[Container],
                    request_info: NamedDependency[RequestInfo]) -> Success[CommentBody]:
        """Adds a comment (`content`) to the exception's discussion; comments are kept and never edited."""
        comment = cases.comment_on_exception(container.workflow, principal, exception_id, data.content,
                                             request_info)
        return ok(comment_body(comment))

    @post("/bulk/assign", opt={"permission": "exceptions:write"}, status_code=200, sync_to_thread=True,
          summary="Assign many exceptions")
    def bulk_assign(self, data: JSONBody[BulkAssign], principal: NamedDependency[Principal],
                    container: NamedDependency[Container],
                    request_info: NamedDependency[RequestInfo]) -> Success[list[ExceptionBody]]:
        """Assigns (or unassigns) every listed exception to one user, all or nothing."""
        services = container.workflow
        items = cases.assign_exceptions(services, principal, data.exception_ids, data.assignee_id, request_info)
        now = services.now()
        return ok([exception_body(i, now) for i in items])

    @post("/bulk/resolve", opt={"permission": "exceptions:resolve", "errors": {
        409: "INVALID_TRANSITION or CONFLICT for an item (the error names it); nothing is changed."}},
          status_code=200, sync_to_thread=True, summary="Resolve many exceptions")
    def bulk_resolve(self, data: JSONBody[BulkResolve], principal: NamedDependency[Principal],
                     container: NamedDependency[Container],
                     request_info: NamedDependency[RequestInfo]) -> Success[list[ResolveOutcomeBody]]:
        """Resolves every listed exception with one code and note, each through the closing rule (an item
        over the approval threshold comes back with `pending_approval`); all or nothing."""
        services = container.workflow
        outcomes = cases.bulk_resolve(services, principal, data.exception_ids, data.resolution_code,
                                      data.resolution_note, request_info)
        now = services.now()
        return ok([ResolveOutcomeBody(exception_body(o.exception, now),
                                      approval_body(o.approval) if o.approval else None) for o in outcomes])

    @post("/matching/confirm", opt={"permission": "exceptions:write", "errors": {
        409: "MATCH_STATE_CONFLICT: a row is already matched, or no such suggestion is open."}},
          status_code=201, sync_to_thread=True, summary="Confirm a suggested match")
    def confirm_suggestion(self, data: JSONBody[SuggestionDecision], principal: NamedDependency[Principal],
                           container: NamedDependency[Container],
                           request_info: NamedDependency[RequestInfo]) -> Response[Success[MatchBody]]:
        """Accepts the engine's suggested pair (left row, right row) as a match and resolves its exceptions:
        201, or 202 with `pending_approval` when a checker must approve."""
        return _match_outcome(matching.confirm_suggestion(container.workflow, principal, data.job_id, data.left_row,
                                                          data.right_row, request_info))

    @post("/matching/decline", opt={"permission": "exceptions:write", "errors": {
        409: "MATCH_STATE_CONFLICT: no such suggestion is open."}},
          status_code=201, sync_to_thread=True, summary="Decline a suggested match")
    def decline_suggestion(self, data: JSONBody[SuggestionDecision], principal: NamedDependency[Principal],
                           container: NamedDependency[Container],
                           request_info: NamedDependency[RequestInfo]) -> Success[MatchBody]:
        """Records that the suggested pair is not a match (with an optional reason); the rows stay breaks."""
        group = matching.decline_suggestion(container.workflow, principal, data.job_id, data.left_row,
                                            data.right_row, data.reason, request_info)
        return ok(match_body(group))

    @post("/matching/link", opt={"permission": "exceptions:write", "errors": {
        409: "MATCH_STATE_CONFLICT: a row is already matched or is not a break of this job."}},
          status_code=201, sync_to_thread=True, summary="Match rows by hand")
    def link_rows(self, data: JSONBody[LinkRows], principal: NamedDependency[Principal],
                  container: NamedDependency[Container],
                  request_info: NamedDependency[RequestInfo]) -> Response[Success[MatchBody]]:
        """Links unmatched rows of a job (one or more per side) into a manual match and resolves their
        exceptions; amounts come from the stored rows. 201, or 202 with `pending_approval` (the match is
        made when a checker approves)."""
        rows = [matching.LinkRow(r.side, r.row_number, r.amount_minor) for r in data.rows]
        return _match_outcome(matching.link_rows(container.workflow, principal, data.job_id, rows, data.note,
                                                 request_info, reason=data.reason))


def _outcome(services: WorkflowServices, outcome: cases.ResolveOutcome) -> Response[Success[ResolveOutcomeBody]]:
    body = ResolveOutcomeBody(exception_body(outcome.exception, services.now()),
                              approval_body(outcome.approval) if outcome.approval else None)
    return Response(ok(body), status_code=202 if outcome.approval else 200)


ROUTE_HANDLERS = [ExceptionController]
# Domain errors of the workflow, for every workflow route module (the app merges these maps).
ERROR_STATUSES: dict[type[BaseException], int] = {
    InvalidTransition: 409, BulkRefused: 409, MatchStateError: 409, ReasonRequired: 400, InvalidBreakValue: 400,
    InvalidWorkflowSettings: 422, BreakError: 422,
    ApprovalAlreadyDecided: 409, ApprovalSubjectChanged: 409, SelfApprovalForbidden: 403, NotAChecker: 403, OnlyRequesterMayCancel: 403,
    InvalidApproval: 400, ApprovalError: 422, RuleVersionError: 409,
}
