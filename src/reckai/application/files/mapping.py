"""propose_mapping, confirm_mapping and normalize_file_job.

Status flow: uploaded (a proposal may exist) -> mapped (a person confirmed or overrode the
mapping) -> normalized (Parquet in storage: normalized version 1) | error (message and report).
A file that has a normalized version (status normalized, or processed: a job used it) is
*re-mapped*: the same validation and normalization make version N+1 (its own Parquet, row count
and mapping), which becomes the current one; earlier versions stay, and a job keeps reading the
version it recorded (docs/files.md "Re-mapping: versions"). A failed re-map changes nothing of the
file. Normalization never leaves half a result: a version's row is committed only after its
Parquet is stored, and if that commit fails the Parquet is removed. All of it runs under the
file's claim (common.claimed), so two racing calls never interleave: the second request gets
FileBusy (409), a job's normalize step waits for the claim.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from reckai.application.context import Caller, Outcome
from reckai.application.errors import FieldError, NotFound, ServiceUnavailable, ValidationFailed
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
    FileInProcessingJob,
    FileStateConflict,
    FileVersionConflict,
    NormalizationFailed,
)
from reckai.application.files.services import FileServices
from reckai.application.ports.files import (
    DataMapping,
    FilesUnitOfWork,
    NormalizationOutcome,
    NormalizedFile,
    ReconciliationFile,
)
from reckai.application.ports.repositories import DuplicateEntity
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

    A file without a normalized version gets version 1 (status mapped, then normalized or error).
    A file with one (normalized or processed) is re-mapped: version N+1 is made with the same
    validation and normalization, and becomes current only if all of it succeeded.

    Raises ValidationFailed (field-level, `transformation_rules.<path>`) for a mapping that is not
    valid, NormalizationFailed when the rows cannot be normalized (a first mapping commits the
    status `error`, message and report first, so GET /api/files/:id shows them; a re-map leaves the
    file as it was), FileBusy (409) while another request or job holds the file's claim,
    FileInProcessingJob while a job that reads the file is processing.
    """
    if transformation_rules is not None:  # refuse a bad override before taking anything
        _parse(services, transformation_rules)
    overriding = transformation_rules is not None
    with claimed(services, caller.organization_id, file_id):
        with services.database.unit_of_work(caller.organization_id) as uow:
            file = load_file(uow, file_id)
            _check_mappable(uow, file)
            current = uow.normalized_files.get_for_file(file_id)
            rules = transformation_rules if overriding else rules_from_rows(uow.data_mappings.list_for_file(file_id))
            if rules is None:
                raise ValidationFailed([FieldError(
                    "transformation_rules", "no mapping was detected for this file; send transformation_rules")])
            mapping = _parse(services, rules)
            if current is None:  # the first normalized version
                if overriding:
                    uow.data_mappings.replace_for_file(file_id, mapping_rows(caller, file_id, rules, auto_detected=False))
                file = dataclasses.replace(file, status="mapped", error_message=None, error_report=None, row_count=None)
                uow.files.update(file)
                services.audit_log.record(uow, audit_event(caller, "file.mapping_confirmed", file_id,
                                                           outcome=Outcome.DONE, overridden=overriding,
                                                           fields=sorted(rules.get("fields", {}))))
                uow.commit()
        if current is None:
            normalized = _normalize(services, caller, file, mapping, rules, allow_row_errors=allow_row_errors)
        else:
            normalized = _remap(services, caller, file, current, mapping, rules, overriding=overriding,
                                allow_row_errors=allow_row_errors)
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
        normalized = _normalize(services, caller, file, _parse(services, rules), rules,
                                allow_row_errors=allow_row_errors)
    assert normalized is not None  # _normalize raises rather than return None
    return normalized


def _parse(services: FileServices, rules: Any) -> Mapping:
    try:
        return services.parser.parse_mapping(rules)
    except InvalidMapping as exc:
        raise invalid_mapping(exc) from exc


def _check_mappable(uow: FilesUnitOfWork, file: ReconciliationFile) -> None:
    if uow.files.in_processing_job(file.id):
        raise FileInProcessingJob(file.id)


def _normalize(services: FileServices, caller: Caller, file: ReconciliationFile, mapping: Mapping,
               rules: dict[str, Any], *, allow_row_errors: bool) -> NormalizedFile | None:
    """Version 1 of a file that has none: a failure puts the file in status `error`."""
    outcome = _read_rows(services, file, mapping, allow_row_errors=allow_row_errors,
                         refuse=lambda message, report: _fail(services, caller, file, message, report))
    with services.database.unit_of_work(caller.organization_id) as uow:
        known = uow.normalized_files.get_for_file(file.id)
    version = known.version + 1 if known is not None else 1
    key, checksum = _store(services, caller, file, outcome, version)
    try:
        with services.database.unit_of_work(caller.organization_id) as uow:
            current = load_file(uow, file.id)
            normalized = _add_version(uow, caller, file, (key, checksum), outcome, version, rules)
            report, repeated = _report(uow, file, outcome)
            uow.files.update(dataclasses.replace(
                current, status="normalized", row_count=outcome.row_count, error_message=None,
                error_report=report, processed_at=services.now()))
            details: dict[str, Any] = {"duplicate_statements": repeated} if repeated else {}
            services.audit_log.record(uow, audit_event(
                caller, "file.normalized", file.id, outcome=Outcome.DONE, row_count=outcome.row_count,
                failed_rows=len({e.row_number for e in outcome.errors}), source_rows=outcome.source_rows,
                **details))
            uow.commit()
    except DuplicateEntity as exc:
        _delete_quietly(services, key)
        raise FileVersionConflict(file.id, version) from exc
    except BaseException:
        _delete_quietly(services, key)
        raise
    return normalized


def _remap(services: FileServices, caller: Caller, file: ReconciliationFile, current: NormalizedFile,
           mapping: Mapping, rules: dict[str, Any], *, overriding: bool, allow_row_errors: bool) -> NormalizedFile:
    """Version N+1 of a file that has version N. Nothing of the file changes unless every step
    succeeds: the rows are normalized and their Parquet stored first, then ONE transaction adds the
    version, replaces the mapping rows (an override), the file's statements and figures, and
    audits `file.remapped`. A failure is audited `file.remap_failed` and leaves version N current."""
    outcome = _read_rows(services, file, mapping, allow_row_errors=allow_row_errors,
                         refuse=lambda message, _report: _refuse_remap(services, caller, file, current, message))
    version = current.version + 1
    key, checksum = _store(services, caller, file, outcome, version)
    try:
        with services.database.unit_of_work(caller.organization_id) as uow:
            locked = uow.files.get_for_update(file.id)
            if locked is None:
                raise NotFound("file", file.id)
            latest = uow.normalized_files.get_for_file(file.id)
            if latest is None or latest.version != current.version:
                raise FileVersionConflict(file.id, version)
            normalized = _add_version(uow, caller, file, (key, checksum), outcome, version, rules)
            if overriding:
                uow.data_mappings.replace_for_file(file.id, mapping_rows(caller, file.id, rules, auto_detected=False))
            report, repeated = _report(uow, file, outcome)
            details: dict[str, Any] = {"duplicate_statements": repeated} if repeated else {}
            uow.files.update(dataclasses.replace(
                locked, row_count=outcome.row_count, error_message=None, error_report=report,
                processed_at=services.now()))
            services.audit_log.record(uow, audit_event(
                caller, "file.remapped", file.id, outcome=Outcome.DONE, previous_version=current.version,
                version=version, overridden=overriding, fields=sorted(rules.get("fields", {})),
                row_count=outcome.row_count, previous_row_count=current.row_count,
                failed_rows=len({e.row_number for e in outcome.errors}), source_rows=outcome.source_rows,
                **details))
            uow.commit()
    except DuplicateEntity as exc:
        _delete_quietly(services, key)
        raise FileVersionConflict(file.id, version) from exc
    except BaseException:
        _delete_quietly(services, key)
        raise
    return normalized


def _read_rows(services: FileServices, file: ReconciliationFile, mapping: Mapping, *, allow_row_errors: bool,
               refuse: Any) -> NormalizationOutcome:
    """Normalize the stored original with `mapping`; `refuse(message, report)` records a failure
    (then the matching error is raised)."""
    try:
        # The parser reads the stored original itself, so that its bytes are let go once read.
        outcome = services.parser.normalize(lambda: read_object(services, file.storage_path), mapping,
                                            file.original_filename)
    except InvalidMapping as exc:
        refuse(exc.message, {"error": exc.to_dict()})
        raise invalid_mapping(exc) from exc
    except IngestionError as exc:
        refuse(exc.message, {"error": exc.to_dict()})
        raise NormalizationFailed(file.id, exc.message, details=[FieldError("file", exc.message)]) from exc
    if outcome.errors and not allow_row_errors:
        failed = len({e.row_number for e in outcome.errors})
        message = (f"{failed} of {outcome.source_rows} rows could not be normalized; the error report lists "
                   "each one (row, column, value, reason). Fix the mapping, or confirm it with "
                   "allow_row_errors to keep the rows that passed")
        refuse(message, outcome.report)
        raise NormalizationFailed(file.id, message, outcome.report, details=[
            FieldError(f"rows.{e.row_number}.{e.column or ''}", f"{e.reason} (value {e.value!r})")
            for e in outcome.errors[:REPORT_DETAILS_SHOWN]])
    return outcome


def _store(services: FileServices, caller: Caller, file: ReconciliationFile, outcome: NormalizationOutcome,
           version: int) -> tuple[str, str | None]:
    """Store the version's Parquet under its own key; (key, SHA-256). Version 1 keeps the key it
    always had; a later version's key also names this writer, so two writers of one version number
    (a race the claim prevents) never overwrite or delete each other's object."""
    writer = uuid.uuid4() if version > 1 else None
    key = normalized_file_key(caller.organization_id, file.id, version=version, writer=writer)
    try:
        stored = services.storage.put(key, [outcome.parquet], content_type="application/vnd.apache.parquet")
    except StorageError as exc:
        raise ServiceUnavailable("storage", type(exc).__name__) from exc
    return key, stored.sha256


def _add_version(uow: FilesUnitOfWork, caller: Caller, file: ReconciliationFile, stored: tuple[str, str | None],
                 outcome: NormalizationOutcome, version: int, rules: dict[str, Any]) -> NormalizedFile:
    return uow.normalized_files.put(NormalizedFile(
        id=uuid.uuid4(), file_id=file.id, organization_id=caller.organization_id, storage_path=stored[0],
        row_count=outcome.row_count, checksum=stored[1], version=version, mapping=rules, created_by=caller.user_id))


def _report(uow: FilesUnitOfWork, file: ReconciliationFile,
            outcome: NormalizationOutcome) -> tuple[dict[str, Any], int]:
    """The version's report (skipped lines, row errors) with a warning for each bank statement
    another file already holds, and how many; records the file's statements."""
    repeated = _repeated_statements(uow, file.id, outcome.statements)
    uow.file_statements.replace_for_file(file.id, outcome.statements)
    report = outcome.report
    if repeated:
        report = {**report, "warnings": [*report.get("warnings", []), *(w.to_dict() for w in repeated)]}
    return report, len(repeated)


def _refuse_remap(services: FileServices, caller: Caller, file: ReconciliationFile, current: NormalizedFile,
                  message: str) -> None:
    """A re-map that failed: audited, and nothing of the file changed (its version stays current)."""
    with services.database.unit_of_work(caller.organization_id) as uow:
        services.audit_log.record(uow, audit_event(caller, "file.remap_failed", file.id, outcome=Outcome.REFUSED,
                                                   error=message[:500], current_version=current.version))
        uow.commit()


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
