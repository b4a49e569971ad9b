"""The `FileParser` port (application/ports/files.py) over the ingestion readers and normalizer.

A thin adapter: content validation, auto-detection and normalization live in
`adapters.polars.readers` / `normalize` and `domain.ingestion`; this module only gives the file use
cases one object to call, with one zip-bomb limit for every read, and turns the normalized frame
into Parquet bytes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reckai.adapters.polars.normalize import normalize_file, propose_file_mapping, write_parquet_bytes
from reckai.adapters.polars.readers import inspect_content
from reckai.application.ports.files import FileParser, FilePreview, NormalizationOutcome
from reckai.domain.ingestion.detection import MappingProposal
from reckai.domain.ingestion.mapping import Mapping, parse_mapping
from reckai.domain.ingestion.sniffing import DEFAULT_MAX_INFLATED_BYTES, ContentInfo


class PolarsFileParser:
    def __init__(self, max_inflated_bytes: int | None = None) -> None:
        # The bytes an .xlsx may inflate to before it is refused as a zip bomb (None: the default).
        self.max_inflated_bytes = max_inflated_bytes or DEFAULT_MAX_INFLATED_BYTES

    def inspect(self, data: bytes, filename: str | None) -> ContentInfo:
        return inspect_content(data, filename, max_inflated_bytes=self.max_inflated_bytes)

    def propose(self, data: bytes, filename: str | None) -> MappingProposal:
        return propose_file_mapping(data, filename, max_inflated_bytes=self.max_inflated_bytes)

    def parse_mapping(self, rules: Any) -> Mapping:
        return parse_mapping(rules)

    def normalize(self, data: bytes, mapping: Mapping, filename: str | None) -> NormalizationOutcome:
        result = normalize_file(data, mapping, filename, max_inflated_bytes=self.max_inflated_bytes)
        return NormalizationOutcome(
            parquet=write_parquet_bytes(result.frame),
            row_count=result.row_count,
            source_rows=result.source_rows,
            errors=list(result.errors),
            report=result.error_report(),
            statements=list(result.statements),
        )

    def preview(self, data: bytes, rules: Any | None, filename: str | None,
                limit: int | None = None) -> FilePreview:
        inspected = self.inspect(data, filename)
        proposal = self.propose(data, filename)
        given = rules if rules is not None else proposal.mapping
        used = parse_mapping(given)
        result = normalize_file(data, used, filename, max_inflated_bytes=self.max_inflated_bytes)
        frame = result.frame.drop("raw")
        if limit is not None:
            frame = frame.head(limit)
        rows = [{key: value.isoformat() if hasattr(value, "isoformat") else value for key, value in row.items()}
                for row in frame.to_dicts()]
        content = result.content
        if inspected.encoding_confidence is not None and inspected.encoding == content.encoding:
            # Read with the proposal's encoding, which the inspection detected: say so.
            content = dataclasses.replace(content, encoding_confidence=inspected.encoding_confidence)
        return FilePreview(content=content, proposal=proposal, mapping=given, rows=rows,
                           source_rows=result.source_rows, errors=list(result.errors),
                           warnings=list(result.warnings), statement_count=result.statement_count)


_check: type[FileParser] = PolarsFileParser
