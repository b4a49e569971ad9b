"""`exceptions_earliest_date` is inlined into the queries that call it (issue 13, docs/reconciliation-jobs.md
"Why 81,192 exceptions cost as much as 936,905 matches").

The dashboard's rollup trigger (0019) computes the earliest date of every row a statement writes,
so a job's bulk persist called the function once per exception (81,192 times for the 1M x 1M
benchmark files), and so did the reports' columnar read and the period close. The 0019 body was
never inlined: it is declared IMMUTABLE but cast text to date (`left(..., 10)::date`), and that
cast is only STABLE (it reads DateStyle), so PostgreSQL ran it as a separate SQL function call per
row, ~7 microseconds each: the trigger's statement took 0.73 s for 81,192 rows, 0.21 s of it
without any date. The body below gives the same date with immutable parts only (`make_date` over
the year, month and day digits the pattern has already checked), so the planner replaces each call
by the expression: 0.73 -> 0.51 s (medians of 8 alternating runs over the same rows).

Same result for every input: a value that does not start with YYYY-MM-DD is ignored, as before;
one that does but is no date (2025-02-30) is an error, as before (`make_date` refuses it as the cast
did). Only the wording of that error changes. `tests/integration/test_migrations.py` checks both
definitions against each other and that the planner inlines the new one.

Revision ID: 0035_inline_earliest_date
Revises: 0034_pii_encryption
"""

from __future__ import annotations

from alembic import op

revision = "0035_inline_earliest_date"
down_revision = "0034_pii_encryption"
branch_labels = None
depends_on = None


def _side_date(side: str) -> str:
    value = f"p_evidence #>> '{{{side},date}}'"
    parts = ", ".join(f"substr({value}, {start}, {length})::integer" for start, length in ((1, 4), (6, 2), (9, 2)))
    return rf"CASE WHEN {value} ~ '^\d{{4}}-\d{{2}}-\d{{2}}' THEN make_date({parts}) END"


INLINED = f"""
CREATE OR REPLACE FUNCTION exceptions_earliest_date(p_transaction_date date, p_evidence jsonb) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT LEAST(p_transaction_date, {_side_date("left")}, {_side_date("right")})
$$;
"""

# 0019_dashboard_rollup's body, for the downgrade.
CALLED = r"""
CREATE OR REPLACE FUNCTION exceptions_earliest_date(p_transaction_date date, p_evidence jsonb) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT LEAST(
        p_transaction_date,
        CASE WHEN p_evidence #>> '{left,date}' ~ '^\d{4}-\d{2}-\d{2}'
             THEN left(p_evidence #>> '{left,date}', 10)::date END,
        CASE WHEN p_evidence #>> '{right,date}' ~ '^\d{4}-\d{2}-\d{2}'
             THEN left(p_evidence #>> '{right,date}', 10)::date END)
$$;
"""


def upgrade() -> None:
    op.execute(INLINED)


def downgrade() -> None:
    op.execute(CALLED)
