"""Stream row keys carry their transaction day (issue 15 item 7: cost stays flat; docs/streams.md
"Cost stays flat").

stream_rows.transaction_day: the date of the row's transaction date ('-infinity' when the row has
none, or when it was taken before this migration: its day is not known to SQL, the canonical rows
live in the files' Parquet). The primary key becomes (stream_id, side, transaction_day,
fingerprint, occurrence): the fingerprint covers the transaction date, so two rows with the same
fingerprint have the same day, and the key identifies the same rows as before. Ordered by day, a
run's inserts (a daily file's rows, all of a few recent days) land in the recent end of the index
and its duplicate probes read only the days of its files, instead of pages spread over the whole
history (the cost that grew with the stream: docs/streams.md). A row of unknown day
('-infinity') is probed by every run of its stream whatever the day (adapters/postgres/streams.py).

Revision ID: 0032_stream_row_days
Revises: 0031_data_erasure
"""

from __future__ import annotations

from alembic import op

revision = "0032_stream_row_days"
down_revision = "0031_data_erasure"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: no table rewrite; every existing row reads '-infinity' (day unknown).
    op.execute("ALTER TABLE stream_rows ADD COLUMN transaction_day DATE NOT NULL DEFAULT '-infinity'")
    op.execute("ALTER TABLE stream_rows DROP CONSTRAINT stream_rows_pkey")
    op.execute("ALTER TABLE stream_rows ADD CONSTRAINT stream_rows_pkey"
               " PRIMARY KEY (stream_id, side, transaction_day, fingerprint, occurrence)")


def downgrade() -> None:
    op.execute("ALTER TABLE stream_rows DROP CONSTRAINT stream_rows_pkey")
    op.execute("ALTER TABLE stream_rows ADD CONSTRAINT stream_rows_pkey"
               " PRIMARY KEY (stream_id, side, fingerprint, occurrence)")
    op.execute("ALTER TABLE stream_rows DROP COLUMN transaction_day")
