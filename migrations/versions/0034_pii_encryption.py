"""Field-level encryption of personal data (issue 17 item 4; docs/privacy.md, "Personal data at rest").

- `organization_data_keys`: one data key per organization, wrapped by a master key (the settings'
  data encryption key, derived; `master_key_id` names it). Row-level security forced, like every
  tenant table; reckai_app may read, insert and re-wrap (update) its own organization's row.
- `users.email` and `users.name` hold ciphertext (TEXT: `pii1:<key id>:<base64url>`), and
  `users.email_index` the blind index (HMAC-SHA256 of the trimmed, lower-cased address under the
  organization's index key). Uniqueness moves from `lower(email)` to `(organization_id,
  email_index)`; the spec's `UNIQUE(organization_id, email)` and `idx_users_email` would index random
  ciphertext and are dropped.
- The pre-tenant functions change with it: `auth_find_organization_data_key(code)` (the wrapped key,
  for the blind index), `auth_find_login_candidate_by_index(code, index)` replaces
  `auth_find_login_candidate(code, email)`, `signup_create_organization_encrypted(...)` replaces
  `signup_create_organization(...)` (the organization's id, its wrapped data key and the admin's
  ciphertext come from the application); `pii_data_keys_to_rewrap(master key id, limit)` lists the
  organizations whose data key another master key wraps (`reckai keys rotate`).
- The address and name in a `user_onboarding` approval's metadata (the account to create, and
  invite, once approved) are encrypted the same way.
- The address in a `send_password_reset` outbox row's payload is sealed (`email_sealed`, the secret
  box over the same master keys, as the request now does).
- Existing rows are encrypted here, organization by organization, in batches. That needs the master
  key: `reckai migrate` passes the settings' keys (`config.attributes["pii_master_keys"]`); without
  them the migration refuses to run. The downgrade decrypts back, with the same keys.

Revision ID: 0034_pii_encryption
Revises: 0033_retention_approvals
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

from alembic import context, op
from sqlalchemy import text

revision = "0034_pii_encryption"
down_revision = "0033_retention_approvals"
branch_labels = None
depends_on = None

APP = "reckai_app"
SYSTEM = "reckai_system"
CURRENT_ORG = "NULLIF(current_setting('app.current_org_id', true), '')::uuid"
BATCH_SIZE = 500

MISSING_KEY = (
    "0034_pii_encryption encrypts the users' e-mail addresses and names and needs the master key: run it "
    "with `reckai migrate`, which loads the settings (DATA_ENCRYPTION_KEY, or the embedded instance's "
    "var/secrets.json); nothing was changed"
)

TABLE = f"""
CREATE TABLE organization_data_keys (
    organization_id UUID PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    key_id VARCHAR(50) NOT NULL,
    wrapped_key BYTEA NOT NULL,
    master_key_id VARCHAR(100) NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    rewrapped_at TIMESTAMP
);
CREATE INDEX idx_organization_data_keys_master ON organization_data_keys(master_key_id);
ALTER TABLE organization_data_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE organization_data_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON organization_data_keys FOR ALL
    USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG});
GRANT SELECT, INSERT, UPDATE, DELETE ON organization_data_keys TO {APP};
GRANT SELECT, INSERT ON organization_data_keys TO {SYSTEM};
"""

FUNCTIONS = {
    "auth_find_organization_data_key(text)": """
CREATE FUNCTION auth_find_organization_data_key(p_organization_code text)
RETURNS TABLE (organization_id uuid, key_id varchar, wrapped_key bytea, master_key_id varchar)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.organization_id, k.key_id, k.wrapped_key, k.master_key_id
      FROM public.organization_data_keys k
      JOIN public.organizations o ON o.id = k.organization_id
     WHERE o.code = p_organization_code
$$;
""",
    "auth_find_login_candidate_by_index(text, text)": """
CREATE FUNCTION auth_find_login_candidate_by_index(p_organization_code text, p_email_index text)
RETURNS TABLE (
    user_id uuid, organization_id uuid, organization_is_active boolean, email text,
    password_hash varchar, name text, role varchar, is_active boolean, is_email_verified boolean,
    mfa_enabled boolean, mfa_secret varchar, failed_login_attempts integer, locked_until timestamp,
    password_changed_at timestamp, last_login_at timestamp
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, u.organization_id, o.is_active, u.email, u.password_hash, u.name, u.role,
           u.is_active, u.is_email_verified, u.mfa_enabled, u.mfa_secret,
           u.failed_login_attempts, u.locked_until, u.password_changed_at, u.last_login_at
      FROM public.users u
      JOIN public.organizations o ON o.id = u.organization_id
     WHERE o.code = p_organization_code
       AND u.email_index = p_email_index
$$;
""",
    "signup_create_organization_encrypted(uuid, text, text, text, text, text, text, text, text, bytea, text)": """
CREATE FUNCTION signup_create_organization_encrypted(
    p_organization_id uuid, p_name text, p_code text, p_domain text,
    p_admin_email text, p_admin_email_index text, p_admin_name text, p_admin_password_hash text,
    p_key_id text, p_wrapped_key bytea, p_master_key_id text
)
RETURNS TABLE (organization_id uuid, user_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid;
BEGIN
    -- A taken code raises unique_violation (23505) on organizations_code_key.
    INSERT INTO public.organizations (id, name, code, domain)
    VALUES (p_organization_id, p_name, p_code, p_domain);
    INSERT INTO public.organization_data_keys (organization_id, key_id, wrapped_key, master_key_id)
    VALUES (p_organization_id, p_key_id, p_wrapped_key, p_master_key_id);
    INSERT INTO public.users (organization_id, email, email_index, password_hash, name, role)
    VALUES (p_organization_id, p_admin_email, p_admin_email_index, p_admin_password_hash, p_admin_name, 'admin')
    RETURNING id INTO v_user;
    UPDATE public.organizations SET created_by = v_user WHERE id = p_organization_id;
    INSERT INTO public.organization_quotas (organization_id, max_users, max_storage_gb)
    SELECT id, max_users, max_storage_gb FROM public.organizations WHERE id = p_organization_id;
    INSERT INTO public.password_history (organization_id, user_id, password_hash)
    VALUES (p_organization_id, v_user, p_admin_password_hash);
    RETURN QUERY SELECT p_organization_id, v_user;
END
$$;
""",
    "pii_data_keys_to_rewrap(text, integer)": """
CREATE FUNCTION pii_data_keys_to_rewrap(p_master_key_id text, p_limit integer)
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    -- Ids only: the re-wrap itself happens under each organization's row-level security.
    SELECT k.organization_id FROM public.organization_data_keys k
     WHERE k.master_key_id <> p_master_key_id
     ORDER BY k.organization_id
     LIMIT greatest(p_limit, 0)
$$;
""",
}

# The 0001 functions this revision replaces (their bodies as 0001 wrote them, for the downgrade).
OLD_FUNCTIONS = {
    "auth_find_login_candidate(text, text)": """
CREATE FUNCTION auth_find_login_candidate(p_organization_code text, p_email text)
RETURNS TABLE (
    user_id uuid, organization_id uuid, organization_is_active boolean, email varchar,
    password_hash varchar, name varchar, role varchar, is_active boolean, is_email_verified boolean,
    mfa_enabled boolean, mfa_secret varchar, failed_login_attempts integer, locked_until timestamp,
    password_changed_at timestamp, last_login_at timestamp
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, u.organization_id, o.is_active, u.email, u.password_hash, u.name, u.role,
           u.is_active, u.is_email_verified, u.mfa_enabled, u.mfa_secret,
           u.failed_login_attempts, u.locked_until, u.password_changed_at, u.last_login_at
      FROM public.users u
      JOIN public.organizations o ON o.id = u.organization_id
     WHERE o.code = p_organization_code
       AND lower(u.email) = lower(p_email)
$$;
""",
    "signup_create_organization(text, text, text, text, text, text)": """
CREATE FUNCTION signup_create_organization(
    p_name text, p_code text, p_domain text,
    p_admin_email text, p_admin_name text, p_admin_password_hash text
)
RETURNS TABLE (organization_id uuid, user_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org uuid;
    v_user uuid;
BEGIN
    -- A taken code raises unique_violation (23505) on organizations_code_key.
    INSERT INTO public.organizations (name, code, domain)
    VALUES (p_name, p_code, p_domain)
    RETURNING id INTO v_org;
    INSERT INTO public.users (organization_id, email, password_hash, name, role)
    VALUES (v_org, p_admin_email, p_admin_password_hash, p_admin_name, 'admin')
    RETURNING id INTO v_user;
    UPDATE public.organizations SET created_by = v_user WHERE id = v_org;
    INSERT INTO public.organization_quotas (organization_id, max_users, max_storage_gb)
    SELECT id, max_users, max_storage_gb FROM public.organizations WHERE id = v_org;
    INSERT INTO public.password_history (organization_id, user_id, password_hash)
    VALUES (v_org, v_user, p_admin_password_hash);
    RETURN QUERY SELECT v_org, v_user;
END
$$;
""",
}

# Tables the owner reads and writes across organizations while (de)crypting; FORCE again after.
_BACKFILLED = ("organizations", "users", "organization_data_keys", "approvals", "outbox_messages")


def _master_keys() -> Any:
    keys = context.config.attributes.get("pii_master_keys")
    if keys is None:
        raise RuntimeError(MISSING_KEY)
    return keys


def _install(functions: dict[str, str]) -> None:
    op.execute(f"GRANT CREATE ON SCHEMA public TO {SYSTEM}")
    for signature, body in functions.items():
        op.execute(body)
        op.execute(f"ALTER FUNCTION {signature} OWNER TO {SYSTEM}")
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {SYSTEM}")


def _batches(rows: list[Any]) -> Any:
    for start in range(0, len(rows), BATCH_SIZE):
        yield rows[start : start + BATCH_SIZE]


def _approvals(connection: Any, organization_id: uuid.UUID, key: Any, change: Any) -> None:
    """(De)crypt the personal fields of the organization's approvals that carry some
    (a user_onboarding request: the address and name of the account to create)."""
    from reckai.adapters.security.personal_data import PERSONAL_METADATA

    rows = connection.execute(
        text("SELECT id, type, metadata FROM approvals WHERE organization_id = :org AND type = ANY(:types)"),
        {"org": organization_id, "types": list(PERSONAL_METADATA)}).all()
    for batch in _batches(list(rows)):
        connection.execute(text("UPDATE approvals SET metadata = CAST(:metadata AS jsonb) WHERE id = :id"),
                           [{"id": row.id, "metadata": json.dumps(change(key, row.type, dict(row.metadata or {})))}
                            for row in batch])


def _reset_addresses(connection: Any, secret_box: Any, *, seal: bool) -> None:
    """The address in the payload of `send_password_reset` outbox rows (of every status): sealed as
    the request now seals it (`email_sealed`), or opened back to `email` for the downgrade."""
    from reckai.application.identity.passwords import RESET_ADDRESS_CONTEXT

    present = "email" if seal else "email_sealed"
    rows = connection.execute(text(
        "SELECT id, payload FROM outbox_messages WHERE actor_name = 'send_password_reset' AND payload ? :key"),
        {"key": present}).all()
    changed = []
    for row in rows:
        payload = dict(row.payload)
        if seal:
            payload["email_sealed"] = secret_box.seal(str(payload.pop("email")).encode("utf-8"), RESET_ADDRESS_CONTEXT)
        else:
            payload["email"] = secret_box.open(str(payload.pop("email_sealed")), RESET_ADDRESS_CONTEXT).decode("utf-8")
        changed.append({"id": row.id, "payload": json.dumps(payload)})
    for batch in _batches(changed):
        connection.execute(text("UPDATE outbox_messages SET payload = CAST(:payload AS jsonb) WHERE id = :id"), batch)


def upgrade() -> None:
    from reckai.adapters.security.personal_data import seal_metadata
    from reckai.domain.identity.entities import normalized_email as normalize_email

    master = _master_keys()  # first: refuse before changing anything
    op.execute(TABLE)
    op.execute("DROP INDEX IF EXISTS uq_users_org_lower_email")
    op.execute("DROP INDEX IF EXISTS idx_users_email")
    op.execute("ALTER TABLE users DROP CONSTRAINT IF EXISTS users_organization_id_email_key")
    op.execute("ALTER TABLE users ALTER COLUMN email TYPE TEXT, ALTER COLUMN name TYPE TEXT,"
               " ADD COLUMN email_index VARCHAR(64)")

    connection = op.get_bind()
    for table in _BACKFILLED:
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    organizations = connection.execute(text("SELECT id FROM organizations ORDER BY id")).scalars().all()
    for organization_id in organizations:
        wrapped, key = master.new_data_key(organization_id)
        connection.execute(
            text("INSERT INTO organization_data_keys (organization_id, key_id, wrapped_key, master_key_id)"
                 " VALUES (:org, :key_id, :wrapped, :master)"),
            {"org": organization_id, "key_id": wrapped.key_id, "wrapped": wrapped.wrapped_key,
             "master": wrapped.master_key_id})
        users = connection.execute(
            text("SELECT id, email, name FROM users WHERE organization_id = :org ORDER BY id"),
            {"org": organization_id}).all()
        taken = Counter(normalize_email(user.email) for user in users)
        clashes = sorted(str(user.id) for user in users if taken[normalize_email(user.email)] > 1)
        if clashes:
            raise RuntimeError(
                f"0034_pii_encryption: users {', '.join(clashes)} of organization {organization_id} have the same "
                "e-mail address once trimmed and lower-cased; change one of them and run `reckai migrate` again "
                "(nothing was changed)")
        for batch in _batches(list(users)):
            connection.execute(
                text("UPDATE users SET email = :email, name = :name, email_index = :email_index WHERE id = :id"),
                [{"id": user.id, "email": key.encrypt("email", user.email), "name": key.encrypt("name", user.name),
                  "email_index": key.blind_index(user.email)} for user in batch])
        _approvals(connection, organization_id, key, seal_metadata)
    _reset_addresses(connection, master.secret_box, seal=True)
    for table in _BACKFILLED:
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")

    op.execute("ALTER TABLE users ALTER COLUMN email_index SET NOT NULL")
    op.execute("CREATE UNIQUE INDEX uq_users_org_email_index ON users(organization_id, email_index)")
    for signature in OLD_FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    _install(FUNCTIONS)


def downgrade() -> None:
    from reckai.adapters.security.personal_data import PersonalDataKeys, WrappedDataKey, open_metadata

    keys = PersonalDataKeys(_master_keys())
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    connection = op.get_bind()
    for table in _BACKFILLED:
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    stored = connection.execute(text(
        "SELECT organization_id, key_id, wrapped_key, master_key_id FROM organization_data_keys")).all()
    for row in stored:
        organization_id: uuid.UUID = row.organization_id
        key = keys.organization_key(WrappedDataKey(organization_id, row.key_id, bytes(row.wrapped_key),
                                                   row.master_key_id))
        users = connection.execute(text("SELECT id, email, name FROM users WHERE organization_id = :org"),
                                   {"org": organization_id}).all()
        for batch in _batches(list(users)):
            connection.execute(
                text("UPDATE users SET email = :email, name = :name WHERE id = :id"),
                [{"id": user.id, "email": key.decrypt("email", user.email), "name": key.decrypt("name", user.name)}
                 for user in batch])
        _approvals(connection, organization_id, key, open_metadata)
    _reset_addresses(connection, keys.master.secret_box, seal=False)
    for table in _BACKFILLED:
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute("DROP INDEX IF EXISTS uq_users_org_email_index")
    op.execute("ALTER TABLE users DROP COLUMN email_index,"
               " ALTER COLUMN email TYPE VARCHAR(255), ALTER COLUMN name TYPE VARCHAR(255)")
    op.execute("ALTER TABLE users ADD CONSTRAINT users_organization_id_email_key UNIQUE (organization_id, email)")
    op.execute("CREATE INDEX idx_users_email ON users(email)")
    op.execute("CREATE UNIQUE INDEX uq_users_org_lower_email ON users(organization_id, lower(email))")
    _install(OLD_FUNCTIONS)
    op.execute("DROP TABLE IF EXISTS organization_data_keys")
