"""The permission matrix: spec §2.2 verbatim plus the documented extensions (issue 3)."""

from __future__ import annotations

import pytest

from reckai.domain.identity.permissions import (
    ALL_PERMISSIONS,
    APPROVAL_REQUEST_PERMISSION,
    APPROVAL_REVIEW_READS,
    PERMISSION_MATRIX,
    Role,
    UnknownPermission,
    UnknownRole,
    has_permission,
    may_read_for_review,
    may_request_approval,
    permissions_for,
)

A, N, U, S = "admin", "analyst", "auditor", "supervisor"

# The whole expected matrix, written out by hand (not derived from the code under test).
EXPECTED: dict[str, set[str]] = {
    # spec §2.2
    "reconciliations:read": {A, N, U},
    "reconciliations:write": {A, N},
    "reconciliations:delete": {A},
    "exceptions:read": {A, N, U},
    "exceptions:write": {A, N},
    "exceptions:resolve": {A, N},
    "approvals:read": {A, N, S},
    "approvals:approve": {A, S},
    "users:read": {A},
    "users:write": {A},
    "users:delete": {A},
    "settings:read": {A, N},
    "settings:write": {A},
    "reports:read": {A, N, U},
    "reports:generate": {A, N},
    # extensions
    "files:read": {A, N, U},
    "files:write": {A, N},
    "files:delete": {A},
    "streams:read": {A, N, U},  # as reconciliations:read (issue 15)
    "streams:write": {A, N},
    "rules:read": {A, N},
    "rules:write": {A},
    "audit:read": {A, U},
    "approvals:create": {A, N},
    "account:self": {A, N, U, S},
    "ledger_postings:read": {A, N, U, S},  # issue 14: the approval's readers and auditors
}

CASES = [(role, perm, role in roles) for perm, roles in EXPECTED.items() for role in (A, N, U, S)]


@pytest.mark.parametrize(("role", "permission", "allowed"), CASES)
def test_every_role_and_permission(role: str, permission: str, allowed: bool) -> None:
    assert has_permission(role, permission) is allowed
    assert has_permission(Role(role), permission) is allowed


def test_matrix_has_exactly_the_expected_rows() -> None:
    assert set(PERMISSION_MATRIX) == set(EXPECTED) == ALL_PERMISSIONS


@pytest.mark.parametrize("role", [A, N, U, S])
def test_permissions_for_lists_exactly_the_role_rows(role: str) -> None:
    assert permissions_for(role) == {perm for perm, roles in EXPECTED.items() if role in roles}


def test_supervisor_only_approves_and_manages_itself() -> None:
    assert permissions_for(S) == {"approvals:read", "approvals:approve", "account:self", "ledger_postings:read"}


def test_unknown_role_and_permission_are_errors_not_denials() -> None:
    with pytest.raises(UnknownRole):
        permissions_for("root")
    with pytest.raises(UnknownRole):
        has_permission("Admin", "users:read")
    with pytest.raises(UnknownPermission):
        has_permission(A, "read:reconciliations")  # the spec's JWT example spelling is not a name


@pytest.mark.parametrize(
    ("role", "approval_type", "allowed"),
    [
        (A, "rule_configuration", True),
        (N, "rule_configuration", False),  # rules follow settings:write (admin)
        (N, "exception_resolution", True),
        (N, "ledger_posting", True),
        (N, "report_generation", True),
        (N, "user_onboarding", False),
        (N, "system_setting", False),
        (U, "exception_resolution", False),
        (U, "report_generation", False),
        (S, "exception_resolution", False),
        (A, "user_onboarding", True),
        (A, "period_close", True),  # a stream's period: whoever runs the stream (admin, analyst)
        (N, "period_close", True),
        (N, "period_adjustment", True),
        (N, "period_reopen", True),
        (U, "period_close", False),
        (S, "period_close", False),  # the supervisor is the checker
    ],
)
def test_approval_requests_open_to_who_can_write_the_subject(
    role: str, approval_type: str, allowed: bool
) -> None:
    assert may_request_approval(role, approval_type) is allowed


def test_approvals_create_is_held_by_every_possible_maker() -> None:
    makers = {
        role for role in (A, N, U, S) for t in APPROVAL_REQUEST_PERMISSION if may_request_approval(role, t)
    }
    assert makers == EXPECTED["approvals:create"]


def test_checker_reads_what_it_reviews_and_nothing_else() -> None:
    assert not has_permission(S, "exceptions:read")
    assert may_read_for_review(S, "exception_resolution", "exceptions:read")
    assert may_read_for_review(S, "exception_resolution", "reconciliations:read")
    assert not may_read_for_review(S, "exception_resolution", "users:read")
    assert not may_read_for_review(S, "system_setting", "exceptions:read")
    # a maker without approvals:approve gains nothing from an approval
    assert not may_read_for_review(U, "user_onboarding", "users:read")
    # holders of the permission keep it
    assert may_read_for_review(U, "system_setting", "exceptions:read")


def test_approval_tables_name_known_permissions_and_every_spec_type() -> None:
    spec_types = {
        "rule_configuration",
        "ledger_posting",
        "user_onboarding",
        "exception_resolution",
        "report_generation",
        "system_setting",
        # a stream's periods (issue 15 item 4): the types this project added to the spec's
        "period_close",
        "period_adjustment",
        "period_reopen",
    }
    spec_types |= {"data_export"}  # issue 17 item 6: an organization's data export
    spec_types |= {"data_erasure"}  # issue 17 item 5: a person's right to erasure
    assert set(APPROVAL_REQUEST_PERMISSION) == spec_types == set(APPROVAL_REVIEW_READS)
    assert set(APPROVAL_REQUEST_PERMISSION.values()) <= ALL_PERMISSIONS
    assert set().union(*APPROVAL_REVIEW_READS.values()) <= ALL_PERMISSIONS
    with pytest.raises(ValueError, match="unknown approval type"):
        may_request_approval(A, "coffee")


def test_identity_domain_imports_only_the_standard_library() -> None:
    import ast
    import sys
    from pathlib import Path

    import reckai.domain.identity as package

    mine = ("permissions.py", "password_policy.py", "mfa_rules.py", "tokens.py", "devices.py")
    for name in mine:
        tree = ast.parse((Path(package.__file__).parent / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                allowed = root in sys.stdlib_module_names or root == "__future__"
                allowed = allowed or (getattr(node, "module", None) or "").startswith("reckai.domain")
                assert allowed, f"{name} imports {root}"
