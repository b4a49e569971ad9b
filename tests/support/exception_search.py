"""Bulk exceptions with realistic search keys, for the search plan test
(tests/integration/test_exception_search_postgres.py) and benchmarks/bench_search.py."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text


def load_exceptions(connection: Any, organization_id: uuid.UUID, job: uuid.UUID, rows: int) -> None:
    """`rows` exceptions with realistic keys: a 12-digit RRN each, 6-digit STANs, 10,000 masked
    cards, four common channels and a rare one (USSD, 0.1 %), amounts up to 100,000.00, 90 transaction days; 1 % of pairs carry a
    second reference. Shared with benchmarks/bench_search.py."""
    connection.execute(text(
        "INSERT INTO exceptions (organization_id, job_id, type, severity, status, description, amount,"
        " amount_minor, currency, transaction_date, created_at, due_at, reference, reference_other,"
        " secondary_reference, masked_account, channel)"
        " SELECT :org, :job, (ARRAY['missing_entry','amount_mismatch','duplicate'])[1 + n % 3],"
        " (ARRAY['low','medium','high','critical'])[1 + n % 4], 'open', 'break ' || n,"
        " (abs(hashint8(n)) % 10000000) / 100.0, abs(hashint8(n)) % 10000000, 'NGN',"
        " DATE '2026-01-01' + (n % 90), TIMESTAMP '2026-01-01' + n * INTERVAL '7 seconds',"
        " TIMESTAMP '2026-06-01',"
        " lpad(((n::bigint * 104729) % 1000000000000)::text, 12, '0'),"
        " CASE WHEN n % 100 = 0 THEN 'FT' || lpad(n::text, 10, '0') END,"
        " lpad((n % 1000000)::text, 6, '0'),"
        " '539983******' || lpad((n % 10000)::text, 4, '0'),"
        " CASE WHEN n % 1000 = 3 THEN 'USSD' ELSE (ARRAY['POS','ATM','WEB','NIP'])[1 + n % 4] END"
        " FROM generate_series(1, :rows) AS n"), {"org": organization_id, "job": job, "rows": rows})
