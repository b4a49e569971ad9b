"""Streams: continuous reconciliation with open-item carry-forward (issue 15; docs/streams.md).

streams: a named, long-lived pairing of two sides: the mapping template per side, the pinned rule
versions (their definitions copied at pinning time), leading side, currency.
stream_files: the files a stream took (UNIQUE per stream on their SHA-256), and the run that used each.
stream_runs: run N of a stream is a reconciliation job; `carry_key` names the stored open items
after it (the input of the next run besides its new files).
stream_rows: the key of every row a stream took, (side, fingerprint, occurrence), with the
stream's own row number (`seq`, stable for the stream's life) and where the row came from.
stream_exceptions: which stream rows (by seq) an exception is about: the same break found again
is the same exception.

Every table: row-level security enabled and forced with the tenant policy, grants to the app role
(no UPDATE on stream_rows: a row's identity never changes; none on stream_files beyond the run link).
The tables under a stream carry `organization_id` for row-level security without a foreign key to
organizations: their stream's foreign key (ON DELETE CASCADE) already ties them to it, and
stream_rows, written by the hundred thousand per run, is spared an index and an RI check per row.

Revision ID: 0021_streams
Revises: 0020_audit_access
"""

from __future__ import annotations

from alembic import op

revision = "0021_streams"
down_revision = "0020_audit_access"
branch_labels = None
depends_on = None

APP = "reckai_app"
CURRENT_ORG = "NULLIF(current_setting('app.current_org_id', true), '')::uuid"

UPGRADE = """
CREATE TABLE streams (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name VARCHAR(255) NOT NULL,
    left_file_type VARCHAR(50) NOT NULL,
    right_file_type VARCHAR(50) NOT NULL,
    left_mapping JSONB NOT NULL,
    right_mapping JSONB NOT NULL,
    rules JSONB NOT NULL,
    leading_side VARCHAR(10) CHECK (leading_side IN ('left', 'right')),
    currency VARCHAR(3) NOT NULL,
    options JSONB NOT NULL DEFAULT '{}',
    owner_id UUID NOT NULL REFERENCES users(id),
    created_by UUID NOT NULL REFERENCES users(id),
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    UNIQUE (organization_id, name)
);
CREATE INDEX idx_streams_org ON streams(organization_id, created_at DESC);
CREATE INDEX idx_streams_owner ON streams(owner_id);
CREATE INDEX idx_streams_created_by ON streams(created_by);

CREATE TABLE stream_runs (
    organization_id UUID NOT NULL,
    stream_id UUID NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    run_number INTEGER NOT NULL CHECK (run_number >= 1),
    job_id UUID NOT NULL UNIQUE REFERENCES reconciliation_jobs(id) ON DELETE RESTRICT,
    created_by UUID NOT NULL REFERENCES users(id),
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    carry_key TEXT,
    figures JSONB,
    PRIMARY KEY (stream_id, run_number)
);
CREATE INDEX idx_stream_runs_created_by ON stream_runs(created_by);

CREATE TABLE stream_files (
    organization_id UUID NOT NULL,
    stream_id UUID NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    file_id UUID NOT NULL UNIQUE REFERENCES reconciliation_files(id) ON DELETE RESTRICT,
    side VARCHAR(10) NOT NULL CHECK (side IN ('left', 'right')),
    checksum VARCHAR(64) NOT NULL,
    added_by UUID NOT NULL REFERENCES users(id),
    added_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    job_id UUID REFERENCES reconciliation_jobs(id) ON DELETE SET NULL,
    PRIMARY KEY (stream_id, file_id),
    UNIQUE (stream_id, checksum)
);
CREATE INDEX idx_stream_files_job ON stream_files(job_id);
CREATE INDEX idx_stream_files_added_by ON stream_files(added_by);

CREATE TABLE stream_rows (
    organization_id UUID NOT NULL,
    stream_id UUID NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    side VARCHAR(10) NOT NULL CHECK (side IN ('left', 'right')),
    fingerprint VARCHAR(64) NOT NULL,
    occurrence INTEGER NOT NULL CHECK (occurrence >= 0),
    seq BIGINT NOT NULL CHECK (seq >= 1),
    file_id UUID NOT NULL,
    row_number INTEGER NOT NULL,
    run_number INTEGER NOT NULL,
    PRIMARY KEY (stream_id, side, fingerprint, occurrence),
    UNIQUE (stream_id, side, seq)
);

CREATE TABLE stream_exceptions (
    organization_id UUID NOT NULL,
    stream_id UUID NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    exception_id UUID PRIMARY KEY REFERENCES exceptions(id) ON DELETE CASCADE,
    left_seq BIGINT,
    right_seq BIGINT,
    first_run INTEGER NOT NULL,
    CHECK (left_seq IS NOT NULL OR right_seq IS NOT NULL)
);
CREATE INDEX idx_stream_exceptions_left ON stream_exceptions(stream_id, left_seq);
CREATE INDEX idx_stream_exceptions_right ON stream_exceptions(stream_id, right_seq);
"""

GRANTS = {
    "streams": "SELECT, INSERT, UPDATE, DELETE",
    "stream_runs": "SELECT, INSERT, UPDATE",
    "stream_files": "SELECT, INSERT, UPDATE",
    "stream_rows": "SELECT, INSERT",
    "stream_exceptions": "SELECT, INSERT",
}


def upgrade() -> None:
    op.execute(UPGRADE)
    for table, privileges in GRANTS.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} FOR ALL"
                   f" USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})")
        op.execute(f"GRANT {privileges} ON {table} TO {APP}")


def downgrade() -> None:
    for table in reversed(tuple(GRANTS)):
        op.execute(f"DROP TABLE {table}")
