"""Reports (issue 14 section 2; docs/reports.md): what the spec's `reports` table lacks.

- `status` (pending -> running -> completed | failed; completed -> expired | deleted), the
  failure's `error_message`, the report's period (`period_start`, `period_end`, dates in the
  organization's time zone), the file's `sha256`, `data_as_of` (the moment the figures were read),
  `completed_at`, `approval_id` (set when a checker authorised the generation) and `updated_at`.
- `storage_path` is fixed when the row is created and unique; a report's object is written once.
- `job_id` no longer blocks deleting a job: the report keeps its file, the link becomes NULL.

`reports_expired_organizations(timestamp)` (SECURITY DEFINER, owned by reckai_system): the ids of
organizations with a completed report whose `expires_at` has passed, for the expiry job. Ids only.

Revision ID: 0018_reports
Revises: 0014_exception_search
"""

from __future__ import annotations

from alembic import op

revision = "0018_reports"
down_revision = "0014_exception_search"
branch_labels = None
depends_on = None

APP = "reckai_app"
SYSTEM = "reckai_system"
EXPIRED = "reports_expired_organizations(timestamp without time zone)"

EXPIRED_BODY = """
CREATE FUNCTION reports_expired_organizations(p_now timestamp without time zone)
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT r.organization_id FROM public.reports r
     WHERE r.status = 'completed' AND r.expires_at <= p_now
$$;
"""


def upgrade() -> None:
    op.execute("""
ALTER TABLE reports
    ADD COLUMN status VARCHAR(20) NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'expired', 'deleted')),
    ADD COLUMN error_message TEXT,
    ADD COLUMN period_start DATE,
    ADD COLUMN period_end DATE,
    ADD COLUMN sha256 CHAR(64),
    ADD COLUMN data_as_of TIMESTAMP,
    ADD COLUMN completed_at TIMESTAMP,
    ADD COLUMN approval_id UUID REFERENCES approvals(id),
    ADD COLUMN updated_at TIMESTAMP DEFAULT NOW(),
    ADD CONSTRAINT reports_period_order CHECK (period_end IS NULL OR period_start IS NULL
                                                OR period_start <= period_end),
    ADD CONSTRAINT reports_storage_path_unique UNIQUE (storage_path)
""")
    op.execute("ALTER TABLE reports DROP CONSTRAINT reports_job_id_fkey")
    op.execute("ALTER TABLE reports ADD CONSTRAINT reports_job_id_fkey FOREIGN KEY (job_id)"
               " REFERENCES reconciliation_jobs(id) ON DELETE SET NULL")
    op.execute("CREATE INDEX idx_reports_expiry ON reports(expires_at) WHERE status = 'completed'")
    op.execute("CREATE INDEX idx_reports_org_requested ON reports(organization_id, generated_at DESC, id DESC)")
    op.execute("CREATE INDEX idx_reports_approval ON reports(approval_id)")  # every foreign key has an index
    op.execute(EXPIRED_BODY)
    op.execute(f"GRANT SELECT ON reports TO {SYSTEM}")
    op.execute(f"GRANT CREATE ON SCHEMA public TO {SYSTEM}")  # to own the function, as 0007 does
    op.execute(f"ALTER FUNCTION {EXPIRED} OWNER TO {SYSTEM}")
    op.execute(f"REVOKE ALL ON FUNCTION {EXPIRED} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {EXPIRED} TO {APP}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {SYSTEM}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {EXPIRED}")
    op.execute(f"REVOKE SELECT ON reports FROM {SYSTEM}")
    op.execute("DROP INDEX IF EXISTS idx_reports_approval")
    op.execute("DROP INDEX IF EXISTS idx_reports_org_requested")
    op.execute("DROP INDEX IF EXISTS idx_reports_expiry")
    op.execute("ALTER TABLE reports DROP CONSTRAINT reports_job_id_fkey")
    op.execute("ALTER TABLE reports ADD CONSTRAINT reports_job_id_fkey FOREIGN KEY (job_id)"
               " REFERENCES reconciliation_jobs(id)")
    op.execute("""
ALTER TABLE reports
    DROP CONSTRAINT reports_storage_path_unique,
    DROP CONSTRAINT reports_period_order,
    DROP COLUMN updated_at, DROP COLUMN approval_id, DROP COLUMN completed_at, DROP COLUMN data_as_of,
    DROP COLUMN sha256, DROP COLUMN period_end, DROP COLUMN period_start, DROP COLUMN error_message,
    DROP COLUMN status
""")
