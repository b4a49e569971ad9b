"""Right to erasure (issue 17 item 5; docs/privacy.md, "Erasure").

`subject_keys`: one data key per person (user) of an organization, wrapped under the service's
master key, under which the personal values of that person's audit rows are stored from now on.
Erasure deletes the row, so those values cannot be read any more while the rows, and the hash
chain computed over them, stay as they are. Row-level security enabled and forced with the tenant
policy; the app role may SELECT, INSERT and DELETE (a key is never changed, only destroyed).

The approvals.type CHECK admits `data_erasure` (rebuilt from its current values, so it composes
with other revisions that add approval types whatever their order).

Revision ID: 0031_data_erasure
Revises: 0029_forced_job_links
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0031_data_erasure"
down_revision = "0029_forced_job_links"
branch_labels = None
depends_on = None

APP = "reckai_app"
CURRENT_ORG = "NULLIF(current_setting('app.current_org_id', true), '')::uuid"
NEW_TYPE = "data_erasure"

UPGRADE = """
CREATE TABLE subject_keys (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    subject_id UUID NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    wrapped_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_subject_keys_org ON subject_keys(organization_id);
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
    op.execute("ALTER TABLE subject_keys ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE subject_keys FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON subject_keys FOR ALL"
               f" USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})")
    op.execute(f"GRANT SELECT, INSERT, DELETE ON subject_keys TO {APP}")
    _, values = _type_check()
    if NEW_TYPE not in values:
        _replace_type_check([*values, NEW_TYPE])


def downgrade() -> None:
    op.execute("DELETE FROM approvals WHERE type = 'data_erasure'")
    _, values = _type_check()
    _replace_type_check([value for value in values if value != NEW_TYPE])
    op.execute("DROP TABLE subject_keys")
