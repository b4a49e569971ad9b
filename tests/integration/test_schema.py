"""The migrated schema: every spec §1 table, its indexes, CHECKs and defaults, an index on every
foreign key, and tables.py mirroring the database."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from reckai.adapters.postgres import migrations
from reckai.adapters.postgres.engine import create_engine
from reckai.adapters.postgres.tables import metadata

pytestmark = pytest.mark.integration

SPEC_TABLES = {
    "organizations", "users", "user_sessions", "reconciliation_jobs", "reconciliation_files",
    "data_mappings", "exceptions", "exception_comments", "approvals", "matching_rules", "audit_logs",
    "reports", "organization_quotas",
}
IMPLIED_TABLES = {
    "password_history", "refresh_token_families", "normalized_files", "matching_rule_versions",
    "match_groups", "match_members", "reconciliation_job_files", "outbox_messages", "user_tokens",
    "mfa_recovery_codes",
}

# Every index the spec writes, with its columns.
SPEC_INDEXES = {
    "idx_orgs_code": ("organizations", "code"),
    "idx_orgs_active": ("organizations", "is_active"),
    "idx_users_org": ("users", "organization_id"),
    # The spec's idx_users_email and UNIQUE(organization_id, email) would index random ciphertext once
    # e-mails are encrypted (0034_pii_encryption): the blind index replaces both.
    "uq_users_org_email_index": ("users", "organization_id, email_index"),
    "idx_users_active": ("users", "is_active, organization_id"),
    "idx_sessions_user": ("user_sessions", "user_id"),
    "idx_sessions_expires": ("user_sessions", "expires_at"),
    "idx_sessions_token": ("user_sessions", "token_hash"),
    "idx_jobs_org": ("reconciliation_jobs", "organization_id"),
    "idx_jobs_status": ("reconciliation_jobs", "status, organization_id"),
    "idx_jobs_created": ("reconciliation_jobs", "created_at DESC"),
    "idx_files_org": ("reconciliation_files", "organization_id"),
    "idx_files_job": ("reconciliation_files", "job_id"),
    "idx_files_type": ("reconciliation_files", "file_type, organization_id"),
    "idx_mappings_file": ("data_mappings", "file_id"),
    "idx_mappings_org": ("data_mappings", "organization_id"),
    "idx_exceptions_org": ("exceptions", "organization_id"),
    "idx_exceptions_job": ("exceptions", "job_id"),
    "idx_exceptions_status": ("exceptions", "status, organization_id"),
    "idx_exceptions_severity": ("exceptions", "severity, organization_id"),
    "idx_exceptions_assigned": ("exceptions", "assigned_to"),
    "idx_comments_exception": ("exception_comments", "exception_id"),
    "idx_approvals_org": ("approvals", "organization_id"),
    "idx_approvals_status": ("approvals", "status, organization_id"),
    "idx_approvals_type": ("approvals", "type, organization_id"),
    "idx_approvals_requested": ("approvals", "requested_by"),
    "idx_approvals_pending": ("approvals", "status"),
    "idx_rules_org": ("matching_rules", "organization_id"),
    "idx_rules_active": ("matching_rules", "is_active, organization_id"),
    "idx_audit_org": ("audit_logs", "organization_id"),
    "idx_audit_user": ("audit_logs", "user_id"),
    "idx_audit_action": ("audit_logs", "action"),
    "idx_audit_resource": ("audit_logs", "resource_type, resource_id"),
    "idx_audit_created": ("audit_logs", "created_at DESC"),
    "idx_audit_org_created": ("audit_logs", "organization_id, created_at DESC"),
    "idx_reports_org": ("reports", "organization_id"),
    "idx_reports_type": ("reports", "type, organization_id"),
    "idx_reports_generated": ("reports", "generated_at DESC"),
    "idx_outbox_status_available": ("outbox_messages", "status, available_at"),
}

# Spec CHECK constraints: (table, a fragment every allowed value must appear in).
SPEC_CHECKS = {
    ("users", "role"): ["admin", "analyst", "auditor", "supervisor"],
    ("reconciliation_jobs", "status"): ["pending", "processing", "completed", "failed", "cancelled"],
    ("reconciliation_files", "file_type"): ["bank", "settlement", "switch", "card", "gl"],
    ("reconciliation_files", "format"): ["excel", "csv", "txt", "xml"],
    ("reconciliation_files", "status"): ["uploaded", "mapped", "normalized", "processed", "error"],
    ("data_mappings", "data_type"): ["string", "number", "date", "currency"],
    ("exceptions", "type"): [
        "amount_mismatch", "date_mismatch", "missing_entry", "duplicate", "timing_difference", "non_settlement",
    ],
    ("exceptions", "severity"): ["low", "medium", "high", "critical"],
    ("exceptions", "status"): ["open", "in_progress", "resolved", "escalated", "ignored"],
    ("approvals", "type"): [
        "rule_configuration", "ledger_posting", "user_onboarding", "exception_resolution",
        "report_generation", "system_setting", "data_export",
    ],
    ("approvals", "status"): ["pending", "approved", "declined", "cancelled"],
    ("matching_rules", "rule_type"): ["exact", "fuzzy", "range", "regex"],
    ("reports", "type"): ["daily", "aging", "channel_trend", "sla", "audit"],
    ("reports", "format"): ["pdf", "excel", "csv"],
    ("outbox_messages", "queue"): ["critical", "high", "medium", "low"],
    ("outbox_messages", "status"): ["pending", "dispatched", "done", "failed"],
    ("matching_rule_versions", "status"): ["pending", "active", "retired"],
    ("match_groups", "status"): ["auto", "suggested", "manual", "declined"],
    ("user_tokens", "purpose"): ["invitation", "password_reset", "email_verification"],
}


def _tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                     " AND table_type = 'BASE TABLE' AND table_name <> 'alembic_version'")
            ).scalars()
        )


def test_every_spec_and_implied_table_exists(owner_engine: Engine) -> None:
    assert SPEC_TABLES | IMPLIED_TABLES <= _tables(owner_engine)


def test_spec_indexes_exist_with_their_columns(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        rows = conn.execute(text("SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'"))
        indexes = {r.indexname: (r.tablename, r.indexdef) for r in rows}
    for name, (table, columns) in SPEC_INDEXES.items():
        assert name in indexes, name
        assert indexes[name][0] == table
        assert f"({columns})" in indexes[name][1], indexes[name][1]
    assert "WHERE ((status)::text = 'pending'::text)" in indexes["idx_approvals_pending"][1]


def test_every_foreign_key_has_an_index_leading_with_its_columns(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        missing = conn.execute(
            text(
                """
                SELECT c.conrelid::regclass::text AS tbl, c.conname
                  FROM pg_constraint c
                 WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
                   AND NOT EXISTS (
                       SELECT 1 FROM pg_index i
                        WHERE i.indrelid = c.conrelid
                          AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] = c.conkey)
                """
            )
        ).all()
        foreign_keys = conn.execute(
            text("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace")
        ).scalar_one()
    assert foreign_keys > 40
    assert missing == []


def test_spec_check_constraints_hold_their_values(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT conrelid::regclass::text AS tbl, pg_get_constraintdef(oid) AS definition FROM pg_constraint"
                 " WHERE contype = 'c' AND connamespace = 'public'::regnamespace")
        ).all()
    for (table, column), values in SPEC_CHECKS.items():
        definitions = [r.definition for r in rows if r.tbl == table and f"({column})" in r.definition]
        assert definitions, (table, column)
        quoted = {f"'{v}'" for v in values}
        assert any(all(q in d for q in quoted) for d in definitions), (table, column, definitions)


def test_spec_unique_constraints_and_defaults(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        uniques = {
            (r.tbl, r.definition)
            for r in conn.execute(
                text("SELECT conrelid::regclass::text AS tbl, pg_get_constraintdef(oid) AS definition FROM pg_constraint"
                     " WHERE contype = 'u' AND connamespace = 'public'::regnamespace")
            )
        }
        defaults = {
            (r.table_name, r.column_name): r.column_default
            for r in conn.execute(
                text("SELECT table_name, column_name, column_default FROM information_schema.columns"
                     " WHERE table_schema = 'public'")
            )
        }
    assert ("organizations", "UNIQUE (code)") in uniques
    assert ("users", "UNIQUE (organization_id, email)") not in uniques  # replaced by uq_users_org_email_index
    assert ("user_sessions", "UNIQUE (token_hash)") in uniques
    assert ("matching_rules", "UNIQUE (organization_id, name)") in uniques
    assert ("matching_rule_versions", "UNIQUE (rule_id, version)") in uniques
    assert defaults[("organizations", "subscription_tier")] == "'standard'::character varying"
    assert defaults[("organizations", "settings")] == "'{}'::jsonb"
    assert defaults[("users", "failed_login_attempts")] == "0"
    assert defaults[("exceptions", "currency")] == "'NGN'::character varying"
    assert defaults[("organization_quotas", "max_jobs_per_month")] == "1000"
    assert defaults[("outbox_messages", "max_attempts")] == "5"
    assert defaults[("users", "id")] == "gen_random_uuid()"


def test_tables_module_mirrors_revision_0001(pg_database_factory) -> None:  # type: ignore[no-untyped-def]
    # tables.py mirrors 0001_schema; later revisions (e.g. the audit chain) extend it themselves.
    database = pg_database_factory(migrate=False)
    migrations.upgrade(database.owner_url, "0001_schema")
    engine = create_engine(database.owner_url, pool_size=1)
    try:
        assert _tables(engine) == set(metadata.tables) == SPEC_TABLES | IMPLIED_TABLES
        inspector = inspect(engine)
        for table in metadata.sorted_tables:
            reflected = {c["name"]: c for c in inspector.get_columns(table.name)}
            declared = {c.name: c for c in table.columns}
            assert set(declared) == set(reflected), (table.name, set(declared) ^ set(reflected))
            for name, column in declared.items():
                db_column = reflected[name]
                assert column.nullable == db_column["nullable"], (table.name, name)
                declared_type = column.type.compile(dialect=engine.dialect)
                db_type = db_column["type"].compile(dialect=engine.dialect)
                assert declared_type == db_type, (table.name, name, declared_type, db_type)
                assert (column.server_default is None) == (db_column["default"] is None), (table.name, name)
    finally:
        engine.dispose()


def test_the_approvals_type_check_admits_every_approval_type(owner_engine: Engine) -> None:
    # A new approval type (docs/architecture.md's checklist) needs a migration revising this CHECK.
    from reckai.domain.approvals.workflow import ApprovalType

    with owner_engine.connect() as conn:
        definitions = conn.execute(text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'c'"
            " AND conrelid = 'approvals'::regclass AND pg_get_constraintdef(oid) LIKE '%(type)%'")).scalars().all()
    assert len(definitions) == 1, definitions
    missing = [kind.value for kind in ApprovalType if f"'{kind.value}'" not in definitions[0]]
    assert missing == [], f"the approvals.type CHECK does not admit {missing}"


def test_the_current_users_table_mirrors_the_migrated_users(owner_engine: Engine) -> None:
    # tables.users_current = 0001's users + the columns later revisions add and the repositories
    # use (0011: last_changed_by, last_changed_at); mfa_last_used_step is read by raw SQL.
    from reckai.adapters.postgres.tables import users_current

    reflected = {c["name"]: c for c in inspect(owner_engine).get_columns("users")}
    declared = {c.name: c for c in users_current.columns}
    assert set(reflected) - set(declared) == {"mfa_last_used_step"}
    assert set(declared) <= set(reflected)
    for name in ("last_changed_by", "last_changed_at"):
        assert declared[name].nullable and reflected[name]["nullable"]
        assert declared[name].type.compile(dialect=owner_engine.dialect) == \
            reflected[name]["type"].compile(dialect=owner_engine.dialect)
