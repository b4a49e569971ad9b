"""Data exports port (issue 17 item 6; docs/privacy.md, "Export"): the `data_exports` rows, and a
reader that streams an organization's stored rows for an export.

Repository contract (as application/ports/repositories.py): a unit of work bound to an
organization sees only that organization's exports. Records go in and come out as copies;
datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, cast

from reckai.application.ports.personal_data import DataKeyRepository
from reckai.application.ports.reports import ReportsUnitOfWork
from reckai.application.ports.retention import RetentionUnitOfWork
from reckai.application.ports.workflow import WorkflowUnitOfWork
from reckai.domain.privacy.exports import DataExport

# What an organization export holds, one JSON Lines file per dataset (data/<dataset>.jsonl), in
# this order. Adapters map each name to their storage; a dataset they do not hold yields no rows.
ORGANIZATION_DATASETS: tuple[str, ...] = (
    "organization", "users", "matching_rules", "matching_rule_versions", "files", "data_mappings",
    "normalized_files", "reconciliation_jobs", "reconciliation_job_files", "reconciliation_matches", "match_groups", "match_members",
    "exceptions", "exception_history", "exception_comments", "approvals", "reports", "streams", "stream_runs",
    "data_exports",
)
# What a person's export holds besides their audit rows: datasets filtered on the person.
USER_DATASETS: tuple[str, ...] = ("profile", "sessions", "comments")

# Never exported, whatever the dataset: credentials and their hashes (a password hash, a TOTP
# secret, session and token hashes are secrets of the service, not the person's data).
# The blind index of an address (docs/privacy.md, "Personal data at rest") is a keyed hash the
# service compares, not the person's data: their address is exported, decrypted.
SECRET_FIELDS = frozenset({
    "password_hash", "mfa_secret", "mfa_last_used_step", "token_hash", "fingerprint_hash", "token_version",
    "secret", "code_hash", "email_index",
})


class DataExportRepository(Protocol):
    def add(self, export: DataExport) -> DataExport: ...

    def get(self, export_id: uuid.UUID) -> DataExport | None: ...

    def get_for_update(self, export_id: uuid.UUID) -> DataExport | None:
        """The row, locked until the unit of work ends."""
        ...

    def update(self, export: DataExport) -> None:
        """Store the lifecycle columns (status, size, SHA-256, error, completion, expiry)."""
        ...

    def expired(self, now: dt.datetime, limit: int) -> Sequence[DataExport]:
        """Completed exports whose expires_at <= now, oldest expiry first, at most `limit`."""
        ...

    def unfinished(self) -> Sequence[DataExport]:
        """The bound organization's exports still pending or running (any scope), oldest first."""
        ...

    def latest_completed_organization_export(self) -> DataExport | None:
        """The bound organization's organization-scope export completed last and still `completed`
        (not expired: its archive is still stored), or None. Offboarding requires one."""
        ...


class ExportDataReader(Protocol):
    def rows(self, dataset: str, *, user_id: uuid.UUID | None = None,
             batch_size: int = 1000) -> Iterator[Mapping[str, Any]]:
        """The unit of work's organization's rows of `dataset` (ORGANIZATION_DATASETS, or with
        `user_id` one of USER_DATASETS filtered on that person), in a stable order, as column ->
        value (UUIDs, datetimes, Decimals, dicts as stored), without SECRET_FIELDS. Streams: at
        most `batch_size` rows are held at a time. Raises KeyError for an unknown dataset."""
        ...


class PrivacyUnitOfWork(ReportsUnitOfWork, RetentionUnitOfWork, Protocol):
    @property
    def data_exports(self) -> DataExportRepository: ...

    @property
    def data_keys(self) -> DataKeyRepository: ...

    @property
    def export_data(self) -> ExportDataReader: ...


def privacy_unit_of_work(uow: WorkflowUnitOfWork) -> PrivacyUnitOfWork:
    """The approval handler's unit of work, typed as the exports' (both adapters carry every
    repository; see reports_unit_of_work)."""
    if not hasattr(uow, "data_exports"):
        raise TypeError(f"{type(uow).__name__} carries no data export repository")
    return cast(PrivacyUnitOfWork, uow)
