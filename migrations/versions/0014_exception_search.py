"""Exception search (issue 16 item 3; docs/workflow.md, "Search").

exceptions gains the search keys of the rows a break is about, written by the job with the rows
(`domain/exceptions/search.py` says how each is made comparable):

- `reference` (RRN) and `secondary_reference` (STAN): the left row's key, else the right row's;
  `reference_other` / `secondary_reference_other`: the right row's key when a pair's two rows carry
  different ones (NULL otherwise), so a search by either side's value finds the break;
- `masked_account`: the account with every full card number masked (only masked PANs are stored);
- `channel`.

All are TEXT COLLATE "C": a b-tree on them serves equality and prefix (`LIKE 'abc%'`) alike.
Indexes lead with organization_id (the tenant every query is limited to); the keys' are partial
(`IS NOT NULL`): rows without a key add no entry. The amount and transaction-date range filters (there
before, unindexed: a narrow range read the whole organization) get `(organization_id,
amount_cents)` and `(organization_id, transaction_date)`; `amount_cents` is a stored generated
column, |amount| in hundredths as a BIGINT: under row-level security only leakproof operators
make index conditions, and PostgreSQL's numeric comparisons are not (bigint's are).

Back-fill: exceptions stored before this revision carry the pair's reference in `evidence`
(`evidence->>'reference'`); it becomes `reference`. The other keys were never stored with an
exception: they stay NULL for those rows until their job runs again.

Revision ID: 0014_exception_search
Revises: 0013_login_sources
"""

from __future__ import annotations

from alembic import op

revision = "0014_exception_search"
down_revision = "0013_login_sources"
branch_labels = None
depends_on = None

KEYS = ("reference", "reference_other", "secondary_reference", "secondary_reference_other", "masked_account",
        "channel")
# |amount| in hundredths, exact (the column is DECIMAL(18,2)); BIGINT because row-level security keeps
# non-leakproof operators out of index conditions, and numeric comparisons are not leakproof (an
# index on abs(amount) was never used by the app's queries: 1 s at 1M rows), bigint ones are.
AMOUNT_CENTS = "(abs(amount) * 100)::bigint"
INDEXES = (
    ("idx_exceptions_org_reference", "(organization_id, reference) WHERE reference IS NOT NULL"),
    ("idx_exceptions_org_reference_other", "(organization_id, reference_other) WHERE reference_other IS NOT NULL"),
    ("idx_exceptions_org_secondary_reference",
     "(organization_id, secondary_reference) WHERE secondary_reference IS NOT NULL"),
    ("idx_exceptions_org_secondary_reference_other",
     "(organization_id, secondary_reference_other) WHERE secondary_reference_other IS NOT NULL"),
    ("idx_exceptions_org_masked_account", "(organization_id, masked_account) WHERE masked_account IS NOT NULL"),
    ("idx_exceptions_org_channel_created",
     "(organization_id, channel, created_at DESC, id DESC) WHERE channel IS NOT NULL"),
    ("idx_exceptions_org_amount_cents", "(organization_id, amount_cents)"),
    ("idx_exceptions_org_transaction_date", "(organization_id, transaction_date)"),
)


def upgrade() -> None:
    op.execute("ALTER TABLE exceptions " + ", ".join(f'ADD COLUMN {key} TEXT COLLATE "C"' for key in KEYS))
    op.execute(f"ALTER TABLE exceptions ADD COLUMN amount_cents BIGINT GENERATED ALWAYS AS ({AMOUNT_CENTS}) STORED")
    # The owner back-fills every organization's rows at once (as 0007_workflow's back-fill).
    op.execute("ALTER TABLE exceptions NO FORCE ROW LEVEL SECURITY")
    op.execute("UPDATE exceptions SET reference = NULLIF(upper(left(btrim(evidence->>'reference'), 255)), '')"
               " WHERE jsonb_typeof(evidence->'reference') = 'string'")
    op.execute("ALTER TABLE exceptions FORCE ROW LEVEL SECURITY")
    for name, definition in INDEXES:
        op.execute(f"CREATE INDEX {name} ON exceptions {definition}")


def downgrade() -> None:
    for name, _ in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("ALTER TABLE exceptions " + ", ".join(f"DROP COLUMN {key}" for key in (*KEYS, "amount_cents")))
