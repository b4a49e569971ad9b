"""The exception lifecycle: transitions, reasons, resolution fields, SLA, and a stateful property test
that no sequence of actions breaks the invariants."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from reckai.domain.exceptions.errors import (
    InvalidBreakValue,
    InvalidTransition,
    InvalidWorkflowSettings,
    ReasonRequired,
)
from reckai.domain.exceptions.lifecycle import (
    TRANSITIONS,
    BreakAction,
    ExceptionItem,
    ExceptionStatus,
    Resolution,
    action_to_reach,
)
from reckai.domain.exceptions.policy import (
    SlaPolicy,
    StakedAmount,
    closing_needs_checker,
    parse_workflow_settings,
)

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
SLA = SlaPolicy()
ORG, JOB, ANA = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def new_break(severity: str = "medium", amount: str | None = "150.00") -> ExceptionItem:
    return ExceptionItem.new(organization_id=ORG, job_id=JOB, type="amount_mismatch", severity=severity,
                              description="amounts differ", created_at=T0, sla=SLA,
                              amount=Decimal(amount) if amount else None)


def test_happy_path_open_to_resolved_sets_resolver_and_clears_on_reopen() -> None:
    item = new_break()
    item.apply(BreakAction.START, actor_id=ANA, at=T0)
    entry = item.apply(BreakAction.RESOLVE, actor_id=ANA, at=T0 + dt.timedelta(hours=1),
                       resolution=Resolution.of("corrected_at_source", "bank fixed the posting"))
    assert item.status is ExceptionStatus.RESOLVED
    assert (item.resolved_by, item.resolved_at) == (ANA, T0 + dt.timedelta(hours=1))
    assert entry.from_status == "in_progress" and entry.to_status == "resolved"
    assert entry.changes["resolution_code"] == "corrected_at_source"
    with pytest.raises(ReasonRequired):
        item.apply(BreakAction.REOPEN, actor_id=ANA, at=T0, reason="  ")
    reopened = item.apply(BreakAction.REOPEN, actor_id=ANA, at=T0, reason="wrong counterpart")
    assert item.status is ExceptionStatus.OPEN and item.resolved_by is None and item.resolution_code is None
    assert reopened.reason == "wrong counterpart"
    assert reopened.changes["previous_resolution_code"] == "corrected_at_source"
    item.check_invariants(SLA)


@pytest.mark.parametrize("status", list(ExceptionStatus))
@pytest.mark.parametrize("action", list(BreakAction))
def test_every_pair_outside_the_table_is_refused(status: ExceptionStatus, action: BreakAction) -> None:
    item = new_break()
    item.status = status
    if status is ExceptionStatus.RESOLVED:
        item.resolved_by, item.resolved_at, item.resolution_code, item.resolution_note = ANA, T0, "other", "x"
    actor = None if action is BreakAction.SLA_ESCALATE else ANA
    kwargs = {"reason": "because", "resolution": Resolution.of("other", "note")}
    if (status, action) in TRANSITIONS:
        item.apply(action, actor_id=actor, at=T0, **kwargs)  # type: ignore[arg-type]
        assert item.status is TRANSITIONS[(status, action)]
        item.check_invariants(SLA)
    else:
        with pytest.raises(InvalidTransition) as caught:
            item.apply(action, actor_id=actor, at=T0, **kwargs)  # type: ignore[arg-type]
        assert caught.value.status == status.value and item.status is status


def test_spec_transitions_exactly() -> None:
    person = {(s.value, t.value) for (s, a), t in TRANSITIONS.items() if a is not BreakAction.SLA_ESCALATE}
    assert person == {("open", "in_progress"), ("in_progress", "resolved"), ("in_progress", "escalated"),
                      ("in_progress", "ignored"), ("escalated", "in_progress"), ("escalated", "resolved"),
                      ("resolved", "open"), ("ignored", "open")}


def test_sla_escalation_is_for_the_system_only() -> None:
    item = new_break()
    with pytest.raises(InvalidTransition):
        item.apply(BreakAction.SLA_ESCALATE, actor_id=ANA, at=T0)
    item.apply(BreakAction.SLA_ESCALATE, actor_id=None, at=T0)
    assert item.status is ExceptionStatus.ESCALATED and item.escalated_at == T0


def test_action_to_reach_maps_patch_targets() -> None:
    assert action_to_reach(ExceptionStatus.OPEN, ExceptionStatus.IN_PROGRESS) is BreakAction.START
    assert action_to_reach(ExceptionStatus.IGNORED, ExceptionStatus.OPEN) is BreakAction.REOPEN
    with pytest.raises(InvalidTransition):
        action_to_reach(ExceptionStatus.OPEN, ExceptionStatus.ESCALATED)  # only the SLA job does that
    # a closing straight from open is its closing action (ExceptionItem.close records the start)
    assert action_to_reach(ExceptionStatus.OPEN, ExceptionStatus.RESOLVED) is BreakAction.RESOLVE
    assert action_to_reach(ExceptionStatus.OPEN, ExceptionStatus.IGNORED) is BreakAction.IGNORE
    with pytest.raises(InvalidTransition, match="start it"):
        action_to_reach(ExceptionStatus.ESCALATED, ExceptionStatus.IGNORED)
    with pytest.raises(InvalidTransition, match="reopen it"):
        action_to_reach(ExceptionStatus.RESOLVED, ExceptionStatus.IGNORED)


def test_closing_from_open_records_the_implicit_start_and_a_refusal_changes_nothing() -> None:
    item = new_break()
    with pytest.raises(ReasonRequired):
        item.close(BreakAction.IGNORE, actor_id=ANA, at=T0, reason=" ")
    with pytest.raises(InvalidBreakValue):
        item.close(BreakAction.RESOLVE, actor_id=ANA, at=T0)
    assert item.status is ExceptionStatus.OPEN
    entries = item.close(BreakAction.RESOLVE, actor_id=ANA, at=T0,
                         resolution=Resolution.of("other", "fixed at source"))
    assert [(e.action, e.from_status, e.to_status) for e in entries] == [
        ("start", "open", "in_progress"), ("resolve", "in_progress", "resolved")]
    assert entries[0].changes == {"implicit": True, "for": "resolve"} and entries[0].actor_id == ANA
    assert item.status is ExceptionStatus.RESOLVED
    with pytest.raises(InvalidTransition, match="reopen it"):
        item.close(BreakAction.IGNORE, actor_id=ANA, at=T0, reason="dup")


def test_resolution_needs_a_known_code_and_a_note_and_ignore_needs_a_reason() -> None:
    with pytest.raises(InvalidBreakValue):
        Resolution.of("made_up", "note")
    with pytest.raises(InvalidBreakValue):
        Resolution.of("other", " ")
    item = new_break()
    item.apply(BreakAction.START, actor_id=ANA, at=T0)
    with pytest.raises(InvalidBreakValue):
        item.apply(BreakAction.RESOLVE, actor_id=ANA, at=T0)
    with pytest.raises(ReasonRequired):
        item.apply(BreakAction.IGNORE, actor_id=ANA, at=T0)
    assert item.status is ExceptionStatus.IN_PROGRESS


def test_severity_override_needs_reason_and_moves_due_time() -> None:
    item = new_break("low")
    assert item.due_at == T0 + dt.timedelta(hours=168)
    with pytest.raises(ReasonRequired):
        item.override_severity("critical", reason=None, actor_id=ANA, at=T0, sla=SLA)
    entry = item.override_severity("critical", reason="regulator complaint", actor_id=ANA, at=T0, sla=SLA)
    assert item.severity == "critical" and item.due_at == T0 + dt.timedelta(hours=4)
    assert entry.changes["severity"] == {"from": "low", "to": "critical"}
    assert item.is_overdue(T0 + dt.timedelta(hours=4)) and not item.is_overdue(T0 + dt.timedelta(hours=3))


def test_workflow_settings_parse_and_refuse() -> None:
    parsed = parse_workflow_settings({"workflow": {"sla_hours": {"critical": 2},
                                                   "resolution_approval_threshold": {"NGN": "1000000.00", "*": 500},
                                                   "approval_required_for": ["system_setting"]}})
    assert parsed.sla.hours["critical"] == 2 and parsed.sla.hours["low"] == 168
    assert closing_needs_checker(parsed, [StakedAmount(Decimal("-1000000.00"), "NGN")]).needs_checker
    assert not closing_needs_checker(parsed, [StakedAmount(Decimal("999999.99"), "NGN")]).needs_checker
    assert closing_needs_checker(parsed, [StakedAmount(Decimal(500), "USD")]).needs_checker
    assert not closing_needs_checker(parsed, []).needs_checker
    assert parsed.requires_approval("system_setting") and not parsed.requires_approval("user_onboarding")
    for bad in ({"sla_hours": {"critical": 0}}, {"sla_hours": {"urgent": 3}}, {"typo": 1},
                {"resolution_approval_threshold": "1.001"}, {"resolution_approval_threshold": True}, {"resolution_approval_threshold": "-5"},
                {"approval_required_for": ["ledger_posting"]}):
        with pytest.raises(InvalidWorkflowSettings):
            parse_workflow_settings({"workflow": bad})


ACTIONS = st.sampled_from(list(BreakAction))


class BreakLifecycleMachine(RuleBasedStateMachine):
    """Random sequences of person and system actions, overrides and assignments: whatever is
    refused leaves the exception unchanged; whatever is accepted keeps every invariant."""

    @initialize(severity=st.sampled_from(["low", "medium", "high", "critical"]))
    def start(self, severity: str) -> None:
        self.item = new_break(severity)
        self.now = T0
        self.history: list[object] = []

    def _snapshot(self) -> dict[str, object]:
        return {f.name: getattr(self.item, f.name) for f in dataclasses.fields(self.item)}  # a slotted dataclass

    @rule(action=ACTIONS, system=st.booleans(), reason=st.sampled_from([None, "", "why"]),
          resolve_with=st.sampled_from([None, ("other", "n"), ("written_off", "tiny")]),
          minutes=st.integers(0, 600))
    def act(self, action: BreakAction, system: bool, reason: str | None,
            resolve_with: tuple[str, str] | None, minutes: int) -> None:
        self.now += dt.timedelta(minutes=minutes)
        before = self._snapshot()
        resolution = Resolution.of(*resolve_with) if resolve_with else None
        try:
            entry = self.item.apply(action, actor_id=None if system else ANA, at=self.now, reason=reason,
                                    resolution=resolution)
        except (InvalidTransition, ReasonRequired, InvalidBreakValue):
            assert self._snapshot() == before, "a refused action changes nothing"
            return
        assert (before["status"], action) in TRANSITIONS
        assert entry.from_status == before["status"].value  # type: ignore[attr-defined]
        assert entry.to_status == self.item.status.value
        self.history.append(entry)

    @rule(action=st.sampled_from([BreakAction.RESOLVE, BreakAction.IGNORE]), reason=st.sampled_from([None, "", "why"]),
          resolve_with=st.sampled_from([None, ("other", "n")]))
    def close(self, action: BreakAction, reason: str | None, resolve_with: tuple[str, str] | None) -> None:
        before = self._snapshot()
        resolution = Resolution.of(*resolve_with) if resolve_with else None
        try:
            entries = self.item.close(action, actor_id=ANA, at=self.now, reason=reason, resolution=resolution)
        except (InvalidTransition, ReasonRequired, InvalidBreakValue):
            assert self._snapshot() == before, "a refused closing changes nothing"
            return
        assert [e.from_status for e in entries] == [before["status"].value] + [  # type: ignore[attr-defined]
            e.to_status for e in entries[:-1]]
        assert len(entries) == (2 if before["status"] is ExceptionStatus.OPEN else 1)
        assert self.item.status.value == entries[-1].to_status
        self.history.extend(entries)

    @rule(severity=st.sampled_from(["low", "medium", "high", "critical"]), reason=st.sampled_from([None, "r"]))
    def override(self, severity: str, reason: str | None) -> None:
        before = self._snapshot()
        try:
            self.item.override_severity(severity, reason=reason, actor_id=ANA, at=self.now, sla=SLA)
        except (ReasonRequired, InvalidTransition):
            assert self._snapshot() == before

    @rule(assignee=st.sampled_from([None, ANA, uuid.uuid4()]))
    def assign(self, assignee: uuid.UUID | None) -> None:
        before = self._snapshot()
        try:
            self.item.assign(assignee, actor_id=ANA, at=self.now)
        except InvalidTransition:
            assert self._snapshot() == before
            return
        assert self.item.assigned_to == assignee

    @invariant()
    def invariants_hold(self) -> None:
        if hasattr(self, "item"):
            self.item.check_invariants(SLA)


BreakLifecycleMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestBreakLifecycle = BreakLifecycleMachine.TestCase


def test_workflow_domain_imports_only_the_standard_library() -> None:
    import ast
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "src" / "reckai" / "domain"
    files = [*(root / "breaks").glob("*.py"), *(root / "approvals").glob("*.py"),
             root / "reconciliation" / "rule_versions.py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or name.startswith("reckai.domain") or top == "__future__", \
                    (path.name, name)
