"""Identity: `users.mfa_last_used_step`, so a TOTP code is accepted once (issue 3).

The time-step of the last accepted TOTP code is stored on the user; a code whose step is not later
is refused (no replay within its window, and no older code after a newer one). The update is a
conditional `UPDATE ... WHERE mfa_last_used_step IS NULL OR mfa_last_used_step < :step`, so two
concurrent requests with the same code cannot both pass.

Revision ID: 0004_identity
Revises: 0003_jobs
"""

from __future__ import annotations

from alembic import op

revision = "0004_identity"
down_revision = "0003_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE users ADD COLUMN mfa_last_used_step BIGINT")


def downgrade() -> None:
    op.execute("ALTER TABLE users DROP COLUMN IF EXISTS mfa_last_used_step")
