"""The dashboard's rollup of exceptions (issue 14 §3; docs/reports.md "Dashboard").

`exception_rollup`: per organization, earliest transaction date, severity, type, currency and
status, the number of exceptions and the sum of their absolute amounts (major units, exact
NUMERIC; the application turns it into integer minor units per currency). Age buckets depend on
"now", so the rollup keeps dates and the buckets are drawn at query time.

`exception_due_rollup`: per organization and hour (UTC) of `due_at`, the number of unresolved
exceptions (open, in_progress, escalated) due in that hour: the overdue count is the sum of the
hours before the current one plus an exact count, on `idx_exceptions_org_due_active`, of the
current hour.

Both are kept by statement-level triggers on `exceptions` (AFTER INSERT, UPDATE, DELETE, with
transition tables), in the transaction of the statement that changed the rows: one rule for every
path (the job's bulk persist, each workflow change, closing through approvals, a job's deletion
and its cascade), each statement paying one grouped upsert, not one call per row. Rollup rows
are upserted in key order, so two transactions touching several groups take the row locks in the
same order. A group whose count falls to 0 keeps its row (count 0); the readers skip those.

Earliest transaction date: the least of `transaction_date` and the dates of the exception's left
and right rows as the job recorded them (`evidence.left.date`, `evidence.right.date`), so an item
whose two rows carry different dates ages from the older one (`exceptions_earliest_date`).

Both tables: row-level security enabled and forced with the tenant policy; the application role
may read and write them (the triggers run as the caller, inside its tenant).

Revision ID: 0019_dashboard_rollup
Revises: 0013_login_sources
"""

from __future__ import annotations

from alembic import op

revision = "0019_dashboard_rollup"
down_revision = "0013_login_sources"
branch_labels = None
depends_on = None

APP = "reckai_app"
CURRENT_ORG = "NULLIF(current_setting('app.current_org_id', true), '')::uuid"
ACTIVE = "('open', 'in_progress', 'escalated')"

EARLIEST_DATE = r"""
CREATE FUNCTION exceptions_earliest_date(p_transaction_date date, p_evidence jsonb) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT LEAST(
        p_transaction_date,
        CASE WHEN p_evidence #>> '{left,date}' ~ '^\d{4}-\d{2}-\d{2}'
             THEN left(p_evidence #>> '{left,date}', 10)::date END,
        CASE WHEN p_evidence #>> '{right,date}' ~ '^\d{4}-\d{2}-\d{2}'
             THEN left(p_evidence #>> '{right,date}', 10)::date END)
$$;
"""

TABLES = """
CREATE TABLE exception_rollup (
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    earliest_date DATE,
    severity VARCHAR(50) NOT NULL,
    type VARCHAR(50) NOT NULL,
    currency VARCHAR(3),
    status VARCHAR(50) NOT NULL,
    item_count BIGINT NOT NULL DEFAULT 0,
    amount_total NUMERIC NOT NULL DEFAULT 0,
    CONSTRAINT exception_rollup_key UNIQUE NULLS NOT DISTINCT
        (organization_id, status, earliest_date, severity, type, currency)
);

CREATE TABLE exception_due_rollup (
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    due_hour TIMESTAMP NOT NULL,
    item_count BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, due_hour)
);
"""

# One function for the three events: the rows leaving (OLD TABLE) count -1, the rows arriving
# (NEW TABLE) +1; only the groups whose totals change are written, in one statement per event.
_ROLLED = "organization_id, transaction_date, evidence, severity, type, currency, status, due_at, amount"


def _side(alias: str, table: str, sign: int, join: str = "") -> str:
    return (f"SELECT {alias}.organization_id, exceptions_earliest_date({alias}.transaction_date, {alias}.evidence)"
            f" AS earliest_date, {alias}.severity, {alias}.type, {alias}.currency, {alias}.status, {alias}.due_at,"
            f" {sign} AS sign, {sign} * abs(COALESCE({alias}.amount, 0)) AS amount FROM {table} {alias}{join}")


_CHANGED = (" JOIN new_rows n ON n.id = o.id WHERE ROW(" + ", ".join(f"o.{c}" for c in _ROLLED.split(", "))
            + ") IS DISTINCT FROM ROW(" + ", ".join(f"n.{c}" for c in _ROLLED.split(", ")) + ")")
_CHANGED_NEW = (" JOIN old_rows o ON o.id = n.id WHERE ROW(" + ", ".join(f"o.{c}" for c in _ROLLED.split(", "))
                + ") IS DISTINCT FROM ROW(" + ", ".join(f"n.{c}" for c in _ROLLED.split(", ")) + ")")
_KEY = "organization_id, status, earliest_date, severity, type, currency"
_GROUPS = (f"SELECT {_KEY}, sum(sign) AS item_count, sum(amount) AS amount_total FROM delta GROUP BY {_KEY}"
           " HAVING sum(sign) <> 0 OR sum(amount) <> 0")
_HOURS = (f"SELECT organization_id, date_trunc('hour', due_at) AS due_hour, sum(sign) AS item_count FROM delta"
          f" WHERE status IN {ACTIVE} GROUP BY 1, 2 HAVING sum(sign) <> 0")


def _upsert(delta: str) -> str:
    """Rows arriving (and leaving, for an update): add the deltas, creating groups first seen."""
    return (f"WITH delta AS ({delta}),"
            f" grouped AS (INSERT INTO exception_rollup AS r ({_KEY}, item_count, amount_total)"
            f" {_GROUPS} ORDER BY {_KEY} ON CONFLICT ON CONSTRAINT exception_rollup_key DO UPDATE"
            " SET item_count = r.item_count + EXCLUDED.item_count,"
            " amount_total = r.amount_total + EXCLUDED.amount_total RETURNING 1)"
            f" INSERT INTO exception_due_rollup AS r (organization_id, due_hour, item_count) {_HOURS} ORDER BY 1, 2"
            " ON CONFLICT (organization_id, due_hour) DO UPDATE SET item_count = r.item_count + EXCLUDED.item_count")


def _subtract(delta: str) -> str:
    """Rows leaving: only existing groups change (never an insert, so a cascade from a deleted
    organization, whose rollup rows go with it, has nothing to refer to)."""
    return (f"WITH delta AS ({delta}),"
            f" grouped AS (UPDATE exception_rollup r SET item_count = r.item_count + g.item_count,"
            f" amount_total = r.amount_total + g.amount_total FROM ({_GROUPS} ORDER BY {_KEY}) g"
            " WHERE (r.organization_id, r.status, r.severity, r.type) = (g.organization_id, g.status, g.severity, g.type)"
            " AND r.earliest_date IS NOT DISTINCT FROM g.earliest_date AND r.currency IS NOT DISTINCT FROM g.currency"
            " RETURNING 1)"
            f" UPDATE exception_due_rollup r SET item_count = r.item_count + h.item_count FROM ({_HOURS}) h"
            " WHERE (r.organization_id, r.due_hour) = (h.organization_id, h.due_hour)")


ROLLUP_FUNCTION = f"""
CREATE FUNCTION exceptions_rollup_apply() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_upsert(_side("n", "new_rows", 1))};
    ELSIF TG_OP = 'DELETE' THEN
        {_subtract(_side("o", "old_rows", -1))};
    ELSE
        -- only rows whose rolled-up columns changed (an assignment moves nothing)
        {_upsert(_side("o", "old_rows", -1, _CHANGED) + " UNION ALL " + _side("n", "new_rows", 1, _CHANGED_NEW))};
    END IF;
    RETURN NULL;
END
$$;
"""

TRIGGERS = """
CREATE TRIGGER exceptions_rollup_insert AFTER INSERT ON exceptions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION exceptions_rollup_apply();
CREATE TRIGGER exceptions_rollup_update AFTER UPDATE ON exceptions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION exceptions_rollup_apply();
CREATE TRIGGER exceptions_rollup_delete AFTER DELETE ON exceptions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION exceptions_rollup_apply();
"""

BACKFILL = f"""
INSERT INTO exception_rollup (organization_id, status, earliest_date, severity, type, currency, item_count,
                              amount_total)
SELECT organization_id, status, exceptions_earliest_date(transaction_date, evidence), severity, type, currency,
       count(*), sum(abs(COALESCE(amount, 0)))
  FROM exceptions GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO exception_due_rollup (organization_id, due_hour, item_count)
SELECT organization_id, date_trunc('hour', due_at), count(*) FROM exceptions
 WHERE status IN {ACTIVE} GROUP BY 1, 2;
"""


def upgrade() -> None:
    op.execute(EARLIEST_DATE)
    op.execute(TABLES)
    for table in ("exception_rollup", "exception_due_rollup"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} FOR ALL"
                   f" USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})")
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON {table} TO {APP}")
    op.execute(ROLLUP_FUNCTION)
    op.execute(TRIGGERS)
    # Existing rows, across tenants (a data migration: the owner skips the forced policies only
    # inside this transaction, docs/tenancy.md).
    for table in ("exceptions", "exception_rollup", "exception_due_rollup"):
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(BACKFILL)
    for table in ("exceptions", "exception_rollup", "exception_due_rollup"):
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    for trigger in ("exceptions_rollup_insert", "exceptions_rollup_update", "exceptions_rollup_delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON exceptions")
    op.execute("DROP FUNCTION IF EXISTS exceptions_rollup_apply()")
    op.execute("DROP TABLE IF EXISTS exception_due_rollup")
    op.execute("DROP TABLE IF EXISTS exception_rollup")
    op.execute("DROP FUNCTION IF EXISTS exceptions_earliest_date(date, jsonb)")
