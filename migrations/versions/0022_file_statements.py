"""The bank statements each normalized file holds (issue 18; docs/file-formats.md, `duplicate_statement`).

`file_statements`: one row per statement identity (domain/ingestion/statements.py: MT940 account,
:20:, :28C:, opening date and balance; camt account and statement Id) per file, written when the
file is normalized. A later file holding a statement another file of the organization already holds
gets a `duplicate_statement` warning naming that file; its rows are still loaded. Tenant-isolated
like every table (forced RLS); rows go with their file (ON DELETE CASCADE).

Revision ID: 0022_file_statements
Revises: 0021_streams
"""

from __future__ import annotations

from alembic import op

revision = "0022_file_statements"
down_revision = "0021_streams"
branch_labels = None
depends_on = None

APP = "reckai_app"
CURRENT_ORG = "NULLIF(current_setting('app.current_org_id', true), '')::uuid"


def upgrade() -> None:
    op.execute("""
CREATE TABLE file_statements (
    file_id UUID NOT NULL REFERENCES reconciliation_files(id) ON DELETE CASCADE,
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    statement_key TEXT NOT NULL CHECK (length(statement_key) <= 2000),
    label TEXT NOT NULL CHECK (length(label) <= 500),
    line_number INTEGER,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    PRIMARY KEY (file_id, statement_key)
)""")
    op.execute("CREATE INDEX idx_file_statements_org_key ON file_statements(organization_id, statement_key)")
    op.execute("ALTER TABLE file_statements ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE file_statements FORCE ROW LEVEL SECURITY")
    op.execute("CREATE POLICY tenant_isolation ON file_statements FOR ALL"
               f" USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})")
    op.execute(f"GRANT SELECT, INSERT, DELETE ON file_statements TO {APP}")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS file_statements")
