"""Files: the columns the file feature needs beyond spec §1 (docs/files.md).

reconciliation_files: `kind` (precise format: xlsx, mt940, camt053 ... while `format` keeps the
spec's excel/csv/txt/xml), `duplicate_of` (an earlier file of the organization with the same
SHA-256: re-imported statements are a classic source of double counting), `scan_status`
(clean, or not_scanned when scanning is explicitly disabled), `error_message` and `error_report`
(rows that failed normalization: row, column, value, reason), and an index for the checksum look-up.
data_mappings: `confidence` of an auto-detected field (0..1).

Revision ID: 0005_files
Revises: 0004_identity
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0005_files"
down_revision = "0004_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reconciliation_files", sa.Column("kind", sa.String(20)))
    op.add_column(
        "reconciliation_files",
        sa.Column("duplicate_of", UUID(as_uuid=True),
                  sa.ForeignKey("reconciliation_files.id", ondelete="SET NULL",
                                name="reconciliation_files_duplicate_of_fkey")),
    )
    op.add_column(
        "reconciliation_files",
        sa.Column("scan_status", sa.String(20), nullable=False, server_default=sa.text("'clean'")),
    )
    op.add_column("reconciliation_files", sa.Column("error_message", sa.Text))
    op.add_column("reconciliation_files", sa.Column("error_report", JSONB))
    op.create_check_constraint(
        "reconciliation_files_scan_status_check", "reconciliation_files", "scan_status IN ('clean', 'not_scanned')"
    )
    op.create_index("idx_reconciliation_files_duplicate_of", "reconciliation_files", ["duplicate_of"])
    op.create_index("idx_reconciliation_files_checksum", "reconciliation_files", ["organization_id", "checksum"])
    op.add_column("data_mappings", sa.Column("confidence", sa.Numeric(3, 2)))
    op.create_check_constraint(
        "data_mappings_confidence_check", "data_mappings", "confidence IS NULL OR (confidence >= 0 AND confidence <= 1)"
    )


def downgrade() -> None:
    op.drop_constraint("data_mappings_confidence_check", "data_mappings", type_="check")
    op.drop_column("data_mappings", "confidence")
    op.drop_index("idx_reconciliation_files_checksum", table_name="reconciliation_files")
    op.drop_index("idx_reconciliation_files_duplicate_of", table_name="reconciliation_files")
    op.drop_constraint("reconciliation_files_scan_status_check", "reconciliation_files", type_="check")
    op.drop_column("reconciliation_files", "error_report")
    op.drop_column("reconciliation_files", "error_message")
    op.drop_column("reconciliation_files", "scan_status")
    op.drop_column("reconciliation_files", "duplicate_of")
    op.drop_column("reconciliation_files", "kind")
