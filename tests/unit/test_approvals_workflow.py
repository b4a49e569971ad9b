"""Maker-checker rules, per-type metadata schemas, rule versions; stateful property tests that no
sequence of decisions breaks the invariants (decided once, never by the requester)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from reckai.domain.approvals.metadata import validate_metadata
from reckai.domain.approvals.workflow import (
    Approval,
    ApprovalAlreadyDecided,
    ApprovalError,
    ApprovalStatus,
    ApprovalType,
    Checker,
    InvalidApproval,
    NotAChecker,
    OnlyRequesterMayCancel,
    SelfApprovalForbidden,
)
from reckai.domain.reconciliation.rule_versions import (
    ChangeAlreadyPending,
    NotPending,
    RuleAlreadyInactive,
    RuleHistory,
    RuleVersionError,
    VersionStatus,
)

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
ORG, MAKER, CHECKER, OTHER = (uuid.uuid4() for _ in range(4))


def pending(kind: ApprovalType = ApprovalType.SYSTEM_SETTING) -> Approval:
    return Approval.request(organization_id=ORG, type=kind, title="Change SLA", description="tighter SLA",
                            metadata={}, requested_by=MAKER, at=T0)


def test_checker_approves_once_and_second_decision_conflicts() -> None:
    approval = pending()
    approval.approve(Checker(CHECKER, True), T0, "fine")
    assert approval.status is ApprovalStatus.APPROVED and approval.reviewed_by == CHECKER
    with pytest.raises(ApprovalAlreadyDecided):
        approval.decline(Checker(OTHER, True), T0, "too late")
    with pytest.raises(ApprovalAlreadyDecided):
        approval.cancel(MAKER, T0)
    approval.check_invariants()


def test_requester_never_approves_own_even_as_checker_and_non_checkers_never_decide() -> None:
    approval = pending()
    with pytest.raises(SelfApprovalForbidden):
        approval.approve(Checker(MAKER, True), T0)
    with pytest.raises(NotAChecker):
        approval.approve(Checker(OTHER, False), T0)
    with pytest.raises(InvalidApproval):
        approval.decline(Checker(CHECKER, True), T0, "   ")
    with pytest.raises(OnlyRequesterMayCancel):
        approval.cancel(CHECKER, T0)
    assert approval.status is ApprovalStatus.PENDING
    approval.cancel(MAKER, T0, "no longer needed")
    assert approval.status is ApprovalStatus.CANCELLED


def test_request_needs_title_and_description() -> None:
    with pytest.raises(InvalidApproval) as caught:
        Approval.request(organization_id=ORG, type=ApprovalType.SYSTEM_SETTING, title=" ", description="d",
                         metadata={}, requested_by=MAKER, at=T0)
    assert "title" in caught.value.details


# --- metadata schemas ------------------------------------------------------------------------

VALID = {
    ApprovalType.RULE_CONFIGURATION: {"action": "create", "definition": {"rule_type": "exact"}},
    ApprovalType.LEDGER_POSTING: {"currency": "NGN", "entries": [
        {"account": "1001-SUSPENSE", "direction": "debit", "amount_minor": 15000},
        {"account": "2001", "direction": "credit", "amount_minor": 15000, "narration": "fix"}]},
    ApprovalType.USER_ONBOARDING: {"email": "New.Person@Example.com", "name": "New Person", "role": "analyst"},
    ApprovalType.EXCEPTION_RESOLUTION: {"exception_id": str(uuid.uuid4()), "resolution_code": "written_off",
                                        "resolution_note": "below materiality"},
    ApprovalType.REPORT_GENERATION: {"report_type": "aging", "format": "csv"},
    ApprovalType.SYSTEM_SETTING: {"key": "workflow", "value": {"sla_hours": {"critical": 2}}},
    ApprovalType.PERIOD_CLOSE: {"stream_id": str(uuid.uuid4()), "period": "2025-12-31"},
    ApprovalType.PERIOD_REOPEN: {"stream_id": str(uuid.uuid4()), "period": "2025-12", "reason": "late bank file"},
    ApprovalType.PERIOD_ADJUSTMENT: {"stream_id": str(uuid.uuid4()), "period": "2025-12-31", "action": "resolve",
                                     "exception_ids": [str(uuid.uuid4())], "reason": "found the posting",
                                     "resolution_code": "written_off"},
    ApprovalType.DATA_EXPORT: {"scope": "organization"},
    ApprovalType.DATA_ERASURE: {"user_id": "7b0c3f9e-2d41-4c8a-9f3e-5a1b2c3d4e5f", "reason": "DSAR 2026-114"},
}


@pytest.mark.parametrize("kind", list(ApprovalType))
def test_each_type_accepts_its_schema_and_refuses_unknown_keys(kind: ApprovalType) -> None:
    assert validate_metadata(kind, VALID[kind])
    with pytest.raises(InvalidApproval) as caught:
        validate_metadata(kind, {**VALID[kind], "surprise": 1})
    assert "metadata.surprise" in caught.value.details
    with pytest.raises(InvalidApproval):
        validate_metadata(kind, [])


def test_ledger_posting_must_balance_and_use_integer_minor_units() -> None:
    entries = VALID[ApprovalType.LEDGER_POSTING]["entries"]
    unbalanced = {"currency": "NGN", "entries": [entries[0], {**entries[1], "amount_minor": 14999}]}
    with pytest.raises(InvalidApproval) as caught:
        validate_metadata(ApprovalType.LEDGER_POSTING, unbalanced)
    assert "balance" in caught.value.details["metadata.entries"]
    floaty = {"currency": "NGN", "entries": [{**entries[0], "amount_minor": 150.0}, entries[1]]}
    with pytest.raises(InvalidApproval) as caught:
        validate_metadata(ApprovalType.LEDGER_POSTING, floaty)
    assert "metadata.entries.0.amount_minor" in caught.value.details


def test_other_schema_refusals_name_the_field() -> None:
    cases = [
        (ApprovalType.USER_ONBOARDING, {"email": "nope", "name": "x", "role": "root"}, "metadata.role"),
        (ApprovalType.RULE_CONFIGURATION, {"action": "update", "definition": {}}, "metadata.rule_id"),
        (ApprovalType.RULE_CONFIGURATION, {"action": "deactivate", "rule_id": str(uuid.uuid4()),
                                           "definition": {}}, "metadata.definition"),
        (ApprovalType.EXCEPTION_RESOLUTION, {"exception_id": "x", "resolution_code": "other",
                                             "resolution_note": "n"}, "metadata.exception_id"),
        (ApprovalType.SYSTEM_SETTING, {"key": "workflow", "value": {"sla_hours": {"critical": -1}}},
         "metadata.value.sla_hours.critical"),
        (ApprovalType.SYSTEM_SETTING, {"key": "password_policy", "value": {"min_length": 4}}, "metadata.value"),
        (ApprovalType.REPORT_GENERATION, {"report_type": "weekly", "format": "csv"}, "metadata.report_type"),
        (ApprovalType.PERIOD_CLOSE, {"stream_id": str(uuid.uuid4()), "period": "2025-13"}, "metadata.period"),
        (ApprovalType.PERIOD_REOPEN, {"stream_id": str(uuid.uuid4()), "period": "2025-12"}, "metadata.reason"),
        (ApprovalType.PERIOD_ADJUSTMENT, {"stream_id": str(uuid.uuid4()), "period": "2025-12", "action": "reopen",
                                          "exception_ids": [], "reason": "r"}, "metadata.exception_ids"),
        (ApprovalType.PERIOD_ADJUSTMENT, {"stream_id": str(uuid.uuid4()), "period": "2025-12", "action": "ignore",
                                          "exception_ids": [str(uuid.uuid4())], "reason": "r",
                                          "resolution_code": "other"}, "metadata.resolution_code"),
    ]
    for kind, raw, field in cases:
        with pytest.raises(InvalidApproval) as caught:
            validate_metadata(kind, raw)
        assert field in caught.value.details, (kind, caught.value.details)


# --- stateful: approvals ---------------------------------------------------------------------

USERS = st.sampled_from([MAKER, CHECKER, OTHER])


class ApprovalMachine(RuleBasedStateMachine):
    @initialize(kind=st.sampled_from(list(ApprovalType)))
    def start(self, kind: ApprovalType) -> None:
        self.approval = pending(kind)
        self.decisions = 0

    def _try(self, call: object) -> None:
        before = dict(vars(self.approval))
        was_pending = self.approval.status is ApprovalStatus.PENDING
        try:
            call()  # type: ignore[operator]
        except ApprovalError:
            assert dict(vars(self.approval)) == before
            return
        assert was_pending, "only a pending request can be decided"
        self.decisions += 1

    @rule(user=USERS, may=st.booleans(), comment=st.sampled_from([None, "", "ok"]))
    def approve(self, user: uuid.UUID, may: bool, comment: str | None) -> None:
        self._try(lambda: self.approval.approve(Checker(user, may), T0, comment))

    @rule(user=USERS, may=st.booleans(), comment=st.sampled_from([None, "", "no"]))
    def decline(self, user: uuid.UUID, may: bool, comment: str | None) -> None:
        self._try(lambda: self.approval.decline(Checker(user, may), T0, comment))

    @rule(user=USERS)
    def cancel(self, user: uuid.UUID) -> None:
        self._try(lambda: self.approval.cancel(user, T0))

    @invariant()
    def decided_at_most_once(self) -> None:
        if hasattr(self, "approval"):
            self.approval.check_invariants()
            assert self.decisions <= 1
            assert (self.decisions == 1) == (self.approval.status is not ApprovalStatus.PENDING)


ApprovalMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=20, deadline=None)
TestApprovalMachine = ApprovalMachine.TestCase


# --- rule versions ---------------------------------------------------------------------------


def test_rule_version_lifecycle() -> None:
    history = RuleHistory(uuid.uuid4(), ORG)
    first = history.propose({"rule_type": "exact"}, created_by=MAKER, at=T0)
    with pytest.raises(ChangeAlreadyPending):
        history.propose({"rule_type": "fuzzy"}, created_by=MAKER, at=T0)
    assert history.active is None and not history.is_active
    approval_id = uuid.uuid4()
    history.approve(1, approval_id=approval_id, at=T0)
    assert first.status is VersionStatus.ACTIVE and first.approval_id == approval_id and history.is_active
    second = history.propose({"rule_type": "fuzzy"}, created_by=MAKER, at=T0)
    history.withdraw(2)
    assert second.status is VersionStatus.RETIRED and second.approved_at is None and history.active is first
    with pytest.raises(NotPending):
        history.approve(2, approval_id=approval_id, at=T0)
    history.propose({"rule_type": "exact", "is_active": False}, created_by=MAKER, at=T0)
    changed = history.approve(3, approval_id=uuid.uuid4(), at=T0)
    assert [v.version for v in changed] == [1, 3] and not history.is_active
    with pytest.raises(RuleAlreadyInactive):
        history.propose({"is_active": False}, created_by=MAKER, at=T0)
    history.check_invariants()


class RuleVersionMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.history = RuleHistory(uuid.uuid4(), ORG)

    @rule(deactivate=st.booleans())
    def propose(self, deactivate: bool) -> None:
        count = len(self.history.versions)
        try:
            self.history.propose({"rule_type": "exact", "is_active": not deactivate}, created_by=MAKER, at=T0)
        except RuleVersionError:
            assert len(self.history.versions) == count
            return
        assert len(self.history.versions) == count + 1

    @precondition(lambda self: hasattr(self, "history") and bool(self.history.versions))
    @rule(data=st.data(), approve=st.booleans())
    def decide(self, data: st.DataObject, approve: bool) -> None:
        number = data.draw(st.integers(1, len(self.history.versions)))
        statuses = [v.status for v in self.history.versions]
        try:
            if approve:
                self.history.approve(number, approval_id=uuid.uuid4(), at=T0)
            else:
                self.history.withdraw(number)
        except NotPending:
            assert [v.status for v in self.history.versions] == statuses
            return
        assert statuses[number - 1] is VersionStatus.PENDING

    @invariant()
    def versions_consistent(self) -> None:
        if hasattr(self, "history"):
            self.history.check_invariants()


RuleVersionMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=25, deadline=None)
TestRuleVersionMachine = RuleVersionMachine.TestCase
