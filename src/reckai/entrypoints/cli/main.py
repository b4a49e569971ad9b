"""`reckai` command line: one subcommand module each, registered here.

Each module exposes `register(subparsers)` which adds its parser and sets `handler`; the handler
takes the parsed arguments and returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Subcommand modules under reckai.entrypoints.cli; a module that is missing is skipped so the
# command line keeps working while features land one by one.
SUBCOMMAND_MODULES = ("serve", "worker", "migrate", "db", "audit", "reconcile", "inspect", "org", "streams",
                      "retention", "privacy", "keys")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand's parser, or only `only`'s when the command line names it: `reckai
    reconcile` then imports neither the server nor the worker nor the container (~0.4 s of CPU)."""
    parser = argparse.ArgumentParser(prog="reckai", description="ReckAI reconciliation backend")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES if only is None else (only,):
        try:
            module = importlib.import_module(f"reckai.entrypoints.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"reckai.entrypoints.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


# `reckai reconcile` is one batch of about four CPU seconds, and polars' allocator (jemalloc) is
# configured for it through `_RJEM_MALLOC_CONF`, before polars is first imported (a value the user
# set wins; docs/matching-performance.md):
# - decay 10 s (polars' own default is 500 / 1000 ms): freed pages would be given back to the
#   system within a second and faulted in again by the next stage; kept, about a quarter fewer page
#   faults (0.2-0.3 s of system CPU at 1M x 1M rows) for about 0.2 GB more peak memory;
# - one arena per CPU (`percpu_arena`; jemalloc's default is four per CPU, taken per thread): the
#   two files are read by two threads at once, and memory one thread's arena freed was not reused
#   by the other's. Ten alternating runs each: ~50k fewer page faults, ~0.1 GB less peak memory,
#   0.2 s less CPU.
BATCH_ALLOCATOR = "dirty_decay_ms:10000,muzzy_decay_ms:10000,percpu_arena:percpu"
BATCH_COMMANDS = ("reconcile",)


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given and given[0] in BATCH_COMMANDS and "polars" not in sys.modules:
        os.environ.setdefault("_RJEM_MALLOC_CONF", BATCH_ALLOCATOR)
    parser = build_parser(given[0] if given and given[0] in SUBCOMMAND_MODULES else None)
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
