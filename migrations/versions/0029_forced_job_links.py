"""A forced job's exceptions link to the earlier job's (issue 15 item 3; docs/reconciliation-jobs.md
"Re-run", docs/decisions/forced-job-inheritance.md).

exceptions.inherited_from: the exception of the earlier job (`previous_job_id`) with the same key
(type, left file and row, right file and row) whose state this one took when its forced job
persisted; NULL for every other exception. ON DELETE SET NULL: deleting the earlier job keeps the
later one (its history entry still names the earlier exception and job). Indexed (a foreign key).
RLS is forced on `exceptions` already (0001); the app role's table-wide grants cover the column.

Revision ID: 0029_forced_job_links
Revises: 0028_data_exports
"""

from __future__ import annotations

from alembic import op

revision = "0029_forced_job_links"
down_revision = "0028_data_exports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE exceptions ADD COLUMN inherited_from UUID REFERENCES exceptions(id) ON DELETE SET NULL")
    op.execute("CREATE INDEX idx_exceptions_inherited_from ON exceptions(inherited_from)"
               " WHERE inherited_from IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS idx_exceptions_inherited_from")
    op.execute("ALTER TABLE exceptions DROP COLUMN inherited_from")
