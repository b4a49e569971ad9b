"""`reckai inspect FILE [--mapping M.json] [--json]`: what a file reads as, nothing stored.

Prints the detected format and encoding (with the detector's confidence when it was detected), the
statement count and warnings, direction and currency counts, per-field fill rates and the mapping
warnings (the same use case as the mapping dry run, POST /api/files/:id/map?dry_run=true), the proposed mapping with per-field confidence, then the normalized
rows as a table; with --json, one JSON object per row (JSON lines) on stdout and the rest on
stderr. Rows that failed are listed with their line. Exit code 0, or 1 when the file (or the
mapping) is unusable as a whole.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from reckai.application.files.inspection import inspect_file
from reckai.application.ports.files import FilePreview
from reckai.bootstrap import build_file_parser
from reckai.domain.ingestion.errors import IngestionError

TABLE_COLUMNS = ("row_number", "transaction_date", "value_date", "amount_minor", "direction", "currency",
                 "reference", "secondary_reference", "status", "description")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "inspect", help="show how a file reads: format, encoding, proposed mapping, normalized rows",
        description="Read FILE as an upload would be read (nothing is stored) and show the detected "
                    "format and encoding, the proposed mapping and the normalized rows.")
    parser.add_argument("file", help="the file to read")
    parser.add_argument("--mapping", help="mapping JSON (docs/mapping.md) to read with; default: the proposal")
    parser.add_argument("--json", action="store_true", help="rows as JSON lines on stdout")
    parser.add_argument("--limit", type=int, default=None, help="show at most this many rows")
    parser.add_argument("--period", nargs=2, metavar=("START", "END"), default=None,
                        help="the declared period (ISO dates, both included): warn of rows dated outside it")
    parser.set_defaults(handler=run)


def run(args: Any) -> int:
    path = Path(args.file)
    try:
        rules = json.loads(Path(args.mapping).read_text()) if args.mapping else None
        period = (dt.date.fromisoformat(args.period[0]), dt.date.fromisoformat(args.period[1])) \
            if args.period else None
        preview = inspect_file(build_file_parser(), path.read_bytes(), path.name, mapping_rules=rules,
                               limit=args.limit, period=period)
    except (OSError, json.JSONDecodeError, ValueError) as exc:
        print(f"reckai inspect: {exc}", file=sys.stderr)
        return 1
    except IngestionError as exc:
        print(f"reckai inspect: {path.name}: {exc.message} [{exc.code}]", file=sys.stderr)
        return 1
    if args.json:
        _summary(preview, sys.stderr)
        for row in preview.rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        _summary(preview, sys.stdout)
        _table(preview.rows, sys.stdout)
    return 0


def _summary(preview: FilePreview, out: TextIO) -> None:
    content = preview.content
    encoding = content.encoding or "-"
    if content.encoding_confidence is not None:
        encoding += f" (detected, confidence {content.encoding_confidence:.2f})"
    print(f"format: {content.format}  kind: {content.kind}  encoding: {encoding}", file=out)
    statements = f"  statements: {preview.statement_count}" if preview.statement_count is not None else ""
    print(f"rows: {len(preview.rows)} shown of {preview.source_rows}{statements}  errors: {len(preview.errors)}  "
          f"warnings: {len(preview.warnings)}", file=out)
    for warning in preview.warnings:
        print(f"warning [{warning.kind}]: {warning.message}", file=out)
    if preview.statistics is not None:
        stats = preview.statistics
        directions = ", ".join(f"{k} {v}" for k, v in stats.direction_counts.items()) or "-"
        currencies = ", ".join(f"{k} {v}" for k, v in stats.currency_counts.items()) or "-"
        print(f"directions: {directions}  currencies: {currencies}  zero amounts: {stats.zero_amounts}", file=out)
        filled = ", ".join(f"{k} {v:.0%}" for k, v in stats.fill_rates().items())
        print(f"filled: {filled}", file=out)
    for check in preview.mapping_warnings:
        print(f"mapping warning [{check.code}]: {check.message}", file=out)
    for error in preview.errors:
        print(f"error: line {error.line_number} (row {error.row_number}) [{error.column or '-'}] {error.reason}"
              f" ({error.value!r})", file=out)
    print("proposed mapping:", file=out)
    for field in preview.proposal.fields:
        print(f"  {field.target_field:<20} <- {field.source_column or '-':<30} {field.confidence:.2f}  {field.note}",
              file=out)
    if preview.proposal.missing_required:
        print(f"  missing: {', '.join(preview.proposal.missing_required)}", file=out)


def _table(rows: list[dict[str, Any]], out: TextIO) -> None:
    cells = [[_cell(row.get(c)) for c in TABLE_COLUMNS] for row in rows]
    widths = [min(40, max([len(c)] + [len(r[i]) for r in cells])) for i, c in enumerate(TABLE_COLUMNS)]
    print("  ".join(c.ljust(w) for c, w in zip(TABLE_COLUMNS, widths, strict=True)), file=out)
    for row_cells in cells:
        print("  ".join(v[:w].ljust(w) for v, w in zip(row_cells, widths, strict=True)), file=out)


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("\n", " ")
