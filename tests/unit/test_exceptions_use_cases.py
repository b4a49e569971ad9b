"""Exception use cases over the in-memory adapters: state, history, audit and outbox are asserted."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from reckai.application.errors import PermissionDenied, ValidationFailed
from reckai.application.exceptions import exceptions as cases
from reckai.application.exceptions import matching
from reckai.application.ports.audit import AuditQuery
from reckai.application.ports.workflow import ExceptionQuery
from reckai.bootstrap import bootstrap_in_memory
from reckai.domain.exceptions.errors import BulkRefused, InvalidBreakValue, InvalidTransition, ReasonRequired
from reckai.domain.exceptions.lifecycle import ExceptionStatus
from reckai.domain.exceptions.manual_matching import MatchGroup, MatchMember, MatchStateError, RowRef
from tests.unit.workflow_builders import Org, job_with_files, memory_org, seed_stored_rows


@pytest.fixture
def org() -> Org:
    return memory_org(bootstrap_in_memory())


def actions(org: Org) -> list[str]:
    page = org.container.audit_log.list_records(org.organization_id, AuditQuery(limit=500))
    return [record.event.action for record in reversed(page.records)]


def outbox(org: Org, actor: str = "notify_workflow") -> list[dict]:
    return org.outbox(actor)


def test_patch_walks_the_state_machine_and_records_history(org: Org) -> None:
    item = org.add_exception(job_id=org.job)
    analyst = org.p("analyst")
    cases.change_exception(org.services, analyst, item.id, status="in_progress")
    cases.change_exception(org.services, analyst, item.id, status="escalated", reason="needs the bank")
    with pytest.raises(InvalidTransition):
        cases.change_exception(org.services, analyst, item.id, status="ignored", reason="x")
    cases.change_exception(org.services, analyst, item.id, status="resolved", resolution_code="corrected_at_source",
                           resolution_note="bank reversed")
    stored = org.get(item.id)
    assert stored.status is ExceptionStatus.RESOLVED and stored.resolved_by == analyst.user_id
    with pytest.raises(ReasonRequired):
        cases.change_exception(org.services, analyst, item.id, status="open")
    cases.change_exception(org.services, analyst, item.id, status="open", reason="reversal bounced")
    detail = cases.exception_detail(org.services, analyst, item.id)
    assert [(h.from_status, h.to_status) for h in detail.history] == [
        ("open", "in_progress"), ("in_progress", "escalated"), ("escalated", "resolved"), ("resolved", "open")]
    assert detail.exception.resolved_by is None
    assert actions(org).count("exception.updated") == 3 and "exception.resolved" in actions(org)


def test_severity_override_needs_reason_and_auditor_cannot_write(org: Org) -> None:
    item = org.add_exception(job_id=org.job, severity="low")
    with pytest.raises(ReasonRequired):
        cases.change_exception(org.services, org.p("analyst"), item.id, severity="critical")
    cases.change_exception(org.services, org.p("analyst"), item.id, severity="critical", reason="regulator")
    stored = org.get(item.id)
    assert stored.severity == "critical" and stored.severity_reason == "regulator"
    assert stored.due_at == stored.created_at + dt.timedelta(hours=4)
    with pytest.raises(PermissionDenied):
        cases.change_exception(org.services, org.p("auditor"), item.id, status="in_progress")
    assert cases.exception_detail(org.services, org.p("auditor"), item.id).exception.severity == "critical"
    with pytest.raises(PermissionDenied):
        cases.exception_detail(org.services, org.p("supervisor"), item.id)  # no pending approval refers to it


def test_assign_only_to_active_users_who_may_work_exceptions_and_notifies(org: Org) -> None:
    items = [org.add_exception(job_id=org.job) for _ in range(3)]
    ids = [i.id for i in items]
    org.add_user("gone", "analyst", active=False)
    for name in ("auditor", "supervisor", "gone"):
        with pytest.raises(ValidationFailed):
            cases.assign_exceptions(org.services, org.p("admin"), ids, org.users[name].id)
    with pytest.raises(ValidationFailed):
        cases.assign_exceptions(org.services, org.p("admin"), ids, uuid.uuid4())
    assert all(org.get(i).assigned_to is None for i in ids)
    cases.assign_exceptions(org.services, org.p("admin"), ids, org.users["analyst"].id)
    assert all(org.get(i).assigned_to == org.users["analyst"].id for i in ids)
    assert outbox(org)[-1]["recipients"] == [str(org.users["analyst"].id)]


def test_bulk_is_all_or_nothing(org: Org) -> None:
    good = org.add_exception(job_id=org.job)
    done = org.add_exception(job_id=org.job)
    cases.change_exception(org.services, org.p("analyst"), done.id, status="in_progress")
    cases.resolve_exception(org.services, org.p("analyst"), done.id, "other", "fixed")
    cases.change_exception(org.services, org.p("analyst"), good.id, status="in_progress")
    with pytest.raises(BulkRefused) as refused:
        cases.bulk_resolve(org.services, org.p("analyst"), [good.id, done.id], "written_off", "small")
    assert refused.value.refusals == {"exception_ids[1]": f"{done.id}: cannot resolve an exception that is "
                                                           "resolved: reopen it (PATCH status open with a reason) first"}
    assert org.get(good.id).status is ExceptionStatus.IN_PROGRESS


def test_resolution_at_threshold_creates_an_approval_that_a_checker_applies(org: Org) -> None:
    from reckai.application.approvals import requests

    org.set_settings({"workflow": {"resolution_approval_threshold": {"NGN": "1000.00"}}})
    small = org.add_exception(job_id=org.job, amount="999.99")
    big = org.add_exception(job_id=org.job, amount="-1000.00")
    analyst = org.p("analyst")
    for item in (small, big):
        cases.change_exception(org.services, analyst, item.id, status="in_progress")
    outcomes = cases.bulk_resolve(org.services, analyst, [small.id, big.id], "written_off", "immaterial")
    assert [o.pending_approval for o in outcomes] == [False, True]
    assert org.get(small.id).status is ExceptionStatus.RESOLVED
    assert org.get(big.id).status is ExceptionStatus.IN_PROGRESS
    approval = outcomes[1].approval
    assert approval.type.value == "exception_resolution"
    # the supervisor (no exceptions:read) may read the exception while the approval is pending
    assert cases.exception_detail(org.services, org.p("supervisor"), big.id).pending_approvals[0].id == approval.id
    notified = outbox(org)[-1]
    assert set(notified["recipients"]) == {str(org.users[n].id) for n in ("admin", "supervisor", "supervisor2")}
    requests.approve_request(org.services, org.p("supervisor"), approval.id, "ok")
    stored = org.get(big.id)
    assert stored.status is ExceptionStatus.RESOLVED and stored.resolved_by == analyst.user_id
    assert stored.resolution_code == "written_off"
    history = cases.exception_detail(org.services, analyst, big.id).history
    assert history[-1].changes["approval_id"] == str(approval.id)
    assert "approval.approved" in actions(org)


def test_sla_escalation_job_escalates_only_overdue_open_and_in_progress(org: Org) -> None:
    sla_escalation_flow(org)


def sla_escalation_flow(org: Org) -> dict[str, int]:
    """The escalation pass over every organization; returns what it escalated per organization."""
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=5)
    overdue_open = org.add_exception(job_id=org.job, severity="critical", created_at=old)
    overdue_started = org.add_exception(job_id=org.job, severity="critical", created_at=old)
    cases.change_exception(org.services, org.p("analyst"), overdue_started.id, status="in_progress")
    fresh = org.add_exception(job_id=org.job, severity="low", created_at=old)
    page = cases.list_exceptions(org.services, org.p("analyst"),
                                 ExceptionQuery(overdue_at=dt.datetime.now(dt.UTC)))
    assert {i.id for i in page.items} == {overdue_open.id, overdue_started.id}
    # Other organizations sharing the database (other tests on PostgreSQL) may have overdue items
    # of their own: this organization's count is exact, and a second pass finds nothing of it.
    escalated = cases.escalate_overdue_everywhere(org.services)
    assert escalated[str(org.organization_id)] == 2
    assert str(org.organization_id) not in cases.escalate_overdue_everywhere(org.services)  # idempotent
    assert org.get(overdue_open.id).status is ExceptionStatus.ESCALATED
    assert org.get(overdue_started.id).status is ExceptionStatus.ESCALATED
    assert org.get(fresh.id).status is ExceptionStatus.OPEN
    assert "exception.sla_escalated" in actions(org)
    return escalated


def test_list_filters_sort_and_page(org: Org) -> None:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    made = [org.add_exception(job_id=org.job if i % 2 else org.job_factory(), amount=str(100 * (i + 1)),
                              severity=("low", "high")[i % 2], created_at=base + dt.timedelta(hours=i),
                              transaction_date=dt.date(2026, 1, 1 + i)) for i in range(6)]
    q = cases.list_exceptions
    p = org.p("auditor")
    assert q(org.services, p, ExceptionQuery(job_id=org.job)).total == 3
    assert q(org.services, p, ExceptionQuery(severities=("high",), amount_min=Decimal(300))).total == 2
    assert q(org.services, p, ExceptionQuery(date_from=dt.date(2026, 1, 2), date_to=dt.date(2026, 1, 3))).total == 2
    by_amount = q(org.services, p, ExceptionQuery(sort="amount", descending=False, limit=2, offset=2))
    assert [i.amount for i in by_amount.items] == [Decimal(300), Decimal(400)] and by_amount.total == 6
    first = q(org.services, p, ExceptionQuery(limit=4))
    after = first.items[-1]
    rest = q(org.services, p, ExceptionQuery(limit=4, after=(after.created_at, after.id)))
    assert [i.id for i in first.items] + [i.id for i in rest.items] == [m.id for m in reversed(made)]


def test_manual_matching_confirm_decline_link(org: Org) -> None:
    left_file, right_file = uuid.uuid4(), uuid.uuid4()
    seed_stored_rows(org.container, org.organization_id, left_file, {1: (100, "NGN"), 7: (500, "NGN"),
                                                                     3: (10, "NGN")}, org.users["admin"].id)
    seed_stored_rows(org.container, org.organization_id, right_file, {1: (100, "NGN"), 9: (450, "NGN"),
                                                                      3: (10, "NGN"), 5: (1, "NGN")},
                     org.users["admin"].id)
    analyst = org.p("analyst")
    broken = org.add_exception(job_id=org.job, left_file_id=left_file, left_row=7)
    broken_right = org.add_exception(job_id=org.job, right_file_id=right_file, right_row=9, type="missing_entry")
    with org.uow() as uow:
        uow.matches.seed_job_files(org.job, left_file, right_file)
        for left, right in ((1, 1), (2, 2)):
            uow.matches.seed_suggestion(MatchGroup(uuid.uuid4(), org.organization_id, org.job, "suggested", [
                MatchMember("left", RowRef(left_file, left), 100), MatchMember("right", RowRef(right_file, right), 100)],
                rule_version=1, evidence={"rule": "fuzzy"}))
        uow.commit()
    confirmed = matching.confirm_suggestion(org.services, analyst, org.job, 1, 1).group
    assert confirmed.status == "manual" and confirmed.created_by == analyst.user_id
    with pytest.raises(MatchStateError):
        matching.decline_suggestion(org.services, analyst, org.job, 1, 1, "changed my mind")
    matching.decline_suggestion(org.services, analyst, org.job, 2, 2, "different customer")
    with org.uow() as uow:
        assert uow.declined_pairs.declined_among([left_file], [right_file]) == {
            (RowRef(left_file, 2), RowRef(right_file, 2))}
        assert uow.declined_pairs.declined_among([uuid.uuid4()], [right_file]) == set()
        assert matching.declined_row_pairs(uow, left_file, right_file) == {(2, 2)}  # what a later job skips
        assert matching.declined_row_pairs(uow, right_file, left_file) == set()
    rows = [matching.LinkRow("left", 7), matching.LinkRow("right", 9)]
    with pytest.raises(ReasonRequired):  # 500 vs 450 stored: linking them needs a reason
        matching.link_rows(org.services, analyst, org.job, rows, "fee deducted")
    with pytest.raises(ValidationFailed) as refused:  # a client's amount is never taken
        matching.link_rows(org.services, analyst, org.job, [matching.LinkRow("left", 7, 450), rows[1]],
                           "fee deducted", reason="bank fee")
    assert [e.field for e in refused.value.details] == ["rows.0.amount_minor"]
    linked = matching.link_rows(org.services, analyst, org.job, rows, "fee deducted", reason="bank fee of 0.50").group
    assert linked.evidence["difference_minor"] == 50 and linked.evidence["note"] == "fee deducted"
    assert linked.evidence["reason"] == "bank fee of 0.50"
    assert org.get(broken.id).status is ExceptionStatus.RESOLVED
    assert org.get(broken.id).resolution_code == "matched_manually"
    assert org.get(broken.id).resolution_note == "fee deducted"  # the analyst's note, not a stock text
    assert org.get(broken_right.id).status is ExceptionStatus.RESOLVED
    with pytest.raises(MatchStateError):
        matching.link_rows(org.services, analyst, org.job, [matching.LinkRow("left", 1), matching.LinkRow("right", 5)],
                           None, reason="r")
    with pytest.raises(ValidationFailed):  # a row the job's file does not have
        matching.link_rows(org.services, analyst, org.job, [matching.LinkRow("left", 3),
                                                             matching.LinkRow("right", 404)], None)
    with pytest.raises(PermissionDenied):
        matching.link_rows(org.services, org.p("auditor"), org.job, [matching.LinkRow("left", 3),
                                                                 matching.LinkRow("right", 3)], None)


def test_worker_handlers_escalate_and_mail_the_checkers(org: Org) -> None:
    from reckai.application.ports.jobs import JobDelivery

    registry = org.container.job_handlers
    assert "escalate_overdue_exceptions" in [p.job.job_type.name for p in registry.schedule]
    org.add_user("gone", "supervisor", active=False)
    item = org.add_exception(job_id=org.job, severity="critical",
                             created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=5))
    registry.get("escalate_overdue_exceptions").run(JobDelivery(uuid.uuid4(), 1, None, "escalate_overdue_exceptions", {}))
    assert org.get(item.id).status is ExceptionStatus.ESCALATED
    payload = outbox(org)[-1]
    assert payload["event"] == "exception.sla_escalated" and payload["subject"]["exception_ids"] == [str(item.id)]
    mailer = org.container.mailer
    registry.get("notify_workflow").run(JobDelivery(uuid.uuid4(), 1, org.organization_id, "notify_workflow",
                                                   {**payload, "recipients": [*payload["recipients"],
                                                                              str(org.users["gone"].id)]}))
    sent_to = sorted(m.to for m in mailer.sent)
    assert sent_to == sorted(org.users[n].email for n in ("admin", "supervisor", "supervisor2"))
    assert "escalated" in mailer.sent[0].subject


# --- issue 12 item 1: every way out of the open set obeys the threshold ---

THRESHOLD = {"workflow": {"resolution_approval_threshold": {"NGN": "100000.00"}}}


def _approve(org: Org, approval_id: uuid.UUID, who: str = "supervisor") -> Any:
    from reckai.application.approvals import requests

    return requests.approve_request(org.services, org.p(who), approval_id, "checked")


def test_ignoring_at_the_threshold_waits_for_a_checker(org: Org) -> None:
    org.set_settings(THRESHOLD)
    big, small = org.add_exception(job_id=org.job, amount="467122.00"), org.add_exception(job_id=org.job, amount="10.00")
    analyst = org.p("analyst")
    for item in (big, small):
        cases.change_exception(org.services, analyst, item.id, status="in_progress")
    outcome = cases.change_exception(org.services, analyst, big.id, status="ignored", reason="known timing")
    assert outcome.pending_approval and outcome.approval.metadata["action"] == "ignore"
    assert org.get(big.id).status is ExceptionStatus.IN_PROGRESS  # not closed until approved
    with pytest.raises(InvalidBreakValue):  # one closing at a time (400 VALIDATION_ERROR)
        cases.resolve_exception(org.services, analyst, big.id, "other", "again")
    _approve(org, outcome.approval.id)
    stored = org.get(big.id)
    assert stored.status is ExceptionStatus.IGNORED
    assert cases.exception_detail(org.services, analyst, big.id).history[-1].changes["approval_id"] == \
        str(outcome.approval.id)
    # below the threshold, but a checker was asked for (POST /api/approvals): no direct closing meanwhile
    asked = cases.bulk_resolve(org.services, analyst, [small.id], "other", "please check", force_approval=True)[0]
    with pytest.raises(InvalidBreakValue):
        cases.change_exception(org.services, analyst, small.id, status="ignored", reason="noise")
    from reckai.application.approvals import requests

    requests.cancel_request(org.services, analyst, asked.approval.id)
    assert not cases.change_exception(org.services, analyst, small.id, status="ignored", reason="noise").pending_approval
    assert org.get(small.id).status is ExceptionStatus.IGNORED


def test_the_threshold_compares_the_larger_stored_row_amount(org: Org) -> None:
    org.set_settings(THRESHOLD)
    # 250,050 vs 250,000: the break's own amount is the 50 of difference; the rows are what is at stake
    item = org.add_exception(job_id=org.job, amount="50.00", amount_minor=5000,
                             evidence={"left": {"amount_minor": 25_005_000}, "right": {"amount_minor": 25_000_000}})
    cases.change_exception(org.services, org.p("analyst"), item.id, status="in_progress")
    outcome = cases.resolve_exception(org.services, org.p("analyst"), item.id, "written_off", "fee")
    assert outcome.pending_approval and outcome.approval.metadata["amount"] == "250050.00"
    assert org.get(item.id).status is ExceptionStatus.IN_PROGRESS


def test_a_manual_link_at_the_threshold_waits_and_then_keeps_the_note_and_true_difference(org: Org) -> None:
    org.set_settings(THRESHOLD)
    job, files = job_with_files(org, {"left": {3: (25_005_000, "NGN")}, "right": {4: (25_000_000, "NGN")}})
    item = org.add_exception(job_id=job, amount="50.00", left_file_id=files["left"], left_row=3,
                             right_file_id=files["right"], right_row=4)
    analyst, rows = org.p("analyst"), [matching.LinkRow("left", 3), matching.LinkRow("right", 4)]
    with pytest.raises(ReasonRequired):
        matching.link_rows(org.services, analyst, job, rows, "customer paid the fee separately")
    outcome = matching.link_rows(org.services, analyst, job, rows, "customer paid the fee separately",
                                 reason="NGN 50 fee")
    assert outcome.pending_approval and outcome.group.status == "pending_approval"
    assert outcome.approval.metadata["action"] == "link" and outcome.approval.metadata["amount"] == "250050.00"
    assert org.get(item.id).status is ExceptionStatus.OPEN
    with org.uow() as uow:
        assert uow.matches.matched_rows(job, [RowRef(files["left"], 3)]) == set()  # nothing matched yet
    view = _view(org, outcome.approval.id)
    assert view.snapshot["subject"]["rows"] == [
        {"side": "left", "row_number": 3, "amount_minor": 25_005_000, "currency": "NGN"},
        {"side": "right", "row_number": 4, "amount_minor": 25_000_000, "currency": "NGN"}]
    assert view.snapshot["subject"]["exceptions"][0]["amount"] == "50.00" and view.changes == []
    _approve(org, outcome.approval.id)
    stored = org.get(item.id)
    assert stored.status is ExceptionStatus.RESOLVED and stored.resolved_by == analyst.user_id
    assert stored.resolution_note == "customer paid the fee separately"
    with org.uow() as uow:
        group = next(g for g in uow.matches.groups_with_rows(job, [RowRef(files["left"], 3)]) if g.status == "manual")
    assert group.id == outcome.group.id and group.evidence["difference_minor"] == 5000
    assert group.evidence["note"] == "customer paid the fee separately" and group.evidence["reason"] == "NGN 50 fee"
    assert group.evidence["approval_id"] == str(outcome.approval.id)


def test_confirming_a_suggestion_at_the_threshold_waits_for_a_checker(org: Org) -> None:
    org.set_settings(THRESHOLD)
    job, files = job_with_files(org, {"left": {1: (20_000_000, "NGN"), 2: (500, "NGN")},
                                      "right": {1: (20_000_000, "NGN"), 2: (500, "NGN")}}, suggestions=((1, 1), (2, 2)))
    item = org.add_exception(job_id=job, amount="200000.00", left_file_id=files["left"], left_row=1)
    analyst = org.p("analyst")
    outcome = matching.confirm_suggestion(org.services, analyst, job, 1, 1)
    assert outcome.pending_approval and outcome.approval.metadata["action"] == "confirm"
    assert org.get(item.id).status is ExceptionStatus.OPEN
    _approve(org, outcome.approval.id)
    assert org.get(item.id).status is ExceptionStatus.RESOLVED
    with org.uow() as uow:
        assert uow.matches.matched_rows(job, [RowRef(files["left"], 1)]) == {RowRef(files["left"], 1)}
    assert not matching.confirm_suggestion(org.services, analyst, job, 2, 2).pending_approval  # NGN 5: below


# --- issue 12 item 2: a checker sees what they approve, as it was asked ---


def _view(org: Org, approval_id: uuid.UUID, who: str = "supervisor") -> Any:
    from reckai.application.approvals import requests

    return requests.get_approval(org.services, org.p(who), approval_id)


def _rewrite_explanation(org: Org, exception_id: uuid.UUID, text: str) -> None:
    with org.uow() as uow:
        if hasattr(uow, "connection"):
            from sqlalchemy import text as sql

            uow.connection.execute(sql("UPDATE exceptions SET ai_explanation = :t WHERE id = :id"),
                                   {"t": text, "id": exception_id})
        else:
            item = uow.exceptions.get(exception_id)
            item.ai_explanation = text
            uow.exceptions.update(item)
        uow.commit()


def test_approving_a_subject_that_changed_after_the_request_is_refused(org: Org) -> None:
    from reckai.domain.approvals.workflow import ApprovalSubjectChanged

    org.set_settings(THRESHOLD)
    item = org.add_exception(job_id=org.job, amount="300000.00", ai_explanation="bank shows 300,000; GL none")
    cases.change_exception(org.services, org.p("analyst"), item.id, status="in_progress")
    approval = cases.resolve_exception(org.services, org.p("analyst"), item.id, "written_off", "n").approval
    view = _view(org, approval.id)
    assert view.snapshot["subject"]["exceptions"][0]["ai_explanation"] == "bank shows 300,000; GL none"
    assert view.changes == []
    _rewrite_explanation(org, item.id, "bank shows 3,000,000; GL none")
    assert [c["field"] for c in _view(org, approval.id).changes] == ["exceptions.0.ai_explanation"]
    with pytest.raises(ApprovalSubjectChanged) as refused:
        _approve(org, approval.id)
    assert refused.value.changes[0]["now"] == "bank shows 3,000,000; GL none"
    assert org.get(item.id).status is ExceptionStatus.IN_PROGRESS  # nothing applied


def test_the_approval_mail_carries_type_band_requester_and_link_only(org: Org) -> None:
    from reckai.application.approvals.jobs import send_notification

    class Sent(list[Any]):
        def send(self, mail: Any) -> None:
            self.append(mail)

    org.set_settings(THRESHOLD)
    item = org.add_exception(job_id=org.job, amount="2500000.00",
                             ai_explanation="account 0123456789 short paid")
    cases.change_exception(org.services, org.p("analyst"), item.id, status="in_progress")
    approval = cases.resolve_exception(org.services, org.p("analyst"), item.id, "written_off",
                                       "customer 0123456789 refunded").approval
    payload = [p for p in outbox(org) if p["event"] == "approval.requested"][-1]
    mails = Sent()
    assert send_notification(org.services, mails, org.organization_id, payload, "https://reck.example") == 3
    body = mails[0].text_body
    assert "Type: exception resolution" in body and "Amount: NGN 1,000,000 to 10,000,000" in body
    assert f"Requested by: {org.users['analyst'].name}" in body
    assert f"https://reck.example/api/approvals/{approval.id}" in body
    for secret in ("0123456789", "2500000", "2,500,000", "refunded", str(item.id)):
        assert secret not in body and secret not in mails[0].subject


def test_pending_referring_to_matches_a_value_or_a_list_holding_it(org: Org) -> None:
    """The repository contract both adapters keep: a link's approval names all its exceptions."""
    from reckai.domain.approvals.workflow import Approval, ApprovalType

    first, second, other = (str(uuid.uuid4()) for _ in range(3))
    approval = Approval.request(organization_id=org.organization_id, type=ApprovalType.EXCEPTION_RESOLUTION,
                                title="t", description="d", requested_by=org.users["analyst"].id,
                                at=dt.datetime.now(dt.UTC),
                                metadata={"exception_id": first, "exception_ids": [first, second]})
    with org.uow() as uow:
        uow.approvals.add(approval)
        uow.commit()
    with org.uow() as uow:
        assert [a.id for a in uow.approvals.pending_referring_to("exception_id", first)] == [approval.id]
        assert [a.id for a in uow.approvals.pending_referring_to("exception_ids", second)] == [approval.id]
        assert uow.approvals.pending_referring_to("exception_id", second) == []
        assert uow.approvals.pending_referring_to("exception_ids", other) == []
