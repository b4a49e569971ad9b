"""Normalization: a source table plus a mapping (docs/mapping.md) into canonical transactions.

Everything is vectorised polars. Amounts go from decimal text to int64 minor units with string
operations only (the same steps as `reckai.domain.ingestion.amounts.parse_amount`, which the tests
check against this code). A row that fails any transformation is reported as a `RowError` and left
out of the frame; nothing is dropped or coerced silently.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from reckai.adapters.polars.non_transactions import skipped_non_transactions
from reckai.adapters.polars.readers import inspect_content, read_table
from reckai.adapters.polars.source_table import LINE_NUMBER, ROW_NUMBER, SourceTable
from reckai.domain.ingestion.amounts import (
    WHITESPACE_CLASS,
    decimal_places_reason,
    regex_escape,
    thousands_group_pattern,
)
from reckai.domain.ingestion.canonical import CANONICAL_COLUMNS, LATER_CANONICAL_COLUMNS, MINOR_UNIT_EXPONENTS
from reckai.domain.ingestion.errors import IngestionError, InvalidMapping, RowError, SourceWarning
from reckai.domain.ingestion.mapping import AmountSpec, Mapping, ParseSettings, ValueSpec, parse_mapping
from reckai.domain.ingestion.sniffing import DEFAULT_MAX_INFLATED_BYTES, ContentInfo
from reckai.domain.ingestion.statements import StatementIdentity

if TYPE_CHECKING:
    from reckai.domain.ingestion.detection import MappingProposal

DEFAULT_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M", "%Y-%m-%d", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d-%m-%Y",
    "%d-%b-%Y %H:%M:%S", "%d-%b-%Y", "%d-%b-%y", "%d %b %Y", "%Y%m%d",
)
DEFAULT_TIME_FORMATS = ("%H:%M:%S", "%H:%M", "%H%M%S", "%H:%M:%S%.f")
_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%T", "%R", "%X", "%c", "%p", "%.f")
_POLARS_DTYPES: dict[str, Any] = {"Int64": pl.Int64, "String": pl.String, "Datetime": pl.Datetime("us"),
                                  "Boolean": pl.Boolean, "Date": pl.Date}
CANONICAL_SCHEMA = pl.Schema({name: _POLARS_DTYPES[dtype] for name, dtype in CANONICAL_COLUMNS})
_STATUSES = ["success", "failed", "reversed", "unknown"]
_DIRECTIONS = ["debit", "credit"]


@dataclass
class NormalizationResult:
    frame: pl.DataFrame  # exactly CANONICAL_COLUMNS, rows that passed every transformation
    errors: list[RowError]  # ragged rows and rows that failed a transformation (excluded from frame)
    row_count: int  # rows in `frame`
    source_rows: int  # data rows found in the source (row_count + rows with errors)
    content: ContentInfo
    columns: list[str] = field(default_factory=list)  # source column names
    skipped_lines: list[tuple[int, str]] = field(default_factory=list)  # preamble/trailer/blank lines
    header_line: int | None = None
    warnings: list[SourceWarning] = field(default_factory=list)  # rows loaded all the same
    statement_count: int | None = None
    statements: list[StatementIdentity] = field(default_factory=list)  # bank statements the file holds

    @property
    def failed_rows(self) -> int:
        return len({e.row_number for e in self.errors})

    def error_report(self) -> dict[str, Any]:
        return {"source_rows": self.source_rows, "normalized_rows": self.row_count,
                "failed_rows": self.failed_rows, "errors": [e.to_dict() for e in self.errors],
                "skipped_lines": [{"line": line, "reason": why} for line, why in self.skipped_lines],
                "skipped_non_transactions": skipped_non_transactions(self.skipped_lines),
                "warnings": [w.to_dict() for w in self.warnings]}


def normalize_file(source: bytes | str | Path | Callable[[], bytes], mapping: Mapping | dict[str, Any],
                   filename: str | None = None, *, keep_raw: bool = True,
                   max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES) -> NormalizationResult:
    """Read, map and normalize one file; raise IngestionError when the file as a whole is unusable.
    `keep_raw=False`: the `raw` column is an empty object (see normalize_table). Given a path, the
    file's bytes are let go once the source table is read, before it is normalized (a 1M-entry
    camt.053 is 427 MB of bytes); so is the result of a `source` callable, called once."""
    if not isinstance(mapping, Mapping):
        mapping = parse_mapping(mapping)
    table = _read_source_table(source, mapping, filename, max_inflated_bytes)
    if max(table.frame.n_chunks("all"), default=1) > 1 and (keep_raw or table.content.delimiter is None):
        # Readers hand their tables over in chunks: camt's per batch of entries, delimited text's
        # per reader thread. One buffer per column, made now that a path's bytes are gone, keeps
        # normalizing compact when a camt table is normalized (1M entries: 1.7 GB chunked, 1.2 GB
        # rechunked) or when every column is read again for the raw JSON (1M switch rows: 0.89-0.93
        # GB peak rechunked, 1.05 GB chunked). Without the raw JSON (`reckai reconcile`) the
        # delimited chunks are kept: the copy cost more CPU and page faults than it saved
        # (docs/ingestion-performance.md).
        table = dataclasses.replace(table, frame=table.frame.rechunk())
    return normalize_table(table, mapping, keep_raw=keep_raw)


def _read_source_table(source: bytes | str | Path | Callable[[], bytes], mapping: Mapping, filename: str | None,
                       max_inflated_bytes: int) -> SourceTable:
    data, filename = _read_source(source, filename)
    return read_table(data, mapping.parse, filename, max_inflated_bytes=max_inflated_bytes)


def _read_source(source: bytes | str | Path | Callable[[], bytes],
                 filename: str | None) -> tuple[bytes, str | None]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        return path.read_bytes(), filename or path.name
    if callable(source):
        return source(), filename
    return source, filename


_SAMPLE_ROWS = 500
_PARSE_FORMAT_OF_KIND = {"xlsx": "xlsx", "xls": "xls", "xml": "xml", "camt053": "camt053", "camt052": "camt052",
                         "camt054": "camt054", "mt940": "mt940", "mt942": "mt940", "mt950": "mt940",
                         "bai2": "bai2", "ofx": "ofx"}


def propose_file_mapping(source: bytes | str | Path, filename: str | None = None,
                         parse: dict[str, Any] | None = None, *,
                         max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES) -> MappingProposal:
    """Read a file and propose a mapping (docs/mapping.md shape) with per-field type and confidence."""
    from reckai.domain.ingestion.detection import STANDARD_LAYOUT_KINDS

    data, filename = _read_source(source, filename)
    settings = parse_mapping({"parse": parse or {}, "fields": _PLACEHOLDER_FIELDS}).parse
    if not parse:
        # A statement format's columns are fixed: its proposal needs the kind, not a read of every row.
        content = inspect_content(data, filename, max_inflated_bytes=max_inflated_bytes)
        if content.kind in STANDARD_LAYOUT_KINDS:
            empty = SourceTable(frame=pl.DataFrame(), columns=[], content=content)
            return propose_table_mapping(empty, settings)
    table = read_table(data, settings, filename, max_inflated_bytes=max_inflated_bytes)
    return propose_table_mapping(table, settings)


_PLACEHOLDER_FIELDS = {"amount": {"column": "_"}, "direction": {"constant": "debit"},
                       "currency": {"constant": "NGN"}, "transaction_date": {"column": "_"}}


def propose_table_mapping(table: SourceTable, settings: ParseSettings | None = None) -> MappingProposal:
    # The layout detector (~37 ms at import) is imported where a proposal is made: a reconcile
    # with explicit mappings never needs it.
    from reckai.domain.ingestion.detection import propose_mapping

    sample = table.frame.head(_SAMPLE_ROWS)
    samples = {c: sample[c].to_list() for c in table.columns}
    content = table.content
    parse: dict[str, Any] = {"format": _PARSE_FORMAT_OF_KIND.get(content.kind, "csv")}
    if content.delimiter:
        parse["delimiter"] = content.delimiter
    if content.encoding and content.kind not in ("xlsx", "xls"):
        parse["encoding"] = content.encoding
    if table.header_line is not None:
        parse["header_row"] = table.header_line
    if settings is not None:
        for key in ("sheet", "row_path", "skip_footer_pattern", "skip_header_pattern"):
            if getattr(settings, key) is not None:
                parse[key] = getattr(settings, key)
    proposal = propose_mapping(table.columns, samples, kind=content.kind, parse=parse)
    if content.encoding_confidence is not None:
        mapping = {**proposal.mapping, "parse": {**proposal.mapping.get("parse", {}), "encoding": content.encoding}}
        proposal = dataclasses.replace(proposal, mapping=mapping, encoding=content.encoding,
                                       encoding_confidence=content.encoding_confidence)
    return proposal


# --- column resolution ------------------------------------------------------------------------


def _resolve_columns(mapping: Mapping, columns: list[str]) -> dict[str, str]:
    """Mapping column name -> table column; exact, else a unique case/space-insensitive match."""
    folded: dict[str, list[str]] = {}
    for name in columns:
        folded.setdefault(name.strip().casefold(), []).append(name)
    resolved: dict[str, str] = {}
    missing: list[str] = []
    for wanted in mapping.source_columns():
        if wanted in columns:
            resolved[wanted] = wanted
        elif len(folded.get(wanted.strip().casefold(), [])) == 1:
            resolved[wanted] = folded[wanted.strip().casefold()][0]
        else:
            missing.append(wanted)
    if missing:
        raise InvalidMapping(f"the mapping names column(s) {', '.join(map(repr, missing))} that the file "
                             f"does not have; its columns are {', '.join(map(repr, columns))}",
                             missing=missing, columns=columns)
    return resolved


def _check_polars_regex(pattern: str, path: str) -> None:
    try:
        pl.select(pl.lit("").str.extract(pattern, 1))
    except pl.exceptions.PolarsError as exc:
        raise InvalidMapping(f"mapping {path}: regular expression not supported ({exc})",
                             path=path) from exc


# --- expressions --------------------------------------------------------------------------------


class ExpressionPlan:
    """A lazy frame grown one named intermediate column at a time.

    Expressions that are reused (the cleaned amount text, a parsed date) are materialised once and
    referenced by name; nesting them instead makes polars re-evaluate whole subtrees per use.
    """

    def __init__(self, frame: pl.DataFrame | pl.LazyFrame) -> None:
        self.lf = frame.lazy()
        self._count = 0
        self.values: dict[str, pl.Expr] = {}  # _value_expr by the spec's repr: two fields, one column

    def put(self, expr: pl.Expr, hint: str = "t") -> pl.Expr:
        name = f"__{hint}_{self._count}"
        self._count += 1
        self.lf = self.lf.with_columns(expr.alias(name))
        return pl.col(name)

    def put_all(self, exprs: list[tuple[str, pl.Expr]]) -> list[pl.Expr]:
        """Several independent columns in one step (evaluated in parallel)."""
        named = []
        for hint, expr in exprs:
            named.append((f"__{hint}_{self._count}", expr))
            self._count += 1
        self.lf = self.lf.with_columns([expr.alias(name) for name, expr in named])
        return [pl.col(name) for name, _ in named]


def _nullify_empty(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr == "").then(None).otherwise(expr)


def _value_expr(spec: ValueSpec, cols: dict[str, str], path: str, plan: ExpressionPlan,
                only_where: pl.Expr | None = None) -> pl.Expr:
    """The cleaned string value of a ValueSpec (null when empty), value_map/default applied.

    `only_where`: the rows whose value is used; elsewhere the source is read as null, so that the
    later sources of a coalesce (a regex over the narration, say) only work on the rows the earlier
    ones left empty. The value of the other rows is then meaningless, and never used.
    """
    if only_where is not None:
        return _new_value_expr(spec, cols, path, plan, only_where)
    key = repr(spec)
    if key not in plan.values:  # description and counterparty often read the same column alike
        plan.values[key] = _new_value_expr(spec, cols, path, plan, None)
    return plan.values[key]


def _new_value_expr(spec: ValueSpec, cols: dict[str, str], path: str, plan: ExpressionPlan,
                    only_where: pl.Expr | None) -> pl.Expr:
    if spec.constant is not None:
        expr: pl.Expr = pl.lit(spec.constant, dtype=pl.String)
    elif spec.coalesce:
        expr = _value_expr(spec.coalesce[0], cols, f"{path}.coalesce[0]", plan, only_where)
        for i, part in enumerate(spec.coalesce[1:], start=1):
            needed = expr.is_null() if only_where is None else only_where & expr.is_null()
            later = _value_expr(part, cols, f"{path}.coalesce[{i}]", plan, needed)
            expr = plan.put(pl.coalesce([expr, later]), "v")
    elif spec.column:
        expr = pl.col(cols[spec.column])
        if only_where is not None:
            expr = pl.when(only_where).then(expr)
        if spec.regex:
            _check_polars_regex(spec.regex, f"{path}.regex")
            expr = expr.str.extract(spec.regex, 1)
        if spec.trim or spec.regex or only_where is not None:
            # Materialised first: `_nullify_empty` uses its input twice, which would compute it twice.
            expr = plan.put(expr.str.strip_chars() if spec.trim else expr, "v")
        expr = _nullify_empty(expr)
    else:
        expr = pl.lit(None, dtype=pl.String)
    if spec.upper:
        expr = expr.str.to_uppercase()
    default = pl.lit(spec.default, dtype=pl.String)
    if spec.value_map:
        expr = plan.put(expr, "v")
        keys = list(spec.value_map)
        otherwise = default if spec.default is not None else expr
        expr = (pl.when(expr.is_null()).then(default)
                .when(expr.is_in(keys)).then(expr.replace(spec.value_map))
                .otherwise(otherwise))
    elif spec.default is not None:
        expr = expr.fill_null(default)
    return plan.put(expr, "v")


def _ends_upper_cased(spec: ValueSpec) -> bool:
    """`_value_expr(spec)` is upper case already: upper-cased last (no value_map or default after)."""
    return spec.upper and not spec.value_map and (spec.default is None or spec.default == spec.default.upper())


def _possible_values(spec: ValueSpec) -> set[str] | None:
    """Every non-null value `_value_expr(spec)` can give, when that is known from the spec alone: a
    constant, or a value_map with a default (a row's value is then a mapped value or the default)."""
    if spec.constant is not None and not spec.value_map:
        return {spec.constant.upper() if spec.upper else spec.constant}
    if spec.value_map and spec.default is not None and spec.constant is None:
        return {*spec.value_map.values(), spec.default}
    return None


@dataclass
class _Amount:
    minor: pl.Expr  # Int64 magnitude (null when empty or invalid)
    negative: pl.Expr  # Boolean
    empty: pl.Expr  # Boolean: no amount text at all
    error: pl.Expr  # String reason, null when valid or empty


_EXPONENTS = sorted(set(MINOR_UNIT_EXPONENTS.values()) | {2})
# Integer digits a plain amount may have so that digits * 10**exponent cannot overflow int64.
_PLAIN_INTEGER_DIGITS = 18 - max(_EXPONENTS)


def _plain_amount_pattern(spec: AmountSpec) -> str | None:
    """Regex of the amounts that need none of the general steps: `-?digits[<sep>digits]`.

    None when a strip token or the decimal separator could change such a text (then every row
    takes the general path). A strip token with a character outside digits, `-` and the decimal
    separator cannot occur in a plain amount, so stripping leaves plain amounts as they are.
    """
    sep = spec.decimal_separator
    if sep in "-+()" or sep.isspace() or re.search(WHITESPACE_CLASS, sep):
        return None
    alphabet = set("0123456789-") | {sep}
    if any(not (set(token) - alphabet) for token in spec.strip):
        return None
    return rf"^-?[0-9]{{1,{_PLAIN_INTEGER_DIGITS}}}(?:{regex_escape(sep)}[0-9]{{1,{max(_EXPONENTS)}}})?$"


def amount_expressions(plan: ExpressionPlan, text: pl.Expr, spec: AmountSpec, exponent: pl.Expr) -> _Amount:
    """Decimal text to minor units with string operations only; mirrors domain.amounts.parse_amount.

    Plain amounts (`-1234.56`: the bulk of real exports) are computed with one split and integer
    arithmetic; only the other rows go through the general string steps, which then see nulls for
    the plain rows and cost little. Both give what parse_amount gives (property-tested).
    """
    pattern = _plain_amount_pattern(spec)
    if pattern is None:
        return _general_amount(plan, text, spec, exponent)
    s = plan.put(text.cast(pl.String), "amt_src")
    plain = plan.put((s.str.contains(pattern) & exponent.is_in(_EXPONENTS)).fill_null(False), "plain")
    general = _general_amount(plan, pl.when(~plain).then(s), spec, exponent)
    # All the digits as one integer, and how many of them are the fraction: `-1234.5` is 12345 and 1.
    # Non-plain rows give garbage (or null) here, never used.
    separator_at = s.str.find(spec.decimal_separator, literal=True)
    fraction_digits, digits = plan.put_all([
        ("plain_frac", pl.when(separator_at.is_null()).then(pl.lit(0, dtype=pl.Int64))
         .otherwise(s.str.len_bytes().cast(pl.Int64) - separator_at.cast(pl.Int64) - 1)),
        ("plain_digits", s.str.replace(spec.decimal_separator, "", literal=True)
         .cast(pl.Int64, strict=False).abs()),
    ])
    error: pl.Expr
    if spec.scale == "minor":
        # Already in minor units: the fraction must be zeros, i.e. the digits a multiple of 10**fraction.
        divisor = plan.put(_power_of_ten(fraction_digits), "plain_div")
        error = pl.when(digits % divisor != 0).then(pl.lit("amount in minor units has a non-zero fraction"))
        value = digits // divisor
    else:
        error = pl.when(fraction_digits > exponent).then(_too_many_decimals(exponent))
        value = digits * _power_of_ten(exponent - fraction_digits)
    plain_error = plan.put(error, "plain_error")
    plain_negative = s.str.starts_with("-") & plain_error.is_null()
    minor, negative, empty, reason = plan.put_all([
        ("minor", pl.when(plain).then(pl.when(plain_error.is_null()).then(value)).otherwise(general.minor)),
        ("negative", pl.when(plain).then(plain_negative).otherwise(general.negative)),
        ("empty", pl.when(plain).then(pl.lit(False)).otherwise(general.empty)),
        ("amt_error", pl.when(plain).then(plain_error).otherwise(general.error)),
    ])
    return _Amount(minor=minor, negative=negative, empty=empty, error=reason)


def _power_of_ten(k: pl.Expr) -> pl.Expr:
    """10**k for 0 <= k <= the largest exponent (null otherwise), as Int64."""
    power = pl.lit(None, dtype=pl.Int64)
    for i in range(max(_EXPONENTS), -1, -1):
        power = pl.when(k == i).then(pl.lit(10**i, dtype=pl.Int64)).otherwise(power)
    return power


def _too_many_decimals(exponent: pl.Expr) -> pl.Expr:
    reason = pl.lit(None, dtype=pl.String)
    for exp in _EXPONENTS:
        reason = pl.when(exponent == exp).then(pl.lit(decimal_places_reason(exp))).otherwise(reason)
    return reason


def _general_amount(plan: ExpressionPlan, text: pl.Expr, spec: AmountSpec, exponent: pl.Expr) -> _Amount:
    """Every step of parse_amount as string operations."""
    s = text.cast(pl.String)
    for token in spec.strip:
        s = s.str.replace_all(token, "", literal=True)
    s = plan.put(s, "amt")
    s = plan.put(s.str.replace_all(WHITESPACE_CLASS, ""), "amt")
    empty = plan.put(s.is_null() | (s == ""), "empty")
    paren = plan.put(s.str.starts_with("(") & s.str.ends_with(")") & (s.str.len_chars() >= 2), "paren")
    s = plan.put(pl.when(paren).then(s.str.slice(1, s.str.len_chars() - 2)).otherwise(s), "amt")
    # Same split as SIGN_PATTERN ^([+-]?)(.*?)(-?)$, without a capturing regex (slow on millions of rows).
    has_lead = plan.put(s.str.starts_with("-") | s.str.starts_with("+"), "has_lead")
    lead = plan.put(pl.when(has_lead).then(s.str.slice(0, 1)).otherwise(pl.lit("")), "lead")
    rest = plan.put(pl.when(has_lead).then(s.str.slice(1)).otherwise(s), "rest")
    has_trail = plan.put(rest.str.ends_with("-"), "trail")
    body = plan.put(pl.when(has_trail).then(rest.str.slice(0, rest.str.len_chars() - 1)).otherwise(rest), "body")
    marks = plan.put(paren.cast(pl.Int32) + (lead == "-").cast(pl.Int32) + has_trail.cast(pl.Int32), "marks")
    conflict = (marks > 1) | ((lead == "+") & (marks > 0))
    parts = plan.put(body.str.splitn(spec.decimal_separator, 2), "parts")
    integer_part, fraction = plan.put_all([("int", parts.struct.field("field_0")),
                                           ("frac", parts.struct.field("field_1"))])
    sep = spec.thousands_separator
    if sep:
        has_sep = plan.put(integer_part.str.contains(sep, literal=True), "has_sep")
        bad_group = has_sep & ~integer_part.str.contains(thousands_group_pattern(sep))
        integer_part = plan.put(pl.when(has_sep).then(integer_part.str.replace_all(sep, "", literal=True))
                                .otherwise(integer_part), "int")
    else:
        bad_group = pl.lit(False)
    not_number = (~integer_part.str.contains("^[0-9]*$")
                  | (fraction.is_not_null() & ~fraction.str.contains("^[0-9]*$"))
                  | ((integer_part == "") & (fraction.fill_null("") == "")))
    not_number = plan.put(not_number, "nan")
    fraction = plan.put(fraction.fill_null(""), "frac")
    if spec.scale == "minor":
        scale_error = pl.when(fraction.str.contains("[1-9]")).then(
            pl.lit("amount in minor units has a non-zero fraction"))
        digits = integer_part
    else:
        scale_error = pl.when(fraction.str.len_chars() > exponent).then(_too_many_decimals(exponent))
        padded = pl.lit(None, dtype=pl.String)
        for exp in _EXPONENTS:
            padded = pl.when(exponent == exp).then(fraction.str.pad_end(exp, "0")).otherwise(padded)
        digits = integer_part + padded
    digits = plan.put(digits.str.strip_chars_start("0"), "digits")
    digits = plan.put(pl.when(digits == "").then(pl.lit("0")).otherwise(digits), "digits")
    value = plan.put(pl.when(digits.str.len_chars() <= 19).then(digits.cast(pl.Int64, strict=False)), "value")
    error = (pl.when(empty).then(None)
             .when(conflict).then(pl.lit("conflicting sign marks"))
             .when(bad_group).then(pl.lit(f"misplaced thousands separator {sep!r}"))
             .when(not_number).then(pl.lit("not a number"))
             .otherwise(scale_error))
    error = plan.put(error, "amt_error")
    error = plan.put(pl.when(error.is_null() & ~empty & value.is_null()).then(pl.lit("amount too large"))
                     .otherwise(error), "amt_error")
    minor = plan.put(pl.when(error.is_null() & ~empty).then(value), "minor")
    negative = plan.put(((marks > 0) & error.is_null() & ~empty).fill_null(False), "negative")
    return _Amount(minor=minor, negative=negative, empty=empty, error=error)


def _has_time(fmt: str) -> bool:
    return any(d in fmt for d in _TIME_DIRECTIVES)


def _parse_datetime(s: pl.Expr, formats: tuple[str, ...], plan: ExpressionPlan) -> tuple[pl.Expr, pl.Expr]:
    """(Datetime, has_time) trying each format in order; the first that parses wins."""
    parsed: list[pl.Expr] = []
    has_time: pl.Expr = pl.lit(None, dtype=pl.Boolean)
    unparsed: pl.Expr | None = None  # rows no earlier format parsed: the only ones a later one tries
    for fmt in formats:
        source = s if unparsed is None else pl.when(unparsed).then(s)
        # polars' cache of parsed texts pays off for dates (a few hundred distinct days) and costs
        # more than it saves for moments, nearly all distinct (0.03 s more per 1M rows): off for those.
        if _has_time(fmt):
            p = source.str.strptime(pl.Datetime("us"), fmt, strict=False, cache=False)
        else:
            p = source.str.strptime(pl.Date, fmt, strict=False).cast(pl.Datetime("us"))
        p = plan.put(p, "date")
        parsed.append(p)
        if len(parsed) < len(formats):
            unparsed = plan.put(p.is_null() if unparsed is None else unparsed & p.is_null(), "unparsed")
    value = plan.put(pl.coalesce(parsed) if len(parsed) > 1 else parsed[0], "date")
    for fmt, p in reversed(list(zip(formats, parsed))):
        has_time = pl.when(p.is_not_null()).then(pl.lit(_has_time(fmt))).otherwise(has_time)
    return value, plan.put(has_time, "has_time")


def _date_expressions(spec: ValueSpec, cols: dict[str, str], path: str,
                      plan: ExpressionPlan) -> tuple[pl.Expr, pl.Expr, pl.Expr, str | None]:
    """(datetime, has_time, error reason, source column) for a date field."""
    text = _value_expr(spec, cols, path, plan)
    formats = spec.formats or DEFAULT_DATE_FORMATS
    value, has_time = _parse_datetime(text, formats, plan)
    error: pl.Expr = pl.when(text.is_not_null() & value.is_null()).then(
        pl.lit(f"not a date in the expected format(s) {', '.join(formats)}"))
    if spec.time_column:
        time_text = plan.put(_nullify_empty(pl.col(cols[spec.time_column]).str.strip_chars()), "time")
        time_formats = spec.time_formats or DEFAULT_TIME_FORMATS
        times = plan.put_all([("time", time_text.str.strptime(pl.Time, fmt, strict=False))
                              for fmt in time_formats])
        time_value = plan.put(pl.coalesce(times) if len(times) > 1 else times[0], "time")
        combined = value.dt.date().dt.combine(time_value)
        error = (pl.when(error.is_not_null()).then(error)
                 .when(time_text.is_not_null() & time_value.is_null()).then(pl.lit(
                     f"time in column {spec.time_column!r} is not in the expected format(s) "
                     f"{', '.join(time_formats)}")))
        error = plan.put(error, "date_error")
        value = plan.put(pl.when(time_value.is_not_null()).then(combined).otherwise(value), "date")
        has_time = pl.when(time_value.is_not_null()).then(pl.lit(True)).otherwise(has_time)
    else:
        error = plan.put(error, "date_error")
    return value, has_time.fill_null(False), error, spec.column or spec.time_column


_JSON_SPECIAL = re.compile(r'["\\\x00-\x1f]')


def _raw_json(table: SourceTable) -> pl.Expr:
    """The source row as a JSON object text, exactly as polars' struct.json_encode writes it.

    When the reader has checked that no cell needs escaping (and none is null), the text is
    concatenated: `{"name":"value",...}`; that is about half the work of the encoder.
    """
    names = table.columns
    plain = (table.json_safe_cells and not any(_JSON_SPECIAL.search(name) for name in names)
             and not any(table.frame.get_column(name).null_count() for name in names))
    if not plain:
        return pl.struct([pl.col(c) for c in names]).struct.json_encode()
    pieces: list[pl.Expr] = []
    for i, name in enumerate(names):
        pieces += [pl.lit(("{" if i == 0 else ",") + f'"{name}":"'), pl.col(name), pl.lit('"')]
    return pl.concat_str([*pieces, pl.lit("}")])


def _first_column(spec: ValueSpec) -> str | None:
    if spec.column:
        return spec.column
    for part in spec.coalesce:
        if (name := _first_column(part)) is not None:
            return name
    return None


def normalize_table(table: SourceTable, mapping: Mapping, *, keep_raw: bool = True) -> NormalizationResult:
    """`keep_raw=False` writes "{}" for every row's `raw` (the source row as JSON): for a caller that
    reads no `raw.` field (`reckai reconcile` with such rules), a third of the switch file's frame."""
    cols = _resolve_columns(mapping, table.columns)
    fields = mapping.fields
    plan = ExpressionPlan(table.frame)
    checks: list[tuple[str, str | None, pl.Expr]] = []  # (error column, source column, reason expr)
    outputs: dict[str, pl.Expr] = {}

    # Currency first: the amount's exponent depends on it, row by row.
    currency_spec = fields["currency"]
    currency = _value_expr(currency_spec, cols, "fields.currency", plan)
    if not _ends_upper_cased(currency_spec):
        currency = plan.put(currency.str.to_uppercase(), "currency")
    outputs["currency"] = currency
    checks.append(("currency", _first_column(currency_spec), pl.when(currency.is_null()).then(
        pl.lit("currency missing")).when(~currency.str.contains("^[A-Z]{3}$")).then(
        pl.lit("not an ISO 4217 currency code"))))
    exponent = plan.put(currency.replace_strict(MINOR_UNIT_EXPONENTS, default=2, return_dtype=pl.Int64), "exp")

    amount_spec = mapping.amount
    if amount_spec.column:
        amount = amount_expressions(plan, pl.col(cols[amount_spec.column]), amount_spec, exponent)
        outputs["amount_minor"] = amount.minor
        checks.append(("amount", amount_spec.column,
                       pl.when(amount.empty).then(pl.lit("amount missing")).otherwise(amount.error)))
        direction_spec = fields["direction"]
        if direction_spec.from_sign is not None:
            negative_to = direction_spec.from_sign.get("negative", "debit")
            positive_to = direction_spec.from_sign.get("positive", "credit")
            direction = pl.when(amount.negative).then(pl.lit(negative_to)).otherwise(pl.lit(positive_to))
        else:
            direction = _value_expr(direction_spec, cols, "fields.direction", plan)
        direction = plan.put(direction, "direction")
        outputs["direction"] = direction
        checks.append(("direction", _first_column(direction_spec) or amount_spec.column,
                       pl.when(direction.is_null()).then(pl.lit("direction missing"))
                       .when(~direction.is_in(_DIRECTIONS)).then(pl.lit(
                           "direction is not debit or credit; add the value to value_map"))))
    else:
        assert amount_spec.debit_column and amount_spec.credit_column
        debit = amount_expressions(plan, pl.col(cols[amount_spec.debit_column]), amount_spec, exponent)
        credit = amount_expressions(plan, pl.col(cols[amount_spec.credit_column]), amount_spec, exponent)
        debit_set, credit_set = plan.put_all([("debit_set", ~debit.empty & (debit.minor.fill_null(1) != 0)),
                                              ("credit_set", ~credit.empty & (credit.minor.fill_null(1) != 0))])
        outputs["amount_minor"] = pl.when(debit_set).then(debit.minor).otherwise(credit.minor)
        outputs["direction"] = pl.when(debit_set).then(pl.lit("debit")).otherwise(pl.lit("credit"))
        checks.append(("debit", amount_spec.debit_column, debit.error))
        checks.append(("credit", amount_spec.credit_column, credit.error))
        checks.append(("amount", f"{amount_spec.debit_column}/{amount_spec.credit_column}",
                       pl.when(debit_set & credit_set).then(pl.lit("both debit and credit hold an amount"))
                       .when(~debit_set & ~credit_set).then(pl.lit("neither debit nor credit holds a "
                                                                   "non-zero amount"))))

    tx_value, has_time, tx_error, tx_col = _date_expressions(fields["transaction_date"], cols,
                                                             "fields.transaction_date", plan)
    outputs["transaction_date"] = tx_value
    outputs["has_time"] = has_time
    checks.append(("transaction_date", tx_col, pl.when(tx_error.is_not_null()).then(tx_error)
                   .when(tx_value.is_null()).then(pl.lit("transaction date missing"))))
    if "value_date" in fields:
        vd_value, _, vd_error, vd_col = _date_expressions(fields["value_date"], cols, "fields.value_date",
                                                     plan)
        outputs["value_date"] = vd_value.dt.date()
        checks.append(("value_date", vd_col, vd_error))
    else:
        outputs["value_date"] = pl.lit(None, dtype=pl.Date)

    for name in ("reference", "secondary_reference", "description", "channel", "account", "counterparty"):
        outputs[name] = (_value_expr(fields[name], cols, f"fields.{name}", plan) if name in fields
                         else pl.lit(None, dtype=pl.String))
    if "status" in fields:
        # A value_map with a default (or a constant) can only give the values it names: when those
        # are lower case and valid statuses, lower-casing and checking every row changes nothing.
        possible = _possible_values(fields["status"])
        status = _value_expr(fields["status"], cols, "fields.status", plan)
        if possible is None or any(value != value.lower() for value in possible):
            status = plan.put(status.str.to_lowercase(), "status")
        outputs["status"] = status.fill_null(pl.lit("unknown"))
        if possible is None or not {value.lower() for value in possible} <= set(_STATUSES):
            checks.append(("status", _first_column(fields["status"]), pl.when(
                status.is_not_null() & ~status.is_in(_STATUSES)).then(pl.lit(
                    "status is not success, failed, reversed or unknown; add the value to value_map or set a "
                    "default"))))
    else:
        outputs["status"] = pl.lit("unknown")
    outputs["raw"] = _raw_json(table) if keep_raw else pl.lit("{}")
    outputs["source_line"] = pl.col(LINE_NUMBER)
    outputs["source_sheet"] = pl.lit(table.sheet_name, dtype=pl.String)

    error_names = [f"__error_{i}" for i in range(len(checks))]
    lazy = plan.lf.with_columns(
        *[expr.alias(f"__out_{name}") for name, expr in outputs.items()],
        *[check.alias(error_names[i]) for i, (_, _, check) in enumerate(checks)],
    )
    any_error = pl.any_horizontal([pl.col(n).is_not_null() for n in error_names])
    keep = [ROW_NUMBER, LINE_NUMBER, *[f"__out_{name}" for name in outputs], *error_names]
    # Only what is needed leaves the plan: the intermediates would be copied by every filter below,
    # and the source cells (the value an error shows) are taken from the table for failed rows only.
    computed = lazy.with_columns(any_error.alias("__failed")).select(*keep, "__failed").collect()
    errors = list(table.row_errors)
    any_failed = bool(computed.get_column("__failed").any())
    failed = computed.filter(pl.col("__failed")) if any_failed else computed.clear()
    if failed.height:
        # the plan keeps the table's rows, in order: the same mask picks the same rows' cells
        shown = [name for name in dict.fromkeys(cols.get(column, column) for _, column, _ in checks if column)
                 if name in table.frame.columns and name not in failed.columns]
        failed = failed.hstack(table.frame.select(shown).filter(computed.get_column("__failed")))
        for i, (field_name, column, _) in enumerate(checks):
            source_col = cols.get(column, column) if column else None
            value_col = source_col if source_col in failed.columns else None
            rows = failed.filter(pl.col(error_names[i]).is_not_null()).select(
                ROW_NUMBER, LINE_NUMBER, pl.col(value_col) if value_col else pl.lit(None, pl.String),
                error_names[i])
            for row_number, line_number, value, reason in rows.iter_rows():
                errors.append(RowError(row_number=row_number, line_number=line_number,
                                       column=column or field_name, value=value, reason=reason))
    errors.sort(key=lambda e: (e.row_number, e.column or ""))
    good = computed.filter(~pl.col("__failed")) if any_failed else computed
    result = good.select(
        pl.col(ROW_NUMBER).alias("row_number"),
        *[pl.col(f"__out_{name}").cast(CANONICAL_SCHEMA[name]).alias(name)
          for name in CANONICAL_SCHEMA.names() if name != "row_number"],
    ).select(CANONICAL_SCHEMA.names())
    return NormalizationResult(frame=result, errors=errors, row_count=result.height,
                               source_rows=table.total_rows, content=table.content,
                               columns=list(table.columns), skipped_lines=list(table.skipped_lines),
                               header_line=table.header_line, warnings=list(table.warnings),
                               statement_count=table.statement_count, statements=list(table.statements))


# --- Parquet -----------------------------------------------------------------------------------


def write_parquet_bytes(frame: pl.DataFrame) -> bytes:
    """Normalized frame to Parquet bytes (zstd), for a storage adapter to store as is."""
    if frame.schema != CANONICAL_SCHEMA:
        raise IngestionError("refusing to write a frame that is not in the canonical schema",
                             schema={k: str(v) for k, v in frame.schema.items()})
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()


def read_parquet_bytes(data: bytes) -> pl.DataFrame:
    """Parquet bytes (as written by write_parquet_bytes) back to a canonical frame; schema checked."""
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise IngestionError(f"the normalized Parquet file is unreadable ({exc})") from exc
    later = [name for name in LATER_CANONICAL_COLUMNS if name not in frame.columns]
    if later:  # written before these columns existed: the positions are unknown
        frame = frame.with_columns(pl.lit(None, dtype=CANONICAL_SCHEMA[name]).alias(name) for name in later)
    if frame.schema != CANONICAL_SCHEMA:
        raise IngestionError("the Parquet file is not in the canonical schema",
                             schema={k: str(v) for k, v in frame.schema.items()})
    return frame


def raw_values(frame_row_raw: str | None) -> dict[str, str | None]:
    """The `raw` column of one row back to the source values by column name."""
    return json.loads(frame_row_raw) if frame_row_raw else {}

