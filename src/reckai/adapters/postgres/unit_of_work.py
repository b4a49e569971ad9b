"""The PostgreSQL unit of work: a transaction (adapters/postgres/transaction.py) and every
repository that works inside it, each a typed attribute built on first use.

A feature adds its repositories here, one `cached_property` each, and lists them in its port's
unit-of-work protocol (e.g. `application/ports/files.py:FilesUnitOfWork`); the in-memory twin
(`adapters/memory/unit_of_work.py`) gets the same attributes, and the contract tests run on both.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import cached_property

from sqlalchemy.engine import Engine

from reckai.adapters.postgres import (
    account_security,
    dashboard,
    identity,
    personal_data,
    privacy,
    reconciliations,
    reports,
    workflow,
)
from reckai.adapters.postgres import files as file_repositories
from reckai.adapters.postgres import periods as period_repositories
from reckai.adapters.postgres import stream_schedules as stream_schedule_repositories
from reckai.adapters.postgres import streams as stream_repositories
from reckai.adapters.postgres.retention import PostgresRetentionRepository
from reckai.adapters.postgres.subject_keys import PostgresSubjectKeyRepository
from reckai.adapters.postgres.transaction import PostgresTransaction, UnitOfWorkClosed
from reckai.adapters.security.personal_data import PersonalDataKeys, development_keys

__all__ = ["PostgresDatabase", "PostgresUnitOfWork", "UnitOfWorkClosed"]


class PostgresUnitOfWork(PostgresTransaction):
    # --- identity (issue 3) ---
    @cached_property
    def organizations(self) -> identity.PostgresOrganizationRepository:
        return identity.PostgresOrganizationRepository(self)

    @cached_property
    def quotas(self) -> identity.PostgresQuotaRepository:
        return identity.PostgresQuotaRepository(self)

    @cached_property
    def users(self) -> identity.PostgresUserRepository:
        return identity.PostgresUserRepository(self)

    @cached_property
    def sessions(self) -> identity.PostgresSessionRepository:
        return identity.PostgresSessionRepository(self)

    @cached_property
    def user_tokens(self) -> account_security.PostgresUserTokenRepository:
        return account_security.PostgresUserTokenRepository(self)

    @cached_property
    def mfa(self) -> account_security.PostgresMfaRepository:
        return account_security.PostgresMfaRepository(self)

    # --- per-person keys of erasable audit data (issue 17 item 5) ---
    @cached_property
    def subject_keys(self) -> PostgresSubjectKeyRepository:
        return PostgresSubjectKeyRepository(self)

    # --- files (issue 4) ---
    @cached_property
    def files(self) -> file_repositories.PostgresFileRepository:
        return file_repositories.PostgresFileRepository(self)

    @cached_property
    def data_mappings(self) -> file_repositories.PostgresDataMappingRepository:
        return file_repositories.PostgresDataMappingRepository(self)

    @cached_property
    def normalized_files(self) -> file_repositories.PostgresNormalizedFileRepository:
        return file_repositories.PostgresNormalizedFileRepository(self)

    @cached_property
    def file_sweep(self) -> file_repositories.PostgresFileSweepRepository:
        return file_repositories.PostgresFileSweepRepository(self)

    @cached_property
    def file_statements(self) -> file_repositories.PostgresFileStatementRepository:
        return file_repositories.PostgresFileStatementRepository(self)

    # --- reconciliation jobs (issue 6) ---
    @cached_property
    def reconciliation_jobs(self) -> reconciliations.PostgresJobRepository:
        return reconciliations.PostgresJobRepository(self)

    @cached_property
    def reconciliation_results(self) -> reconciliations.PostgresResultsRepository:
        return reconciliations.PostgresResultsRepository(self)

    @cached_property
    def matching_rules(self) -> reconciliations.PostgresRuleRepository:
        return reconciliations.PostgresRuleRepository(self)

    # --- streams (issue 15) ---
    @cached_property
    def streams(self) -> stream_repositories.PostgresStreamRepository:
        return stream_repositories.PostgresStreamRepository(self)

    @cached_property
    def stream_schedules(self) -> stream_schedule_repositories.PostgresStreamScheduleRepository:
        return stream_schedule_repositories.PostgresStreamScheduleRepository(self)

    @cached_property
    def stream_periods(self) -> period_repositories.PostgresStreamPeriodRepository:
        return period_repositories.PostgresStreamPeriodRepository(self)

    # --- workflow: exceptions, approvals, rules (issue 7) ---
    @cached_property
    def exceptions(self) -> workflow.PostgresExceptionRepository:
        return workflow.PostgresExceptionRepository(self)

    @cached_property
    def approvals(self) -> workflow.PostgresApprovalRepository:
        return workflow.PostgresApprovalRepository(self)

    @cached_property
    def rules(self) -> workflow.PostgresRuleRepository:
        return workflow.PostgresRuleRepository(self)

    @cached_property
    def matches(self) -> workflow.PostgresMatchRepository:
        return workflow.PostgresMatchRepository(self)

    @cached_property
    def declined_pairs(self) -> workflow.PostgresDeclinedPairs:
        return workflow.PostgresDeclinedPairs(self)

    # --- reports (issue 14) ---

    @cached_property
    def reports(self) -> reports.PostgresReportRepository:
        return reports.PostgresReportRepository(self)

    # --- dashboard (issue 14 §3) ---
    @cached_property
    def dashboard(self) -> dashboard.PostgresDashboardReader:
        return dashboard.PostgresDashboardReader(self)

    # --- retention (issue 17 item 7) ---
    @cached_property
    def retention(self) -> PostgresRetentionRepository:
        return PostgresRetentionRepository(self)

    # --- data exports (issue 17 item 6) ---
    @cached_property
    def data_exports(self) -> privacy.PostgresDataExportRepository:
        return privacy.PostgresDataExportRepository(self)

    @cached_property
    def export_data(self) -> privacy.PostgresExportDataReader:
        return privacy.PostgresExportDataReader(self)

    # --- personal data keys (issue 17 item 4) ---
    @cached_property
    def data_keys(self) -> personal_data.PostgresDataKeyRepository:
        return personal_data.PostgresDataKeyRepository(self)


class PostgresDatabase:
    """The container's `database` in embedded and production mode."""

    def __init__(self, engine: Engine, on_close: Callable[[], None] | None = None,
                 personal_data: PersonalDataKeys | None = None) -> None:
        self.engine = engine
        self._on_close = on_close
        # The master keys and the cache of unwrapped organization keys, shared by its units of work.
        self.personal_data = personal_data or development_keys()

    def unit_of_work(self, organization_id: uuid.UUID | None = None) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.engine, organization_id, self.personal_data)

    def close(self) -> None:
        self.engine.dispose()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()
