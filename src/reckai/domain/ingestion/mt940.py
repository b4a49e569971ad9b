"""SWIFT MT940 customer statements into rows of text cells (one row per :61: statement line).

Tags read: :20: transaction reference, :25: account, :28C: statement/sequence number, :60F:/:60M:
opening balance (gives the currency), :61: statement line, :86: information to account owner (joined
to the :61: before it), :62F:/:62M: closing balance. SWIFT envelope blocks ({1:...}{2:...}{4:, -})
are tolerated. Amounts keep their MT940 text ("16704,50": decimal comma), so the mapping says
`decimal_separator: ","`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reckai.domain.ingestion.errors import NoDataRows, RowError

MT940_COLUMNS = (
    "account", "statement_reference", "statement_number", "value_date", "entry_date", "dc_mark",
    "funds_code", "amount", "currency", "transaction_type", "customer_reference", "bank_reference",
    "supplementary_details", "information",
)
_TAG = re.compile(r"^:(\d{2}[A-Z]?):(.*)$")
_STATEMENT_LINE = re.compile(
    r"^(?P<value_date>\d{6})(?P<entry_date>\d{4})?(?P<mark>RC|RD|EC|ED|C|D)(?P<funds>[A-Z])?"
    r"(?P<amount>[0-9]+,[0-9]*)(?P<type>[NSF][A-Z0-9]{3})(?P<customer_ref>.*?)"
    r"(?://(?P<bank_ref>.*))?$")
_BALANCE = re.compile(r"^(?P<mark>[CD])(?P<date>\d{6})(?P<currency>[A-Z]{3})(?P<amount>[0-9]+,[0-9]*)$")


@dataclass
class Mt940Rows:
    rows: list[dict[str, str | None]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # 1-based line of each row's :61:
    errors: list[RowError] = field(default_factory=list)  # :61: lines that could not be read
    row_numbers: list[int] = field(default_factory=list)


def _iso_date(yymmdd: str) -> str:
    return f"20{yymmdd[0:2]}-{yymmdd[2:4]}-{yymmdd[4:6]}"


def _entry_date(value_date: str, mmdd: str | None) -> str | None:
    if not mmdd:
        return None
    year = int("20" + value_date[0:2])
    value_month, entry_month = int(value_date[2:4]), int(mmdd[0:2])
    if value_month == 12 and entry_month == 1:
        year += 1
    elif value_month == 1 and entry_month == 12:
        year -= 1
    return f"{year:04d}-{mmdd[0:2]}-{mmdd[2:4]}"


def _tagged_fields(text: str) -> list[tuple[str, str, int]]:
    """(tag, value with continuation lines joined by newline, line number) in file order."""
    fields: list[tuple[str, str, int]] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        stripped = re.sub(r"^(\{[0-9]:[^{}]*\})*\{4:", "", line)
        if stripped in ("-", "-}", "") or re.fullmatch(r"(\{[0-9]:[^{}]*\})+", stripped) or \
                stripped.startswith("-}"):
            continue
        match = _TAG.match(stripped)
        if match:
            fields.append((match.group(1), match.group(2), number))
        elif fields:
            tag, value, start = fields[-1]
            fields[-1] = (tag, value + "\n" + stripped, start)
    return fields


def parse_mt940(text: str) -> Mt940Rows:
    result = Mt940Rows()
    account = reference = statement_number = currency = None
    row_number = 0
    last_row: dict[str, str | None] | None = None
    for tag, value, line in _tagged_fields(text):
        if tag == "20":
            reference, last_row = value.strip(), None
        elif tag == "25":
            account = value.strip()
        elif tag.startswith("28"):
            statement_number = value.strip()
        elif tag in ("60F", "60M"):
            balance = _BALANCE.match(value.strip())
            currency = balance.group("currency") if balance else currency
        elif tag == "61":
            row_number += 1
            first, _, supplementary = value.partition("\n")
            match = _STATEMENT_LINE.match(first.strip())
            if not match:
                result.errors.append(RowError(row_number=row_number, column=":61:", value=first[:200],
                                              line_number=line, reason="unreadable MT940 :61: statement line"))
                last_row = None
                continue
            last_row = {
                "account": account, "statement_reference": reference, "statement_number": statement_number,
                "value_date": _iso_date(match.group("value_date")),
                "entry_date": _entry_date(match.group("value_date"), match.group("entry_date")),
                "dc_mark": match.group("mark"), "funds_code": match.group("funds"),
                "amount": match.group("amount"), "currency": currency,
                "transaction_type": match.group("type"),
                "customer_reference": (match.group("customer_ref") or "").strip() or None,
                "bank_reference": (match.group("bank_ref") or "").strip() or None,
                "supplementary_details": supplementary.strip() or None, "information": None,
            }
            result.rows.append(last_row)
            result.lines.append(line)
            result.row_numbers.append(row_number)
        elif tag == "86" and last_row is not None:
            last_row["information"] = " ".join(part.strip() for part in value.split("\n") if part.strip())
        elif tag.startswith("62"):
            last_row = None
    if not result.rows and not result.errors:
        raise NoDataRows("the MT940 statement has no :61: statement lines")
    return result
