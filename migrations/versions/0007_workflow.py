"""Workflow: SLA and resolution columns on exceptions, their history, declined pairs (docs/workflow.md).

exceptions: `due_at` (set on insert from the organization's SLA hours for the severity by the
trigger `exceptions_set_due_at`, so rows the reconciliation job bulk-inserts get one too; the
application recomputes it on a severity override), `resolution_code`, `resolution_note`,
`severity_reason`, `escalated_at`; indexes for the list screen on millions of rows (keyset on
created_at / due_at per organization, status, assignee) and for finding a row's exceptions.

exception_history (new, append-only for the app): every change of an exception, with its actor.
declined_pairs (new): pairs of rows a person declined; later jobs do not suggest them again.

`workflow_overdue_organizations(timestamp)` (SECURITY DEFINER, owned by reckai_system): the ids of
organizations with an open or in-progress exception due by then, for the SLA job. Ids only.

Revision ID: 0007_workflow
Revises: 0006_reconciliation_jobs
"""

from __future__ import annotations

from alembic import op

revision = "0007_workflow"
down_revision = "0006_reconciliation_jobs"
branch_labels = None
depends_on = None

APP = "reckai_app"
SYSTEM = "reckai_system"
CURRENT_ORG = "NULLIF(current_setting('app.current_org_id', true), '')::uuid"
OVERDUE = "workflow_overdue_organizations(timestamp without time zone)"

SLA_HOURS = """
CREATE FUNCTION exceptions_sla_hours(p_settings jsonb, p_severity text) RETURNS integer
LANGUAGE sql IMMUTABLE
AS $$
    SELECT COALESCE(
        CASE WHEN jsonb_typeof(p_settings->'workflow'->'sla_hours'->p_severity) = 'number'
             THEN (p_settings->'workflow'->'sla_hours'->>p_severity)::integer END,
        CASE p_severity WHEN 'critical' THEN 4 WHEN 'high' THEN 24 WHEN 'medium' THEN 72 ELSE 168 END)
$$;

CREATE FUNCTION exceptions_set_due_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.due_at IS NULL THEN
        NEW.due_at := COALESCE(NEW.created_at, (now() AT TIME ZONE 'UTC'))
            + make_interval(hours => exceptions_sla_hours(
                (SELECT o.settings FROM organizations o WHERE o.id = NEW.organization_id), NEW.severity));
    END IF;
    RETURN NEW;
END
$$;
"""

UPGRADE = """
ALTER TABLE exceptions
    ADD COLUMN due_at TIMESTAMP,
    ADD COLUMN resolution_code VARCHAR(50),
    ADD COLUMN resolution_note TEXT,
    ADD COLUMN severity_reason TEXT,
    ADD COLUMN escalated_at TIMESTAMP;

CREATE TRIGGER exceptions_set_due_at BEFORE INSERT ON exceptions
    FOR EACH ROW WHEN (NEW.due_at IS NULL) EXECUTE FUNCTION exceptions_set_due_at();

CREATE INDEX idx_exceptions_org_created ON exceptions(organization_id, created_at DESC, id DESC);
CREATE INDEX idx_exceptions_org_status_created ON exceptions(organization_id, status, created_at DESC, id DESC);
CREATE INDEX idx_exceptions_org_due_active ON exceptions(organization_id, due_at, id)
    WHERE status IN ('open', 'in_progress', 'escalated');
CREATE INDEX idx_exceptions_org_assigned ON exceptions(organization_id, assigned_to, status);
CREATE INDEX idx_exceptions_job_left_row ON exceptions(job_id, left_row) WHERE left_row IS NOT NULL;
CREATE INDEX idx_exceptions_job_right_row ON exceptions(job_id, right_row) WHERE right_row IS NOT NULL;

CREATE TABLE exception_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    exception_id UUID NOT NULL REFERENCES exceptions(id) ON DELETE CASCADE,
    action VARCHAR(50) NOT NULL,
    actor_id UUID REFERENCES users(id),
    from_status VARCHAR(50),
    to_status VARCHAR(50),
    reason TEXT,
    changes JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    -- several changes in one transaction share created_at; this keeps their order
    seq BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX idx_exception_history_exception ON exception_history(exception_id, created_at, seq);
CREATE INDEX idx_exception_history_org ON exception_history(organization_id);
CREATE INDEX idx_exception_history_actor ON exception_history(actor_id);

CREATE TABLE declined_pairs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    left_file_id UUID NOT NULL REFERENCES reconciliation_files(id) ON DELETE CASCADE,
    left_row INTEGER NOT NULL CHECK (left_row >= 1),
    right_file_id UUID NOT NULL REFERENCES reconciliation_files(id) ON DELETE CASCADE,
    right_row INTEGER NOT NULL CHECK (right_row >= 1),
    job_id UUID REFERENCES reconciliation_jobs(id) ON DELETE SET NULL,
    reason TEXT,
    declined_by UUID NOT NULL REFERENCES users(id),
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    UNIQUE (organization_id, left_file_id, left_row, right_file_id, right_row)
);
CREATE INDEX idx_declined_pairs_files ON declined_pairs(organization_id, left_file_id, right_file_id);
CREATE INDEX idx_declined_pairs_left_file ON declined_pairs(left_file_id);
CREATE INDEX idx_declined_pairs_right_file ON declined_pairs(right_file_id);
CREATE INDEX idx_declined_pairs_job ON declined_pairs(job_id);
CREATE INDEX idx_declined_pairs_declined_by ON declined_pairs(declined_by);
"""

OVERDUE_BODY = """
CREATE FUNCTION workflow_overdue_organizations(p_now timestamp without time zone)
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT e.organization_id FROM public.exceptions e
     WHERE e.status IN ('open', 'in_progress') AND e.due_at <= p_now
$$;
"""


def upgrade() -> None:
    op.execute(SLA_HOURS)
    op.execute(UPGRADE)
    # Existing rows get their due time like new ones (data migration across tenants: the owner
    # skips the forced policy only inside this transaction, docs/tenancy.md).
    op.execute("ALTER TABLE exceptions NO FORCE ROW LEVEL SECURITY")
    op.execute("UPDATE exceptions e SET due_at = e.created_at + make_interval(hours => exceptions_sla_hours("
               "(SELECT o.settings FROM organizations o WHERE o.id = e.organization_id), e.severity))"
               " WHERE due_at IS NULL")
    op.execute("UPDATE exceptions SET escalated_at = updated_at WHERE status = 'escalated' AND escalated_at IS NULL")
    op.execute("ALTER TABLE exceptions FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE exceptions ALTER COLUMN due_at SET NOT NULL")
    for table in ("exception_history", "declined_pairs"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} FOR ALL"
                   f" USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})")
        # Append-only for the application: history and declined pairs are facts, never edited.
        op.execute(f"GRANT SELECT, INSERT ON {table} TO {APP}")
    op.execute(f"GRANT SELECT ON exceptions TO {SYSTEM}")
    op.execute(f"GRANT CREATE ON SCHEMA public TO {SYSTEM}")
    op.execute(OVERDUE_BODY)
    op.execute(f"ALTER FUNCTION {OVERDUE} OWNER TO {SYSTEM}")
    op.execute(f"REVOKE ALL ON FUNCTION {OVERDUE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {OVERDUE} TO {APP}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {SYSTEM}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {OVERDUE}")
    op.execute(f"REVOKE SELECT ON exceptions FROM {SYSTEM}")
    op.execute("DROP TABLE IF EXISTS declined_pairs")
    op.execute("DROP TABLE IF EXISTS exception_history")
    for index in ("idx_exceptions_job_right_row", "idx_exceptions_job_left_row", "idx_exceptions_org_assigned",
                  "idx_exceptions_org_due_active", "idx_exceptions_org_status_created", "idx_exceptions_org_created"):
        op.execute(f"DROP INDEX IF EXISTS {index}")
    op.execute("DROP TRIGGER IF EXISTS exceptions_set_due_at ON exceptions")
    op.execute("ALTER TABLE exceptions DROP COLUMN escalated_at, DROP COLUMN severity_reason,"
               " DROP COLUMN resolution_note, DROP COLUMN resolution_code, DROP COLUMN due_at")
    op.execute("DROP FUNCTION IF EXISTS exceptions_set_due_at()")
    op.execute("DROP FUNCTION IF EXISTS exceptions_sla_hours(jsonb, text)")
