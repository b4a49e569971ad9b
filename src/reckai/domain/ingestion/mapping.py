"""The mapping contract (docs/mapping.md) as typed, validated values.

`parse_mapping(json_object)` refuses unknown keys, wrong types and impossible combinations with an
`InvalidMapping` error that names the offending path, so a person can fix the JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from reckai.domain.ingestion.canonical import Direction, TransactionStatus
from reckai.domain.ingestion.errors import InvalidMapping

FORMATS = ("csv", "txt", "xlsx", "xls", "xml", "mt940", "camt052", "camt053", "camt054", "bai2", "ofx")
DELIMITERS = (",", ";", "|", "\t")
SCALES = ("major", "minor")
REQUIRED_FIELDS = ("amount", "direction", "currency", "transaction_date")
STRING_FIELDS = ("reference", "secondary_reference", "description", "channel", "account", "status",
                 "counterparty", "currency")
DEFAULT_FOOTER_PATTERN = (r"(?i)^\W*(total|totals|grand total|sub-?total|end|trailer|eof|closing balance"
                          r"|opening balance|record count|count)\b")

# Statement lines that are not transactions, wherever they are in the data (issue 16): a cell that
# is one of these phrases, optionally followed by "as at <date>" and figures, makes its row a
# non-transaction line, skipped and counted rather than a row error. Only the phrase with
# nothing but figures, dates and punctuation after it: "Opening balance adjustment" is a
# transaction. Valid for Python's `re` and polars' (Rust) regex alike. docs/mapping.md.
NON_TRANSACTION_PHRASES = (
    "opening balance", "closing balance", "balance brought forward", "balance carried forward",
    "balance b/f", "balance c/f", "balance b/d", "balance c/d", "brought forward", "carried forward",
    "page total", "page totals", "total for page", "total this page", "sub-total", "subtotal", "sub total",
    "running total", "opening book balance", "closing book balance", "available balance", "ledger balance",
)
DEFAULT_NON_TRANSACTION_PATTERN = (
    r"(?i)^\W*(" + "|".join(p.replace(" ", r"\s+").replace("-", r"-?") for p in NON_TRANSACTION_PHRASES)
    + r")\b(\s+(as\s+)?(at|of|on)\b.*)?[^A-Za-z]*$")

_PARSE_KEYS = {"format", "delimiter", "encoding", "header_row", "sheet", "row_path", "skip_footer_pattern",
               "skip_header_pattern", "expand_transaction_details"}
_COMMON_KEYS = {"column", "constant", "regex", "coalesce", "trim", "upper", "value_map", "default"}
_AMOUNT_KEYS = {"column", "debit_column", "credit_column", "decimal_separator", "thousands_separator",
                "strip", "scale", "trim"}
_DATE_KEYS = _COMMON_KEYS | {"formats", "time_column", "time_formats"}
_DIRECTION_KEYS = _COMMON_KEYS | {"from_sign"}
_FIELD_KEYS: dict[str, set[str]] = {
    "amount": _AMOUNT_KEYS,
    "direction": _DIRECTION_KEYS,
    "transaction_date": _DATE_KEYS,
    "value_date": _DATE_KEYS,
    **{name: _COMMON_KEYS for name in STRING_FIELDS},
}


@dataclass(frozen=True)
class ParseSettings:
    format: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    header_row: int | None = None
    sheet: str | int | None = None
    row_path: str | None = None
    skip_footer_pattern: str | None = None
    # lines matching it right after the header (the leading block before the first transaction)
    # are skipped, like skip_footer_pattern's trailing block; both add to the default
    # non-transaction phrases (DEFAULT_NON_TRANSACTION_PATTERN), recognised anywhere.
    skip_header_pattern: str | None = None
    # camt: one row per TxDtls (the detail's amount, the entry's dates) instead of one per Ntry.
    expand_transaction_details: bool = False


@dataclass(frozen=True)
class ValueSpec:
    """Where a canonical value comes from and how its text is cleaned (string, date, direction fields)."""

    column: str | None = None
    constant: str | None = None
    regex: str | None = None
    coalesce: tuple[ValueSpec, ...] = ()
    trim: bool = True
    upper: bool = False
    value_map: dict[str, str] | None = None
    default: str | None = None
    # dates
    formats: tuple[str, ...] = ()
    time_column: str | None = None
    time_formats: tuple[str, ...] = ()
    # direction
    from_sign: dict[str, str] | None = None

    def source_columns(self) -> list[str]:
        cols = [c for c in (self.column, self.time_column) if c]
        for part in self.coalesce:
            cols.extend(part.source_columns())
        return cols


@dataclass(frozen=True)
class AmountSpec:
    column: str | None = None
    debit_column: str | None = None
    credit_column: str | None = None
    decimal_separator: str = "."
    thousands_separator: str | None = ","
    strip: tuple[str, ...] = ()
    scale: str = "major"
    trim: bool = True

    def source_columns(self) -> list[str]:
        return [c for c in (self.column, self.debit_column, self.credit_column) if c]


@dataclass(frozen=True)
class Mapping:
    parse: ParseSettings
    amount: AmountSpec
    fields: dict[str, ValueSpec] = field(default_factory=dict)  # every canonical field but amount

    def source_columns(self) -> list[str]:
        cols = self.amount.source_columns()
        for spec in self.fields.values():
            cols.extend(spec.source_columns())
        return list(dict.fromkeys(cols))


def _fail(path: str, problem: str) -> InvalidMapping:
    return InvalidMapping(f"mapping {path}: {problem}", path=path)


def _check_keys(obj: Any, allowed: set[str], path: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _fail(path, "must be a JSON object")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return obj


def _opt_str(obj: dict[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise _fail(f"{path}.{key}", "must be a string or null")
    return value


def _bool(obj: dict[str, Any], key: str, path: str, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise _fail(f"{path}.{key}", "must be true or false")
    return value


def _str_list(obj: dict[str, Any], key: str, path: str) -> tuple[str, ...]:
    value = obj.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(f"{path}.{key}", "must be a list of non-empty strings")
    return tuple(value)


def _str_map(obj: dict[str, Any], key: str, path: str) -> dict[str, str] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise _fail(f"{path}.{key}", "must be an object of string to string")
    return dict(value)


def _regex(obj: dict[str, Any], key: str, path: str) -> str | None:
    pattern = _opt_str(obj, key, path)
    if pattern is not None:
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise _fail(f"{path}.{key}", f"invalid regular expression ({exc})") from exc
        if key == "regex" and compiled.groups < 1:
            raise _fail(f"{path}.{key}", "needs a capture group: the first group is the value")
    return pattern


def _parse_settings(obj: Any) -> ParseSettings:
    obj = _check_keys(obj if obj is not None else {}, _PARSE_KEYS, "parse")
    fmt = _opt_str(obj, "format", "parse")
    if fmt is not None and fmt not in FORMATS:
        raise _fail("parse.format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    delimiter = _opt_str(obj, "delimiter", "parse")
    if delimiter == "TAB" or delimiter == "\\t":
        delimiter = "\t"
    if delimiter is not None and delimiter not in DELIMITERS:
        raise _fail("parse.delimiter", "must be one of , ; | or a tab")
    encoding = _opt_str(obj, "encoding", "parse")
    if encoding is not None:
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError as exc:
            raise _fail("parse.encoding", f"unknown encoding {encoding!r}") from exc
    header_row = obj.get("header_row")
    if header_row is not None and (not isinstance(header_row, int) or isinstance(header_row, bool)
                                   or header_row < 1):
        raise _fail("parse.header_row", "must be a 1-based line number or null")
    sheet = obj.get("sheet")
    if sheet is not None and (isinstance(sheet, bool) or not isinstance(sheet, (str, int))):
        raise _fail("parse.sheet", "must be a sheet name, a 0-based index or null")
    expand = obj.get("expand_transaction_details", False)
    if not isinstance(expand, bool):
        raise _fail("parse.expand_transaction_details", "must be true or false")
    return ParseSettings(format=fmt, delimiter=delimiter, encoding=encoding, header_row=header_row,
                         sheet=sheet, row_path=_opt_str(obj, "row_path", "parse"),
                         skip_footer_pattern=_regex(obj, "skip_footer_pattern", "parse"),
                         skip_header_pattern=_regex(obj, "skip_header_pattern", "parse"),
                         expand_transaction_details=expand)


def _separator(obj: dict[str, Any], key: str, path: str, default: str | None) -> str | None:
    if key not in obj:
        return default
    value = obj[key]
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) != 1 or value.isdigit():
        raise _fail(f"{path}.{key}", "must be a single non-digit character (or null)")
    return value


def _amount_spec(obj: Any) -> AmountSpec:
    path = "fields.amount"
    obj = _check_keys(obj, _AMOUNT_KEYS, path)
    column = _opt_str(obj, "column", path)
    debit = _opt_str(obj, "debit_column", path)
    credit = _opt_str(obj, "credit_column", path)
    if column and (debit or credit):
        raise _fail(path, "give either column or debit_column + credit_column, not both")
    if not column and not (debit and credit):
        raise _fail(path, "needs column, or both debit_column and credit_column")
    decimal = _separator(obj, "decimal_separator", path, ".")
    if decimal is None:
        raise _fail(f"{path}.decimal_separator", "is required")
    thousands = _separator(obj, "thousands_separator", path, "," if decimal != "," else ".")
    if thousands == decimal:
        raise _fail(path, "decimal and thousands separators must differ")
    scale = obj.get("scale", "major")
    if scale not in SCALES:
        raise _fail(f"{path}.scale", "must be major or minor")
    return AmountSpec(column=column, debit_column=debit, credit_column=credit, decimal_separator=decimal,
                      thousands_separator=thousands, strip=_str_list(obj, "strip", path), scale=scale,
                      trim=_bool(obj, "trim", path, True))


def _value_spec(obj: Any, name: str, path: str, allowed: set[str]) -> ValueSpec:
    obj = _check_keys(obj, allowed, path)
    coalesce_raw = obj.get("coalesce") or []
    if not isinstance(coalesce_raw, list):
        raise _fail(f"{path}.coalesce", "must be a list of field specs")
    coalesce = tuple(_value_spec(part, name, f"{path}.coalesce[{i}]", allowed - {"coalesce"})
                     for i, part in enumerate(coalesce_raw))
    constant = obj.get("constant")
    if constant is not None and not isinstance(constant, str):
        raise _fail(f"{path}.constant", "must be a string")
    spec = ValueSpec(
        column=_opt_str(obj, "column", path), constant=constant, regex=_regex(obj, "regex", path),
        coalesce=coalesce, trim=_bool(obj, "trim", path, True), upper=_bool(obj, "upper", path, False),
        value_map=_str_map(obj, "value_map", path), default=_opt_str(obj, "default", path),
        formats=_str_list(obj, "formats", path), time_column=_opt_str(obj, "time_column", path),
        time_formats=_str_list(obj, "time_formats", path), from_sign=_str_map(obj, "from_sign", path))
    sources = sum(1 for present in (spec.column, spec.constant is not None, spec.coalesce,
                                    spec.from_sign is not None) if present)
    if sources != 1 and not (sources == 0 and spec.default is not None):
        raise _fail(path, "needs exactly one of column, constant, coalesce" +
                    (", from_sign" if "from_sign" in allowed else ""))
    if spec.time_column and not spec.column:
        raise _fail(f"{path}.time_column", "needs column (the date column) beside it")
    if name == "direction":
        allowed_values = {d.value for d in Direction}
        outputs = list((spec.from_sign or {}).values()) + list((spec.value_map or {}).values())
        outputs += [v for v in (spec.constant, spec.default) if v is not None]
        if spec.from_sign is not None and set(spec.from_sign) - {"negative", "positive"}:
            raise _fail(f"{path}.from_sign", "keys must be negative and positive")
        bad = sorted({v for v in outputs if v not in allowed_values})
        if bad:
            raise _fail(path, f"direction values must be debit or credit, not {', '.join(bad)}")
    if name == "status":
        allowed_values = {s.value for s in TransactionStatus}
        outputs = list((spec.value_map or {}).values()) + [v for v in (spec.constant, spec.default) if v]
        bad = sorted({v for v in outputs if v not in allowed_values})
        if bad:
            raise _fail(path, f"status values must be one of {', '.join(sorted(allowed_values))}, "
                              f"not {', '.join(bad)}")
    return spec


def parse_mapping(obj: Any) -> Mapping:
    """Validate a mapping JSON object (already decoded) and return it typed; raise InvalidMapping."""
    obj = _check_keys(obj, {"parse", "fields"}, "mapping")
    parse = _parse_settings(obj.get("parse"))
    fields_obj = _check_keys(obj.get("fields"), set(_FIELD_KEYS), "fields")
    has_split_amount = isinstance(fields_obj.get("amount"), dict) and "debit_column" in fields_obj["amount"]
    missing = [f for f in REQUIRED_FIELDS if f not in fields_obj
               and not (f == "direction" and has_split_amount)]
    if missing:
        raise _fail("fields", f"missing required field(s) {', '.join(missing)}")
    amount = _amount_spec(fields_obj["amount"])
    specs = {name: _value_spec(spec, name, f"fields.{name}", _FIELD_KEYS[name])
             for name, spec in fields_obj.items() if name != "amount"}
    if amount.debit_column and "direction" in specs:
        raise _fail("fields.direction", "is implied by amount.debit_column/credit_column; remove it")
    return Mapping(parse=parse, amount=amount, fields=specs)
