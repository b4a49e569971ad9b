"""Retention of decided approvals (issue 17 item 7): `retention_delete_approval(uuid, timestamp)`.

The runtime role has no DELETE on `approvals` (0001): an approval is the evidence of a
maker-checker decision, and a compromised application must not be able to erase it. The retention
job deletes one through this SECURITY DEFINER function (owned by reckai_system, EXECUTE to
reckai_app only), which deletes at most the one row, and only when

- it belongs to the transaction's tenant (`app.current_org_id`; reckai_system bypasses row-level
  security, so the function checks it itself),
- it is decided (approved, declined or cancelled: never a pending one), and
- it was decided before `p_decided_before`, which must itself be at least 365 days ago by the
  database clock (the shortest `retention.results_days` an organization may set).

A row another table still points at (a rule, a rule version, a report, a period close or
adjustment, a data export: foreign keys without a cascade) is not deleted: the function answers
false instead of failing the batch (the retention job also skips those, saying why).

Revision ID: 0033_retention_approvals
Revises: 0032_stream_row_days
"""

from __future__ import annotations

from alembic import op

revision = "0033_retention_approvals"
down_revision = "0032_stream_row_days"
branch_labels = None
depends_on = None

APP = "reckai_app"
SYSTEM = "reckai_system"
DELETE_APPROVAL = "retention_delete_approval(uuid, timestamp)"

DELETE_APPROVAL_BODY = """
CREATE FUNCTION retention_delete_approval(p_approval_id uuid, p_decided_before timestamp)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted integer;
BEGIN
    IF p_decided_before IS NULL OR p_decided_before > (now() AT TIME ZONE 'UTC') - interval '365 days' THEN
        RAISE EXCEPTION 'retention_delete_approval: the cutoff must be at least 365 days ago'
            USING ERRCODE = 'check_violation';
    END IF;
    BEGIN
        DELETE FROM public.approvals a
         WHERE a.id = p_approval_id
           AND a.organization_id = NULLIF(current_setting('app.current_org_id', true), '')::uuid
           AND a.status IN ('approved', 'declined', 'cancelled')
           AND a.reviewed_at < p_decided_before;
        GET DIAGNOSTICS v_deleted = ROW_COUNT;
    EXCEPTION WHEN foreign_key_violation THEN
        RETURN false;  -- a record it authorised still points at it
    END;
    RETURN v_deleted > 0;
END
$$;
"""


def upgrade() -> None:
    op.execute(f"GRANT SELECT, DELETE ON approvals TO {SYSTEM}")
    op.execute(DELETE_APPROVAL_BODY)
    op.execute(f"GRANT CREATE ON SCHEMA public TO {SYSTEM}")  # to own the function, as 0026 does
    op.execute(f"ALTER FUNCTION {DELETE_APPROVAL} OWNER TO {SYSTEM}")
    op.execute(f"REVOKE ALL ON FUNCTION {DELETE_APPROVAL} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {DELETE_APPROVAL} TO {APP}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {SYSTEM}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {DELETE_APPROVAL}")
    op.execute(f"REVOKE SELECT, DELETE ON approvals FROM {SYSTEM}")
