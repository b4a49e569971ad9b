"""Bulk persistence of a reconciliation job's results (docs/reconciliation-jobs.md "Bulk persistence").

exceptions: the trigger `exceptions_set_due_at` (0007_workflow) now fires only for rows inserted
without a `due_at` (`WHEN (NEW.due_at IS NULL)`). Its function already left such rows alone, but a
row trigger is still a PL/pgSQL call per row; the job's bulk insert computes `due_at` itself, set-based,
with the same formula (`created_at + exceptions_sla_hours(organization settings, severity)` hours),
so a job's tens of thousands of exceptions no longer pay one function call and one organizations
lookup each. Single-row inserts without `due_at` behave exactly as before. `idx_exceptions_job_type`
(0006) goes: every lookup by job is served by the spec's `idx_exceptions_job` (and 0007's
`(job_id, left_row|right_row)`), and each index costs every bulk-inserted row one more insertion.

reconciliation_matches: `status` and `group_key` use the "C" collation. Their values are fixed
ASCII words and keys, compared for equality only, and the paging index
`(job_id, status, left_row, right_row)` no longer calls the locale's strcoll for each comparison
while a million rows are inserted.

Revision ID: 0009_bulk_persist
Revises: 0008_file_sweeper
"""

from __future__ import annotations

from alembic import op

revision = "0009_bulk_persist"
down_revision = "0008_file_sweeper"
branch_labels = None
depends_on = None


def _due_at_trigger(condition: str) -> None:
    op.execute("DROP TRIGGER IF EXISTS exceptions_set_due_at ON exceptions")
    op.execute(f"CREATE TRIGGER exceptions_set_due_at BEFORE INSERT ON exceptions FOR EACH ROW {condition}"
               " EXECUTE FUNCTION exceptions_set_due_at()")


def upgrade() -> None:
    _due_at_trigger("WHEN (NEW.due_at IS NULL)")
    op.execute("DROP INDEX IF EXISTS idx_exceptions_job_type")
    op.execute('ALTER TABLE reconciliation_matches ALTER COLUMN status TYPE VARCHAR(20) COLLATE "C",'
               ' ALTER COLUMN group_key TYPE VARCHAR(100) COLLATE "C"')


def downgrade() -> None:
    op.execute('ALTER TABLE reconciliation_matches ALTER COLUMN status TYPE VARCHAR(20) COLLATE "default",'
               ' ALTER COLUMN group_key TYPE VARCHAR(100) COLLATE "default"')
    op.execute("CREATE INDEX idx_exceptions_job_type ON exceptions(job_id, type)")
    _due_at_trigger("")
