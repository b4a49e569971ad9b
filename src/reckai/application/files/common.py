"""Pieces shared by the file use cases: loading a file of the caller's organization, audit events,
reading a stored object whole, turning ingestion errors into application errors."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from reckai.application.context import Caller, Outcome
from reckai.application.context import audit_event as build_audit_event
from reckai.application.errors import FieldError, NotFound, ServiceUnavailable, ValidationFailed
from reckai.application.files.errors import FileBusy, FileRejected
from reckai.application.files.services import FileServices
from reckai.application.ports.files import DataMapping, FilesUnitOfWork, ReconciliationFile
from reckai.application.ports.storage import StorageError, StorageObjectMissing
from reckai.domain.audit.events import AuditEvent
from reckai.domain.ingestion.detection import MappingProposal
from reckai.domain.ingestion.errors import IngestionError, InvalidMapping

logger = logging.getLogger("reckai.files")

RESOURCE_TYPE = "reconciliation_file"
SOURCE_COLUMN_MAX = 255


def load_file(uow: FilesUnitOfWork, file_id: uuid.UUID) -> ReconciliationFile:
    file: ReconciliationFile | None = uow.files.get(file_id)
    if file is None:
        raise NotFound("file", file_id)
    return file


@contextmanager
def claimed(services: FileServices, organization_id: uuid.UUID, file_id: uuid.UUID, *,
            wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the file's claim (FileRepository.try_claim) for the block: the writers of one file
    (mapping, normalization, delete) run one at a time, so two racing requests never interleave
    their transactions and storage writes.

    Raises FileBusy (409) when another holder keeps it longer than `wait_seconds` (0: do not
    wait; requests answer at once, jobs wait). Waiting polls: no pooled connection is held while
    waiting, so waiters can never starve the holder of the connections it needs.
    """
    deadline = time.monotonic() + wait_seconds
    pause = 0.02
    while True:
        with services.database.unit_of_work(organization_id) as claim:
            if claim.files.try_claim(file_id):
                yield  # the claim's transaction stays open (idle) until the block ends
                return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FileBusy(file_id)
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, 0.5)


def audit_event(caller: Caller, action: str, file_id: uuid.UUID | None, *, outcome: Outcome | None = None,
                error: str | None = None, **metadata: Any) -> AuditEvent:
    """An audited action on a file (the one builder, application/context.py)."""
    return build_audit_event(action, caller.request, organization_id=caller.organization_id,
                             user_id=caller.user_id, resource_type=RESOURCE_TYPE, resource_id=file_id,
                             outcome=outcome, error=error, metadata=metadata or None)


def read_object(services: FileServices, key: str) -> bytes:
    """The whole object (parsers need it whole); integrity is verified by reading to the end."""
    try:
        with services.storage.open(key) as stream:
            return stream.read()
    except StorageObjectMissing as exc:
        raise ServiceUnavailable("storage", "the stored file is missing") from exc
    except StorageError as exc:
        raise ServiceUnavailable("storage", type(exc).__name__) from exc


def rejected(exc: IngestionError) -> FileRejected:
    return FileRejected(exc.code.upper(), exc.message)


def invalid_mapping(exc: InvalidMapping, prefix: str = "transformation_rules") -> ValidationFailed:
    path = str(exc.details.get("path") or "")
    return ValidationFailed([FieldError(f"{prefix}.{path}" if path else prefix, exc.message)],
                            message="The mapping is not valid")


def mapping_rows(caller: Caller, file_id: uuid.UUID, rules: dict[str, Any], *, auto_detected: bool,
                 proposal: MappingProposal | None = None) -> list[DataMapping]:
    """One data_mappings row per canonical field of `rules` (docs/mapping.md JSON)."""
    from reckai.domain.ingestion.detection import DATA_TYPES

    by_target = {p.target_field: p for p in (proposal.fields if proposal else [])}
    parse = rules.get("parse") or {}
    rows = []
    for target, spec in (rules.get("fields") or {}).items():
        found = by_target.get(target)
        confidence = Decimal(str(round(found.confidence, 2))) if found and auto_detected else None
        rows.append(DataMapping(
            id=uuid.uuid4(), organization_id=caller.organization_id, file_id=file_id,
            source_column=_source_columns(spec)[:SOURCE_COLUMN_MAX], target_field=target,
            data_type=found.data_type if found else DATA_TYPES.get(target, "string"),
            auto_detected=auto_detected, transformation_rules={"parse": parse, "field": spec},
            confidence=confidence, created_by=caller.user_id,
        ))
    return rows


def _source_columns(spec: Any) -> str:
    if not isinstance(spec, dict):
        return ""
    names = [spec[k] for k in ("column", "debit_column", "credit_column", "time_column")
             if isinstance(spec.get(k), str)]
    for part in spec.get("coalesce") or []:
        if isinstance(part, dict) and isinstance(part.get("column"), str):
            names.append(part["column"])
    return " / ".join(dict.fromkeys(names))


def rules_from_rows(rows: Any) -> dict[str, Any] | None:
    """The mapping JSON rebuilt from a file's data_mappings rows (None when there are none)."""
    rows = list(rows)
    if not rows:
        return None
    parse = rows[0].transformation_rules.get("parse") or {}
    return {"parse": parse, "fields": {row.target_field: row.transformation_rules.get("field") for row in rows}}
