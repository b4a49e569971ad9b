"""A pair a person declined is remembered for the organization, and later jobs on the same files
neither suggest nor auto-match it again (issue 7; docs/workflow.md, Manual matching). In memory:
the job, the decline use case and the declined-pairs memory are the real use cases and adapters."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from reckai.adapters.memory.scanner import InMemoryScanner
from reckai.application.context import Caller
from reckai.application.context import Caller as FileCaller
from reckai.application.exceptions.matching import decline_suggestion
from reckai.application.ports.reconciliations import RuleVersion
from reckai.application.reconciliations.commands import StartRequest, start_reconciliation
from reckai.application.reconciliations.queries import get_reconciliation
from reckai.application.reconciliations.services import ReconciliationServices
from reckai.application.reconciliations.worker import run_reconciliation_attempt
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.domain.exceptions.manual_matching import DeclinedPair, RowRef
from reckai.domain.identity.permissions import permissions_for
from reckai.domain.identity.principal import Principal
from reckai.settings import ReconciliationSettings
from tests.contracts.identity_repositories import signup
from tests.support import reconciliation_jobs as rj
from tests.unit.test_reconciliation_jobs_use_cases import _upload

# Exact RRN with an auto-match threshold of 1.0: pairs a day apart come out as suggestions, same-day
# pairs as auto matches, so one job yields both.
STRICT_RULE = {"rule_type": "exact", "priority": 10, "date_tolerance_days": 2,
               "field_mappings": [{"left": "reference", "right": "reference"}],
               "conditions": {"right": [{"field": "status", "op": "eq", "value": "success"}],
                              "date_direction": "left_on_or_after_right", "auto_match_threshold": 1.0}}


@dataclasses.dataclass
class World:
    container: Container
    services: ReconciliationServices
    caller: Caller
    principal: Principal
    left_id: uuid.UUID
    right_id: uuid.UUID
    rule_id: uuid.UUID

    def run_job(self, name: str) -> uuid.UUID:
        body = rj.start_body(self.left_id, self.right_id, name=name)
        job = start_reconciliation(self.services, self.caller, StartRequest(
            name=name, left_file_id=self.left_id, right_file_id=self.right_id, rule_ids=[self.rule_id],
            leading_side=body["leading_side"], period_start=rj.PERIOD[0], period_end=rj.PERIOD[1],
            options=body["options"], force=True))
        assert run_reconciliation_attempt(self.services, self.caller.organization_id, job.id, 1, "w1") == "completed"
        return job.id  # type: ignore[no-any-return]

    def pairs(self, job_id: uuid.UUID, status: str) -> set[tuple[int, int]]:
        with self.container.database.unit_of_work(self.caller.organization_id) as uow:
            found = uow.reconciliation_results.list_matches(job_id, status=status, limit=100_000)
        return {(m.left_row, m.right_row) for m in found}


@pytest.fixture
def world() -> World:
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    created, _ = signup(container.database)
    file_caller = FileCaller(organization_id=created.organization_id, user_id=created.admin_user_id)
    profile = rj.profile()
    left = _upload(container, file_caller, rj.bank_bytes(), "bank.csv", "bank", profile["left"]["mapping"])
    right = _upload(container, file_caller, rj.switch_bytes(), "switch.csv", "switch", profile["right"]["mapping"])
    rule = RuleVersion(rule_id=uuid.uuid4(), version=1, name="rrn-strict", definition=STRICT_RULE,
                       applies_to=("bank", "switch"))
    with container.database.unit_of_work(created.organization_id) as uow:
        uow.matching_rules.add_version(rule, created_by=created.admin_user_id, priority=10)
        uow.commit()
    services = dataclasses.replace(container.reconciliations,
                                   settings=ReconciliationSettings(lease_seconds=30, heartbeat_seconds=0.05))
    principal = Principal(created.admin_user_id, created.organization_id, "admin", permissions_for("admin"), None,
                          "jti", "admin@example.com", True)
    return World(container, services, Caller(created.organization_id, created.admin_user_id), principal,
                 left, right, rule.rule_id)


def test_a_declined_suggestion_and_a_declined_pair_are_not_matched_by_the_next_job(world: World) -> None:
    first = world.run_job("first")
    suggested, auto = world.pairs(first, "suggested"), world.pairs(first, "auto")
    assert suggested and auto
    declined_suggestion = min(suggested)
    workflow: Any = world.container.workflow
    group = decline_suggestion(workflow, world.principal, first, *declined_suggestion, "different cardholders")
    assert group.status == "declined"
    # A pair declined earlier (e.g. when another job suggested it) must not be auto-matched either.
    declined_auto = min(auto)
    with world.container.database.unit_of_work(world.caller.organization_id) as uow:
        uow.declined_pairs.add(DeclinedPair(world.caller.organization_id, RowRef(world.left_id, declined_auto[0]),
                                            RowRef(world.right_id, declined_auto[1]), world.principal.user_id,
                                            workflow.now(), first, "not the same payment"))
        uow.commit()

    second = world.run_job("second")
    again = world.pairs(second, "suggested") | world.pairs(second, "auto")
    assert declined_suggestion not in again and declined_auto not in again
    # Everything not involving the four affected rows is matched as before.
    affected_left = {declined_suggestion[0], declined_auto[0]}
    affected_right = {declined_suggestion[1], declined_auto[1]}

    def untouched(pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
        return {p for p in pairs if p[0] not in affected_left and p[1] not in affected_right}

    assert untouched(again) == untouched(suggested | auto)
    job = get_reconciliation(world.services, world.caller, second).job
    assert job.summary["declined_pairs_excluded"] == 2
    assert get_reconciliation(world.services, world.caller, first).job.summary["declined_pairs_excluded"] == 0
    # The rows of the declined pairs are not lost: they are exceptions of the second job.
    with world.container.database.unit_of_work(world.caller.organization_id) as uow:
        rows = uow.reconciliation_results.exception_rows(second)
    in_exceptions = {(r.get("left_row"), r.get("right_row")) for r in rows}
    assert any(left == declined_auto[0] or right == declined_auto[1] for left, right in in_exceptions)


def test_declining_the_same_suggestion_twice_is_refused_and_other_files_are_unaffected(world: World) -> None:
    first = world.run_job("first")
    pair = min(world.pairs(first, "suggested"))
    workflow: Any = world.container.workflow
    decline_suggestion(workflow, world.principal, first, *pair, None)
    from reckai.domain.exceptions.manual_matching import MatchStateError

    with pytest.raises(MatchStateError):
        decline_suggestion(workflow, world.principal, first, *pair, None)
    with world.container.database.unit_of_work(world.caller.organization_id) as uow:
        # Remembered once, keyed by the files: a job on other files does not see it.
        assert uow.declined_pairs.declined_among([world.left_id], [world.right_id]) == {
            (RowRef(world.left_id, pair[0]), RowRef(world.right_id, pair[1]))}
        assert uow.declined_pairs.declined_among([world.right_id], [world.left_id]) == set()


def test_the_memory_match_repository_reads_the_jobs_own_results_like_postgresql(world: World) -> None:
    """Linking rows the engine already auto-matched is refused, as on PostgreSQL."""
    from reckai.application.exceptions.matching import LinkRow, link_rows
    from reckai.domain.exceptions.manual_matching import MatchStateError

    job_id = world.run_job("first")
    left_row, right_row = min(world.pairs(job_id, "auto"))
    workflow: Any = world.container.workflow
    with pytest.raises(MatchStateError):
        link_rows(workflow, world.principal, job_id, [LinkRow("left", left_row), LinkRow("right", right_row)], None)
    with world.container.database.unit_of_work(world.caller.organization_id) as uow:
        assert uow.matches.job_files(job_id) == {"left": world.left_id, "right": world.right_id}
        assert uow.matches.matched_rows(job_id, [RowRef(world.left_id, left_row)]) == {RowRef(world.left_id, left_row)}
