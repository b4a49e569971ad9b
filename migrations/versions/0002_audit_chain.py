"""Tamper-evident, append-only audit log (docs/audit.md).

- audit_logs gains its chain columns: chain_key (generated: the organization, or the nil UUID for
  the system chain), sequence_number, previous_hash, hash (HMAC computed by the application with
  a key the database never sees) and key_id; UNIQUE (chain_key, sequence_number).
- audit_chain_heads holds each chain's last sequence/hash (the row locked to take the next
  sequence, so concurrent writers queue instead of forking the chain) and the signed checkpoint
  left by retention purges.
- Triggers refuse UPDATE, DELETE and TRUNCATE on audit_logs; the only deletion allowed is the
  seven-year retention purge run by audit_purge_expired (SECURITY DEFINER, reckai_system).
- A BEFORE INSERT trigger checks each new row continues its chain (sequence, previous hash,
  timestamp close to the database clock) and advances the head.

Revision ID: 0002_audit_chain
Revises: 0001_schema
"""

from __future__ import annotations

from alembic import op

revision = "0002_audit_chain"
down_revision = "0001_schema"
branch_labels = None
depends_on = None

APP = "reckai_app"
SYSTEM = "reckai_system"
NIL = "'00000000-0000-0000-0000-000000000000'::uuid"
CURRENT_ORG = "NULLIF(current_setting('app.current_org_id', true), '')::uuid"
UTC_NOW = "(clock_timestamp() AT TIME ZONE 'UTC')"
# Rows written more than this before the database clock are refused (back-dating), as are rows
# "from the future" beyond a small allowance.
MAX_WRITE_DELAY = "interval '10 minutes'"
RETENTION = "interval '7 years'"

# Runs before anything else in upgrade: rows written before the chain existed cannot be sealed
# afterwards (the key is not the database's), so refuse instead of inventing history.
REFUSE_UNCHAINED_ROWS = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM public.audit_logs) THEN
        RAISE EXCEPTION 'audit_logs already holds rows written without a hash chain; export and archive them, then empty the table before upgrading';
    END IF;
END
$$;
"""

TABLES = f"""
ALTER TABLE audit_logs
    ADD COLUMN chain_key UUID GENERATED ALWAYS AS (COALESCE(organization_id, {NIL})) STORED,
    ADD COLUMN sequence_number BIGINT NOT NULL CHECK (sequence_number >= 1),
    ADD COLUMN previous_hash CHAR(64) NOT NULL,
    ADD COLUMN hash CHAR(64) NOT NULL,
    ADD COLUMN key_id VARCHAR(64) NOT NULL,
    ALTER COLUMN created_at SET NOT NULL,
    ADD CONSTRAINT audit_logs_chain_sequence_key UNIQUE (chain_key, sequence_number);

CREATE TABLE audit_chain_heads (
    chain_key UUID PRIMARY KEY,
    organization_id UUID REFERENCES organizations(id),
    last_sequence BIGINT NOT NULL DEFAULT 0 CHECK (last_sequence >= 0),
    last_hash CHAR(64) NOT NULL DEFAULT repeat('0', 64),
    last_created_at TIMESTAMP,
    checkpoint_sequence BIGINT NOT NULL DEFAULT 0 CHECK (checkpoint_sequence >= 0),
    checkpoint_hash CHAR(64) NOT NULL DEFAULT repeat('0', 64),
    checkpoint_created_at TIMESTAMP,
    checkpoint_key_id VARCHAR(64),
    checkpoint_signature CHAR(64),
    checkpoint_purged_at TIMESTAMP,
    CHECK (chain_key = COALESCE(organization_id, {NIL})),
    CHECK (checkpoint_sequence <= last_sequence)
);
CREATE INDEX idx_audit_chain_heads_org ON audit_chain_heads(organization_id);

ALTER TABLE audit_chain_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_chain_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_chain_heads FOR ALL
    USING (organization_id IS NOT DISTINCT FROM {CURRENT_ORG})
    WITH CHECK (organization_id IS NOT DISTINCT FROM {CURRENT_ORG});
"""

# Plain (invoker) trigger functions: refusing needs no privilege.
GUARDS = f"""
CREATE FUNCTION audit_logs_refuse_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_user = '{SYSTEM}'
       AND current_setting('reckai.audit_purge_chain', true) = OLD.chain_key::text
       AND OLD.created_at < {UTC_NOW} - {RETENTION} THEN
        RETURN OLD;  -- the retention purge (audit_purge_expired) and nothing else
    END IF;
    RAISE EXCEPTION 'audit_logs is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE FUNCTION audit_logs_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs is append-only: TRUNCATE refused'
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_logs_append_only
    BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_refuse_change();
CREATE TRIGGER audit_logs_no_truncate
    BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_refuse_truncate();
"""

# SECURITY DEFINER functions, handed to reckai_system (signature -> body). Each does one thing.
FUNCTIONS = {
    "audit_chain_reserve(uuid)": f"""
CREATE FUNCTION audit_chain_reserve(p_chain_key uuid)
RETURNS TABLE (next_sequence bigint, previous_hash text, created_at timestamp)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_head public.audit_chain_heads%ROWTYPE;
BEGIN
    -- Only the chain of the transaction's own tenant (no tenant: the system chain).
    IF p_chain_key IS DISTINCT FROM COALESCE({CURRENT_ORG}, {NIL}) THEN
        RAISE EXCEPTION 'audit chain % is not the current tenant''s', p_chain_key
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO public.audit_chain_heads (chain_key, organization_id)
    VALUES (p_chain_key, NULLIF(p_chain_key, {NIL}))
    ON CONFLICT (chain_key) DO NOTHING;
    -- The lock every writer of this chain queues on until its transaction ends.
    SELECT * INTO v_head FROM public.audit_chain_heads h WHERE h.chain_key = p_chain_key FOR UPDATE;
    RETURN QUERY SELECT v_head.last_sequence + 1, v_head.last_hash::text,
        GREATEST({UTC_NOW}::timestamp, v_head.last_created_at);
END
$$;
""",
    "audit_logs_chain_append()": f"""
CREATE FUNCTION audit_logs_chain_append() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key uuid := COALESCE(NEW.organization_id, {NIL});
    v_head public.audit_chain_heads%ROWTYPE;
BEGIN
    INSERT INTO public.audit_chain_heads (chain_key, organization_id)
    VALUES (v_key, NEW.organization_id)
    ON CONFLICT (chain_key) DO NOTHING;
    SELECT * INTO v_head FROM public.audit_chain_heads h WHERE h.chain_key = v_key FOR UPDATE;
    IF NEW.sequence_number IS DISTINCT FROM v_head.last_sequence + 1
       OR NEW.previous_hash IS DISTINCT FROM v_head.last_hash THEN
        RAISE EXCEPTION 'audit chain %: row % does not continue the chain at sequence %',
            v_key, NEW.sequence_number, v_head.last_sequence + 1
            USING ERRCODE = 'serialization_failure';
    END IF;
    IF NEW.created_at IS NULL
       OR NEW.created_at < v_head.last_created_at
       OR NEW.created_at < {UTC_NOW} - {MAX_WRITE_DELAY}
       OR NEW.created_at > {UTC_NOW} + interval '5 seconds' THEN
        RAISE EXCEPTION 'audit chain %: created_at % is not the database''s current time', v_key, NEW.created_at
            USING ERRCODE = 'check_violation';
    END IF;
    UPDATE public.audit_chain_heads
       SET last_sequence = NEW.sequence_number, last_hash = NEW.hash, last_created_at = NEW.created_at
     WHERE chain_key = v_key;
    RETURN NEW;
END
$$;
""",
    "audit_chain_keys()": """
CREATE FUNCTION audit_chain_keys()
RETURNS TABLE (chain_key uuid, last_sequence bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    -- Which chains exist (for `reckai audit verify` over every tenant); no row content.
    SELECT h.chain_key, h.last_sequence FROM public.audit_chain_heads h ORDER BY h.chain_key
$$;
""",
    "audit_purge_expired(uuid, bigint, text, timestamp, text, text)": f"""
CREATE FUNCTION audit_purge_expired(
    p_chain_key uuid, p_through_sequence bigint, p_through_hash text, p_through_created_at timestamp,
    p_key_id text, p_signature text
)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_head public.audit_chain_heads%ROWTYPE;
    v_row public.audit_logs%ROWTYPE;
    v_deleted bigint;
BEGIN
    -- Removes the prefix of one chain through p_through_sequence, all of it past retention, and
    -- records the checkpoint (signed by the application) that verification resumes from.
    SELECT * INTO v_head FROM public.audit_chain_heads h WHERE h.chain_key = p_chain_key FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit chain % does not exist', p_chain_key USING ERRCODE = 'no_data_found';
    END IF;
    IF p_through_sequence <= v_head.checkpoint_sequence OR p_through_sequence > v_head.last_sequence THEN
        RAISE EXCEPTION 'audit chain %: sequence % is not purgeable (checkpoint %, last %)',
            p_chain_key, p_through_sequence, v_head.checkpoint_sequence, v_head.last_sequence
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_row FROM public.audit_logs a
     WHERE a.chain_key = p_chain_key AND a.sequence_number = p_through_sequence;
    IF NOT FOUND OR v_row.hash <> p_through_hash OR v_row.created_at <> p_through_created_at THEN
        RAISE EXCEPTION 'audit chain %: the checkpoint does not describe row %', p_chain_key, p_through_sequence
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_row.created_at >= {UTC_NOW} - {RETENTION} THEN
        RAISE EXCEPTION 'audit chain %: row % is within the seven-year retention period', p_chain_key, p_through_sequence
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('reckai.audit_purge_chain', p_chain_key::text, true);
    DELETE FROM public.audit_logs a
     WHERE a.chain_key = p_chain_key AND a.sequence_number <= p_through_sequence;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    PERFORM set_config('reckai.audit_purge_chain', '', true);
    UPDATE public.audit_chain_heads
       SET checkpoint_sequence = p_through_sequence, checkpoint_hash = p_through_hash,
           checkpoint_created_at = p_through_created_at, checkpoint_key_id = p_key_id,
           checkpoint_signature = p_signature, checkpoint_purged_at = {UTC_NOW}
     WHERE chain_key = p_chain_key;
    RETURN v_deleted;
END
$$;
""",
}

# EXECUTE for the runtime role on every function reckai_system owns (docs/tenancy.md's rule).
# The trigger function is included for that uniformity; PostgreSQL refuses to call a trigger
# function directly, so the grant gives nothing beyond firing the trigger on INSERT.
APP_FUNCTIONS = tuple(FUNCTIONS)


def upgrade() -> None:
    op.execute(REFUSE_UNCHAINED_ROWS)
    op.execute(TABLES)
    op.execute(GUARDS)

    # Append-only for the runtime role whatever was granted before; it reads heads, never writes.
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_logs FROM {APP}")
    op.execute(f"REVOKE ALL ON audit_chain_heads FROM PUBLIC, {APP}")
    op.execute(f"GRANT SELECT ON audit_chain_heads TO {APP}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON audit_chain_heads TO {SYSTEM}")
    op.execute(f"GRANT SELECT, DELETE ON audit_logs TO {SYSTEM}")

    op.execute(f"GRANT CREATE ON SCHEMA public TO {SYSTEM}")
    for signature, body in FUNCTIONS.items():
        op.execute(body)
        op.execute(f"ALTER FUNCTION {signature} OWNER TO {SYSTEM}")
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    for signature in APP_FUNCTIONS:
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {SYSTEM}")

    op.execute(
        "CREATE TRIGGER audit_logs_chain_append BEFORE INSERT ON audit_logs"
        " FOR EACH ROW EXECUTE FUNCTION audit_logs_chain_append()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_logs_chain_append ON audit_logs")
    op.execute("DROP TRIGGER IF EXISTS audit_logs_append_only ON audit_logs")
    op.execute("DROP TRIGGER IF EXISTS audit_logs_no_truncate ON audit_logs")
    for signature in reversed(list(FUNCTIONS)):
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.execute("DROP FUNCTION IF EXISTS audit_logs_refuse_change()")
    op.execute("DROP FUNCTION IF EXISTS audit_logs_refuse_truncate()")
    op.execute(f"REVOKE SELECT, DELETE ON audit_logs FROM {SYSTEM}")
    op.execute("DROP TABLE IF EXISTS audit_chain_heads")
    op.execute(
        "ALTER TABLE audit_logs"
        " DROP CONSTRAINT IF EXISTS audit_logs_chain_sequence_key,"
        " DROP COLUMN IF EXISTS key_id,"
        " DROP COLUMN IF EXISTS hash,"
        " DROP COLUMN IF EXISTS previous_hash,"
        " DROP COLUMN IF EXISTS sequence_number,"
        " DROP COLUMN IF EXISTS chain_key,"
        " ALTER COLUMN created_at DROP NOT NULL"
    )
