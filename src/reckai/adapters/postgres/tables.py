"""SQLAlchemy Core tables mirroring migrations/versions/0001_schema.py.

The migration is the source of truth; tests/integration/test_schema.py compares this metadata
with the migrated database (tables, columns, types, nullability), so the two cannot drift.

Timestamps: the columns are `TIMESTAMP` (without time zone, as the spec writes them) holding UTC.
`UtcDateTime` converts at the boundary, so repositories and the domain only ever see aware UTC
datetimes, and a naive datetime handed in by mistake is refused rather than guessed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB, UUID
from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """TIMESTAMP WITHOUT TIME ZONE holding UTC; aware UTC datetimes in Python."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC timestamp column; use an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


metadata = MetaData()

_NOW = text("now()")


def _id() -> Column[Any]:
    return Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()"))


def _org(nullable: bool = False, ondelete: str | None = "CASCADE") -> Column[Any]:
    return Column(
        "organization_id", UUID(as_uuid=True), ForeignKey("organizations.id", ondelete=ondelete), nullable=nullable
    )


def _user_fk(name: str, nullable: bool = True, ondelete: str | None = None) -> Column[Any]:
    return Column(name, UUID(as_uuid=True), ForeignKey("users.id", ondelete=ondelete), nullable=nullable)


def _ts(name: str, default: bool = False, nullable: bool = True) -> Column[Any]:
    return Column(name, UtcDateTime(), server_default=_NOW if default else None, nullable=nullable)


organizations = Table(
    "organizations",
    metadata,
    _id(),
    Column("name", String(255), nullable=False),
    Column("code", String(50), nullable=False, unique=True),
    Column("domain", String(255)),
    Column("subscription_tier", String(50), server_default=text("'standard'")),
    Column("max_users", Integer, server_default=text("10")),
    Column("max_storage_gb", Integer, server_default=text("100")),
    Column("is_active", Boolean, server_default=text("true")),
    Column("settings", JSONB, server_default=text("'{}'")),
    _ts("created_at", default=True),
    _ts("updated_at", default=True),
    Column("created_by", UUID(as_uuid=True), ForeignKey("users.id", use_alter=True, name="organizations_created_by_fkey")),
)

users = Table(
    "users",
    metadata,
    _id(),
    _org(),
    Column("email", String(255), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("role", String(50), nullable=False),
    Column("is_active", Boolean, server_default=text("true")),
    Column("is_email_verified", Boolean, server_default=text("false")),
    Column("mfa_enabled", Boolean, server_default=text("false")),
    Column("mfa_secret", String(255)),
    _ts("last_login_at"),
    _ts("password_changed_at", default=True),
    Column("failed_login_attempts", Integer, server_default=text("0")),
    _ts("locked_until"),
    _ts("created_at", default=True),
    _ts("updated_at", default=True),
    _user_fk("created_by"),
    Column("token_version", Integer, nullable=False, server_default=text("0")),
    UniqueConstraint("organization_id", "email"),
    CheckConstraint("role IN ('admin', 'analyst', 'auditor', 'supervisor')"),
)

refresh_token_families = Table(
    "refresh_token_families",
    metadata,
    _id(),
    _org(),
    _user_fk("user_id", nullable=False, ondelete="CASCADE"),
    _ts("created_at", default=True),
    _ts("absolute_expires_at", nullable=False),
    _ts("revoked_at"),
    Column("revoked_reason", String(50)),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    _id(),
    _user_fk("user_id", nullable=False, ondelete="CASCADE"),
    Column("token_hash", String(255), nullable=False, unique=True),
    Column("ip_address", INET),
    Column("user_agent", Text),
    _ts("expires_at", nullable=False),
    _ts("created_at", default=True),
    _ts("last_activity_at", default=True),
    _org(),
    Column("family_id", UUID(as_uuid=True), ForeignKey("refresh_token_families.id", ondelete="CASCADE")),
    Column("fingerprint_hash", String(128)),
    Column("replaced_by", UUID(as_uuid=True), ForeignKey("user_sessions.id", ondelete="SET NULL")),
    _ts("rotated_at"),
    _ts("revoked_at"),
    Column("revoked_reason", String(50)),
    _ts("absolute_expires_at"),
)

password_history = Table(
    "password_history",
    metadata,
    _id(),
    _org(),
    _user_fk("user_id", nullable=False, ondelete="CASCADE"),
    Column("password_hash", String(255), nullable=False),
    _ts("created_at", default=True),
)

user_tokens = Table(
    "user_tokens",
    metadata,
    _id(),
    _org(),
    _user_fk("user_id", nullable=False, ondelete="CASCADE"),
    Column("purpose", String(30), nullable=False),
    Column("token_hash", String(255), nullable=False, unique=True),
    _ts("expires_at", nullable=False),
    _ts("used_at"),
    _user_fk("created_by"),
    _ts("created_at", default=True),
    CheckConstraint("purpose IN ('invitation', 'password_reset', 'email_verification')"),
)

mfa_recovery_codes = Table(
    "mfa_recovery_codes",
    metadata,
    _id(),
    _org(),
    _user_fk("user_id", nullable=False, ondelete="CASCADE"),
    Column("code_hash", String(255), nullable=False),
    _ts("used_at"),
    _ts("created_at", default=True),
)

organization_quotas = Table(
    "organization_quotas",
    metadata,
    Column("organization_id", UUID(as_uuid=True), ForeignKey("organizations.id"), primary_key=True),
    Column("max_users", Integer, server_default=text("10")),
    Column("max_storage_gb", Integer, server_default=text("100")),
    Column("max_jobs_per_month", Integer, server_default=text("1000")),
    Column("max_file_size_mb", Integer, server_default=text("100")),
    Column("features", JSONB, server_default=text("'{}'")),
    _ts("updated_at", default=True),
)

reconciliation_jobs = Table(
    "reconciliation_jobs",
    metadata,
    _id(),
    _org(),
    Column("name", String(255), nullable=False),
    Column("status", String(50), nullable=False),
    Column("progress", Integer, server_default=text("0")),
    Column("total_rows", Integer, server_default=text("0")),
    Column("processed_rows", Integer, server_default=text("0")),
    Column("matched_rows", Integer, server_default=text("0")),
    Column("exception_rows", Integer, server_default=text("0")),
    Column("match_rate", Numeric(5, 2)),
    Column("processing_time_seconds", Integer),
    Column("error_message", Text),
    _user_fk("created_by", nullable=False),
    _ts("started_at"),
    _ts("completed_at"),
    _ts("created_at", default=True),
    _ts("updated_at", default=True),
    CheckConstraint("status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')"),
    CheckConstraint("progress >= 0 AND progress <= 100"),
)

reconciliation_files = Table(
    "reconciliation_files",
    metadata,
    _id(),
    _org(),
    Column("job_id", UUID(as_uuid=True), ForeignKey("reconciliation_jobs.id", ondelete="CASCADE")),
    Column("name", String(255), nullable=False),
    Column("original_filename", String(255), nullable=False),
    Column("file_type", String(50), nullable=False),
    Column("format", String(50), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("storage_path", Text, nullable=False),
    Column("status", String(50), nullable=False),
    Column("row_count", Integer),
    Column("checksum", String(64)),
    _user_fk("uploaded_by", nullable=False),
    _ts("uploaded_at", default=True),
    _ts("processed_at"),
    CheckConstraint("file_type IN ('bank', 'settlement', 'switch', 'card', 'gl')"),
    CheckConstraint("format IN ('excel', 'csv', 'txt', 'xml')"),
    CheckConstraint("status IN ('uploaded', 'mapped', 'normalized', 'processed', 'error')"),
)

reconciliation_job_files = Table(
    "reconciliation_job_files",
    metadata,
    Column("job_id", UUID(as_uuid=True), ForeignKey("reconciliation_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("file_id", UUID(as_uuid=True), ForeignKey("reconciliation_files.id", ondelete="CASCADE"), nullable=False),
    _org(),
    Column("side", String(10), nullable=False),
    _ts("created_at", default=True),
    PrimaryKeyConstraint("job_id", "file_id"),
    CheckConstraint("side IN ('left', 'right')"),
)

normalized_files = Table(
    "normalized_files",
    metadata,
    _id(),
    Column("file_id", UUID(as_uuid=True), ForeignKey("reconciliation_files.id", ondelete="CASCADE"), nullable=False),
    _org(),
    Column("storage_path", Text, nullable=False),
    Column("row_count", Integer, nullable=False, server_default=text("0")),
    Column("schema_version", Integer, nullable=False, server_default=text("1")),
    Column("checksum", String(64)),
    _ts("created_at", default=True),
    UniqueConstraint("file_id", "schema_version"),
)

data_mappings = Table(
    "data_mappings",
    metadata,
    _id(),
    _org(),
    Column("file_id", UUID(as_uuid=True), ForeignKey("reconciliation_files.id", ondelete="CASCADE"), nullable=False),
    Column("source_column", String(255), nullable=False),
    Column("target_field", String(255), nullable=False),
    Column("data_type", String(50), nullable=False),
    Column("auto_detected", Boolean, server_default=text("false")),
    Column("transformation_rules", JSONB),
    _ts("created_at", default=True),
    _user_fk("created_by"),
    CheckConstraint("data_type IN ('string', 'number', 'date', 'currency')"),
)

exceptions = Table(
    "exceptions",
    metadata,
    _id(),
    _org(),
    Column("job_id", UUID(as_uuid=True), ForeignKey("reconciliation_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(50), nullable=False),
    Column("severity", String(50), nullable=False),
    Column("status", String(50), nullable=False),
    Column("amount", Numeric(18, 2)),
    Column("currency", String(3), server_default=text("'NGN'")),
    Column("transaction_date", Date),
    Column("description", Text, nullable=False),
    Column("ai_explanation", Text),
    Column("ai_confidence", Numeric(5, 4)),
    Column("suggested_action", Text),
    _user_fk("assigned_to"),
    _user_fk("resolved_by"),
    _ts("resolved_at"),
    _ts("created_at", default=True),
    _ts("updated_at", default=True),
)

exception_comments = Table(
    "exception_comments",
    metadata,
    _id(),
    Column("exception_id", UUID(as_uuid=True), ForeignKey("exceptions.id", ondelete="CASCADE"), nullable=False),
    _user_fk("user_id", nullable=False),
    Column("content", Text, nullable=False),
    _ts("created_at", default=True),
    _org(),
)

approvals = Table(
    "approvals",
    metadata,
    _id(),
    _org(),
    Column("type", String(50), nullable=False),
    Column("status", String(50), nullable=False),
    Column("title", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("metadata", JSONB, nullable=False),
    _user_fk("requested_by", nullable=False),
    _ts("requested_at", default=True),
    _user_fk("reviewed_by"),
    _ts("reviewed_at"),
    Column("review_comments", Text),
    _ts("created_at", default=True),
    _ts("updated_at", default=True),
)

matching_rules = Table(
    "matching_rules",
    metadata,
    _id(),
    _org(),
    Column("name", String(255), nullable=False),
    Column("rule_type", String(50), nullable=False),
    Column("is_active", Boolean, server_default=text("true")),
    Column("priority", Integer, server_default=text("0")),
    Column("tolerance_percentage", Numeric(5, 4)),
    Column("tolerance_amount", Numeric(18, 2)),
    Column("date_tolerance_days", Integer),
    Column("field_mappings", JSONB, nullable=False),
    Column("conditions", JSONB),
    Column("approval_id", UUID(as_uuid=True), ForeignKey("approvals.id")),
    _user_fk("created_by", nullable=False),
    _ts("created_at", default=True),
    _ts("updated_at", default=True),
    _ts("approved_at"),
    UniqueConstraint("organization_id", "name"),
)

matching_rule_versions = Table(
    "matching_rule_versions",
    metadata,
    _id(),
    Column("rule_id", UUID(as_uuid=True), ForeignKey("matching_rules.id", ondelete="CASCADE"), nullable=False),
    _org(),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False, server_default=text("'pending'")),
    Column("definition", JSONB, nullable=False),
    Column("approval_id", UUID(as_uuid=True), ForeignKey("approvals.id")),
    _user_fk("created_by", nullable=False),
    _ts("created_at", default=True),
    _ts("approved_at"),
    UniqueConstraint("rule_id", "version"),
)

match_groups = Table(
    "match_groups",
    metadata,
    _id(),
    _org(),
    Column("job_id", UUID(as_uuid=True), ForeignKey("reconciliation_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("rule_id", UUID(as_uuid=True), ForeignKey("matching_rules.id", ondelete="SET NULL")),
    Column("rule_version", Integer),
    Column("status", String(20), nullable=False),
    Column("confidence", Numeric(5, 4)),
    Column("evidence", JSONB, nullable=False, server_default=text("'{}'")),
    _user_fk("created_by"),
    _ts("created_at", default=True),
)

match_members = Table(
    "match_members",
    metadata,
    Column("group_id", UUID(as_uuid=True), ForeignKey("match_groups.id", ondelete="CASCADE"), nullable=False),
    _org(),
    Column("job_id", UUID(as_uuid=True), ForeignKey("reconciliation_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("side", String(10), nullable=False),
    Column("file_id", UUID(as_uuid=True), ForeignKey("reconciliation_files.id", ondelete="CASCADE"), nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("amount_minor", BigInteger),
    PrimaryKeyConstraint("group_id", "file_id", "row_number"),
)

audit_logs = Table(
    "audit_logs",
    metadata,
    _id(),
    _org(nullable=True, ondelete="SET NULL"),
    _user_fk("user_id", ondelete="SET NULL"),
    Column("action", String(100), nullable=False),
    Column("resource_type", String(100)),
    Column("resource_id", UUID(as_uuid=True)),
    Column("ip_address", INET),
    Column("user_agent", Text),
    Column("request_method", String(10)),
    Column("request_path", Text),
    Column("request_body", JSONB),
    Column("response_status", Integer),
    Column("error_message", Text),
    Column("metadata", JSONB),
    _ts("created_at", default=True),
)

reports = Table(
    "reports",
    metadata,
    _id(),
    _org(),
    Column("type", String(50), nullable=False),
    Column("format", String(10), nullable=False),
    Column("job_id", UUID(as_uuid=True), ForeignKey("reconciliation_jobs.id")),
    Column("parameters", JSONB),
    Column("storage_path", Text, nullable=False),
    Column("file_size_bytes", BigInteger),
    _user_fk("generated_by", nullable=False),
    _ts("generated_at", default=True),
    _ts("expires_at"),
)

outbox_messages = Table(
    "outbox_messages",
    metadata,
    _id(),
    _org(nullable=True),
    Column("queue", String(20), nullable=False),
    Column("actor_name", String(100), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("status", String(20), nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("max_attempts", Integer, nullable=False, server_default=text("5")),
    _ts("available_at", default=True, nullable=False),
    _ts("dispatched_at"),
    _ts("completed_at"),
    Column("last_error", Text),
    _ts("created_at", default=True),
)

# Tenant tables: every table with organization_id (and organizations itself) is under RLS.
TENANT_TABLE_NAMES = frozenset(t.name for t in metadata.sorted_tables if "organization_id" in t.c) | {
    "organizations"
}

# Columns later revisions add to the tables above, for the repositories that use them. `metadata`
# mirrors 0001_schema only (tests/integration/test_schema.py); these live in their own MetaData.
later_metadata = MetaData()
# 0034_pii_encryption: email and name hold ciphertext (TEXT), email_index the blind index.
_ENCRYPTED_USER_COLUMNS = ("email", "name")
users_current = Table(
    "users",
    later_metadata,
    *(column._copy() for column in users.columns if column.name not in _ENCRYPTED_USER_COLUMNS),
    Column("email", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("email_index", String(64), nullable=False),
    Column("last_changed_by", UUID(as_uuid=True)),  # 0011_account_changes (references users.id)
    _ts("last_changed_at"),
    # 0013_login_sources: sign-in failures per source (docs/identity.md, "Lockout per account and source")
    Column("login_sources", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)

# 0034_pii_encryption: each organization's data key, wrapped by a master key (docs/privacy.md).
organization_data_keys = Table(
    "organization_data_keys",
    later_metadata,
    Column("organization_id", UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="CASCADE"),
           primary_key=True),
    Column("key_id", String(50), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("master_key_id", String(100), nullable=False),
    _ts("created_at", default=True, nullable=False),
    _ts("rewrapped_at"),
)
