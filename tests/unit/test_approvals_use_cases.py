"""Approval and rule use cases over the in-memory adapters: every type's effect, maker-checker rules,
rule versions, notifications and audit."""

from __future__ import annotations

import threading
import uuid

import pytest

from reckai.application.approvals import jobs as workflow_jobs
from reckai.application.approvals import requests
from reckai.application.errors import PermissionDenied, ValidationFailed
from reckai.application.identity.errors import EmailAlreadyRegistered
from reckai.application.ports.audit import AuditQuery
from reckai.application.rules import rules as rule_cases
from reckai.bootstrap import bootstrap_in_memory
from reckai.domain.approvals.workflow import (
    ApprovalAlreadyDecided,
    ApprovalStatus,
    InvalidApproval,
    NotAChecker,
    OnlyRequesterMayCancel,
    SelfApprovalForbidden,
)
from reckai.domain.reconciliation.rule_versions import ChangeAlreadyPending, VersionStatus
from tests.unit.workflow_builders import Org, memory_org

EXACT = {"rule_type": "exact", "priority": 1, "field_mappings": [{"left": "reference", "right": "reference"}],
         "tolerance_amount": "0.50", "date_tolerance_days": 1}


@pytest.fixture
def org() -> Org:
    return memory_org(bootstrap_in_memory())


def audit_actions(org: Org) -> list[str]:
    page = org.container.audit_log.list_records(org.organization_id, AuditQuery(limit=500))
    return [r.event.action for r in reversed(page.records)]


def notifications(org: Org) -> list[dict]:
    return org.outbox("notify_workflow")


def ask(org: Org, who: str, type: str, metadata: dict, title: str = "Please approve") -> object:
    return requests.request_approval(org.services, org.p(who), type=type, title=title, description="because",
                                     metadata=metadata)


def test_system_setting_changes_only_on_approval(org: Org) -> None:
    approval = ask(org, "admin", "system_setting", {"key": "workflow", "value": {"sla_hours": {"critical": 2}}})
    assert "workflow" not in org.settings()
    with pytest.raises(SelfApprovalForbidden):
        requests.approve_request(org.services, org.p("admin"), approval.id)
    with pytest.raises(NotAChecker):
        requests.approve_request(org.services, org.p("analyst"), approval.id)
    view = requests.approve_request(org.services, org.p("supervisor"), approval.id, "fine")
    assert view.effect.kind == "setting_changed"
    assert org.settings()["workflow"] == {"sla_hours": {"critical": 2}}
    with pytest.raises(ApprovalAlreadyDecided):
        requests.decline_request(org.services, org.p("supervisor2"), approval.id, "too late")
    assert audit_actions(org)[-2:] == ["approval.requested", "approval.approved"] or \
        audit_actions(org)[-1] == "approval.approved"
    assert notifications(org)[-1]["recipients"] == [str(org.users["admin"].id)]  # the requester learns


def test_makers_may_request_only_what_they_may_write(org: Org) -> None:
    with pytest.raises(PermissionDenied):
        ask(org, "analyst", "system_setting", {"key": "workflow", "value": {}})
    with pytest.raises(PermissionDenied):
        ask(org, "supervisor", "report_generation", {"report_type": "aging", "format": "csv"})
    with pytest.raises(InvalidApproval):
        ask(org, "analyst", "report_generation", {"report_type": "aging"})
    approval = ask(org, "analyst", "report_generation", {"report_type": "aging", "format": "csv"})
    assert approval.status is ApprovalStatus.PENDING


def test_decline_needs_comment_and_cancel_is_requester_only(org: Org) -> None:
    approval = ask(org, "analyst", "report_generation", {"report_type": "sla", "format": "pdf"})
    with pytest.raises(InvalidApproval):
        requests.decline_request(org.services, org.p("supervisor"), approval.id, "  ")
    with pytest.raises(OnlyRequesterMayCancel):
        requests.cancel_request(org.services, org.p("analyst2"), approval.id)
    requests.cancel_request(org.services, org.p("analyst"), approval.id, "not needed")
    assert requests.get_approval(org.services, org.p("supervisor"), approval.id).approval.status \
        is ApprovalStatus.CANCELLED


def test_user_onboarding_creates_the_user_on_approval(org: Org) -> None:
    approval = ask(org, "admin", "user_onboarding", {"email": "New@X.test", "name": "Newton", "role": "auditor"})
    with org.uow() as uow:
        assert uow.users.get_by_email("new@x.test") is None
    view = requests.approve_request(org.services, org.p("supervisor"), approval.id)
    with org.uow() as uow:
        created = uow.users.get(view.effect.resource_id)
    assert created.email == "new@x.test" and created.role == "auditor" and created.created_by == org.p("admin").user_id
    with pytest.raises(EmailAlreadyRegistered):
        ask(org, "admin", "user_onboarding", {"email": "NEW@x.test", "name": "Twin", "role": "analyst"})
    again = ask(org, "admin", "user_onboarding", {"email": "other@x.test", "name": "O", "role": "analyst"})
    org.add_user("other", "analyst")  # the address gets taken meanwhile ...
    with org.uow() as uow:
        user = uow.users.get(org.users["other"].id)
        user.email = "other@x.test"
        uow.users.update(user)
        uow.commit()
    with pytest.raises(EmailAlreadyRegistered):  # ... so approving fails, and changes nothing
        requests.approve_request(org.services, org.p("supervisor"), again.id)
    assert requests.get_approval(org.services, org.p("admin"), again.id).approval.status is ApprovalStatus.PENDING


def test_ledger_posting_is_exported_when_approved(org: Org) -> None:
    entries = [{"account": "1001", "direction": "debit", "amount_minor": 2500},
               {"account": "2002", "direction": "credit", "amount_minor": 2500, "narration": "fix"}]
    approval = ask(org, "analyst", "ledger_posting", {"currency": "NGN", "entries": entries})
    view = requests.approve_request(org.services, org.p("supervisor"), approval.id)
    assert view.effect.kind == "ledger_export_queued"
    assert org.outbox("export_ledger_posting") == [{"approval_id": str(approval.id)}]
    storage = org.container.storage
    key = workflow_jobs.export_ledger_posting(org.services, storage, org.organization_id, approval.id)
    with storage.open(key) as stream:
        text = stream.read().decode()
    assert "1001,debit,2500,NGN" in text and text.count("\n") == 3
    stored = requests.get_approval(org.services, org.p("analyst"), approval.id).approval
    assert stored.metadata["export"]["status"] == "exported" and stored.metadata["export"]["key"] == key


def test_rule_lifecycle_create_change_deactivate_through_approvals(org: Org) -> None:
    with pytest.raises(PermissionDenied):
        rule_cases.create_rule(org.services, org.p("analyst"), name="By reference", definition=EXACT)
    with pytest.raises(ValidationFailed) as caught:
        rule_cases.create_rule(org.services, org.p("admin"), name="Bad", definition={**EXACT, "rule_type": "magic"})
    assert caught.value.details[0].field == "definition.rule_type"
    created = rule_cases.create_rule(org.services, org.p("admin"), name="By reference", definition=EXACT)
    assert not created.rule.is_active and created.version.status is VersionStatus.PENDING
    with pytest.raises(rule_cases.RuleNameTaken):
        rule_cases.create_rule(org.services, org.p("admin"), name="By reference", definition=EXACT)
    with pytest.raises(ChangeAlreadyPending):
        rule_cases.update_rule(org.services, org.p("admin"), created.rule.id, definition=EXACT)
    requests.approve_request(org.services, org.p("supervisor"), created.approval.id)
    view = rule_cases.get_rule(org.services, org.p("analyst"), created.rule.id)
    assert view.rule.is_active and view.rule.approval_id == created.approval.id and view.rule.approved_at
    assert view.versions[0].status is VersionStatus.ACTIVE
    change = rule_cases.update_rule(org.services, org.p("admin"), created.rule.id,
                                    definition={**EXACT, "tolerance_amount": "5.00"})
    requests.decline_request(org.services, org.p("supervisor"), change.approval.id, "too loose")
    view = rule_cases.get_rule(org.services, org.p("admin"), created.rule.id)
    assert [v.status for v in view.versions] == [VersionStatus.ACTIVE, VersionStatus.RETIRED]
    assert view.rule.tolerance_amount is not None and str(view.rule.tolerance_amount) == "0.50"
    off = rule_cases.deactivate_rule(org.services, org.p("admin"), created.rule.id)
    assert rule_cases.get_rule(org.services, org.p("admin"), created.rule.id).rule.is_active  # not yet
    requests.approve_request(org.services, org.p("supervisor2"), off.approval.id)
    view = rule_cases.get_rule(org.services, org.p("admin"), created.rule.id)
    assert not view.rule.is_active
    assert [v.status for v in view.versions] == [VersionStatus.RETIRED, VersionStatus.RETIRED, VersionStatus.ACTIVE]
    assert rule_cases.list_rules(org.services, org.p("admin"), active_only=True).total == 0


def test_rule_change_via_post_approvals_and_subject_for_checker(org: Org) -> None:
    approval = ask(org, "admin", "rule_configuration", {"action": "create", "definition": {**EXACT, "name": "Ref"}})
    view = requests.get_approval(org.services, org.p("supervisor"), approval.id)
    assert view.subject["rule"].name == "Ref" and view.subject["versions"][0].status is VersionStatus.PENDING


def test_two_checkers_at_once_one_wins(org: Org) -> None:
    approval = ask(org, "admin", "system_setting", {"key": "workflow", "value": {"sla_hours": {"high": 12}}})
    barrier = threading.Barrier(2)
    results: list[object] = []

    def decide(who: str, approve: bool) -> None:
        barrier.wait()
        try:
            if approve:
                requests.approve_request(org.services, org.p(who), approval.id)
            else:
                requests.decline_request(org.services, org.p(who), approval.id, "no")
            results.append("ok")
        except ApprovalAlreadyDecided as exc:
            results.append(exc)

    threads = [threading.Thread(target=decide, args=("supervisor", True)),
               threading.Thread(target=decide, args=("supervisor2", False))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(r).__name__ for r in results) == ["ApprovalAlreadyDecided", "str"]


def test_other_tenant_cannot_see_or_decide(org: Org) -> None:
    approval = ask(org, "admin", "system_setting", {"key": "workflow", "value": {}})
    other = memory_org(org.container)
    from reckai.application.errors import NotFound

    with pytest.raises(NotFound):
        requests.approve_request(other.services, other.p("supervisor"), approval.id)
    assert requests.list_approvals(other.services, other.p("admin")).total == 0
    assert uuid.UUID(str(approval.id))
