"""A job's exceptions enter two indexes fewer: the spec's `assigned_to` and `resolved_by` indexes
hold only the rows that have a value (issue 13, docs/reconciliation-jobs.md "Bulk persistence").

A job writes its exceptions unassigned and unresolved, so every one of them added a NULL entry to
`idx_exceptions_assigned` and `idx_exceptions_resolved_by` that no query reads: `assigned_to = :user`
(and the foreign keys' checks, `assigned_to = $1` when a user is deleted) imply a value, which
PostgreSQL proves against the `IS NOT NULL` predicate, so both indexes serve them as before; the
"unassigned" list filters on `(organization_id, assigned_to, status)` (0007), which keeps NULLs.
The indexes keep their names and columns (the spec's).

Revision ID: 0012_bulk_exception_indexes
Revises: 0011_account_changes
"""

from __future__ import annotations

from alembic import op

revision = "0012_bulk_exception_indexes"
down_revision = "0011_account_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for name, column in (("idx_exceptions_assigned", "assigned_to"), ("idx_exceptions_resolved_by", "resolved_by")):
        op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(f"CREATE INDEX {name} ON exceptions({column}) WHERE {column} IS NOT NULL")


def downgrade() -> None:
    for name, column in (("idx_exceptions_assigned", "assigned_to"), ("idx_exceptions_resolved_by", "resolved_by")):
        op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(f"CREATE INDEX {name} ON exceptions({column})")
