"""The permission matrix: the one place that says which role may do what.

`SPEC_MATRIX` is spec §2.2 verbatim. `EXTENSIONS` adds the rows the spec leaves out, as issue 3
decides (docs/identity.md, "Permission matrix", explains each):

- files follow reconciliations (`files:read|write|delete` = `reconciliations:read|write|delete`),
- streams follow reconciliations too (`streams:read|write` = `reconciliations:read|write`; issue 15),
- matching rules follow settings (`rules:read|write` = `settings:read|write`),
- audit logs are read by admin and auditor (`audit:read`),
- an approved ledger posting's CSV is read by the approval's readers and by auditors
  (`ledger_postings:read`),
- every role manages its own account: profile, password, MFA, sessions (`account:self`),
- `approvals:create` is held by every role that can write something an approval may concern; the
  finer check, "may this role request *this* type of approval", is `may_request_approval`,
- a checker (holder of `approvals:approve`) may read what an approval it may decide refers to,
  even without the general read permission: `may_read_for_review`.

Permission names are those of §2.2 (`reconciliations:read`), which is also how they appear in the
access token's `permissions` claim.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum


class Role(str, Enum):
    ADMIN = "admin"
    ANALYST = "analyst"
    AUDITOR = "auditor"
    SUPERVISOR = "supervisor"


ADMIN, ANALYST, AUDITOR, SUPERVISOR = Role.ADMIN, Role.ANALYST, Role.AUDITOR, Role.SUPERVISOR
ALL_ROLES: frozenset[Role] = frozenset(Role)


class UnknownRole(ValueError):
    def __init__(self, role: object) -> None:
        super().__init__(f"unknown role {role!r}; roles are {', '.join(r.value for r in Role)}")
        self.role = role


class UnknownPermission(ValueError):
    """A permission name that is not in the matrix: a typo in a route guard must fail loudly."""

    def __init__(self, permission: str) -> None:
        super().__init__(f"unknown permission {permission!r}")
        self.permission = permission


# Spec §2.2, row for row.
SPEC_MATRIX: Mapping[str, frozenset[Role]] = {
    "reconciliations:read": frozenset({ADMIN, ANALYST, AUDITOR}),
    "reconciliations:write": frozenset({ADMIN, ANALYST}),
    "reconciliations:delete": frozenset({ADMIN}),
    "exceptions:read": frozenset({ADMIN, ANALYST, AUDITOR}),
    "exceptions:write": frozenset({ADMIN, ANALYST}),
    "exceptions:resolve": frozenset({ADMIN, ANALYST}),
    "approvals:read": frozenset({ADMIN, ANALYST, SUPERVISOR}),
    "approvals:approve": frozenset({ADMIN, SUPERVISOR}),
    "users:read": frozenset({ADMIN}),
    "users:write": frozenset({ADMIN}),
    "users:delete": frozenset({ADMIN}),
    "settings:read": frozenset({ADMIN, ANALYST}),
    "settings:write": frozenset({ADMIN}),
    "reports:read": frozenset({ADMIN, ANALYST, AUDITOR}),
    "reports:generate": frozenset({ADMIN, ANALYST}),
}

# Approval types (spec §1 `approvals.type`) -> the permission a maker needs to request one: the
# permission to write what the approval concerns.
APPROVAL_REQUEST_PERMISSION: Mapping[str, str] = {
    "rule_configuration": "rules:write",
    "ledger_posting": "exceptions:resolve",
    "user_onboarding": "users:write",
    "exception_resolution": "exceptions:resolve",
    "report_generation": "reports:generate",
    "system_setting": "settings:write",
    # a stream's period (issue 15 item 4): whoever runs the stream (admin, analyst) asks
    "period_close": "streams:write",
    "period_adjustment": "streams:write",
    "period_reopen": "streams:write",
    "data_export": "settings:write",  # admin only: the whole organization's data
    "data_erasure": "users:delete",  # admin only: erasing a person's data
}

# Approval types -> what a checker must be able to read to decide one.
APPROVAL_REVIEW_READS: Mapping[str, frozenset[str]] = {
    "rule_configuration": frozenset({"rules:read", "settings:read"}),
    "ledger_posting": frozenset({"exceptions:read", "reconciliations:read", "files:read"}),
    "user_onboarding": frozenset({"users:read"}),
    "exception_resolution": frozenset({"exceptions:read", "reconciliations:read", "files:read"}),
    "report_generation": frozenset({"reports:read", "reconciliations:read"}),
    "system_setting": frozenset({"settings:read"}),
    "period_close": frozenset({"streams:read", "exceptions:read", "reconciliations:read"}),
    "period_adjustment": frozenset({"streams:read", "exceptions:read", "reconciliations:read"}),
    "period_reopen": frozenset({"streams:read", "exceptions:read", "reconciliations:read"}),
    "data_export": frozenset({"approvals:read"}),  # the request itself: scope, requester
    "data_erasure": frozenset({"users:read"}),  # whom the request would erase
}


def _same_as(permission: str) -> frozenset[Role]:
    return SPEC_MATRIX[permission]


def _approval_makers() -> frozenset[Role]:
    base = {**SPEC_MATRIX, "rules:write": _same_as("settings:write"),
            "streams:write": _same_as("reconciliations:write")}
    return frozenset(role for perm in APPROVAL_REQUEST_PERMISSION.values() for role in base[perm])


EXTENSIONS: Mapping[str, frozenset[Role]] = {
    "files:read": _same_as("reconciliations:read"),
    "files:write": _same_as("reconciliations:write"),
    "files:delete": _same_as("reconciliations:delete"),
    # streams (issue 15) are long-lived reconciliations: the same roles read and run them
    "streams:read": _same_as("reconciliations:read"),
    "streams:write": _same_as("reconciliations:write"),
    "rules:read": _same_as("settings:read"),
    "rules:write": _same_as("settings:write"),
    "audit:read": frozenset({ADMIN, AUDITOR}),
    # the approved ledger-posting CSV: whoever may read the approval, and auditors (issue 14)
    "ledger_postings:read": _same_as("approvals:read") | frozenset({AUDITOR}),
    "approvals:create": _approval_makers(),
    "account:self": ALL_ROLES,
}

PERMISSION_MATRIX: Mapping[str, frozenset[Role]] = {**SPEC_MATRIX, **EXTENSIONS}
ALL_PERMISSIONS: frozenset[str] = frozenset(PERMISSION_MATRIX)


def parse_role(role: Role | str) -> Role:
    if isinstance(role, Role):
        return role
    try:
        return Role(role)
    except ValueError:
        raise UnknownRole(role) from None


def _known(permission: str) -> str:
    if permission not in PERMISSION_MATRIX:
        raise UnknownPermission(permission)
    return permission


def permissions_for(role: Role | str) -> frozenset[str]:
    """Every permission the role holds; this is what goes into the access token."""
    parsed = parse_role(role)
    return frozenset(perm for perm, roles in PERMISSION_MATRIX.items() if parsed in roles)


def has_permission(role: Role | str, permission: str) -> bool:
    return parse_role(role) in PERMISSION_MATRIX[_known(permission)]


def may_request_approval(role: Role | str, approval_type: str) -> bool:
    """A maker may request an approval only for what it may itself write."""
    try:
        needed = APPROVAL_REQUEST_PERMISSION[approval_type]
    except KeyError:
        raise ValueError(f"unknown approval type {approval_type!r}") from None
    return has_permission(role, needed)


def may_read_for_review(role: Role | str, approval_type: str, permission: str) -> bool:
    """May `role` read data guarded by `permission` because it may decide an approval of this type?

    True when the role holds the permission anyway, or when it holds `approvals:approve` and the
    permission is one that deciding this type of approval needs. The caller must also check that
    the data is what a pending approval in the caller's organization refers to.
    """
    if has_permission(role, permission):
        return True
    if approval_type not in APPROVAL_REVIEW_READS:
        raise ValueError(f"unknown approval type {approval_type!r}")
    return has_permission(role, "approvals:approve") and permission in APPROVAL_REVIEW_READS[approval_type]
