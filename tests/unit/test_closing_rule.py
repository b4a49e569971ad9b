"""One rule decides whether closing an exception needs a checker (issue 12, item 1;
docs/workflow.md "Closing an exception"): the domain's `closing_needs_checker`, reached from the
application only through closing.py, and every closing transition goes through `closing.close`."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from reckai.domain.exceptions.policy import (
    Closer,
    StakedAmount,
    WorkflowSettings,
    amount_band,
    closing_needs_checker,
    parse_workflow_settings,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "reckai"
CLOSING = SRC / "application" / "exceptions" / "closing.py"


def _sources() -> list[Path]:
    return [p for folder in ("application", "entrypoints") for p in (SRC / folder).rglob("*.py")]


def test_the_rule_is_asked_only_through_the_application_helper() -> None:
    callers = {p.relative_to(SRC).as_posix() for p in _sources() if "closing_needs_checker(" in p.read_text()}
    assert callers == {"application/exceptions/closing.py"}
    assert not [p for p in SRC.rglob("*.py") if "resolution_needs_approval" in p.read_text()]  # the old door


def test_every_resolve_or_ignore_transition_goes_through_close() -> None:
    closing_apply = re.compile(r"\.apply\(\s*(BreakAction\.)?(RESOLVE|IGNORE)\b|\.close_by_later_match\(at=")
    offenders = [p.relative_to(SRC).as_posix() for p in _sources()
                 if p != CLOSING and closing_apply.search(p.read_text())]
    assert offenders == []


def test_a_closing_by_a_later_match_never_needs_a_checker_and_a_person_s_still_does() -> None:
    """A stream's later run closing an exception whose row it matched is a system action (issue 15,
    docs/streams.md): the same rule answers, for that closer, that no checker is needed."""
    settings = WorkflowSettings(resolution_thresholds={"NGN": Decimal(1000)})
    stake = [StakedAmount(Decimal(250000), "NGN")]
    assert closing_needs_checker(settings, stake).needs_checker
    assert not closing_needs_checker(settings, stake, Closer.LATER_MATCH).needs_checker


def test_the_larger_absolute_stored_amount_in_its_currency_decides() -> None:
    settings = parse_workflow_settings({"workflow": {"resolution_approval_threshold": {"NGN": "100000.00",
                                                                                       "*": "500.00"}}})
    mismatch = [StakedAmount(Decimal("50.00"), "NGN"), StakedAmount(Decimal("250050.00"), "NGN"),
                StakedAmount(Decimal("250000.00"), "NGN")]
    decided = closing_needs_checker(settings, mismatch)
    assert decided.needs_checker and decided.amount == Decimal("250050.00") and decided.currency == "NGN"
    assert not closing_needs_checker(settings, [StakedAmount(Decimal("-99999.99"), "ngn")]).needs_checker
    assert closing_needs_checker(settings, [StakedAmount(Decimal("-100000.00"), "NGN")]).needs_checker
    assert closing_needs_checker(settings, [StakedAmount(Decimal("10.00"), "NGN"),
                                            StakedAmount(Decimal("600.00"), "USD")]).currency == "USD"
    assert not closing_needs_checker(WorkflowSettings(), mismatch).needs_checker  # no threshold set


def test_amount_bands() -> None:
    assert amount_band(Decimal("2399.74"), "NGN") == "NGN under 10,000"
    assert amount_band(Decimal("-250050.00"), "NGN") == "NGN 100,000 to 1,000,000"
    assert amount_band(Decimal(100000000), "NGN") == "NGN 100,000,000 or more"
    assert amount_band(None, None) == "no amount"


def test_every_approval_type_snapshots_its_subject_and_every_request_is_stamped() -> None:
    from reckai.bootstrap import bootstrap_in_memory
    from reckai.domain.approvals.workflow import ApprovalType

    handlers = bootstrap_in_memory().workflow.approval_handlers
    assert [t.value for t in ApprovalType if handlers.get(t).snapshot is None] == []
    unstamped = [p.relative_to(SRC).as_posix() for p in _sources()
                 if "Approval.request(" in p.read_text() and "stamp_snapshot(" not in p.read_text()]
    assert unstamped == []
