"""Retention (issue 17 item 7): the function the retention job lists organizations with.

`retention_organizations()` (SECURITY DEFINER, owned by reckai_system, executable by reckai_app):
the ids of the active organizations, ids only, so the periodic job (bound to no organization) can
visit each under its own row-level security. Everything the job reads or deletes after that goes
through the tenant's own unit of work.

Revision ID: 0026_retention
Revises: 0025_stream_schedules
"""

from __future__ import annotations

from alembic import op

revision = "0026_retention"
down_revision = "0025_stream_schedules"
branch_labels = None
depends_on = None

APP = "reckai_app"
SYSTEM = "reckai_system"
ORGANIZATIONS = "retention_organizations()"

ORGANIZATIONS_BODY = """
CREATE FUNCTION retention_organizations()
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT o.id FROM public.organizations o WHERE o.is_active IS NOT FALSE
$$;
"""


def upgrade() -> None:
    op.execute(ORGANIZATIONS_BODY)
    op.execute(f"GRANT CREATE ON SCHEMA public TO {SYSTEM}")  # to own the function, as 0018 does
    op.execute(f"ALTER FUNCTION {ORGANIZATIONS} OWNER TO {SYSTEM}")
    op.execute(f"REVOKE ALL ON FUNCTION {ORGANIZATIONS} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {ORGANIZATIONS} TO {APP}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {SYSTEM}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {ORGANIZATIONS}")
