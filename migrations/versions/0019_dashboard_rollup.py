"""The dashboard's rollups of exceptions (issue 14 §3; docs/reports.md "Dashboard").

Three narrow tables, each shaped for one question so that reading it touches a few thousand rows
at most, however many exceptions the organization holds (age buckets depend on "now", so the
rollups keep dates and the buckets are drawn at query time):

- `exception_backlog_rollup`: active exceptions (open, in_progress, escalated) per organization,
  earliest transaction date, severity and currency: how many, and the sum of their absolute
  amounts (major units, exact NUMERIC; the application turns it into integer minor units).
- `exception_type_rollup`: exceptions of every status per organization, earliest transaction
  date, type and currency: how many, and the sum of their absolute amounts.
- `exception_due_rollup`: active exceptions per organization and hour (UTC) of `due_at`: the
  overdue count is the sum of the hours before the current one plus an exact count, on
  `idx_exceptions_org_due_active`, of the current hour.

They are kept by statement-level triggers on `exceptions` (AFTER INSERT, UPDATE, DELETE, with
transition tables), in the transaction of the statement that changed the rows: one rule for every
path (the job's bulk persist, each workflow change, closing through approvals, a job's deletion
and its cascade), each statement paying one grouped insert per rollup, not one call per row. An
update counts every old row -1 and every new row +1; groups whose totals do not move (an
assignment) are not written. The triggers only **append** delta rows, never update one: shared
counters updated in place would make two transactions changing exceptions of the same groups in
different orders wait for each other (a deadlock; the workflow locks exceptions in id order, but
their groups come in any order). Readers sum the rows of their organization;
`exception_rollups_compact()` folds them into one row per group, called by the job's persist step
(adapters/postgres/reconciliations.py) in its transaction.

Earliest transaction date: the least of `transaction_date` and the dates of the exception's left
and right rows as the job recorded them (`evidence.left.date`, `evidence.right.date`), so an item
whose two rows carry different dates ages from the older one (`exceptions_earliest_date`).

The rollups: row-level security enabled and forced with the tenant policy; the application role
may read, insert and delete them (the triggers and the compaction run as the caller, inside its
tenant).

Revision ID: 0019_dashboard_rollup
Revises: 0018_reports
"""

from __future__ import annotations

from alembic import op

revision = "0019_dashboard_rollup"
down_revision = "0018_reports"
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
CREATE TABLE exception_backlog_rollup (
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    earliest_date DATE,
    severity VARCHAR(50) NOT NULL,
    currency VARCHAR(3),
    item_count BIGINT NOT NULL DEFAULT 0,
    amount_total NUMERIC NOT NULL DEFAULT 0
);
CREATE INDEX idx_exception_backlog_rollup_org ON exception_backlog_rollup(organization_id);

CREATE TABLE exception_type_rollup (
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    earliest_date DATE,
    type VARCHAR(50) NOT NULL,
    currency VARCHAR(3),
    item_count BIGINT NOT NULL DEFAULT 0,
    amount_total NUMERIC NOT NULL DEFAULT 0
);
CREATE INDEX idx_exception_type_rollup_org_date ON exception_type_rollup(organization_id, earliest_date);

CREATE TABLE exception_due_rollup (
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    due_hour TIMESTAMP NOT NULL,
    item_count BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX idx_exception_due_rollup_org_hour ON exception_due_rollup(organization_id, due_hour);
"""

ROLLUPS = ("exception_backlog_rollup", "exception_type_rollup", "exception_due_rollup")


def _side(alias: str, table: str, sign: int) -> str:
    return (f"SELECT {alias}.organization_id, exceptions_earliest_date({alias}.transaction_date, {alias}.evidence)"
            f" AS earliest_date, {alias}.severity, {alias}.type, {alias}.currency, {alias}.status, {alias}.due_at,"
            f" {sign} AS sign, {sign} * abs(COALESCE({alias}.amount, 0)) AS amount FROM {table} {alias}")


# (table, key columns, which delta rows count)
_GROUPINGS = (
    ("exception_backlog_rollup", "organization_id, earliest_date, severity, currency", f"status IN {ACTIVE}"),
    ("exception_type_rollup", "organization_id, earliest_date, type, currency", "TRUE"),
)
_HOURS = (f"SELECT organization_id, date_trunc('hour', due_at) AS due_hour, sum(sign) AS item_count FROM delta"
          f" WHERE status IN {ACTIVE} GROUP BY 1, 2 HAVING sum(sign) <> 0")


def _compact(table: str, key: str) -> str:
    return (f"WITH gone AS (DELETE FROM {table} WHERE organization_id = v_org RETURNING *)"
            f" INSERT INTO {table} ({key}, item_count, amount_total)"
            f" SELECT {key}, sum(item_count), sum(amount_total) FROM gone GROUP BY {key}"
            " HAVING sum(item_count) <> 0 OR sum(amount_total) <> 0")


def _groups(key: str, where: str) -> str:
    return (f"SELECT {key}, sum(sign) AS item_count, sum(amount) AS amount_total FROM delta WHERE {where}"
            f" GROUP BY {key} HAVING sum(sign) <> 0 OR sum(amount) <> 0")


def _append(delta: str, *, leaving: bool = False) -> str:
    """The statement's deltas, grouped, appended as new rows: no row is updated, so writers never
    wait for each other on a shared counter (and cannot deadlock on one). Rows leaving with their
    organization (a cascade from a deleted organization, whose rollup rows go with it) are not
    appended: the organization is no longer there to refer to."""
    source = ("(SELECT * FROM delta WHERE EXISTS (SELECT 1 FROM organizations o"
              " WHERE o.id = delta.organization_id))" if leaving else "delta")
    parts = [f"WITH delta AS ({delta}), kept AS (SELECT * FROM {source} AS d)"]
    for table, key, where in _GROUPINGS:
        parts.append(f", {table} AS (INSERT INTO {table} ({key}, item_count, amount_total)"
                     f" {_groups(key, where).replace('FROM delta', 'FROM kept')} RETURNING 1)")
    parts.append(f" INSERT INTO exception_due_rollup (organization_id, due_hour, item_count)"
                 f" {_HOURS.replace('FROM delta', 'FROM kept')}")
    return "".join(parts)


# Folds an organization's delta rows into one row per group (run by the job's persist step,
# docs/reports.md): rows appended meanwhile by other transactions are not seen by the DELETE and
# stay as they are. The transaction-level advisory lock keeps two compactions of one
# organization from deleting the same rows in different orders.
COMPACT_FUNCTION = f"""
CREATE FUNCTION exception_rollups_compact() RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_org uuid := {CURRENT_ORG};
BEGIN
    IF v_org IS NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('exception_rollups_compact'), hashtext(v_org::text));
    {"; ".join(_compact(table, key) for table, key, _ in _GROUPINGS)};
    WITH gone AS (DELETE FROM exception_due_rollup WHERE organization_id = v_org RETURNING *)
    INSERT INTO exception_due_rollup (organization_id, due_hour, item_count)
    SELECT organization_id, due_hour, sum(item_count) FROM gone GROUP BY 1, 2 HAVING sum(item_count) <> 0;
END
$$;
"""


ROLLUP_FUNCTION = f"""
CREATE FUNCTION exceptions_rollup_apply() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_append(_side("n", "new_rows", 1))};
    ELSIF TG_OP = 'DELETE' THEN
        {_append(_side("o", "old_rows", -1), leaving=True)};
    ELSE
        {_append(_side("o", "old_rows", -1) + " UNION ALL " + _side("n", "new_rows", 1))};
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
INSERT INTO exception_backlog_rollup (organization_id, earliest_date, severity, currency, item_count, amount_total)
SELECT organization_id, exceptions_earliest_date(transaction_date, evidence), severity, currency, count(*),
       sum(abs(COALESCE(amount, 0)))
  FROM exceptions WHERE status IN {ACTIVE} GROUP BY 1, 2, 3, 4;
INSERT INTO exception_type_rollup (organization_id, earliest_date, type, currency, item_count, amount_total)
SELECT organization_id, exceptions_earliest_date(transaction_date, evidence), type, currency, count(*),
       sum(abs(COALESCE(amount, 0)))
  FROM exceptions GROUP BY 1, 2, 3, 4;
INSERT INTO exception_due_rollup (organization_id, due_hour, item_count)
SELECT organization_id, date_trunc('hour', due_at), count(*) FROM exceptions
 WHERE status IN {ACTIVE} GROUP BY 1, 2;
"""


def upgrade() -> None:
    op.execute(EARLIEST_DATE)
    op.execute(TABLES)
    for table in ROLLUPS:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} FOR ALL"
                   f" USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})")
        op.execute(f"GRANT SELECT, INSERT, DELETE ON {table} TO {APP}")
    op.execute(ROLLUP_FUNCTION)
    op.execute(COMPACT_FUNCTION)
    op.execute(TRIGGERS)
    # Existing rows, across tenants (a data migration: the owner skips the forced policies only
    # inside this transaction, docs/tenancy.md).
    for table in ("exceptions", *ROLLUPS):
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(BACKFILL)
    for table in ("exceptions", *ROLLUPS):
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    for trigger in ("exceptions_rollup_insert", "exceptions_rollup_update", "exceptions_rollup_delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON exceptions")
    op.execute("DROP FUNCTION IF EXISTS exceptions_rollup_apply()")
    op.execute("DROP FUNCTION IF EXISTS exception_rollups_compact()")
    for table in ROLLUPS:
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS exceptions_earliest_date(date, jsonb)")
