"""Inspect a file without storing anything: detected format and encoding, the proposed mapping, the
rows as a mapping reads them, what they add up to and the signs that the mapping is wrong.

One use case behind two doors: `reckai inspect FILE` (a file on disk) and the mapping dry run
`POST /api/files/:id/map?dry_run=true` (a stored file; `dry_run_mapping`). docs/mapping.md "Dry run".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from reckai.application.context import Caller, Outcome
from reckai.application.files.common import (
    audit_event,
    invalid_mapping,
    load_file,
    read_object,
    rules_from_rows,
)
from reckai.application.files.services import FileServices
from reckai.application.ports.files import FileParser, FilePreview, ReconciliationFile
from reckai.domain.ingestion.errors import InvalidMapping
from reckai.domain.ingestion.mapping_checks import column_fields, mapping_warnings

DRY_RUN_ROWS = 50  # rows a dry run shows; its figures and warnings count every row


def inspect_file(parser: FileParser, data: bytes, filename: str | None, *, mapping_rules: Any | None = None,
                 limit: int | None = None, period: tuple[dt.date, dt.date] | None = None) -> FilePreview:
    """`mapping_rules`: mapping JSON (docs/mapping.md), or None to read with the proposed mapping.
    `period`: the declared period (both ends included) the transaction dates should fall in.
    Raises InvalidMapping or an IngestionError (a file that is unusable as a whole)."""
    preview = parser.preview(data, mapping_rules, filename, limit=limit)
    if preview.statistics is None:
        return preview
    fields = column_fields(parser.parse_mapping(preview.mapping))
    return dataclasses.replace(preview, mapping_warnings=mapping_warnings(
        preview.statistics, column_fields=fields, period=period))


@dataclasses.dataclass(frozen=True)
class MappingDryRun:
    file: ReconciliationFile
    mapping_source: str  # given (the request's rules) | stored (the file's mapping rows) | proposed
    preview: FilePreview


def dry_run_mapping(services: FileServices, caller: Caller, file_id: uuid.UUID,
                    transformation_rules: dict[str, Any] | None, *,
                    period: tuple[dt.date, dt.date] | None = None) -> MappingDryRun:
    """Read a stored file with a mapping and show what it gives, changing nothing: the rules given,
    else the file's mapping (proposed at upload, or confirmed), else a fresh proposal. Works in any
    status (a processed file too: it is how a person checks a new mapping before re-mapping).
    Raises ValidationFailed for a mapping that is not valid, FileRejected-like 422 through the
    IngestionError of a file the mapping cannot read."""
    with services.database.unit_of_work(caller.organization_id) as uow:
        file = load_file(uow, file_id)
        stored = rules_from_rows(uow.data_mappings.list_for_file(file_id))
        # Showing rows of a file is a read of its content, like a download link: audited.
        services.audit_log.record(uow, audit_event(caller, "file.mapping_dry_run", file_id, outcome=Outcome.DONE,
                                                   given=transformation_rules is not None))
        uow.commit()
    rules = transformation_rules if transformation_rules is not None else stored
    source = "given" if transformation_rules is not None else "stored" if stored is not None else "proposed"
    data = read_object(services, file.storage_path)
    try:
        preview = inspect_file(services.parser, data, file.original_filename, mapping_rules=rules,
                               limit=DRY_RUN_ROWS, period=period)
    except InvalidMapping as exc:
        raise invalid_mapping(exc) from exc
    finally:
        del data
    return MappingDryRun(file=file, mapping_source=source, preview=preview)
