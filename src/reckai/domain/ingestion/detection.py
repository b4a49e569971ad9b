"""Mapping auto-detection: propose a mapping (docs/mapping.md shape) from headers and sample values.

Each canonical field gets the best source column by two kinds of evidence: the header (synonyms
of real bank, switch and GL exports) and the values (dates, amounts, 12-digit RRNs, masked PANs,
ISO currency codes, DR/CR markers, response codes). The proposal is a starting point that a person
confirms; every field carries a confidence in [0, 1] and a note saying why.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reckai.domain.ingestion.amounts import AmountFormat, parse_amount
from reckai.domain.ingestion.canonical import MINOR_UNIT_EXPONENTS
from reckai.domain.ingestion.errors import InvalidAmount

ISO_CURRENCIES = frozenset(MINOR_UNIT_EXPONENTS) | frozenset(
    ["AED", "AUD", "BRL", "CAD", "CHF", "CNY", "DKK", "EGP", "ETB", "HKD", "INR", "MAD", "MXN", "NOK", "NZD", "RWF", "SAR", "SEK", "SGD", "TZS", "UGX", "XDR", "ZMW"])
DATA_TYPES = {"amount": "currency", "currency": "string", "transaction_date": "date", "value_date": "date"}

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "amount": ("amount", "amt", "transaction amount", "tran amount", "trans amount", "txn amount",
               "tran amt", "txn amt", "settlement amount", "amount kobo", "amount minor", "minor amount",
               "amount ngn", "value"),
    "currency": ("currency", "ccy", "curr", "currency code", "tran currency", "txn currency", "cur"),
    "transaction_date": ("transaction date", "trans date", "tran date", "txn date", "date",
                         "tran datetime", "transaction datetime", "txn datetime", "posting date",
                         "post date", "booking date", "entry date", "date time", "datetime",
                         "timestamp", "transaction time", "tran date time", "trans datetime"),
    "value_date": ("value date", "val date", "effective date", "valuedate"),
    "time": ("time", "tran time", "txn time", "trans time", "transaction time"),
    "reference": ("rrn", "retrieval reference", "retrieval reference number", "retrieval ref",
                  "reference", "ref", "transaction reference", "tran ref", "txn ref", "reference number",
                  "ref no", "reference no", "end to end id", "customer reference", "rrn no"),
    "secondary_reference": ("stan", "trace", "trace no", "system trace audit number", "auth code",
                            "authorization code", "auth id", "transaction id", "tran id", "bank reference",
                            "account servicer reference", "session id", "approval code"),
    "description": ("narration", "description", "details", "remarks", "narrative", "particulars",
                    "information", "additional info", "remittance info", "memo", "transaction details"),
    "channel": ("channel", "tran type", "transaction type", "terminal type", "channel type",
                "transaction channel", "txn type"),
    "account": ("pan", "masked pan", "card number", "card no", "card", "account", "account number",
                "acct no", "account no"),
    "status": ("response code", "resp code", "rc", "status", "response", "response description",
               "result", "resp", "transaction status", "response cd"),
    "counterparty": ("merchant name", "merchant", "counterparty", "beneficiary", "payee",
                     "card acceptor", "counterparty name", "beneficiary name", "terminal location"),
    "direction": ("dr cr", "drcr", "debit credit", "dc", "d c", "credit debit", "dr or cr", "cr dr",
                  "indicator", "debit credit indicator", "sign"),
    "debit": ("debit", "dr", "withdrawal", "withdrawals", "money out", "paid out", "debit amount",
              "dr amount", "debits"),
    "credit": ("credit", "cr", "deposit", "deposits", "lodgement", "money in", "paid in",
               "credit amount", "cr amount", "credits"),
}
_NOT_AMOUNT = re.compile(r"balance|bal\b|fee|charge|commission|vat|rate", re.IGNORECASE)
_MINOR_HINT = re.compile(r"kobo|minor|cents?\b|in_?k\b", re.IGNORECASE)
_RRN = re.compile(r"^\d{12}$")
_RRN_IN_TEXT = re.compile(r"RRN[:\s#.-]*(\d{12})", re.IGNORECASE)
# narrations often carry only the last 8-10 digits of the RRN, after RRN or REF ("POS/...RRN 12345678")
_KEY_IN_TEXT = re.compile(r"(?:RRN|REF)[:\s#./-]*(\d{8,12})\b", re.IGNORECASE)
_MASKED_PAN = re.compile(r"^\d{4,6}[*Xx#]{2,9}\d{4}$")
_TIME_ONLY = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?$|^\d{6}$")
_DRCR = {"DR", "CR", "D", "C", "DEBIT", "CREDIT", "DBIT", "CRDT"}
_STATUS_WORDS = {"SUCCESS": "success", "SUCCESSFUL": "success", "APPROVED": "success", "COMPLETED": "success",
                 "FAILED": "failed", "DECLINED": "failed", "FAILURE": "failed", "ERROR": "failed",
                 "REVERSED": "reversed", "REVERSAL": "reversed", "PENDING": "unknown"}
_AMOUNT_SHAPE = re.compile(r"^[(+\-]?\s*(₦|NGN|N|\$|USD)?\s*[(+\-]?[0-9][0-9,.\s]*\)?-?\s*(DR|CR)?$",
                           re.IGNORECASE)

DATE_CANDIDATES = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y",
    "%d-%m-%Y %H:%M:%S", "%d-%m-%Y", "%d.%m.%Y", "%d-%b-%Y %H:%M:%S", "%d-%b-%Y", "%d-%b-%y",
    "%d %b %Y", "%d %B %Y", "%Y%m%d", "%d/%m/%y",
)
TIME_CANDIDATES = ("%H:%M:%S", "%H:%M", "%H%M%S")


@dataclass(frozen=True)
class FieldProposal:
    target_field: str
    source_column: str | None  # None for constants; for a debit/credit pair "DR/CR"
    data_type: str  # string | number | date | currency (the data_mappings CHECK values)
    confidence: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"target_field": self.target_field, "source_column": self.source_column,
                "data_type": self.data_type, "confidence": round(self.confidence, 2), "note": self.note}


@dataclass
class MappingProposal:
    mapping: dict[str, Any]  # docs/mapping.md shape, ready for parse_mapping()
    fields: list[FieldProposal] = field(default_factory=list)
    missing_required: list[str] = field(default_factory=list)
    # Set when the file's encoding was detected (not UTF-8, a BOM, the windows-1252 fallback or declared).
    encoding: str | None = None
    encoding_confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"mapping": self.mapping, "fields": [f.to_dict() for f in self.fields],
               "missing_required": self.missing_required}
        if self.encoding_confidence is not None:
            out["encoding"] = {"name": self.encoding, "confidence": self.encoding_confidence, "detected": True}
        return out


def normalise_header(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


def header_score(target: str, header: str) -> float:
    norm = normalise_header(header)
    synonyms = _SYNONYMS.get(target, ())
    if norm in synonyms:
        return 1.0
    tokens = set(norm.split())
    best = 0.0
    for synonym in synonyms:
        syn_tokens = set(synonym.split())
        if syn_tokens and syn_tokens <= tokens:
            best = max(best, 0.6 + 0.3 * len(syn_tokens) / max(len(tokens), 1))
    return min(best, 0.9)


def _share(values: list[str], predicate: Callable[[str], bool]) -> float:
    return sum(1 for v in values if predicate(v)) / len(values) if values else 0.0


def date_formats(values: list[str], candidates: tuple[str, ...] = DATE_CANDIDATES) -> tuple[list[str], float]:
    """Formats (in preference order) that parse the values, and the share of values they cover."""
    if not values:
        return [], 0.0
    chosen: list[str] = []
    remaining = list(values)
    for fmt in candidates:
        parsed = []
        for v in remaining:
            try:
                dt.datetime.strptime(v, fmt)
                parsed.append(v)
            except ValueError:
                pass
        if parsed and ("%m/%d" in fmt and any(f.startswith("%d/%m") for f in chosen)):
            continue  # dd/mm already explains these; never mix day-first and month-first
        if parsed and len(parsed) >= 0.05 * len(values):
            chosen.append(fmt)
            remaining = [v for v in remaining if v not in set(parsed)]
        if not remaining:
            break
    coverage = 1 - len(remaining) / len(values)
    return chosen, coverage


def _day_first_evidence(values: list[str]) -> bool | None:
    """True when some value has a day > 12 first, False when second, None when ambiguous."""
    first = second = False
    for v in values:
        m = re.match(r"^(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}", v)
        if m:
            first |= int(m.group(1)) > 12
            second |= int(m.group(2)) > 12
    if first and not second:
        return True
    if second and not first:
        return False
    return None


@dataclass
class _AmountProfile:
    share: float
    decimal_separator: str = "."
    thousands_separator: str | None = ","
    strip: tuple[str, ...] = ()
    negatives: bool = False
    integers_only: bool = False
    zero_padded: bool = False
    blanks: float = 0.0


def amount_profile(values: list[str], all_count: int) -> _AmountProfile:
    shaped = [v for v in values if _AMOUNT_SHAPE.match(v)]
    if not values or len(shaped) < 0.9 * len(values):
        return _AmountProfile(share=0.0)
    comma_decimal = sum(1 for v in shaped if re.search(r",\d{1,2}\)?-?$", v) and
                        not re.search(r"\.\d{1,2}\)?-?$", v))
    dot_decimal = sum(1 for v in shaped if re.search(r"\.\d{1,3}\)?-?$", v))
    decimal = "," if comma_decimal > dot_decimal else "."
    thousands = "." if decimal == "," else ","
    strip = tuple(s for s in ("₦", "NGN") if any(s in v for v in shaped))
    fmt = AmountFormat(exponent=4, decimal_separator=decimal, thousands_separator=thousands, strip=strip)
    ok = 0
    negatives = False
    for v in shaped:
        try:
            negatives |= parse_amount(v, fmt).negative
            ok += 1
        except InvalidAmount:
            pass
    integers = all(re.fullmatch(r"[0-9]+", v) for v in shaped)
    padded = integers and len({len(v) for v in shaped}) == 1 and all(v.startswith("0") for v in shaped[:20])
    return _AmountProfile(share=ok / len(values), decimal_separator=decimal, thousands_separator=thousands,
                          strip=strip, negatives=negatives, integers_only=integers, zero_padded=padded,
                          blanks=1 - len(values) / all_count if all_count else 0.0)


def _clean(samples: list[str | None]) -> list[str]:
    return [s.strip() for s in samples if s is not None and s.strip()]


_KIND_MAPPINGS: dict[str, dict[str, Any]] = {
    "mt940": {
        "parse": {"format": "mt940"},
        "fields": {
            "amount": {"column": "amount", "decimal_separator": ",", "thousands_separator": None},
            "direction": {"column": "dc_mark", "value_map": {"C": "credit", "D": "debit", "RC": "debit",
                                                             "RD": "credit", "EC": "credit", "ED": "debit"}},
            "currency": {"column": "currency"},
            "transaction_date": {"coalesce": [{"column": "entry_date"}, {"column": "value_date"}],
                                 "formats": ["%Y-%m-%d"]},
            "value_date": {"column": "value_date", "formats": ["%Y-%m-%d"]},
            "reference": {"coalesce": [{"column": "information", "regex": "RRN[:\\s]*(\\d{12})"},
                                       {"column": "end_to_end_reference"}, {"column": "payer_reference"},
                                       {"column": "customer_reference"},
                                       {"column": "mandate_reference"}]},
            "secondary_reference": {"column": "bank_reference"},
            "description": {"coalesce": [{"column": "purpose"}, {"column": "information"},
                                         {"column": "supplementary_details"}]},
            "account": {"column": "account"},
            "status": {"column": "dc_mark", "value_map": {"RC": "reversed", "RD": "reversed"},
                       "default": "success"},
            "counterparty": {"column": "counterparty_name"},
        },
    },
    "camt053": {
        "parse": {"format": "camt053"},
        "fields": {
            "amount": {"column": "amount", "decimal_separator": ".", "thousands_separator": None},
            "direction": {"column": "credit_debit", "value_map": {"CRDT": "credit", "DBIT": "debit"}},
            "currency": {"column": "currency"},
            "transaction_date": {"column": "booking_date", "formats": ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S",
                                                                      "%Y-%m-%dT%H:%M:%S%.f"]},
            "value_date": {"column": "value_date", "formats": ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]},
            "reference": {"coalesce": [{"column": "end_to_end_id"}, {"column": "entry_reference"},
                                       {"column": "account_servicer_reference"}]},
            "secondary_reference": {"column": "account_servicer_reference"},
            "description": {"coalesce": [{"column": "additional_info"}, {"column": "remittance_info"}]},
            "channel": {"column": "bank_transaction_code"},
            "account": {"column": "account"},
            "status": {"column": "reversal", "value_map": {"true": "reversed"}, "default": "success"},
            "counterparty": {"column": "counterparty"},
        },
    },
}


_KIND_MAPPINGS["bai2"] = {
    "parse": {"format": "bai2"},
    "fields": {
        "amount": {"column": "amount", "scale": "minor"},
        "direction": {"column": "direction"},
        "currency": {"column": "currency"},
        "transaction_date": {"column": "as_of_date", "formats": ["%Y-%m-%d"]},
        "value_date": {"column": "as_of_date", "formats": ["%Y-%m-%d"]},
        "reference": {"coalesce": [{"column": "customer_reference"}, {"column": "bank_reference"}]},
        "secondary_reference": {"column": "bank_reference"},
        "description": {"column": "text"},
        "channel": {"column": "type_description"},
        "account": {"column": "account"},
        "status": {"constant": "success"},
    },
}
_KIND_MAPPINGS["ofx"] = {
    "parse": {"format": "ofx"},
    "fields": {
        "amount": {"column": "amount", "decimal_separator": ".", "thousands_separator": None},
        "direction": {"from_sign": {"negative": "debit", "positive": "credit"}},
        "currency": {"column": "currency"},
        "transaction_date": {"column": "date_posted", "formats": ["%Y-%m-%d %H:%M:%S"]},
        "value_date": {"column": "value_date", "formats": ["%Y-%m-%d"]},
        "reference": {"coalesce": [{"column": "reference_number"}, {"column": "check_number"}, {"column": "fitid"}]},
        "secondary_reference": {"column": "fitid"},
        "description": {"coalesce": [{"column": "memo"}, {"column": "name"}]},
        "channel": {"column": "transaction_type"},
        "account": {"column": "account"},
        "status": {"constant": "success"},
        "counterparty": {"column": "name"},
    },
}
_KIND_MAPPINGS["mt942"] = _KIND_MAPPINGS["mt950"] = _KIND_MAPPINGS["mt940"]
_KIND_MAPPINGS["camt052"] = {**_KIND_MAPPINGS["camt053"], "parse": {"format": "camt052"}}
_KIND_MAPPINGS["camt054"] = {**_KIND_MAPPINGS["camt053"], "parse": {"format": "camt054"}}


STANDARD_LAYOUT_KINDS = frozenset(_KIND_MAPPINGS)  # kinds whose columns are fixed: no samples needed


def _kind_proposal(kind: str) -> MappingProposal:
    mapping = copy.deepcopy(_KIND_MAPPINGS[kind])  # a caller may change its proposal
    proposals = []
    for name, spec in mapping["fields"].items():
        column = spec.get("column") or "/".join(p["column"] for p in spec.get("coalesce", []))
        proposals.append(FieldProposal(name, column, DATA_TYPES.get(name, "string"), 0.95,
                                       f"standard {kind} layout"))
    return MappingProposal(mapping=mapping, fields=proposals)


@dataclass
class _Draft:
    """The mapping being proposed: the fields chosen so far, and the columns they already use.

    Each field role below takes its column in turn; the order matters, since a column one role
    took is no candidate for the later ones.
    """

    columns: list[str]
    values: dict[str, list[str]]  # the non-blank sample values of each column, stripped
    counts: dict[str, int]  # sampled rows of each column, blanks included
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    proposals: list[FieldProposal] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def take(self, target: str, column: str | None, spec: dict[str, Any], confidence: float, note: str,
             data_type: str | None = None) -> None:
        self.fields[target] = spec
        if column:
            self.used.add(column)
        self.proposals.append(FieldProposal(target, column, data_type or DATA_TYPES.get(target, "string"),
                                            max(0.0, min(1.0, confidence)), note))

    def best(self, target: str, value_score: Callable[[str], float] | None, minimum: float = 0.5,
             exclude: set[str] | None = None) -> tuple[str | None, float]:
        """The unused column scoring highest for `target` by header and values, if it reaches `minimum`."""
        top, top_score = None, 0.0
        for c in self.columns:
            if c in self.used or (exclude and c in exclude):
                continue
            h = header_score(target, c)
            v = value_score(c) if value_score else 0.0
            score = max(h * 0.6 + v * 0.4, v * 0.75, h * 0.7) if value_score else h
            if score > top_score:
                top, top_score = c, score
        return (top, top_score) if top_score >= minimum else (None, 0.0)

    def share(self, column: str, predicate: Callable[[str], bool]) -> float:
        return _share(self.values[column], predicate)


def propose_mapping(columns: list[str], samples: dict[str, list[str | None]], *, kind: str | None = None,
                    parse: dict[str, Any] | None = None) -> MappingProposal:
    """Propose a mapping for a table with these columns and sample values (a few hundred rows)."""
    if kind in _KIND_MAPPINGS:
        return _kind_proposal(kind)
    draft = _Draft(columns=columns, values={c: _clean(samples.get(c, [])) for c in columns},
                   counts={c: len(samples.get(c, [])) for c in columns})
    profiles = {c: amount_profile(draft.values[c], draft.counts[c]) for c in columns}
    if not _propose_debit_credit_pair(draft, profiles):
        amount_column = _propose_amount_column(draft, profiles)
        if amount_column:
            _propose_direction(draft, amount_column, profiles[amount_column])
    _propose_currency(draft)
    date_columns = _date_columns(draft)
    _propose_date(draft, "transaction_date", date_columns, _time_column(draft))
    _propose_date(draft, "value_date", date_columns, None)
    # The narration is picked before the reference takes a column: the reference may fall back on it.
    narration_col, narration_score = _narration_column(draft)
    _propose_reference(draft, narration_col)
    _propose_description(draft, narration_col, narration_score)
    _propose_secondary_reference(draft)
    _propose_account(draft)
    _propose_status(draft)
    _propose_by_header(draft, "channel", upper=True)
    _propose_by_header(draft, "counterparty")
    required = ("amount", "direction", "currency", "transaction_date")
    fields = draft.fields
    missing = [f for f in required if f not in fields and not (f == "direction" and "debit_column" in
                                                               fields.get("amount", {}))]
    return MappingProposal(mapping={"parse": dict(parse or {}), "fields": fields}, fields=draft.proposals,
                           missing_required=missing)


def _propose_debit_credit_pair(draft: _Draft, profiles: dict[str, _AmountProfile]) -> bool:
    """Separate debit and credit amount columns, both named so: the amount, and the direction too."""
    debit_col, debit_score = draft.best("debit", lambda c: profiles[c].share, minimum=0.6)
    credit_col, credit_score = draft.best("credit", lambda c: profiles[c].share, minimum=0.6,
                                          exclude={debit_col} if debit_col else None)
    if not (debit_col and credit_col and header_score("debit", debit_col) >= 0.6
            and header_score("credit", credit_col) >= 0.6):
        return False
    p = profiles[debit_col] if profiles[debit_col].share else profiles[credit_col]
    spec: dict[str, Any] = {"debit_column": debit_col, "credit_column": credit_col,
                            "decimal_separator": p.decimal_separator,
                            "thousands_separator": p.thousands_separator, "strip": list(p.strip) or ["₦"]}
    # Not `take`: the proposal names the pair, while both columns are used.
    draft.used.update({debit_col, credit_col})
    draft.fields["amount"] = spec
    draft.proposals.append(FieldProposal("amount", f"{debit_col}/{credit_col}", "currency",
                                         min(debit_score, credit_score),
                                         "separate debit and credit columns; direction from which holds the value"))
    return True


def _propose_amount_column(draft: _Draft, profiles: dict[str, _AmountProfile]) -> str | None:
    """One signed amount column (balances, fees and rates are never it); the column, or None."""
    amount_col, score = draft.best("amount", lambda c: 0.0 if _NOT_AMOUNT.search(c) else profiles[c].share,
                                   minimum=0.4)
    if not amount_col:
        return None
    p = profiles[amount_col]
    minor = bool(_MINOR_HINT.search(amount_col)) or p.zero_padded
    spec = {"column": amount_col, "decimal_separator": p.decimal_separator,
            "thousands_separator": p.thousands_separator, "strip": list(p.strip),
            "scale": "minor" if minor else "major"}
    note = "amount in minor units (kobo)" if minor else "decimal amount"
    if p.integers_only and not minor:
        note += "; whole numbers only: check they are not already in kobo"
        score -= 0.15
    draft.take("amount", amount_col, spec, score, note)
    return amount_col


def _propose_direction(draft: _Draft, amount_col: str, amount: _AmountProfile) -> None:
    """A DR/CR indicator column, else the sign of the amount."""
    drcr_col, drcr_score = draft.best("direction", lambda c: draft.share(c, lambda v: v.upper() in _DRCR))
    if drcr_col and draft.share(drcr_col, lambda v: v.upper() in _DRCR) >= 0.9:
        present = {v.upper() for v in draft.values[drcr_col]}
        value_map = {v: ("debit" if v.startswith("D") else "credit") for v in sorted(present)}
        value_map.update({v.lower(): d for v, d in list(value_map.items())})
        draft.take("direction", drcr_col, {"column": drcr_col, "value_map": value_map}, drcr_score,
                   "debit/credit indicator column")
    elif amount.negatives:
        draft.take("direction", amount_col, {"from_sign": {"negative": "debit", "positive": "credit"}}, 0.85,
                   "negative amounts are debits")
    else:
        # Unsigned amounts and no marker say nothing about direction. Read "from sign" they would all
        # be credits, and a job keeping a side's debits matched nothing (issue 16). A file that lists
        # one kind of movement unsigned is, in this product's files, a switch or card file of
        # purchases and withdrawals: debits. One proposal for the upload and `reckai reconcile`'s
        # "auto" alike; the low confidence asks a person to confirm it (docs/mapping.md).
        draft.take("direction", amount_col, {"constant": "debit"}, 0.3,
                   "every sampled amount is unsigned and there is no debit/credit column: assumed debit "
                   "(a list of purchases or payments); confirm it, or set the constant to credit")


def _propose_currency(draft: _Draft) -> None:
    """A column of ISO 4217 codes, else NGN as a constant."""
    cur_col, cur_score = draft.best("currency", lambda c: draft.share(c, lambda v: v.upper() in ISO_CURRENCIES))
    if cur_col and draft.share(cur_col, lambda v: v.upper() in ISO_CURRENCIES) >= 0.9:
        draft.take("currency", cur_col, {"column": cur_col}, cur_score, "ISO 4217 codes")
    else:
        symbol = any("₦" in v or "NGN" in v for c in draft.columns for v in draft.values[c][:50])
        draft.take("currency", None, {"constant": "NGN"}, 0.6 if symbol else 0.4,
                   "no currency column; NGN assumed" + (" (₦ seen in amounts)" if symbol else ""))


# Column -> (date formats, share of the sample they parse, day first: True, False or None if unknown).
_DateColumns = dict[str, tuple[list[str], float, bool | None]]


def _date_columns(draft: _Draft) -> _DateColumns:
    """The unused columns whose values are dates."""
    date_info: _DateColumns = {}
    for c in draft.columns:
        if c in draft.used or not draft.values[c]:
            continue
        formats, coverage = date_formats(draft.values[c][:200])
        if coverage >= 0.9:
            day_first = _day_first_evidence(draft.values[c])
            if day_first is False:
                formats = [f.replace("%d/%m", "%m/%d") if f.startswith("%d/%m") else f for f in formats]
            date_info[c] = (formats, coverage, day_first)
    return date_info


def _time_column(draft: _Draft) -> str | None:
    """The first unused column named like a time whose values are times of day."""
    return next((c for c in draft.columns if c not in draft.used and draft.values[c]
                 and draft.share(c, lambda v: bool(_TIME_ONLY.match(v))) >= 0.9
                 and header_score("time", c) >= 0.6), None)


def _propose_date(draft: _Draft, target: str, date_columns: _DateColumns, time_column: str | None) -> None:
    """The date column for `target`; a date without a time takes `time_column`'s time, if given."""
    col, score = draft.best(target, lambda c: date_columns[c][1] if c in date_columns else 0.0)
    if col is None or col not in date_columns:
        return
    formats, _, day_first = date_columns[col]
    spec: dict[str, Any] = {"column": col, "formats": formats}
    note = f"dates like {draft.values[col][0]!r}"
    if any("%d/%m" in f or "%m/%d" in f for f in formats) and day_first is None:
        note += "; day/month order ambiguous in the sample: day first assumed"
        score -= 0.1
    if time_column and not any("%H" in f for f in formats):
        spec["time_column"] = time_column
        time_formats, _ = date_formats(draft.values[time_column], TIME_CANDIDATES)
        spec["time_formats"] = time_formats
        draft.used.add(time_column)
        note += f"; time from column {time_column!r}"
    draft.take(target, col, spec, score, note)


def _narration_column(draft: _Draft) -> tuple[str | None, float]:
    """The free-text column (long values with spaces): the description, and where RRNs may hide."""
    return draft.best("description", lambda c: draft.share(c, lambda v: len(v) > 15 and " " in v), minimum=0.5)


def _propose_reference(draft: _Draft, narration_col: str | None) -> None:
    """A column of references (12-digit RRNs score highest), filled from the narration's RRN where
    it is empty; else the RRN in the narration."""
    ref_col, ref_score = draft.best("reference", lambda c: draft.share(c, lambda v: bool(_RRN.match(v))))
    narration_rrn = narration_col and draft.share(narration_col,
                                                  lambda v: bool(_KEY_IN_TEXT.search(v))) >= 0.2
    rrn_pattern = "RRN[:\\s#.-]*(\\d{12})"
    if narration_col and any(_KEY_IN_TEXT.search(v) and not _RRN_IN_TEXT.search(v)
                             for v in draft.values[narration_col]):
        rrn_pattern = "(?i)(?:RRN|REF)[:\\s#./-]*(\\d{8,12})\\b"  # truncated keys or REF markers too
    if ref_col:
        counts = draft.counts[ref_col]
        blanks = 1 - len(draft.values[ref_col]) / counts if counts else 0
        if narration_rrn and blanks > 0:
            draft.take("reference", ref_col, {"coalesce": [{"column": ref_col},
                                                           {"column": narration_col, "regex": rrn_pattern}]},
                       ref_score, f"{ref_col!r} is sometimes empty: then the RRN is taken from {narration_col!r}")
        else:
            is_rrn = draft.share(ref_col, lambda v: bool(_RRN.match(v))) >= 0.9
            draft.take("reference", ref_col, {"column": ref_col}, ref_score,
                       "12-digit RRNs" if is_rrn else "reference column")
    elif narration_rrn:
        draft.take("reference", narration_col, {"column": narration_col, "regex": rrn_pattern}, 0.75,
                   "RRN extracted from the narration")


def _propose_description(draft: _Draft, narration_col: str | None, narration_score: float) -> None:
    if narration_col:
        draft.take("description", narration_col, {"column": narration_col}, narration_score, "free text")


def _propose_secondary_reference(draft: _Draft) -> None:
    sec_col, sec_score = draft.best("secondary_reference", None, minimum=0.6)
    if sec_col:
        draft.take("secondary_reference", sec_col, {"column": sec_col}, sec_score, "secondary reference by header")


def _propose_account(draft: _Draft) -> None:
    acct_col, acct_score = draft.best("account", lambda c: draft.share(c, lambda v: bool(_MASKED_PAN.match(v))))
    if acct_col:
        pan = draft.share(acct_col, lambda v: bool(_MASKED_PAN.match(v))) >= 0.9
        draft.take("account", acct_col, {"column": acct_col}, acct_score, "masked PANs" if pan else "account")


def _status_score(values: list[str], column: str) -> float:
    """Two-character response codes (most when "00" is among them) or status words."""
    codes = _share(values, lambda v: bool(re.fullmatch(r"[0-9A-Z]{2}", v)))
    words = _share(values, lambda v: v.upper() in _STATUS_WORDS)
    has_00 = any(v == "00" for v in values)
    return max(codes * (1.0 if has_00 else 0.4) * (1.0 if header_score("status", column) else 0.5), words)


def _propose_status(draft: _Draft) -> None:
    status_col, status_score = draft.best("status", lambda c: _status_score(draft.values[c], c), minimum=0.55)
    if not status_col:
        return
    spec: dict[str, Any]
    if draft.share(status_col, lambda v: v.upper() in _STATUS_WORDS) >= 0.9:
        present = {v for v in draft.values[status_col]}
        spec = {"column": status_col, "value_map": {v: _STATUS_WORDS[v.upper()] for v in sorted(present)},
                "default": "unknown"}
        note = "status words"
    else:
        spec = {"column": status_col, "value_map": {"00": "success"}, "default": "failed"}
        note = "ISO 8583 response codes: 00 is success, anything else failed"
    draft.take("status", status_col, spec, status_score, note)


def _propose_by_header(draft: _Draft, target: str, *, upper: bool = False) -> None:
    """A field recognised by its header alone (channel, counterparty)."""
    col, score = draft.best(target, None, minimum=0.6)
    if col:
        spec: dict[str, Any] = {"column": col, "upper": True} if upper else {"column": col}
        draft.take(target, col, spec, score, f"{target} by header")
