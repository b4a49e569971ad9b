"""Matching-engine port: turns two files' canonical rows and a profile into matches and breaks.

Two engines implement it with one meaning (docs/matching.md): the pure-Python reference matcher
(`reckai.domain.reconciliation.reference_matcher.ReferenceMatcher`, over sequences of
CanonicalTransaction) and the polars matcher (`reckai.adapters.polars.matcher.PolarsMatcher`, over
normalized frames with the CANONICAL_COLUMNS). Property tests hold them to the same results.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from reckai.domain.reconciliation.profile import ReconciliationPeriod, ReconciliationProfile
from reckai.domain.reconciliation.results import ReconciliationResult

if TYPE_CHECKING:  # the layout detector is imported where a proposal is made, not by every reconcile
    from reckai.domain.ingestion.detection import MappingProposal

TableT_contra = TypeVar("TableT_contra", contravariant=True)


class MatchingError(Exception):
    """The engine could not run (bad table shape, resource exhaustion); nothing was produced."""


class MatchingEngine(Protocol[TableT_contra]):
    def reconcile(self, left: TableT_contra, right: TableT_contra, profile: ReconciliationProfile,
                  period: ReconciliationPeriod | None = None,
                  excluded_pairs: Collection[tuple[int, int]] = ()) -> ReconciliationResult:
        """Match `left` against `right` with the profile's active rules, then classify the rest.

        `excluded_pairs`: (left_row, right_row) pairs a person declined. No pass may match or
        suggest them (nor a group containing one of them with the other row); their rows stay
        free for other candidates and otherwise reach classification like any unmatched row.

        Contract: deterministic and independent of row order (row identity is `row_number`, the
        1-based data row of the source file); every row of either table ends in exactly one of:
        a clean match (`matches`), a low-confidence accepted pair (`suggestions`), an exception, or
        nothing (a failed/reversed row with no counterpart). Tie suggestions may additionally list
        rows that are also exceptions. Raises MatchingError when the tables cannot be read.
        """
        ...


class ReconciliationTables(Protocol):
    """A reconciliation's results kept in the engine's own tables: matches, suggestions and
    exceptions stay columns from the engine to the files (no Python object per row)."""

    stage_seconds: dict[str, float]  # the engine's stages (duplicates, matching, ..., explanations)
    direction_rows: dict[str, int]  # per side whose profile keeps one direction: its rows with that direction

    def summary(self) -> dict[str, Any]:
        """Counts (rows, matched pairs and rows, suggestions, exceptions by type, reversals netted),
        match_rate and the stage seconds: the keys of ReconciliationResult.summary()."""
        ...

    def write_csv(self, table: str, path: Path) -> None:
        """Write `matches`, `suggestions` or `exceptions` as CSV with a header (docs/cli.md columns;
        empty field = absent). Raises OSError when the file cannot be written."""
        ...


class TabularMatchingEngine(Protocol[TableT_contra]):
    """The matching engine returning its results as tables (what `reckai reconcile` writes)."""

    def reconcile_tables(self, left: TableT_contra, right: TableT_contra, profile: ReconciliationProfile,
                         period: ReconciliationPeriod | None = None) -> ReconciliationTables:
        """MatchingEngine.reconcile's meaning and contract, results as ReconciliationTables."""
        ...


class CanonicalSource(Protocol):
    """Reads one source file into the engine's table type using a mapping (docs/mapping.md)."""

    def read(self, path: str, mapping: dict[str, Any], *, keep_raw: bool = True) -> tuple[Any, list[Any]]:
        """Return (table of canonical rows, row errors). Raises SourceFileError when the file
        cannot be used at all (unreadable, wrong format, bad mapping). `keep_raw=False`: the rows'
        `raw` is left empty (for a profile whose rules read no `raw.` field)."""
        ...

    def propose(self, path: str) -> MappingProposal:
        """Detect the file's layout and propose a mapping (docs/mapping.md, auto-detection) with a
        confidence per field. Raises SourceFileError when the file cannot be read at all."""
        ...


class SourceFileError(Exception):
    """A file that cannot be read with its mapping: the message says what to fix."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
