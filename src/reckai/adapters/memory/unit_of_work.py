"""The in-memory unit of work: a transaction over a shared store (adapters/memory/store.py) and
every repository that works inside it, each a typed attribute built on first use. The same
attributes as `adapters/postgres/unit_of_work.py`; the contract tests run on both."""

from __future__ import annotations

import uuid
from functools import cached_property

from reckai.adapters.memory import (
    account_security,
    dashboard,
    identity,
    privacy,
    reconciliations,
    reports,
    workflow,
)
from reckai.adapters.memory import files as file_repositories
from reckai.adapters.memory import periods as period_repositories
from reckai.adapters.memory import stream_schedules as stream_schedule_repositories
from reckai.adapters.memory import streams as stream_repositories
from reckai.adapters.memory.personal_data import MemoryDataKeyRepository
from reckai.adapters.memory.retention import MemoryRetentionRepository
from reckai.adapters.memory.store import MemoryStore, MemoryTransaction
from reckai.adapters.memory.subject_keys import MemorySubjectKeyRepository

__all__ = ["MemoryDatabase", "MemoryStore", "MemoryUnitOfWork"]


class MemoryUnitOfWork(MemoryTransaction):
    # --- identity (issue 3) ---
    @cached_property
    def organizations(self) -> identity.MemoryOrganizationRepository:
        return identity.MemoryOrganizationRepository(self)

    @cached_property
    def quotas(self) -> identity.MemoryQuotaRepository:
        return identity.MemoryQuotaRepository(self)

    @cached_property
    def users(self) -> identity.MemoryUserRepository:
        return identity.MemoryUserRepository(self)

    @cached_property
    def sessions(self) -> identity.MemorySessionRepository:
        return identity.MemorySessionRepository(self)

    @cached_property
    def user_tokens(self) -> account_security.MemoryUserTokenRepository:
        return account_security.MemoryUserTokenRepository(self)

    @cached_property
    def mfa(self) -> account_security.MemoryMfaRepository:
        return account_security.MemoryMfaRepository(self)

    # --- per-person keys of erasable audit data (issue 17 item 5) ---
    @cached_property
    def subject_keys(self) -> MemorySubjectKeyRepository:
        return MemorySubjectKeyRepository(self)

    # --- organization data keys (issue 17 item 4; none in memory: plain text) ---
    @cached_property
    def data_keys(self) -> MemoryDataKeyRepository:
        return MemoryDataKeyRepository(self)

    # --- files (issue 4) ---
    @cached_property
    def files(self) -> file_repositories.MemoryFileRepository:
        return file_repositories.MemoryFileRepository(self)

    @cached_property
    def data_mappings(self) -> file_repositories.MemoryDataMappingRepository:
        return file_repositories.MemoryDataMappingRepository(self)

    @cached_property
    def normalized_files(self) -> file_repositories.MemoryNormalizedFileRepository:
        return file_repositories.MemoryNormalizedFileRepository(self)

    @cached_property
    def file_sweep(self) -> file_repositories.MemoryFileSweepRepository:
        return file_repositories.MemoryFileSweepRepository(self)

    @cached_property
    def file_statements(self) -> file_repositories.MemoryFileStatementRepository:
        return file_repositories.MemoryFileStatementRepository(self)

    # --- reconciliation jobs (issue 6) ---
    @cached_property
    def reconciliation_jobs(self) -> reconciliations.MemoryJobRepository:
        return reconciliations.MemoryJobRepository(self)

    @cached_property
    def reconciliation_results(self) -> reconciliations.MemoryResultsRepository:
        return reconciliations.MemoryResultsRepository(self)

    @cached_property
    def matching_rules(self) -> reconciliations.MemoryRuleRepository:
        return reconciliations.MemoryRuleRepository(self)

    # --- streams (issue 15) ---
    @cached_property
    def streams(self) -> stream_repositories.MemoryStreamRepository:
        return stream_repositories.MemoryStreamRepository(self)

    @cached_property
    def stream_schedules(self) -> stream_schedule_repositories.MemoryStreamScheduleRepository:
        return stream_schedule_repositories.MemoryStreamScheduleRepository(self)

    @cached_property
    def stream_periods(self) -> period_repositories.MemoryStreamPeriodRepository:
        return period_repositories.MemoryStreamPeriodRepository(self)

    # --- workflow: exceptions, approvals, rules (issue 7) ---
    @cached_property
    def exceptions(self) -> workflow.MemoryExceptionRepository:
        return workflow.MemoryExceptionRepository(self)

    @cached_property
    def approvals(self) -> workflow.MemoryApprovalRepository:
        return workflow.MemoryApprovalRepository(self)

    @cached_property
    def rules(self) -> workflow.MemoryRuleRepository:
        return workflow.MemoryRuleRepository(self)

    @cached_property
    def matches(self) -> workflow.MemoryMatchRepository:
        return workflow.MemoryMatchRepository(self)

    @cached_property
    def declined_pairs(self) -> workflow.MemoryDeclinedPairs:
        return workflow.MemoryDeclinedPairs(self)

    # --- reports (issue 14) ---

    @cached_property
    def reports(self) -> reports.MemoryReportRepository:
        return reports.MemoryReportRepository(self)

    # --- dashboard (issue 14 §3) ---
    @cached_property
    def dashboard(self) -> dashboard.MemoryDashboardReader:
        return dashboard.MemoryDashboardReader(self)

    # --- retention (issue 17 item 7) ---
    @cached_property
    def retention(self) -> MemoryRetentionRepository:
        return MemoryRetentionRepository(self)

    # --- data exports (issue 17 item 6) ---
    @cached_property
    def data_exports(self) -> privacy.MemoryDataExportRepository:
        return privacy.MemoryDataExportRepository(self)

    @cached_property
    def export_data(self) -> privacy.MemoryExportDataReader:
        return privacy.MemoryExportDataReader(self)


class MemoryDatabase:
    """The container's `database` in in-memory containers."""

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()

    def unit_of_work(self, organization_id: uuid.UUID | None = None) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.store, organization_id)

    def close(self) -> None:
        pass
