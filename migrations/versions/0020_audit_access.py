"""Audit trail for auditors and truncation anchors (issue 17 items 1-3; docs/audit.md).

- `audit_chain_head_hashes()` (SECURITY DEFINER, reckai_system): every chain's last sequence and
  hash, no row content. The periodic head-checkpoint job signs these and writes them to storage
  the application cannot rewrite (S3 Object Lock / an append-only file).
- Indexes for `GET /api/audit-logs`: one organization's rows are listed newest first by
  `sequence_number` (keyset); each filter has a composite index ending in the sequence, so a page
  is read from the index in order however rare the filtered value; the period is turned into a
  sequence range through (chain_key, created_at) (created_at never decreases along a chain);
  failures (response_status >= 400) have a partial index. The spec's single-column indexes of
  0001 stay (spec §1; the user_id one also serves its foreign key): for a rare value the planner
  may read one of them and sort the few rows, which is as cheap.

Plain CREATE INDEX (not CONCURRENTLY): on a large audit_logs build them CONCURRENTLY by hand
before upgrading (the names below), and the upgrade's IF NOT EXISTS skips them.

Revision ID: 0020_audit_access
Revises: 0019_dashboard_rollup
"""

from __future__ import annotations

from alembic import op

revision = "0020_audit_access"
down_revision = "0019_dashboard_rollup"
branch_labels = None
depends_on = None

APP = "reckai_app"
SYSTEM = "reckai_system"

HEAD_HASHES = "audit_chain_head_hashes()"
HEAD_HASHES_BODY = """
CREATE FUNCTION audit_chain_head_hashes()
RETURNS TABLE (chain_key uuid, last_sequence bigint, last_hash text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    -- Every chain's head for the signed head checkpoints; hashes and counts, no row content.
    SELECT h.chain_key, h.last_sequence, h.last_hash::text FROM public.audit_chain_heads h
     WHERE h.last_sequence > 0 ORDER BY h.chain_key
$$;
"""

INDEXES = {
    "idx_audit_chain_user_seq": "audit_logs (chain_key, user_id, sequence_number)",
    "idx_audit_chain_action_seq": "audit_logs (chain_key, action, sequence_number)",
    "idx_audit_chain_resource_seq": "audit_logs (chain_key, resource_type, resource_id, sequence_number)",
    "idx_audit_chain_created": "audit_logs (chain_key, created_at)",
    "idx_audit_chain_failures_seq": "audit_logs (chain_key, sequence_number) WHERE response_status >= 400",
}


def upgrade() -> None:
    op.execute(f"GRANT CREATE ON SCHEMA public TO {SYSTEM}")
    op.execute(HEAD_HASHES_BODY)
    op.execute(f"ALTER FUNCTION {HEAD_HASHES} OWNER TO {SYSTEM}")
    op.execute(f"REVOKE ALL ON FUNCTION {HEAD_HASHES} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {HEAD_HASHES} TO {APP}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {SYSTEM}")
    for name, definition in INDEXES.items():
        table, _, rest = definition.partition(" ")
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} {rest}")


def downgrade() -> None:
    for name in reversed(list(INDEXES)):
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute(f"DROP FUNCTION IF EXISTS {HEAD_HASHES}")
