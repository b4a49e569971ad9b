"""Sign-in failures per source (issue 12 item 7; docs/identity.md, "Lockout per account and source").

Five failures from one client address within 30 minutes lock *that address* out of the account for
30 minutes (the spec's lockout, kept per account and source), so nobody can lock a colleague out by
typing wrong passwords from elsewhere. `users.login_sources` holds, per source, the failure count,
the last failure and the lock's end (JSON, at most 100 sources, stale ones pruned on each write).
`failed_login_attempts` / `locked_until` keep the account-wide count and now the end of the
account-wide progressive delay.

Revision ID: 0013_login_sources
Revises: 0012_bulk_exception_indexes
"""

from __future__ import annotations

from alembic import op

revision = "0013_login_sources"
down_revision = "0012_bulk_exception_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE users ADD COLUMN login_sources JSONB NOT NULL DEFAULT '{}'::jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE users DROP COLUMN login_sources")
