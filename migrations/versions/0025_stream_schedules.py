"""Stream schedules (issue 15 item 5; docs/streams.md "Schedules").

stream_schedules: a stream's schedule (at most one per stream): a five-field cron expression read
in the organization's time zone, the files expected per side, the grace period, and
`effective_from` (slots before it are not the schedule's).
stream_schedule_slots: every decided slot, at most one row per (schedule, slot): the primary key is
what makes N concurrent schedulers start one run (or send one alert) per slot; the tick claims a
slot with INSERT ... ON CONFLICT DO NOTHING in the transaction that starts the run or queues the
alert. Append-only for the app (SELECT, INSERT): a slot's decision never changes.

`stream_schedule_organizations()` (SECURITY DEFINER, owned by reckai_system): the ids of
organizations with a schedule, for the tick, which runs without a tenant. Ids only.

Both tables: row-level security enabled and forced with the tenant policy, grants to the app role.

Revision ID: 0025_stream_schedules
Revises: 0024_period_close
"""

from __future__ import annotations

from alembic import op

revision = "0025_stream_schedules"
down_revision = "0024_period_close"
branch_labels = None
depends_on = None

APP = "reckai_app"
SYSTEM = "reckai_system"
CURRENT_ORG = "NULLIF(current_setting('app.current_org_id', true), '')::uuid"
ORGANIZATIONS = "stream_schedule_organizations()"

UPGRADE = """
CREATE TABLE stream_schedules (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    stream_id UUID NOT NULL UNIQUE REFERENCES streams(id) ON DELETE CASCADE,
    cron VARCHAR(255) NOT NULL,
    expected_left INTEGER NOT NULL CHECK (expected_left BETWEEN 0 AND 100),
    expected_right INTEGER NOT NULL CHECK (expected_right BETWEEN 0 AND 100),
    grace_minutes INTEGER NOT NULL CHECK (grace_minutes BETWEEN 0 AND 10080),
    effective_from TIMESTAMP NOT NULL,
    created_by UUID NOT NULL REFERENCES users(id),
    updated_by UUID NOT NULL REFERENCES users(id),
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    CHECK (expected_left + expected_right >= 1)
);
CREATE INDEX idx_stream_schedules_org ON stream_schedules(organization_id);
CREATE INDEX idx_stream_schedules_created_by ON stream_schedules(created_by);
CREATE INDEX idx_stream_schedules_updated_by ON stream_schedules(updated_by);

CREATE TABLE stream_schedule_slots (
    organization_id UUID NOT NULL,
    schedule_id UUID NOT NULL REFERENCES stream_schedules(id) ON DELETE CASCADE,
    stream_id UUID NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    slot TIMESTAMP NOT NULL,
    outcome VARCHAR(30) NOT NULL CHECK (outcome IN ('run_started', 'expected_file_missing', 'run_refused')),
    run_number INTEGER,
    job_id UUID REFERENCES reconciliation_jobs(id) ON DELETE SET NULL,
    detail JSONB NOT NULL DEFAULT '{}',
    decided_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    PRIMARY KEY (schedule_id, slot),
    CHECK ((outcome = 'run_started') = (job_id IS NOT NULL OR run_number IS NOT NULL))
);
CREATE INDEX idx_stream_schedule_slots_stream ON stream_schedule_slots(stream_id, slot DESC);
CREATE INDEX idx_stream_schedule_slots_job ON stream_schedule_slots(job_id);
"""

ORGANIZATIONS_BODY = """
CREATE FUNCTION stream_schedule_organizations()
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT s.organization_id FROM public.stream_schedules s
$$;
"""

GRANTS = {
    "stream_schedules": "SELECT, INSERT, UPDATE, DELETE",
    "stream_schedule_slots": "SELECT, INSERT",
}


def upgrade() -> None:
    op.execute(UPGRADE)
    for table, privileges in GRANTS.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} FOR ALL"
                   f" USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})")
        op.execute(f"GRANT {privileges} ON {table} TO {APP}")
    op.execute(ORGANIZATIONS_BODY)
    op.execute(f"GRANT SELECT ON stream_schedules TO {SYSTEM}")
    op.execute(f"GRANT CREATE ON SCHEMA public TO {SYSTEM}")  # to own the function, as 0007 and 0018 do
    op.execute(f"ALTER FUNCTION {ORGANIZATIONS} OWNER TO {SYSTEM}")
    op.execute(f"REVOKE ALL ON FUNCTION {ORGANIZATIONS} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {ORGANIZATIONS} TO {APP}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {SYSTEM}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {ORGANIZATIONS}")
    for table in reversed(tuple(GRANTS)):
        op.execute(f"DROP TABLE {table}")
