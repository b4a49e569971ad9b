"""File sweeper: find stored objects whose file row is gone, and delete them after a grace period
(docs/files.md "Orphaned objects").

`file_sweep_candidates` (new, system bookkeeping, no tenant column, no grant to the app role): an
object key under `organizations/*/uploads/` or `organizations/*/processed/files/` whose file id had
no `reconciliation_files` row when the sweeper saw it, with when that was first and last seen.
Storage adapters do not report object ages, so the grace period counts from the first sighting:
an upload in flight (stored, row not yet committed) is seen, then has its row by the next look
and leaves the list; only an object orphaned for longer than the grace period is returned.

Functions (SECURITY DEFINER, owned by reckai_system, EXECUTE for reckai_app only; docs/tenancy.md):
- `files_sweep_orphans(p_keys text[], p_file_ids uuid[], p_grace_seconds integer)`: records the
  given (key, file id) pairs whose file row is missing, forgets those whose row exists, returns
  the keys orphaned for at least the grace period. Reveals only "this id has no file row".
- `files_sweep_forget(p_keys text[], p_unseen_seconds integer)`: drops the given keys (deleted
  from storage) and, unless p_unseen_seconds is NULL, candidates not seen for that long (objects
  that went away by themselves; the sweeper passes the length of a whole pass plus a margin).

Revision ID: 0008_file_sweeper
Revises: 0007_workflow
"""

from __future__ import annotations

from alembic import op

revision = "0008_file_sweeper"
down_revision = "0007_workflow"
branch_labels = None
depends_on = None

APP = "reckai_app"
SYSTEM = "reckai_system"
UTC_NOW = "(now() AT TIME ZONE 'UTC')"

TABLE = f"""
CREATE TABLE file_sweep_candidates (
    object_key TEXT PRIMARY KEY,
    file_id UUID NOT NULL,
    first_seen_at TIMESTAMP NOT NULL DEFAULT {UTC_NOW},
    last_seen_at TIMESTAMP NOT NULL DEFAULT {UTC_NOW}
);
"""

FUNCTIONS = {
    "files_sweep_orphans(text[], uuid[], integer)": f"""
CREATE FUNCTION files_sweep_orphans(p_keys text[], p_file_ids uuid[], p_grace_seconds integer)
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_grace_seconds IS NULL OR p_grace_seconds < 0 THEN
        RAISE EXCEPTION 'p_grace_seconds must be >= 0' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(p_keys) IS DISTINCT FROM cardinality(p_file_ids) THEN
        RAISE EXCEPTION 'p_keys and p_file_ids must have the same length' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Seen with a file row (an upload that has since committed): not an orphan any more.
    DELETE FROM public.file_sweep_candidates c
     WHERE c.object_key = ANY (p_keys)
       AND EXISTS (SELECT 1 FROM public.reconciliation_files f WHERE f.id = c.file_id);
    RETURN QUERY
    WITH page AS (
        SELECT DISTINCT ON (o.object_key) o.object_key, o.file_id
          FROM unnest(p_keys, p_file_ids) AS o(object_key, file_id)
         WHERE o.object_key IS NOT NULL AND o.file_id IS NOT NULL
         ORDER BY o.object_key
    ), seen AS (
        INSERT INTO public.file_sweep_candidates AS c (object_key, file_id)
        SELECT p.object_key, p.file_id FROM page p
         WHERE NOT EXISTS (SELECT 1 FROM public.reconciliation_files f WHERE f.id = p.file_id)
        ON CONFLICT (object_key) DO UPDATE SET last_seen_at = {UTC_NOW}, file_id = EXCLUDED.file_id
        RETURNING c.object_key, c.first_seen_at
    )
    SELECT s.object_key FROM seen s
     WHERE s.first_seen_at <= {UTC_NOW} - make_interval(secs => p_grace_seconds)
     ORDER BY s.object_key;
END
$$;
""",
    "files_sweep_forget(text[], integer)": f"""
CREATE FUNCTION files_sweep_forget(p_keys text[], p_unseen_seconds integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    forgotten integer;
BEGIN
    IF p_unseen_seconds < 0 THEN
        RAISE EXCEPTION 'p_unseen_seconds must be >= 0' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM public.file_sweep_candidates
     WHERE object_key = ANY (COALESCE(p_keys, '{{}}'))
        OR (p_unseen_seconds IS NOT NULL
            AND last_seen_at < {UTC_NOW} - make_interval(secs => p_unseen_seconds));
    GET DIAGNOSTICS forgotten = ROW_COUNT;
    RETURN forgotten;
END
$$;
""",
}


def upgrade() -> None:
    op.execute(TABLE)
    # Bookkeeping of the system, read and written only through the functions below.
    op.execute("ALTER TABLE file_sweep_candidates ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE file_sweep_candidates FORCE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON file_sweep_candidates FROM PUBLIC, {APP}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON file_sweep_candidates TO {SYSTEM}")
    op.execute(f"GRANT SELECT ON reconciliation_files TO {SYSTEM}")
    op.execute(f"GRANT CREATE ON SCHEMA public TO {SYSTEM}")
    for signature, body in FUNCTIONS.items():
        op.execute(body)
        op.execute(f"ALTER FUNCTION {signature} OWNER TO {SYSTEM}")
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {SYSTEM}")


def downgrade() -> None:
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.execute(f"REVOKE SELECT ON reconciliation_files FROM {SYSTEM}")
    op.execute("DROP TABLE IF EXISTS file_sweep_candidates")
