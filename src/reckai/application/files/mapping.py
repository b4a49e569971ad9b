"""propose_mapping, confirm_mapping and normalize_file_job.

Status flow: uploaded (a proposal may exist) -> mapped (a person confirmed or overrode the
mapping) -> normalized (Parquet in storage, normalized_files row) | error (message and report).
A file that a job has `processed` is not re-mapped. Normalization never leaves half a result:
the previous normalized row is removed (status mapped) before the new Parquet is written, and the
new row is committed only after the Parquet is stored; if that commit fails the Parquet is removed.
All of it runs under the file's claim (common.claimed), so two racing calls never interleave: the
second request gets FileBusy (409), a job's normalize step waits for the claim.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from reckai.application.context import Caller, Outcome
from reckai.application.errors import FieldError, ServiceUnavailable, ValidationFailed
from reckai.application.files.common import (
    audit_event,
    claimed,
    invalid_mapping,
    load_file,
    logger,
    mapping_rows,
    read_object,
    rules_from_rows,
)
from reckai.application.files.errors import (
    REMAP_PROCESSED_HINT,
    FileInProcessingJob,
    FileStateConflict,
    NormalizationFailed,
)
from reckai.application.files.services import FileServices
from reckai.application.ports.files import DataMapping, FilesUnitOfWork, NormalizedFile, ReconciliationFile
from reckai.application.ports.storage import StorageError
from reckai.domain.ingestion.detection import MappingProposal
from reckai.domain.ingestion.errors import IngestionError, InvalidMapping, SourceWarning
from reckai.domain.ingestion.mapping import Mapping
from reckai.domain.ingestion.statements import StatementIdentity, duplicate_statement_message
from reckai.domain.ingestion.storage_keys import normalized_file_key

REPORT_DETAILS_SHOWN = 20
# How long a job's normalize step waits for a request holding the file's claim (a 1M-row file
# normalizes in a few seconds; a large workbook in under a minute).
JOB_CLAIM_WAIT_SECONDS = 120.0


@dataclass(frozen=True)
class MappingOutcome:
    file: ReconciliationFile
    mappings: list[DataMapping]
    normalized: NormalizedFile | None


def propose_mapping(services: FileServices, caller: Caller, file_id: uuid.UUID) -> MappingProposal:
    """Auto-detect a mapping for a stored file again (upload already does it once)."""
    with services.database.unit_of_work(caller.organization_id) as uow:
        file = load_file(uow, file_id)
    data = read_object(services, file.storage_path)
    try:
        return services.parser.propose(data, file.original_filename)
    except IngestionError as exc:
        raise NormalizationFailed(file_id, exc.message) from exc


def confirm_mapping(services: FileServices, caller: Caller, file_id: uuid.UUID,
                    transformation_rules: dict[str, Any] | None, *, allow_row_errors: bool = False) -> MappingOutcome:
    """Confirm the proposed mapping (rules None) or override it, then normalize the file.

    Raises ValidationFailed (field-level, `transformation_rules.<path>`) for a mapping that is not
    valid, NormalizationFailed when the file ends in status `error` (the status, message and report
    are committed first, so GET /api/files/:id shows them), FileBusy (409) while another request
    or job holds the file's claim.
    """
    if transformation_rules is not None:  # refuse a bad override before taking anything
        _parse(services, transformation_rules)
    with claimed(services, caller.organization_id, file_id):
        with services.database.unit_of_work(caller.organization_id) as uow:
            file = load_file(uow, file_id)
            _check_mappable(uow, file)
            overriding = transformation_rules is not None
            rules = transformation_rules if overriding else rules_from_rows(uow.data_mappings.list_for_file(file_id))
            if rules is None:
                raise ValidationFailed([FieldError(
                    "transformation_rules", "no mapping was detected for this file; send transformation_rules")])
            mapping = _parse(services, rules)
            if overriding:
                uow.data_mappings.replace_for_file(file_id, mapping_rows(caller, file_id, rules, auto_detected=False))
            old = uow.normalized_files.get_for_file(file_id)
            uow.normalized_files.delete_for_file(file_id)
            file = dataclasses.replace(file, status="mapped", error_message=None, error_report=None, row_count=None)
            uow.files.update(file)
            services.audit_log.record(uow, audit_event(caller, "file.mapping_confirmed", file_id, outcome=Outcome.DONE,
                                                       overridden=overriding, fields=sorted(rules.get("fields", {}))))
            uow.commit()
        if old is not None:  # its row is gone; so must its Parquet be, whatever happens next
            _delete_quietly(services, old.storage_path)
        normalized = _normalize(services, caller, file, mapping, allow_row_errors=allow_row_errors)
        with services.database.unit_of_work(caller.organization_id) as uow:
            return MappingOutcome(file=load_file(uow, file_id), mappings=list(uow.data_mappings.list_for_file(file_id)),
                                  normalized=normalized)


def normalize_file_job(services: FileServices, organization_id: uuid.UUID, file_id: uuid.UUID, *,
                       allow_row_errors: bool = False, wait_seconds: float = JOB_CLAIM_WAIT_SECONDS) -> NormalizedFile:
    """The normalize step a reconciliation job calls for each of its files. Idempotent: a file
    already normalized returns its normalized_files row; a mapped (or failed) file is normalized
    with its confirmed mapping. Waits up to `wait_seconds` for a request that holds the file's
    claim (then usually finds the file normalized by it). Raises NormalizationFailed,
    FileStateConflict for a file whose mapping was never confirmed, FileBusy after the wait."""
    caller = Caller(organization_id=organization_id, user_id=None)
    with claimed(services, organization_id, file_id, wait_seconds=wait_seconds):
        with services.database.unit_of_work(organization_id) as uow:
            file = load_file(uow, file_id)
            existing = uow.normalized_files.get_for_file(file_id)
            if file.status in ("normalized", "processed") and existing is not None:
                return existing
            if file.status == "uploaded":
                raise FileStateConflict(file_id, file.status, "normalized before its mapping is confirmed")
            rules = rules_from_rows(uow.data_mappings.list_for_file(file_id))
        if rules is None:
            raise FileStateConflict(file_id, file.status, "normalized without a mapping")
        normalized = _normalize(services, caller, file, _parse(services, rules), allow_row_errors=allow_row_errors)
    assert normalized is not None  # _normalize raises rather than return None
    return normalized


def _parse(services: FileServices, rules: Any) -> Mapping:
    try:
        return services.parser.parse_mapping(rules)
    except InvalidMapping as exc:
        raise invalid_mapping(exc) from exc


def _check_mappable(uow: FilesUnitOfWork, file: ReconciliationFile) -> None:
    if file.status == "processed":
        raise FileStateConflict(file.id, file.status, "mapped again", REMAP_PROCESSED_HINT)
    if uow.files.in_processing_job(file.id):
        raise FileInProcessingJob(file.id)


def _normalize(services: FileServices, caller: Caller, file: ReconciliationFile, mapping: Mapping, *,
               allow_row_errors: bool) -> NormalizedFile | None:
    data = read_object(services, file.storage_path)
    try:
        outcome = services.parser.normalize(data, mapping, file.original_filename)
    except InvalidMapping as exc:
        _fail(services, caller, file, exc.message, {"error": exc.to_dict()})
        raise invalid_mapping(exc) from exc
    except IngestionError as exc:
        _fail(services, caller, file, exc.message, {"error": exc.to_dict()})
        raise NormalizationFailed(file.id, exc.message, details=[FieldError("file", exc.message)]) from exc
    finally:
        del data
    if outcome.errors and not allow_row_errors:
        failed = len({e.row_number for e in outcome.errors})
        message = (f"{failed} of {outcome.source_rows} rows could not be normalized; the error report lists "
                   "each one (row, column, value, reason). Fix the mapping, or confirm it with "
                   "allow_row_errors to keep the rows that passed")
        _fail(services, caller, file, message, outcome.report)
        raise NormalizationFailed(file.id, message, outcome.report, details=[
            FieldError(f"rows.{e.row_number}.{e.column or ''}", f"{e.reason} (value {e.value!r})")
            for e in outcome.errors[:REPORT_DETAILS_SHOWN]])
    key = normalized_file_key(caller.organization_id, file.id)
    try:
        stored = services.storage.put(key, [outcome.parquet], content_type="application/vnd.apache.parquet")
    except StorageError as exc:
        raise ServiceUnavailable("storage", type(exc).__name__) from exc
    try:
        with services.database.unit_of_work(caller.organization_id) as uow:
            current = load_file(uow, file.id)
            normalized = uow.normalized_files.put(NormalizedFile(
                id=uuid.uuid4(), file_id=file.id, organization_id=caller.organization_id, storage_path=key,
                row_count=outcome.row_count, checksum=stored.sha256))
            repeated = _repeated_statements(uow, file.id, outcome.statements)
            uow.file_statements.replace_for_file(file.id, outcome.statements)
            report = outcome.report
            if repeated:
                report = {**report, "warnings": [*report.get("warnings", []), *(w.to_dict() for w in repeated)]}
            uow.files.update(dataclasses.replace(
                current, status="normalized", row_count=outcome.row_count, error_message=None,
                error_report=report, processed_at=services.now()))
            details: dict[str, Any] = {"duplicate_statements": len(repeated)} if repeated else {}
            services.audit_log.record(uow, audit_event(
                caller, "file.normalized", file.id, outcome=Outcome.DONE, row_count=outcome.row_count,
                failed_rows=len({e.row_number for e in outcome.errors}), source_rows=outcome.source_rows,
                **details))
            uow.commit()
    except BaseException:
        _delete_quietly(services, key)
        raise
    return normalized


def _repeated_statements(uow: FilesUnitOfWork, file_id: uuid.UUID,
                         statements: list[StatementIdentity]) -> list[SourceWarning]:
    """A `duplicate_statement` file warning for each bank statement another file of the
    organization already holds (the rows are loaded all the same: the bank may have re-sent it)."""
    earlier = uow.file_statements.earlier([s.key for s in statements], file_id)
    return [SourceWarning(duplicate_statement_message(s, earlier[s.key].filename, str(earlier[s.key].file_id)),
                          line_number=s.line_number, kind="duplicate_statement")
            for s in {s.key: s for s in statements}.values() if s.key in earlier]


def _fail(services: FileServices, caller: Caller, file: ReconciliationFile, message: str,
          report: dict[str, Any]) -> None:
    with services.database.unit_of_work(caller.organization_id) as uow:
        current = load_file(uow, file.id)
        uow.files.update(dataclasses.replace(current, status="error", error_message=message[:4000],
                                             error_report=report, row_count=None))
        services.audit_log.record(uow, audit_event(caller, "file.normalization_failed", file.id, outcome=Outcome.REFUSED,
                                                   error=message[:500]))
        uow.commit()


def _delete_quietly(services: FileServices, key: str) -> None:
    try:
        services.storage.delete(key)
    except StorageError:
        logger.error("file.cleanup_failed", extra={"object": key})
