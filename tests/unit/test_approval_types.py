"""Every approval type is complete (docs/architecture.md, "Adding an approval type"): a metadata
validator, the permission a maker needs, what a checker may read, and an effect handler that its
feature registers in bootstrap; and the migration history has exactly one head, so a new type's
CHECK-constraint migration revises the current one."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from reckai.application.approvals.handlers import ApprovalHandler, ApprovalHandlers, MissingApprovalHandler
from reckai.bootstrap import bootstrap_in_memory
from reckai.domain.approvals.metadata import _SCHEMAS
from reckai.domain.approvals.workflow import ApprovalEffect, ApprovalType
from reckai.domain.identity.permissions import APPROVAL_REQUEST_PERMISSION, APPROVAL_REVIEW_READS

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", list(ApprovalType), ids=lambda kind: kind.value)
def test_each_approval_type_has_a_validator_permissions_and_a_handler(kind: ApprovalType) -> None:
    assert kind in _SCHEMAS, "metadata validator (domain/approvals/metadata.py)"
    assert kind.value in APPROVAL_REQUEST_PERMISSION, "maker's permission (domain/identity/permissions.py)"
    assert kind.value in APPROVAL_REVIEW_READS, "checker's reads (domain/identity/permissions.py)"
    handler = bootstrap_in_memory().workflow.approval_handlers.get(kind)
    assert isinstance(handler, ApprovalHandler) and callable(handler.apply)


def test_bootstrap_refuses_an_approval_type_without_a_handler() -> None:
    handlers = ApprovalHandlers()
    first, *others = list(ApprovalType)
    for kind in others:
        handlers.register(kind, ApprovalHandler(apply=lambda uow, checker, approval, request: ApprovalEffect(
            "none", "approval", approval.id, {})))
    with pytest.raises(MissingApprovalHandler, match=first.value):
        handlers.require_all()
    with pytest.raises(MissingApprovalHandler):
        handlers.get(first)


def test_a_type_cannot_be_registered_twice() -> None:
    handlers = bootstrap_in_memory().workflow.approval_handlers
    with pytest.raises(ValueError, match="already has a handler"):
        handlers.register(ApprovalType.SYSTEM_SETTING, handlers.get(ApprovalType.SYSTEM_SETTING))


def test_the_migration_history_has_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini")))
    heads = script.get_heads()
    assert len(heads) == 1, f"migrations have {len(heads)} heads {heads}: a new migration must revise the current head"
