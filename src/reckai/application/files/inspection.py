"""Inspect a file without storing it: detected format and encoding, the proposed mapping, and the
rows as a mapping reads them. `reckai inspect` uses it; a mapping dry run over HTTP can too."""

from __future__ import annotations

from typing import Any

from reckai.application.ports.files import FileParser, FilePreview


def inspect_file(parser: FileParser, data: bytes, filename: str | None, *, mapping_rules: Any | None = None,
                 limit: int | None = None) -> FilePreview:
    """`mapping_rules`: mapping JSON (docs/mapping.md), or None to read with the proposed mapping.
    Raises InvalidMapping or an IngestionError (a file that is unusable as a whole)."""
    return parser.preview(data, mapping_rules, filename, limit=limit)
