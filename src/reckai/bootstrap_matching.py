"""The composition root of `reckai reconcile`: files in, tables out, no database, no container.

Apart from bootstrap.py so that the command imports only what it runs: the container's modules
(HTTP, Redis, Dramatiq, identity, approvals) cost ~0.4 s of CPU at import, about 7 % of a 1M x 1M
reconciliation (benchmarks/bench_cli.py). bootstrap.py re-exports both names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reckai.application.ports.matching import CanonicalSource, TabularMatchingEngine


@dataclass(frozen=True)
class FileMatching:
    """What `reckai reconcile` needs (no database, no container): a reader of canonical rows and a
    matching engine that keeps its results as tables from the engine to the output files."""

    source: CanonicalSource
    engine: TabularMatchingEngine[Any]


def build_file_matching(engine_name: str = "polars") -> FileMatching:
    """`polars`: the production engine; `reference`: the pure-Python definition (slower), over the
    same polars reader and turned into the same tables (so both write the same bytes)."""
    from reckai.adapters.polars.matcher_input import PolarsCanonicalSource
    from reckai.adapters.polars.result_tables import PolarsTablesEngine, ReferenceTablesEngine

    if engine_name == "polars":
        return FileMatching(PolarsCanonicalSource(), PolarsTablesEngine())
    if engine_name == "reference":
        return FileMatching(PolarsCanonicalSource(), ReferenceTablesEngine())
    raise ValueError(f"unknown matching engine {engine_name!r} (polars or reference)")
