"""Jobs: `outbox_fail_exhausted`, so a message whose worker died on every attempt ends `failed`.

`outbox_claim_due` re-dispatches a message left `dispatched` with no outcome (its worker died)
only while attempts remain; without this function a message lost on its last attempt would stay
`dispatched` for ever. Owned by reckai_system like the other outbox functions (docs/tenancy.md,
docs/jobs.md).

Revision ID: 0003_jobs
Revises: 0002_audit_chain
"""

from __future__ import annotations

from alembic import op

revision = "0003_jobs"
down_revision = "0002_audit_chain"
branch_labels = None
depends_on = None

APP = "reckai_app"
SYSTEM = "reckai_system"
SIGNATURE = "outbox_fail_exhausted(integer)"

FAIL_EXHAUSTED = """
CREATE FUNCTION outbox_fail_exhausted(p_stale_after_seconds integer)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    -- Messages dispatched long ago, never finished, with no attempt left: failed for good.
    WITH failed AS (
        UPDATE public.outbox_messages
           SET status = 'failed',
               completed_at = now(),
               last_error = left('no outcome recorded after ' || attempts
                                 || ' attempt(s): the worker was lost each time'
                                 || coalesce('; last error: ' || last_error, ''), 4000)
         WHERE status = 'dispatched'
           AND attempts >= max_attempts
           AND dispatched_at < now() - make_interval(secs => greatest(p_stale_after_seconds, 0))
        RETURNING 1)
    SELECT count(*)::integer FROM failed
$$;
"""


def upgrade() -> None:
    # Created by the owner, then handed to reckai_system (which needs CREATE only for the hand-over).
    op.execute(f"GRANT CREATE ON SCHEMA public TO {SYSTEM}")
    op.execute(FAIL_EXHAUSTED)
    op.execute(f"ALTER FUNCTION {SIGNATURE} OWNER TO {SYSTEM}")
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {APP}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {SYSTEM}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
