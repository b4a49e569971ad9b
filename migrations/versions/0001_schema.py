"""The whole schema of spec §1 and §3.2, the tables it implies, row-level security, grants and the
SECURITY DEFINER functions. docs/schema.md lists every column beyond the spec; docs/tenancy.md
the roles, policies and functions.

Runs as the owner role (reckai_owner). The roles reckai_app and reckai_system must exist first
(`reckai db setup-roles`).

Revision ID: 0001_schema
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001_schema"
down_revision = None
branch_labels = None
depends_on = None

APP = "reckai_app"
SYSTEM = "reckai_system"

# The tenant of the current transaction; empty or unset means "no tenant": no row matches.
CURRENT_ORG = "NULLIF(current_setting('app.current_org_id', true), '')::uuid"

# --- spec §1, as written (only additions are marked "extra") ---------------------------------

SPEC_TABLES = """
CREATE TABLE organizations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(255) NOT NULL,
    code VARCHAR(50) UNIQUE NOT NULL,
    domain VARCHAR(255),
    subscription_tier VARCHAR(50) DEFAULT 'standard',
    max_users INTEGER DEFAULT 10,
    max_storage_gb INTEGER DEFAULT 100,
    is_active BOOLEAN DEFAULT true,
    settings JSONB DEFAULT '{}',
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW(),
    created_by UUID  -- FK to users(id) added below, once users exists
);
CREATE INDEX idx_orgs_code ON organizations(code);
CREATE INDEX idx_orgs_active ON organizations(is_active);

CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email VARCHAR(255) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    name VARCHAR(255) NOT NULL,
    role VARCHAR(50) NOT NULL CHECK (role IN ('admin', 'analyst', 'auditor', 'supervisor')),
    is_active BOOLEAN DEFAULT true,
    is_email_verified BOOLEAN DEFAULT false,
    mfa_enabled BOOLEAN DEFAULT false,
    mfa_secret VARCHAR(255),
    last_login_at TIMESTAMP,
    password_changed_at TIMESTAMP DEFAULT NOW(),
    failed_login_attempts INTEGER DEFAULT 0,
    locked_until TIMESTAMP,
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW(),
    created_by UUID REFERENCES users(id),
    -- extra column: bumped to revoke every access token of the user at once.
    token_version INTEGER NOT NULL DEFAULT 0,
    UNIQUE(organization_id, email)
);
CREATE INDEX idx_users_org ON users(organization_id);
CREATE INDEX idx_users_email ON users(email);
CREATE INDEX idx_users_active ON users(is_active, organization_id);
-- extra: login matches lower(email) within the organization, so it must be unique that way too.
CREATE UNIQUE INDEX uq_users_org_lower_email ON users(organization_id, lower(email));
CREATE INDEX idx_users_created_by ON users(created_by);

ALTER TABLE organizations
    ADD CONSTRAINT organizations_created_by_fkey FOREIGN KEY (created_by) REFERENCES users(id);
CREATE INDEX idx_orgs_created_by ON organizations(created_by);

-- extra table: refresh-token families (rotation; reuse of a rotated token revokes the family).
CREATE TABLE refresh_token_families (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMP DEFAULT NOW(),
    absolute_expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    revoked_reason VARCHAR(50)
);
CREATE INDEX idx_token_families_org ON refresh_token_families(organization_id);
CREATE INDEX idx_token_families_user ON refresh_token_families(user_id);
CREATE INDEX idx_token_families_expires ON refresh_token_families(absolute_expires_at);

-- The spec writes both a column UNIQUE and UNIQUE(token_hash); one constraint enforces both.
CREATE TABLE user_sessions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash VARCHAR(255) NOT NULL,
    ip_address INET,
    user_agent TEXT,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP DEFAULT NOW(),
    last_activity_at TIMESTAMP DEFAULT NOW(),
    -- extra columns
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    family_id UUID REFERENCES refresh_token_families(id) ON DELETE CASCADE,
    fingerprint_hash VARCHAR(128),
    replaced_by UUID REFERENCES user_sessions(id) ON DELETE SET NULL,
    rotated_at TIMESTAMP,
    revoked_at TIMESTAMP,
    revoked_reason VARCHAR(50),
    absolute_expires_at TIMESTAMP,
    UNIQUE(token_hash)
);
CREATE INDEX idx_sessions_user ON user_sessions(user_id);
CREATE INDEX idx_sessions_expires ON user_sessions(expires_at);
CREATE INDEX idx_sessions_token ON user_sessions(token_hash);
CREATE INDEX idx_sessions_org ON user_sessions(organization_id);
CREATE INDEX idx_sessions_family ON user_sessions(family_id);
CREATE INDEX idx_sessions_replaced_by ON user_sessions(replaced_by);

-- extra table: password history (spec §2.1, no reuse of the last 5 passwords).
CREATE TABLE password_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    password_hash VARCHAR(255) NOT NULL,
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX idx_password_history_org ON password_history(organization_id);
CREATE INDEX idx_password_history_user ON password_history(user_id, created_at DESC);

-- extra table: single-use tokens sent by mail (invitation, password reset, e-mail verification);
-- only the SHA-256 of the token is stored. Looked up before the tenant is known, through
-- auth_find_user_token().
CREATE TABLE user_tokens (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose VARCHAR(30) NOT NULL CHECK (purpose IN ('invitation', 'password_reset', 'email_verification')),
    token_hash VARCHAR(255) NOT NULL UNIQUE,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    created_by UUID REFERENCES users(id),
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX idx_user_tokens_org ON user_tokens(organization_id);
CREATE INDEX idx_user_tokens_user ON user_tokens(user_id, purpose);
CREATE INDEX idx_user_tokens_created_by ON user_tokens(created_by);
CREATE INDEX idx_user_tokens_expires ON user_tokens(expires_at);

-- extra table: MFA recovery codes (stored hashed, each usable once).
CREATE TABLE mfa_recovery_codes (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash VARCHAR(255) NOT NULL,
    used_at TIMESTAMP,
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX idx_recovery_codes_org ON mfa_recovery_codes(organization_id);
CREATE INDEX idx_recovery_codes_user ON mfa_recovery_codes(user_id);

-- spec §3.2: the source of truth for quotas.
CREATE TABLE organization_quotas (
    organization_id UUID PRIMARY KEY REFERENCES organizations(id),
    max_users INTEGER DEFAULT 10,
    max_storage_gb INTEGER DEFAULT 100,
    max_jobs_per_month INTEGER DEFAULT 1000,
    max_file_size_mb INTEGER DEFAULT 100,
    features JSONB DEFAULT '{}',
    updated_at TIMESTAMP DEFAULT NOW()
);

CREATE TABLE reconciliation_jobs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name VARCHAR(255) NOT NULL,
    status VARCHAR(50) NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    progress INTEGER DEFAULT 0 CHECK (progress >= 0 AND progress <= 100),
    total_rows INTEGER DEFAULT 0,
    processed_rows INTEGER DEFAULT 0,
    matched_rows INTEGER DEFAULT 0,
    exception_rows INTEGER DEFAULT 0,
    match_rate DECIMAL(5,2),
    processing_time_seconds INTEGER,
    error_message TEXT,
    created_by UUID NOT NULL REFERENCES users(id),
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX idx_jobs_org ON reconciliation_jobs(organization_id);
CREATE INDEX idx_jobs_status ON reconciliation_jobs(status, organization_id);
CREATE INDEX idx_jobs_created ON reconciliation_jobs(created_at DESC);
CREATE INDEX idx_jobs_created_by ON reconciliation_jobs(created_by);

CREATE TABLE reconciliation_files (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    job_id UUID REFERENCES reconciliation_jobs(id) ON DELETE CASCADE,
    name VARCHAR(255) NOT NULL,
    original_filename VARCHAR(255) NOT NULL,
    file_type VARCHAR(50) NOT NULL CHECK (file_type IN ('bank', 'settlement', 'switch', 'card', 'gl')),
    format VARCHAR(50) NOT NULL CHECK (format IN ('excel', 'csv', 'txt', 'xml')),
    size_bytes BIGINT NOT NULL,
    storage_path TEXT NOT NULL,
    status VARCHAR(50) NOT NULL CHECK (status IN ('uploaded', 'mapped', 'normalized', 'processed', 'error')),
    row_count INTEGER,
    checksum VARCHAR(64),
    uploaded_by UUID NOT NULL REFERENCES users(id),
    uploaded_at TIMESTAMP DEFAULT NOW(),
    processed_at TIMESTAMP
);
CREATE INDEX idx_files_org ON reconciliation_files(organization_id);
CREATE INDEX idx_files_job ON reconciliation_files(job_id);
CREATE INDEX idx_files_type ON reconciliation_files(file_type, organization_id);
CREATE INDEX idx_files_uploaded_by ON reconciliation_files(uploaded_by);

-- extra table: which files take part in a job, and on which side (a file may serve several jobs).
CREATE TABLE reconciliation_job_files (
    job_id UUID NOT NULL REFERENCES reconciliation_jobs(id) ON DELETE CASCADE,
    file_id UUID NOT NULL REFERENCES reconciliation_files(id) ON DELETE CASCADE,
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    side VARCHAR(10) NOT NULL CHECK (side IN ('left', 'right')),
    created_at TIMESTAMP DEFAULT NOW(),
    PRIMARY KEY (job_id, file_id)
);
CREATE INDEX idx_job_files_file ON reconciliation_job_files(file_id);
CREATE INDEX idx_job_files_org ON reconciliation_job_files(organization_id);

-- extra table: where the normalized (canonical) rows of an uploaded file are stored.
CREATE TABLE normalized_files (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    file_id UUID NOT NULL REFERENCES reconciliation_files(id) ON DELETE CASCADE,
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    storage_path TEXT NOT NULL,
    row_count INTEGER NOT NULL DEFAULT 0 CHECK (row_count >= 0),
    schema_version INTEGER NOT NULL DEFAULT 1,
    checksum VARCHAR(64),
    created_at TIMESTAMP DEFAULT NOW(),
    UNIQUE (file_id, schema_version)
);
CREATE INDEX idx_normalized_files_org ON normalized_files(organization_id);

CREATE TABLE data_mappings (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    file_id UUID NOT NULL REFERENCES reconciliation_files(id) ON DELETE CASCADE,
    source_column VARCHAR(255) NOT NULL,
    target_field VARCHAR(255) NOT NULL,
    data_type VARCHAR(50) NOT NULL CHECK (data_type IN ('string', 'number', 'date', 'currency')),
    auto_detected BOOLEAN DEFAULT false,
    transformation_rules JSONB,
    created_at TIMESTAMP DEFAULT NOW(),
    created_by UUID REFERENCES users(id)
);
CREATE INDEX idx_mappings_file ON data_mappings(file_id);
CREATE INDEX idx_mappings_org ON data_mappings(organization_id);
CREATE INDEX idx_mappings_created_by ON data_mappings(created_by);

CREATE TABLE exceptions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    job_id UUID NOT NULL REFERENCES reconciliation_jobs(id) ON DELETE CASCADE,
    type VARCHAR(50) NOT NULL CHECK (type IN ('amount_mismatch', 'date_mismatch', 'missing_entry', 'duplicate', 'timing_difference', 'non_settlement')),
    severity VARCHAR(50) NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status VARCHAR(50) NOT NULL CHECK (status IN ('open', 'in_progress', 'resolved', 'escalated', 'ignored')),
    amount DECIMAL(18,2),
    currency VARCHAR(3) DEFAULT 'NGN',
    transaction_date DATE,
    description TEXT NOT NULL,
    ai_explanation TEXT,
    ai_confidence DECIMAL(5,4),
    suggested_action TEXT,
    assigned_to UUID REFERENCES users(id),
    resolved_by UUID REFERENCES users(id),
    resolved_at TIMESTAMP,
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX idx_exceptions_org ON exceptions(organization_id);
CREATE INDEX idx_exceptions_job ON exceptions(job_id);
CREATE INDEX idx_exceptions_status ON exceptions(status, organization_id);
CREATE INDEX idx_exceptions_severity ON exceptions(severity, organization_id);
CREATE INDEX idx_exceptions_assigned ON exceptions(assigned_to);
CREATE INDEX idx_exceptions_resolved_by ON exceptions(resolved_by);

CREATE TABLE exception_comments (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    exception_id UUID NOT NULL REFERENCES exceptions(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users(id),
    content TEXT NOT NULL,
    created_at TIMESTAMP DEFAULT NOW(),
    -- extra column: isolated like every other tenant table.
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE
);
CREATE INDEX idx_comments_exception ON exception_comments(exception_id);
CREATE INDEX idx_comments_user ON exception_comments(user_id);
CREATE INDEX idx_comments_org ON exception_comments(organization_id);

CREATE TABLE approvals (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    type VARCHAR(50) NOT NULL CHECK (type IN ('rule_configuration', 'ledger_posting', 'user_onboarding', 'exception_resolution', 'report_generation', 'system_setting')),
    status VARCHAR(50) NOT NULL CHECK (status IN ('pending', 'approved', 'declined', 'cancelled')),
    title VARCHAR(255) NOT NULL,
    description TEXT NOT NULL,
    metadata JSONB NOT NULL,
    requested_by UUID NOT NULL REFERENCES users(id),
    requested_at TIMESTAMP DEFAULT NOW(),
    reviewed_by UUID REFERENCES users(id),
    reviewed_at TIMESTAMP,
    review_comments TEXT,
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX idx_approvals_org ON approvals(organization_id);
CREATE INDEX idx_approvals_status ON approvals(status, organization_id);
CREATE INDEX idx_approvals_type ON approvals(type, organization_id);
CREATE INDEX idx_approvals_requested ON approvals(requested_by);
CREATE INDEX idx_approvals_pending ON approvals(status) WHERE status = 'pending';
CREATE INDEX idx_approvals_reviewed_by ON approvals(reviewed_by);

CREATE TABLE matching_rules (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name VARCHAR(255) NOT NULL,
    rule_type VARCHAR(50) NOT NULL CHECK (rule_type IN ('exact', 'fuzzy', 'range', 'regex')),
    is_active BOOLEAN DEFAULT true,
    priority INTEGER DEFAULT 0,
    tolerance_percentage DECIMAL(5,4),
    tolerance_amount DECIMAL(18,2),
    date_tolerance_days INTEGER,
    field_mappings JSONB NOT NULL,
    conditions JSONB,
    approval_id UUID REFERENCES approvals(id),
    created_by UUID NOT NULL REFERENCES users(id),
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW(),
    approved_at TIMESTAMP,
    UNIQUE(organization_id, name)
);
CREATE INDEX idx_rules_org ON matching_rules(organization_id);
CREATE INDEX idx_rules_active ON matching_rules(is_active, organization_id);
CREATE INDEX idx_rules_approval ON matching_rules(approval_id);
CREATE INDEX idx_rules_created_by ON matching_rules(created_by);

-- extra table: every version of a rule; a change is a new pending version until approved.
CREATE TABLE matching_rule_versions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    rule_id UUID NOT NULL REFERENCES matching_rules(id) ON DELETE CASCADE,
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    version INTEGER NOT NULL CHECK (version >= 1),
    status VARCHAR(20) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'retired')),
    definition JSONB NOT NULL,
    approval_id UUID REFERENCES approvals(id),
    created_by UUID NOT NULL REFERENCES users(id),
    created_at TIMESTAMP DEFAULT NOW(),
    approved_at TIMESTAMP,
    UNIQUE (rule_id, version)
);
CREATE INDEX idx_rule_versions_org ON matching_rule_versions(organization_id);
CREATE INDEX idx_rule_versions_approval ON matching_rule_versions(approval_id);
CREATE INDEX idx_rule_versions_created_by ON matching_rule_versions(created_by);
-- At most one active version per rule.
CREATE UNIQUE INDEX uq_rule_versions_one_active ON matching_rule_versions(rule_id) WHERE status = 'active';

-- extra tables: match results. A group links the rows matched together (1:1, 1:n, n:m) with the
-- rule and rule version that matched them, a confidence and the evidence (per-field comparison).
CREATE TABLE match_groups (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    job_id UUID NOT NULL REFERENCES reconciliation_jobs(id) ON DELETE CASCADE,
    rule_id UUID REFERENCES matching_rules(id) ON DELETE SET NULL,
    rule_version INTEGER,
    status VARCHAR(20) NOT NULL CHECK (status IN ('auto', 'suggested', 'manual', 'declined')),
    confidence NUMERIC(5,4) CHECK (confidence >= 0 AND confidence <= 1),
    evidence JSONB NOT NULL DEFAULT '{}',
    created_by UUID REFERENCES users(id),
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX idx_match_groups_org ON match_groups(organization_id);
CREATE INDEX idx_match_groups_job ON match_groups(job_id, status);
CREATE INDEX idx_match_groups_rule ON match_groups(rule_id);
CREATE INDEX idx_match_groups_created_by ON match_groups(created_by);

CREATE TABLE match_members (
    group_id UUID NOT NULL REFERENCES match_groups(id) ON DELETE CASCADE,
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    job_id UUID NOT NULL REFERENCES reconciliation_jobs(id) ON DELETE CASCADE,
    side VARCHAR(10) NOT NULL CHECK (side IN ('left', 'right')),
    file_id UUID NOT NULL REFERENCES reconciliation_files(id) ON DELETE CASCADE,
    row_number INTEGER NOT NULL CHECK (row_number >= 1),
    amount_minor BIGINT,
    PRIMARY KEY (group_id, file_id, row_number)
);
CREATE INDEX idx_match_members_org ON match_members(organization_id);
CREATE INDEX idx_match_members_job ON match_members(job_id);
CREATE INDEX idx_match_members_file_row ON match_members(file_id, row_number);

CREATE TABLE audit_logs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID REFERENCES organizations(id) ON DELETE SET NULL,
    user_id UUID REFERENCES users(id) ON DELETE SET NULL,
    action VARCHAR(100) NOT NULL,
    resource_type VARCHAR(100),
    resource_id UUID,
    ip_address INET,
    user_agent TEXT,
    request_method VARCHAR(10),
    request_path TEXT,
    request_body JSONB,
    response_status INTEGER,
    error_message TEXT,
    metadata JSONB,
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX idx_audit_org ON audit_logs(organization_id);
CREATE INDEX idx_audit_user ON audit_logs(user_id);
CREATE INDEX idx_audit_action ON audit_logs(action);
CREATE INDEX idx_audit_resource ON audit_logs(resource_type, resource_id);
CREATE INDEX idx_audit_created ON audit_logs(created_at DESC);
CREATE INDEX idx_audit_org_created ON audit_logs(organization_id, created_at DESC);

CREATE TABLE reports (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    type VARCHAR(50) NOT NULL CHECK (type IN ('daily', 'aging', 'channel_trend', 'sla', 'audit')),
    format VARCHAR(10) NOT NULL CHECK (format IN ('pdf', 'excel', 'csv')),
    job_id UUID REFERENCES reconciliation_jobs(id),
    parameters JSONB,
    storage_path TEXT NOT NULL,
    file_size_bytes BIGINT,
    generated_by UUID NOT NULL REFERENCES users(id),
    generated_at TIMESTAMP DEFAULT NOW(),
    expires_at TIMESTAMP
);
CREATE INDEX idx_reports_org ON reports(organization_id);
CREATE INDEX idx_reports_type ON reports(type, organization_id);
CREATE INDEX idx_reports_generated ON reports(generated_at DESC);
CREATE INDEX idx_reports_job ON reports(job_id);
CREATE INDEX idx_reports_generated_by ON reports(generated_by);

-- extra table: transactional outbox for jobs and notifications. A message is written in the
-- transaction that creates its row and relayed to the queue only after that commits.
CREATE TABLE outbox_messages (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID REFERENCES organizations(id) ON DELETE CASCADE,
    queue VARCHAR(20) NOT NULL CHECK (queue IN ('critical', 'high', 'medium', 'low')),
    actor_name VARCHAR(100) NOT NULL,
    payload JSONB NOT NULL,
    status VARCHAR(20) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'dispatched', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    available_at TIMESTAMP NOT NULL DEFAULT NOW(),
    dispatched_at TIMESTAMP,
    completed_at TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX idx_outbox_status_available ON outbox_messages(status, available_at);
CREATE INDEX idx_outbox_org ON outbox_messages(organization_id);
"""

# Tables whose policy is a plain equality on organization_id (organizations: id).
TENANT_TABLES = (
    "users",
    "user_sessions",
    "refresh_token_families",
    "password_history",
    "user_tokens",
    "mfa_recovery_codes",
    "organization_quotas",
    "reconciliation_jobs",
    "reconciliation_files",
    "reconciliation_job_files",
    "normalized_files",
    "data_mappings",
    "exceptions",
    "exception_comments",
    "approvals",
    "matching_rules",
    "matching_rule_versions",
    "match_groups",
    "match_members",
    "reports",
)
# Tables whose organization_id may be NULL for system rows (pre-tenant audit events, system jobs):
# a transaction without a tenant sees and writes only those rows, a tenant only its own.
NULLABLE_TENANT_TABLES = ("audit_logs", "outbox_messages")

# Privileges of the runtime role: exactly what the application needs, never TRUNCATE.
APP_GRANTS = {
    "organizations": "SELECT, UPDATE",  # created by signup_create_organization; never deleted
    "users": "SELECT, INSERT, UPDATE",  # never deleted (deactivated)
    "user_sessions": "SELECT, INSERT, UPDATE, DELETE",
    "refresh_token_families": "SELECT, INSERT, UPDATE",
    "password_history": "SELECT, INSERT, DELETE",
    "user_tokens": "SELECT, INSERT, UPDATE, DELETE",
    "mfa_recovery_codes": "SELECT, INSERT, UPDATE, DELETE",
    "organization_quotas": "SELECT, UPDATE",
    "reconciliation_jobs": "SELECT, INSERT, UPDATE, DELETE",
    "reconciliation_files": "SELECT, INSERT, UPDATE, DELETE",
    "reconciliation_job_files": "SELECT, INSERT, DELETE",
    "normalized_files": "SELECT, INSERT, UPDATE, DELETE",
    "data_mappings": "SELECT, INSERT, UPDATE, DELETE",
    "exceptions": "SELECT, INSERT, UPDATE, DELETE",
    "exception_comments": "SELECT, INSERT, UPDATE, DELETE",
    "approvals": "SELECT, INSERT, UPDATE",
    "matching_rules": "SELECT, INSERT, UPDATE, DELETE",
    "matching_rule_versions": "SELECT, INSERT, UPDATE",
    "match_groups": "SELECT, INSERT, UPDATE, DELETE",
    "match_members": "SELECT, INSERT, UPDATE, DELETE",
    "reports": "SELECT, INSERT, UPDATE, DELETE",
    "audit_logs": "SELECT, INSERT",  # append-only
    "outbox_messages": "SELECT, INSERT",  # the relay moves messages through the functions below
}

# Privileges reckai_system needs for its functions (it owns nothing else and cannot log in).
SYSTEM_GRANTS = {
    "organizations": "SELECT, INSERT, UPDATE",
    "users": "SELECT, INSERT",
    "password_history": "INSERT",
    "organization_quotas": "INSERT",
    "user_sessions": "SELECT, DELETE",
    "user_tokens": "SELECT, DELETE",
    "refresh_token_families": "SELECT, DELETE",
    "outbox_messages": "SELECT, UPDATE",
}

# --- SECURITY DEFINER functions: each does one narrow thing (docs/tenancy.md) -----------------

FUNCTIONS = {
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
    "auth_find_session_by_token_hash(text)": """
CREATE FUNCTION auth_find_session_by_token_hash(p_token_hash text)
RETURNS SETOF public.user_sessions
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM public.user_sessions WHERE token_hash = p_token_hash
$$;
""",
    "auth_find_user_token(text, text)": """
CREATE FUNCTION auth_find_user_token(p_purpose text, p_token_hash text)
RETURNS SETOF public.user_tokens
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM public.user_tokens WHERE purpose = p_purpose AND token_hash = p_token_hash
$$;
""",
    "signup_find_organization_by_code(text)": """
CREATE FUNCTION signup_find_organization_by_code(p_code text)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT id FROM public.organizations WHERE code = p_code
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
    "outbox_claim_due(integer, integer)": """
CREATE FUNCTION outbox_claim_due(p_limit integer, p_stale_after_seconds integer DEFAULT NULL)
RETURNS SETOF public.outbox_messages
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    -- Claim due pending messages (and, when p_stale_after_seconds is given, messages dispatched
    -- that long ago and never completed) for every tenant; concurrent relays skip each other's.
    UPDATE public.outbox_messages m
       SET status = 'dispatched', dispatched_at = now(), attempts = m.attempts + 1
     WHERE m.id IN (
            SELECT c.id FROM public.outbox_messages c
             WHERE c.attempts < c.max_attempts
               AND ((c.status = 'pending' AND c.available_at <= now())
                    OR (p_stale_after_seconds IS NOT NULL AND c.status = 'dispatched'
                        AND c.dispatched_at < now() - make_interval(secs => p_stale_after_seconds)))
             ORDER BY c.available_at, c.created_at
             LIMIT greatest(p_limit, 0)
             FOR UPDATE SKIP LOCKED)
    RETURNING m.*
$$;
""",
    "outbox_mark_done(uuid)": """
CREATE FUNCTION outbox_mark_done(p_id uuid)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH done AS (
        UPDATE public.outbox_messages SET status = 'done', completed_at = now(), last_error = NULL
         WHERE id = p_id AND status IN ('pending', 'dispatched')
        RETURNING 1)
    SELECT count(*) > 0 FROM done
$$;
""",
    "outbox_mark_failed(uuid, text, integer)": """
CREATE FUNCTION outbox_mark_failed(p_id uuid, p_error text, p_retry_after_seconds integer)
RETURNS varchar
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    -- Back to pending after the delay while attempts remain, else failed for good.
    -- Returns the new status (NULL when the message is unknown or already finished).
    UPDATE public.outbox_messages
       SET last_error = left(p_error, 4000),
           status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
           completed_at = CASE WHEN attempts >= max_attempts THEN now() END,
           available_at = CASE WHEN attempts >= max_attempts THEN available_at
                               ELSE now() + make_interval(secs => greatest(p_retry_after_seconds, 0)) END
     WHERE id = p_id AND status IN ('pending', 'dispatched')
    RETURNING status
$$;
""",
    "sweep_expired_sessions()": """
CREATE FUNCTION sweep_expired_sessions()
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_sessions integer;
BEGIN
    -- Expired or revoked sessions of every tenant, then token families with nothing left in them,
    -- and mailed tokens a week past their expiry. Returns the number of sessions deleted.
    DELETE FROM public.user_sessions
     WHERE expires_at < now()
        OR absolute_expires_at < now()
        OR revoked_at < now() - interval '1 day';
    GET DIAGNOSTICS v_sessions = ROW_COUNT;
    DELETE FROM public.user_tokens WHERE expires_at < now() - interval '7 days';
    DELETE FROM public.refresh_token_families f
     WHERE f.absolute_expires_at < now()
       AND NOT EXISTS (SELECT 1 FROM public.user_sessions s WHERE s.family_id = f.id);
    RETURN v_sessions;
END
$$;
""",
}


def upgrade() -> None:
    op.execute(SPEC_TABLES)

    # Row-level security: ENABLE and FORCE (the owner is subject to it too), one policy each.
    op.execute("ALTER TABLE organizations ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE organizations FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON organizations FOR ALL"
        f" USING (id = {CURRENT_ORG}) WITH CHECK (id = {CURRENT_ORG})"
    )
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} FOR ALL"
            f" USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})"
        )
    for table in NULLABLE_TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} FOR ALL"
            f" USING (organization_id IS NOT DISTINCT FROM {CURRENT_ORG})"
            f" WITH CHECK (organization_id IS NOT DISTINCT FROM {CURRENT_ORG})"
        )

    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP}, {SYSTEM}")
    for table, privileges in APP_GRANTS.items():
        op.execute(f"GRANT {privileges} ON {table} TO {APP}")
    for table, privileges in SYSTEM_GRANTS.items():
        op.execute(f"GRANT {privileges} ON {table} TO {SYSTEM}")

    # The functions are created by the owner, then handed to reckai_system (which needs CREATE on
    # the schema only for the hand-over; it keeps ownership after the grant is revoked).
    op.execute(f"GRANT CREATE ON SCHEMA public TO {SYSTEM}")
    for signature, body in FUNCTIONS.items():
        op.execute(body)
        op.execute(f"ALTER FUNCTION {signature} OWNER TO {SYSTEM}")
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {SYSTEM}")


def downgrade() -> None:
    for signature in reversed(list(FUNCTIONS)):
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    tables = [
        "outbox_messages",
        "reports",
        "audit_logs",
        "match_members",
        "match_groups",
        "matching_rule_versions",
        "matching_rules",
        "approvals",
        "exception_comments",
        "exceptions",
        "data_mappings",
        "normalized_files",
        "reconciliation_job_files",
        "reconciliation_files",
        "reconciliation_jobs",
        "organization_quotas",
        "password_history",
        "mfa_recovery_codes",
        "user_tokens",
        "user_sessions",
        "refresh_token_families",
    ]
    for table in tables:
        op.execute(f"DROP TABLE IF EXISTS {table}")
    # The organizations <-> users cycle: drop the late FK first.
    op.execute("ALTER TABLE organizations DROP CONSTRAINT IF EXISTS organizations_created_by_fkey")
    op.execute("DROP TABLE IF EXISTS users")
    op.execute("DROP TABLE IF EXISTS organizations")
    op.execute(f"REVOKE ALL ON SCHEMA public FROM {APP}, {SYSTEM}")
