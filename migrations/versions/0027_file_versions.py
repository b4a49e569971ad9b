"""Normalized versions of a file; jobs record the version they read (issue 16 item 4; docs/files.md
"Re-mapping: versions").

`normalized_files` becomes the list of a file's normalized versions: `version` (1, 2, ...; the
highest is the file's current one), `mapping` (the mapping JSON the version was read with) and
`created_by`. One row per (file, schema_version, version): two writers of the same version number
collide on the constraint instead of both landing. Existing rows are version 1 and get their file's
mapping back-filled from its `data_mappings` rows.

`reconciliation_job_files.file_version`: the version of the file the job read (set when the job is
created over a normalized file, or by the worker when it normalizes the file itself). Existing
links get version 1 when their file has a normalized form (the only version there was). The app
role may now UPDATE that table (the worker records the version); RLS is forced on both tables
already (0001).

Revision ID: 0027_file_versions
Revises: 0026_retention
"""

from __future__ import annotations

from alembic import op

revision = "0027_file_versions"
down_revision = "0026_retention"
branch_labels = None
depends_on = None

APP = "reckai_app"


def upgrade() -> None:
    op.execute("ALTER TABLE normalized_files ADD COLUMN version INTEGER NOT NULL DEFAULT 1"
               " CONSTRAINT normalized_files_version_positive CHECK (version >= 1),"
               " ADD COLUMN mapping JSONB,"
               " ADD COLUMN created_by UUID REFERENCES users(id) ON DELETE SET NULL")
    op.execute("CREATE INDEX idx_normalized_files_created_by ON normalized_files(created_by)")  # users' FK
    op.execute("ALTER TABLE normalized_files DROP CONSTRAINT normalized_files_file_id_schema_version_key")
    op.execute("ALTER TABLE normalized_files ADD CONSTRAINT normalized_files_file_version_key"
               " UNIQUE (file_id, schema_version, version)")
    op.execute("ALTER TABLE reconciliation_job_files ADD COLUMN file_version INTEGER"
               " CONSTRAINT reconciliation_job_files_version_positive CHECK (file_version >= 1)")
    # The owner back-fills every organization's rows at once (as 0014_exception_search does).
    backfilled = ("normalized_files", "reconciliation_job_files", "data_mappings")
    for table in backfilled:
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute("""
UPDATE normalized_files n SET mapping = m.rules
FROM (SELECT file_id, jsonb_build_object(
             'parse', COALESCE((array_agg(transformation_rules->'parse' ORDER BY target_field))[1], '{}'::jsonb),
             'fields', jsonb_object_agg(target_field, transformation_rules->'field')) AS rules
      FROM data_mappings GROUP BY file_id) m
WHERE m.file_id = n.file_id""")
    op.execute("UPDATE reconciliation_job_files j SET file_version = 1"
               " WHERE EXISTS (SELECT 1 FROM normalized_files n WHERE n.file_id = j.file_id)")
    for table in backfilled:
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"GRANT UPDATE (file_version) ON reconciliation_job_files TO {APP}")


def downgrade() -> None:
    op.execute(f"REVOKE UPDATE (file_version) ON reconciliation_job_files FROM {APP}")
    op.execute("ALTER TABLE reconciliation_job_files DROP COLUMN file_version")
    op.execute("ALTER TABLE normalized_files NO FORCE ROW LEVEL SECURITY")
    # One form per file again: the current one (the file's row count, report and data_mappings are
    # its). The objects of the earlier versions stay in storage, unreferenced.
    op.execute("DELETE FROM normalized_files n WHERE version < (SELECT max(version) FROM normalized_files m"
               " WHERE m.file_id = n.file_id AND m.schema_version = n.schema_version)")
    op.execute("ALTER TABLE normalized_files FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE normalized_files DROP CONSTRAINT normalized_files_file_version_key")
    op.execute("ALTER TABLE normalized_files ADD CONSTRAINT normalized_files_file_id_schema_version_key"
               " UNIQUE (file_id, schema_version)")
    op.execute("DROP INDEX IF EXISTS idx_normalized_files_created_by")
    op.execute("ALTER TABLE normalized_files DROP COLUMN created_by, DROP COLUMN mapping, DROP COLUMN version")
