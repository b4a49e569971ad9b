"""Segregation of duties: who last changed a user's account, and when (issue 12).

`users.last_changed_by` / `last_changed_at` record the administrator who last changed the
account's role, activation or e-mail, or reset its password or MFA (`created_by` / `created_at`
already record who created it). A user may not check the requests of the person who created or
last changed their account within the organization's cooling-off period (docs/workflow.md,
"Segregation of duties"). Existing rows start with NULL: nothing is known about their past changes.
The table's grants and row-level security cover the new columns. `adapters/postgres/tables.py`
mirrors 0001, so the repositories read and write them through `tables.users_current`.

Revision ID: 0011_account_changes
Revises: 0010_exceptions_by_job
"""

from __future__ import annotations

from alembic import op

revision = "0011_account_changes"
down_revision = "0010_exceptions_by_job"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE users ADD COLUMN last_changed_by UUID REFERENCES users(id)")
    op.execute("ALTER TABLE users ADD COLUMN last_changed_at TIMESTAMP")  # UTC, as every timestamp here
    # Every foreign key has an index leading with its columns (tests/integration/test_schema.py).
    op.execute("CREATE INDEX idx_users_last_changed_by ON users(last_changed_by)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS idx_users_last_changed_by")
    op.execute("ALTER TABLE users DROP COLUMN IF EXISTS last_changed_at")
    op.execute("ALTER TABLE users DROP COLUMN IF EXISTS last_changed_by")
