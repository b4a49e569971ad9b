"""Reconciliation jobs: attempts and leases, snapshot, period, results (docs/reconciliation-jobs.md).

reconciliation_jobs: `attempt`/`max_attempts` and a lease (`lease_owner`, `lease_expires_at`) so
at-least-once delivery is safe; `cancel_requested`; `snapshot` (the rule versions and mappings the
job runs with); `previous_job_id` (a re-run of the same files); the period, the leading side, the
current `stage`, `stage_seconds` and a `summary` of the results.

exceptions: the rows a break is about (`left_row`, `right_row`, their file ids), `amount_minor`
(the spec's DECIMAL `amount` stays, filled too) and `evidence`.

reconciliation_matches (new): one row per matched or suggested pair, written in bulk (COPY into a
temporary table, then one INSERT ... SELECT: COPY FROM cannot target a table under row-level
security). No foreign keys on purpose: a million RI checks would cost more than the whole write;
rows are removed with their job by the application (docs/reconciliation-jobs.md).

`reconciliation_find_stuck_jobs(integer, integer)` (SECURITY DEFINER, owned by reckai_system) lists
jobs of every organization whose lease expired, or that have waited too long in `pending`, for the
sweeper; it returns ids only and changes nothing. `reconciliation_store_matches(uuid, integer)`
moves the caller's COPYed match rows into reconciliation_matches for its own processing job.

Revision ID: 0006_reconciliation_jobs
Revises: 0005_files
"""

from __future__ import annotations

from alembic import op

revision = "0006_reconciliation_jobs"
down_revision = "0005_files"
branch_labels = None
depends_on = None

APP = "reckai_app"
SYSTEM = "reckai_system"
CURRENT_ORG = "NULLIF(current_setting('app.current_org_id', true), '')::uuid"
FIND_STUCK = "reconciliation_find_stuck_jobs(integer, integer)"
STORE_MATCHES = "reconciliation_store_matches(uuid, integer)"
MATCH_COLUMNS = ("status, group_key, left_row, right_row, rule, rule_version, confidence, amount_diff_minor, day_delta,"
                 " similarity_bp, left_key, right_key, members, fee_minor")

UPGRADE = """
ALTER TABLE reconciliation_jobs
    ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 10),
    ADD COLUMN lease_owner VARCHAR(200),
    ADD COLUMN lease_expires_at TIMESTAMP,
    ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN snapshot JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN previous_job_id UUID REFERENCES reconciliation_jobs(id) ON DELETE SET NULL,
    ADD COLUMN period_start DATE,
    ADD COLUMN period_end DATE,
    ADD COLUMN leading_side VARCHAR(10) CHECK (leading_side IN ('left', 'right')),
    ADD COLUMN stage VARCHAR(50),
    ADD COLUMN stage_seconds JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN summary JSONB,
    ADD CONSTRAINT reconciliation_jobs_period_check CHECK (period_end IS NULL OR period_start <= period_end);
CREATE INDEX idx_reconciliation_jobs_previous_job_id ON reconciliation_jobs(previous_job_id);
CREATE INDEX idx_reconciliation_jobs_lease ON reconciliation_jobs(lease_expires_at) WHERE status = 'processing';
CREATE INDEX idx_reconciliation_jobs_org_created ON reconciliation_jobs(organization_id, created_at DESC);

ALTER TABLE exceptions
    ADD COLUMN left_row INTEGER CHECK (left_row >= 1),
    ADD COLUMN right_row INTEGER CHECK (right_row >= 1),
    ADD COLUMN left_file_id UUID,
    ADD COLUMN right_file_id UUID,
    ADD COLUMN amount_minor BIGINT,
    ADD COLUMN evidence JSONB;
CREATE INDEX idx_exceptions_job_type ON exceptions(job_id, type);

CREATE TABLE reconciliation_matches (
    organization_id UUID NOT NULL,
    job_id UUID NOT NULL,
    attempt INTEGER NOT NULL,
    status VARCHAR(20) NOT NULL CHECK (status IN ('auto', 'suggested')),
    group_key VARCHAR(100),
    left_row INTEGER NOT NULL CHECK (left_row >= 1),
    right_row INTEGER NOT NULL CHECK (right_row >= 1),
    rule VARCHAR(255) NOT NULL,
    rule_version INTEGER NOT NULL,
    confidence NUMERIC(5,4) NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    amount_diff_minor BIGINT,
    day_delta INTEGER,
    similarity_bp INTEGER,
    left_key TEXT,
    right_key TEXT,
    members INTEGER,
    fee_minor BIGINT
);
CREATE INDEX idx_reconciliation_matches_job ON reconciliation_matches(job_id, status, left_row, right_row);
"""

FIND_STUCK_BODY = """
CREATE FUNCTION reconciliation_find_stuck_jobs(p_limit integer, p_pending_after_seconds integer)
RETURNS TABLE (job_id uuid, organization_id uuid, status varchar, attempt integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT j.id, j.organization_id, j.status, j.attempt
      FROM public.reconciliation_jobs j
     WHERE (j.status = 'processing' AND j.lease_expires_at < (now() AT TIME ZONE 'UTC'))
        OR (j.status = 'pending'
            AND j.updated_at < (now() AT TIME ZONE 'UTC') - make_interval(secs => greatest(p_pending_after_seconds, 0)))
     ORDER BY j.updated_at
     LIMIT greatest(p_limit, 0)
$$;
"""

# Moves the rows the caller COPYed into its temporary table pg_temp.reckai_match_stage into
# reconciliation_matches for the caller's tenant, without a row-level-security check per row (a
# million checks cost seconds). It checks instead, once, that the job is the tenant's and is being
# processed at this attempt; it can write nothing else.
STORE_MATCHES_BODY = f"""
CREATE FUNCTION reconciliation_store_matches(p_job_id uuid, p_attempt integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org uuid := {CURRENT_ORG};
    v_count bigint;
BEGIN
    IF v_org IS NULL OR NOT EXISTS (
        SELECT 1 FROM public.reconciliation_jobs
         WHERE id = p_job_id AND organization_id = v_org AND status = 'processing' AND attempt = p_attempt) THEN
        RAISE EXCEPTION 'job % is not being processed at attempt % for this organization', p_job_id, p_attempt
              USING ERRCODE = '42501';
    END IF;
    INSERT INTO public.reconciliation_matches (organization_id, job_id, attempt, {MATCH_COLUMNS})
    SELECT v_org, p_job_id, p_attempt, {MATCH_COLUMNS} FROM pg_temp.reckai_match_stage;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    op.execute("ALTER TABLE reconciliation_matches ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE reconciliation_matches FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON reconciliation_matches FOR ALL"
        f" USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})"
    )
    # Results are immutable once written: no UPDATE.
    op.execute(f"GRANT SELECT, INSERT, DELETE ON reconciliation_matches TO {APP}")
    op.execute(f"GRANT SELECT ON reconciliation_jobs TO {SYSTEM}")
    op.execute(f"GRANT INSERT ON reconciliation_matches TO {SYSTEM}")
    op.execute(f"GRANT CREATE ON SCHEMA public TO {SYSTEM}")
    for signature, body in ((FIND_STUCK, FIND_STUCK_BODY), (STORE_MATCHES, STORE_MATCHES_BODY)):
        op.execute(body)
        op.execute(f"ALTER FUNCTION {signature} OWNER TO {SYSTEM}")
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {SYSTEM}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {STORE_MATCHES}")
    op.execute(f"DROP FUNCTION IF EXISTS {FIND_STUCK}")
    op.execute(f"REVOKE SELECT ON reconciliation_jobs FROM {SYSTEM}")
    op.execute("DROP TABLE IF EXISTS reconciliation_matches")
    op.execute("DROP INDEX IF EXISTS idx_exceptions_job_type")
    op.execute(
        "ALTER TABLE exceptions DROP COLUMN evidence, DROP COLUMN amount_minor, DROP COLUMN right_file_id,"
        " DROP COLUMN left_file_id, DROP COLUMN right_row, DROP COLUMN left_row"
    )
    op.execute("DROP INDEX IF EXISTS idx_reconciliation_jobs_org_created")
    op.execute("DROP INDEX IF EXISTS idx_reconciliation_jobs_lease")
    op.execute("DROP INDEX IF EXISTS idx_reconciliation_jobs_previous_job_id")
    op.execute(
        "ALTER TABLE reconciliation_jobs DROP CONSTRAINT reconciliation_jobs_period_check,"
        " DROP COLUMN summary, DROP COLUMN stage_seconds, DROP COLUMN stage, DROP COLUMN leading_side,"
        " DROP COLUMN period_end, DROP COLUMN period_start, DROP COLUMN previous_job_id, DROP COLUMN snapshot,"
        " DROP COLUMN cancel_requested, DROP COLUMN lease_expires_at, DROP COLUMN lease_owner,"
        " DROP COLUMN max_attempts, DROP COLUMN attempt"
    )
