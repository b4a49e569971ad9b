"""Reading a source file into a normalized frame for matching, through the shared normalizer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from reckai.adapters.polars.normalize import normalize_file, propose_file_mapping
from reckai.application.ports.matching import CanonicalSource, SourceFileError
from reckai.domain.ingestion.errors import IngestionError

if TYPE_CHECKING:  # the layout detector is imported where a proposal is made, not by every reconcile
    from reckai.domain.ingestion.detection import MappingProposal


class PolarsCanonicalSource:
    """CanonicalSource port over files on disk (docs/mapping.md mappings)."""

    def read(self, path: str, mapping: dict[str, Any], *, keep_raw: bool = True) -> tuple[pl.DataFrame, list[Any]]:
        if not Path(path).is_file():
            raise SourceFileError(path, "no such file")
        try:
            result = normalize_file(path, mapping, keep_raw=keep_raw)
        except IngestionError as exc:
            raise SourceFileError(path, exc.message) from exc
        except OSError as exc:
            raise SourceFileError(path, f"cannot read the file: {exc.strerror or exc}") from exc
        return result.frame, list(result.errors)

    def propose(self, path: str) -> MappingProposal:
        if not Path(path).is_file():
            raise SourceFileError(path, "no such file")
        try:
            return propose_file_mapping(path)
        except IngestionError as exc:
            raise SourceFileError(path, exc.message) from exc
        except OSError as exc:
            raise SourceFileError(path, f"cannot read the file: {exc.strerror or exc}") from exc


_check: CanonicalSource = PolarsCanonicalSource()
