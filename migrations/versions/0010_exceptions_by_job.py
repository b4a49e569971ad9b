"""Exceptions of one job, newest first, from an index (docs/workflow.md "List performance").

`GET /api/exceptions?job_id=...` (the default sort: created_at DESC, id DESC) had no index that
both selects the job and gives the order: PostgreSQL either walked the organization's
`idx_exceptions_org_created` from the newest row, skipping every newer job's exceptions (slow for
an older job), or read all the job's rows through the spec's `idx_exceptions_job` and sorted them
(158 ms for a job of 81,192 exceptions). `(organization_id, job_id, created_at DESC, id DESC)` serves
the first page and every keyset page of a job in a few index entries, whatever the job's age or
size. The organization leads (every list query has it, row-level security adds it too) so that
even before PostgreSQL has analyzed the table, with default estimates, one index condition covers
both equalities and the planner prefers it to a bitmap AND plus a sort.

Revision ID: 0010_exceptions_by_job
Revises: 0009_bulk_persist
"""

from __future__ import annotations

from alembic import op

revision = "0010_exceptions_by_job"
down_revision = "0009_bulk_persist"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX idx_exceptions_job_created ON exceptions(organization_id, job_id, created_at DESC, id DESC)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS idx_exceptions_job_created")
