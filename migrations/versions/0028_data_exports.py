"""Data exports (issue 17 item 6; docs/privacy.md, "Export").

`data_exports`: one row per requested export (a person's data, or the organization's through a
`data_export` approval): scope, subject, requester, approval, status, the zip's storage key, size,
SHA-256, error, completion and expiry (the expiry job finds completed exports past it through a
partial index). Row-level security enabled and forced with the tenant
policy; the app role may SELECT, INSERT and UPDATE (never DELETE: the row stays for the audit
trail).

The approvals.type CHECK admits `data_export`. The constraint is rebuilt from its current
definition (its values read back, this one added), so it composes with other revisions that add
approval types whatever their order.

Revision ID: 0028_data_exports
Revises: 0027_file_versions
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0028_data_exports"
down_revision = "0027_file_versions"
branch_labels = None
depends_on = None

APP = "reckai_app"
CURRENT_ORG = "NULLIF(current_setting('app.current_org_id', true), '')::uuid"
NEW_TYPE = "data_export"

UPGRADE = """
CREATE TABLE data_exports (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    scope VARCHAR(20) NOT NULL CHECK (scope IN ('user', 'organization')),
    subject_user_id UUID REFERENCES users(id) ON DELETE SET NULL,
    requested_by UUID NOT NULL REFERENCES users(id),
    approval_id UUID REFERENCES approvals(id),
    status VARCHAR(20) NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'expired')),
    storage_path TEXT NOT NULL UNIQUE,
    size_bytes BIGINT,
    sha256 CHAR(64),
    error_message TEXT,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP NOT NULL DEFAULT NOW(),
    completed_at TIMESTAMP,
    expires_at TIMESTAMP,
    CHECK (scope = 'user' OR subject_user_id IS NULL)
);
CREATE INDEX idx_data_exports_org ON data_exports(organization_id, created_at);
CREATE INDEX idx_data_exports_subject ON data_exports(subject_user_id);
CREATE INDEX idx_data_exports_requested_by ON data_exports(requested_by);
CREATE INDEX idx_data_exports_approval ON data_exports(approval_id);
CREATE INDEX idx_data_exports_expiry ON data_exports(expires_at) WHERE status = 'completed';
"""


def _type_check() -> tuple[str, list[str]]:
    row = op.get_bind().execute(sa.text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'c'"
        " AND conrelid = 'approvals'::regclass AND pg_get_constraintdef(oid) LIKE '%(type)%'")).one()
    values = re.findall(r"'([a-z_]+)'", row[1])
    return row[0], values


def _replace_type_check(values: list[str]) -> None:
    name, _ = _type_check()
    listed = ", ".join(f"'{value}'" for value in values)
    op.execute(f"ALTER TABLE approvals DROP CONSTRAINT {name}")
    op.execute(f"ALTER TABLE approvals ADD CONSTRAINT {name} CHECK (type IN ({listed}))")


def upgrade() -> None:
    op.execute(UPGRADE)
    op.execute("ALTER TABLE data_exports ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE data_exports FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON data_exports FOR ALL"
               f" USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON data_exports TO {APP}")
    _, values = _type_check()
    if NEW_TYPE not in values:
        _replace_type_check([*values, NEW_TYPE])


def downgrade() -> None:
    op.execute("DELETE FROM approvals WHERE type = 'data_export'")
    _, values = _type_check()
    _replace_type_check([value for value in values if value != NEW_TYPE])
    op.execute("DROP TABLE data_exports")
