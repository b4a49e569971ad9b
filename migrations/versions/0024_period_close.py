"""Period close of streams (issue 15 item 4; docs/streams.md "Periods", docs/decisions/period-close.md).

approvals.type admits period_close, period_adjustment and period_reopen.
stream_periods: a period of a stream (a day or a month in the organization's time zone) that was
closed at least once: its status (closed, reopened), the snapshot of its figures, who closed it.
stream_period_items: the period's exceptions as they stood at its close: carried (still open: they
carry into the next period) or settled (closed at close: frozen while the period is closed).
stream_period_runs: the runs (jobs) of the period: their matches are frozen while it is closed.
stream_period_adjustments: changes to a closed period's exceptions that a checker approved.

The freeze is the database's: triggers refuse UPDATE and DELETE of a frozen exception and of a
closed period's matches, whoever runs the statement. One way through: the adjustment path, where
the same transaction inserted the adjustment row (`applied_in_transaction` = txid_current(), a
column the app role cannot write: its INSERT privilege leaves it out) and set the
transaction-local `reckai.period_adjustment` to its approval id; only the exceptions the
adjustment names may then change. Every table: RLS enabled and forced with the tenant policy.

Revision ID: 0024_period_close
Revises: 0022_file_statements
"""

from __future__ import annotations

from alembic import op

revision = "0024_period_close"
down_revision = "0022_file_statements"
branch_labels = None
depends_on = None

APP = "reckai_app"
CURRENT_ORG = "NULLIF(current_setting('app.current_org_id', true), '')::uuid"

OLD_TYPES = ("rule_configuration", "ledger_posting", "user_onboarding", "exception_resolution",
             "report_generation", "system_setting")
NEW_TYPES = (*OLD_TYPES, "period_close", "period_adjustment", "period_reopen")

UPGRADE = """
CREATE TABLE stream_periods (
    organization_id UUID NOT NULL,
    stream_id UUID NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    period_key VARCHAR(10) NOT NULL,
    granularity VARCHAR(10) NOT NULL CHECK (granularity IN ('day', 'month')),
    status VARCHAR(10) NOT NULL CHECK (status IN ('closed', 'reopened')),
    timezone VARCHAR(64) NOT NULL,
    figures JSONB NOT NULL,
    closed_at TIMESTAMP NOT NULL,
    closed_by UUID NOT NULL REFERENCES users(id),
    close_approved_by UUID NOT NULL REFERENCES users(id),
    close_approval_id UUID NOT NULL REFERENCES approvals(id),
    times_closed INTEGER NOT NULL DEFAULT 1 CHECK (times_closed >= 1),
    reopened_at TIMESTAMP,
    reopened_by UUID REFERENCES users(id),
    reopen_approval_id UUID REFERENCES approvals(id),
    PRIMARY KEY (stream_id, period_key)
);
CREATE INDEX idx_stream_periods_closed_by ON stream_periods(closed_by);
CREATE INDEX idx_stream_periods_close_approved_by ON stream_periods(close_approved_by);
CREATE INDEX idx_stream_periods_close_approval ON stream_periods(close_approval_id);
CREATE INDEX idx_stream_periods_reopened_by ON stream_periods(reopened_by);
CREATE INDEX idx_stream_periods_reopen_approval ON stream_periods(reopen_approval_id);

CREATE TABLE stream_period_items (
    organization_id UUID NOT NULL,
    stream_id UUID NOT NULL,
    period_key VARCHAR(10) NOT NULL,
    exception_id UUID NOT NULL REFERENCES exceptions(id),
    carried BOOLEAN NOT NULL,
    status_at_close VARCHAR(20) NOT NULL,
    PRIMARY KEY (stream_id, period_key, exception_id),
    FOREIGN KEY (stream_id, period_key) REFERENCES stream_periods(stream_id, period_key) ON DELETE CASCADE
);
CREATE INDEX idx_stream_period_items_exception ON stream_period_items(exception_id);

CREATE TABLE stream_period_runs (
    organization_id UUID NOT NULL,
    stream_id UUID NOT NULL,
    period_key VARCHAR(10) NOT NULL,
    run_number INTEGER NOT NULL,
    job_id UUID NOT NULL REFERENCES reconciliation_jobs(id),
    PRIMARY KEY (stream_id, period_key, run_number),
    FOREIGN KEY (stream_id, period_key) REFERENCES stream_periods(stream_id, period_key) ON DELETE CASCADE
);
CREATE INDEX idx_stream_period_runs_job ON stream_period_runs(job_id);

CREATE TABLE stream_period_adjustments (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL,
    stream_id UUID NOT NULL,
    period_key VARCHAR(10) NOT NULL,
    approval_id UUID NOT NULL UNIQUE REFERENCES approvals(id),
    action VARCHAR(20) NOT NULL CHECK (action IN ('reopen', 'resolve', 'ignore', 'link')),
    exception_ids UUID[] NOT NULL,
    reason TEXT NOT NULL,
    requested_by UUID NOT NULL REFERENCES users(id),
    approved_by UUID NOT NULL REFERENCES users(id),
    applied_at TIMESTAMP NOT NULL,
    details JSONB NOT NULL DEFAULT '{}',
    applied_in_transaction BIGINT NOT NULL DEFAULT txid_current(),
    FOREIGN KEY (stream_id, period_key) REFERENCES stream_periods(stream_id, period_key) ON DELETE CASCADE
);
CREATE INDEX idx_stream_period_adjustments_period ON stream_period_adjustments(stream_id, period_key);
CREATE INDEX idx_stream_period_adjustments_requested_by ON stream_period_adjustments(requested_by);
CREATE INDEX idx_stream_period_adjustments_approved_by ON stream_period_adjustments(approved_by);

-- The first frozen exception among `ids` that the current transaction may not change, or NULL.
CREATE FUNCTION stream_period_blocked_exception(ids UUID[]) RETURNS UUID LANGUAGE sql STABLE AS $$
    SELECT i.exception_id
      FROM stream_period_items i
      JOIN stream_periods p ON p.stream_id = i.stream_id AND p.period_key = i.period_key AND p.status = 'closed'
     WHERE i.exception_id = ANY(ids) AND NOT i.carried
       AND NOT EXISTS (
           SELECT 1 FROM stream_period_adjustments a
             JOIN approvals ap ON ap.id = a.approval_id AND ap.type = 'period_adjustment'
            WHERE a.approval_id::text = NULLIF(current_setting('reckai.period_adjustment', true), '')
              AND a.stream_id = i.stream_id AND a.period_key = i.period_key
              AND a.applied_in_transaction = txid_current()
              AND i.exception_id = ANY(a.exception_ids))
     LIMIT 1
$$;

CREATE FUNCTION stream_period_guard_exceptions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    blocked UUID;
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        blocked := stream_period_blocked_exception(ARRAY[OLD.id]);
    ELSE
        blocked := stream_period_blocked_exception(ARRAY(SELECT id FROM old_rows));
    END IF;
    IF blocked IS NOT NULL THEN
        RAISE EXCEPTION 'exception % belongs to a closed period of its stream; only an approved period_adjustment changes it', blocked
            USING ERRCODE = 'RK001';
    END IF;
    IF TG_LEVEL = 'ROW' THEN
        RETURN OLD;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION stream_period_guard_matches() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM stream_period_runs r
                 JOIN stream_periods p ON p.stream_id = r.stream_id AND p.period_key = r.period_key
                WHERE p.status = 'closed' AND r.job_id IN (SELECT DISTINCT job_id FROM old_rows)) THEN
        RAISE EXCEPTION 'matches of a closed period of a stream are read-only' USING ERRCODE = 'RK001';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER exceptions_closed_period_update AFTER UPDATE ON exceptions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION stream_period_guard_exceptions();
CREATE TRIGGER exceptions_closed_period_delete BEFORE DELETE ON exceptions
    FOR EACH ROW EXECUTE FUNCTION stream_period_guard_exceptions();
CREATE TRIGGER matches_closed_period_update AFTER UPDATE ON reconciliation_matches
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION stream_period_guard_matches();
CREATE TRIGGER matches_closed_period_delete AFTER DELETE ON reconciliation_matches
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION stream_period_guard_matches();
"""

GRANTS = {
    "stream_periods": "SELECT, INSERT, UPDATE",
    "stream_period_items": "SELECT, INSERT, DELETE",
    "stream_period_runs": "SELECT, INSERT, DELETE",
    # not applied_in_transaction: its default (the inserting transaction) is the only value it takes
    "stream_period_adjustments": "SELECT, INSERT (id, organization_id, stream_id, period_key, approval_id, action,"
                                 " exception_ids, reason, requested_by, approved_by, applied_at, details)",
}


def _type_check(types: tuple[str, ...]) -> None:
    op.execute("ALTER TABLE approvals DROP CONSTRAINT IF EXISTS approvals_type_check")
    values = ", ".join(f"'{value}'" for value in types)
    op.execute(f"ALTER TABLE approvals ADD CONSTRAINT approvals_type_check CHECK (type IN ({values}))")


def upgrade() -> None:
    _type_check(NEW_TYPES)
    op.execute(UPGRADE)
    for table, privileges in GRANTS.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} FOR ALL"
                   f" USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})")
        op.execute(f"GRANT {privileges} ON {table} TO {APP}")


def downgrade() -> None:
    for trigger, table in (("exceptions_closed_period_update", "exceptions"),
                           ("exceptions_closed_period_delete", "exceptions"),
                           ("matches_closed_period_update", "reconciliation_matches"),
                           ("matches_closed_period_delete", "reconciliation_matches")):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS stream_period_guard_matches()")
    op.execute("DROP FUNCTION IF EXISTS stream_period_guard_exceptions()")
    op.execute("DROP FUNCTION IF EXISTS stream_period_blocked_exception(UUID[])")
    for table in reversed(tuple(GRANTS)):
        op.execute(f"DROP TABLE {table}")
    op.execute("DELETE FROM approvals WHERE type IN ('period_close', 'period_adjustment', 'period_reopen')")
    _type_check(OLD_TYPES)
