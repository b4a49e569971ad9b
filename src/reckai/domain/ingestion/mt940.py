"""SWIFT MT940 / MT942 / MT950 statements into rows of text cells (one row per :61: statement line).

Read the way the `mt-940` library reads them (its test corpus is tests/data/mt940-corpus, with the
library's own reading in expected.json), by our own parser because it is ~6x faster on 100k
transactions (docs/file-formats.md, "MT940: own parser or the library").

Tags read: :20: transaction reference (starts a statement), :25: account, :28:/:28C: statement and
sequence number, :60F:/:60M: opening balance (gives the currency), :34F: floor limit (MT942's
currency), :61: statement line, :86: information to account owner (joined to the :61: before it;
its structured sub-fields, German `?NN` or Dutch `/CODE/`, give purpose, counterparty and
references), :62F:/:62M: closing balance. Other known tags (:13D:, :21:, :64:, :65:, :90C:/:90D:,
:NS:) are read past; an unknown `:NN:` inside a field is text of that field, as in the library.
SWIFT envelopes (`{1:..}{2:..}{4:` ... `-}`), surrounding whitespace and CR/LF are tolerated.

Amounts keep their MT940 decimal comma ("16704,50"; "500" and "500," become "500"), so the mapping
says `decimal_separator: ","`. An impossible value or entry date (a bank's February 30) becomes the
last day of that month, with a row warning.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from reckai.domain.ingestion.errors import IngestionError, NoDataRows, RowError, SourceWarning

MT940_COLUMNS = (
    "account", "statement_reference", "statement_number", "value_date", "entry_date", "dc_mark",
    "funds_code", "amount", "currency", "transaction_type", "customer_reference", "bank_reference",
    "supplementary_details", "information", "purpose", "counterparty_name", "counterparty_account",
    "end_to_end_reference", "payer_reference", "mandate_reference", "gv_code",
)
_KNOWN_TAGS = frozenset({"13", "20", "21", "25", "28", "34", "NS", "60", "61", "62", "64", "65", "86", "90"})
_TAG = re.compile(r":(\d{2}|NS)([A-Z])?:")
_ENVELOPE_HEAD = re.compile(r"^(?:\{[0-9]:(?:[^{}]|\{[^{}]*\})*\})*\{4:")
_ENVELOPE_ONLY = re.compile(r"^(?:\{[0-9A-Z]+:(?:[^{}]|\{[^{}]*\})*\})+$")
_MESSAGE_TYPE = re.compile(r"\{2:[IO](9[45][02])")
# The library's :61: pattern (mt940.tags.Statement), with EC/ED (expected entries) also accepted.
_STATEMENT_LINE = re.compile(
    r"^(?P<value_date>\d{6})(?P<entry_date>\d{4}|\s{4})?(?P<mark>R?[DC]|E[DC])(?P<funds>[A-Z])?[\n ]?"
    r"(?P<amount>[\d,]{1,15})(?P<type>[A-Z][A-Z0-9 ]{3})?(?P<customer_ref>(?:(?!//)[^\n]){0,16})"
    r"(?://(?P<bank_ref>[^\n]{0,23}))?(?:\n?(?P<details>.*))?$", re.DOTALL)
_BALANCE = re.compile(r"^(?P<mark>[CD])(?P<date>\d{6})(?P<currency>[A-Z]{3})(?P<amount>[\d,]{1,15})")
_FLOOR_LIMIT = re.compile(r"^(?P<currency>[A-Z]{3})")
_GERMAN_SUBFIELD = re.compile(r"\?(\d{2})")
_GERMAN_START = re.compile(r"^\d{3}\?|^\?\d{2}")
# ?20-?29 and ?60-?63: the purpose (Verwendungszweck), in file order.
_PURPOSE_KEYS = frozenset(f"{n:02d}" for n in (*range(20, 30), *range(60, 64)))
_SEPA_KEYWORD = re.compile(r"(EREF|KREF|MREF|CRED|DEBT|SVWZ|ABWA|ABWE|COAM|OAMT|BREF|RREF)\+")
_DUTCH_CODES = ("TRTP", "IBAN", "BIC", "NAME", "REMI", "EREF", "MARF", "CSID", "PREF", "KREF", "ORDP",
                "BENM", "ADDR", "CNTP", "ULTC", "ULTD", "PURP", "RTRN", "ISDT", "FX", "EXCH", "CHGS")
_DUTCH_CODE = re.compile(r"/(" + "|".join(_DUTCH_CODES) + r")/")
_NOT_PROVIDED = frozenset({"NOTPROVIDED", "NONREF", "NONE", ""})


@dataclass
class Mt940Statement:
    """One :20: ... :62: block: what the continuity checks need."""

    reference: str | None
    line: int
    account: str | None = None
    number: str | None = None
    currency: str | None = None
    opening: Decimal | None = None
    opening_date: str | None = None
    closing: Decimal | None = None
    movements: Decimal = Decimal(0)
    rows: int = 0
    unreadable_rows: int = 0


RowsSink = Callable[[dict[str, list[str | None]], list[int], list[int]], None]


@dataclass
class Mt940Rows:
    # One list per MT940_COLUMNS name, a value per row: columns, not row objects, so 100k rows
    # cost ~100 MB less at their peak. With a `sink`, every `chunk_rows` rows are handed to it
    # (columns, lines, row numbers) and let go: the caller builds its table a chunk at a time.
    columns: dict[str, list[str | None]] = field(default_factory=lambda: {c: [] for c in MT940_COLUMNS})
    lines: list[int] = field(default_factory=list)  # 1-based line of each row's :61:
    errors: list[RowError] = field(default_factory=list)  # :61: lines that could not be read
    row_numbers: list[int] = field(default_factory=list)
    warnings: list[SourceWarning] = field(default_factory=list)  # row warnings and statement continuity
    statements: list[Mt940Statement] = field(default_factory=list)
    message_type: str = "mt940"  # mt940 | mt942 | mt950
    sink: RowsSink | None = None
    chunk_rows: int = 10_000
    row_count: int = 0  # rows read, including those handed to the sink

    @property
    def rows(self) -> list[dict[str, str | None]]:
        """The rows not handed to a sink, as dicts (for a person or a test; the reader takes the columns)."""
        return [dict(zip(MT940_COLUMNS, values, strict=True))
                for values in zip(*(self.columns[c] for c in MT940_COLUMNS), strict=True)]

    def add(self, row: dict[str, str | None]) -> None:
        for name, values in self.columns.items():
            values.append(row[name])
        self.row_count += 1
        if self.sink is not None and len(self.lines) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        """Hand the rows held to the sink, if there is one, and hold none."""
        if self.sink is None or not self.lines:
            return
        self.sink(self.columns, self.lines, self.row_numbers)
        self.columns = {c: [] for c in MT940_COLUMNS}
        self.lines, self.row_numbers = [], []


_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@functools.lru_cache(maxsize=4096)
def _valid_date(year: int, month: int, day: int) -> tuple[str, bool] | None:
    """ISO date, and whether the day was moved to the month's last; None when the month is no month.
    Cached: a statement's dates repeat."""
    if not 1 <= month <= 12 or day < 1:
        return None
    last = 29 if month == 2 and calendar.isleap(year) else _DAYS_IN_MONTH[month - 1]
    return f"{year:04d}-{month:02d}-{min(day, last):02d}", day > last


def _entry_year(value_year: int, value_month: int, entry_month: int) -> int:
    if value_month == 12 and entry_month == 1:
        return value_year + 1
    if value_month == 1 and entry_month == 12:
        return value_year - 1
    return value_year


def _lines(text: str) -> Iterator[str]:
    """The text's lines one at a time (no list of them all: 100k transactions are ~400k lines)."""
    start = 0
    find = text.find
    while (end := find("\n", start)) >= 0:
        yield text[start:end]
        start = end + 1
    yield text[start:]


def _tagged_fields(text: str, envelope: list[str]) -> Iterator[tuple[str, str, int]]:
    """(tag, value with continuation lines joined by newline, line number) in file order; the
    message type named by a SWIFT envelope's block 2, if any, is appended to `envelope`."""
    pending: tuple[str, str, int] | None = None
    for number, raw in enumerate(_lines(text), start=1):
        line = raw.strip()
        if not line:
            continue
        if line[0] == "{":
            if not envelope and (found := _MESSAGE_TYPE.search(line)):
                envelope.append("mt" + found.group(1))
            line = _ENVELOPE_HEAD.sub("", line).strip()
            if not line or _ENVELOPE_ONLY.match(line):
                continue
        if line[0] == "-" and (line == "-" or line.startswith("-}")):
            continue
        match = _TAG.match(line) if line[0] == ":" else None
        if match and match.group(1) in _KNOWN_TAGS:
            if pending is not None:
                yield pending
            pending = (match.group(1) + (match.group(2) or ""), line[match.end():], number)
        elif pending is not None:
            tag, value, start = pending
            pending = (tag, value + "\n" + line, start)
    if pending is not None:
        yield pending


def _decimal(amount: str) -> Decimal | None:
    try:
        return Decimal(amount.replace(",", ".")) if amount.strip(",") else None
    except InvalidOperation:
        return None


def _amount_text(amount: str) -> str:
    """The amount as written, with a trailing comma dropped and a leading one given its zero."""
    amount = amount.rstrip(",")
    return "0" + amount if amount.startswith(",") else amount or "0"


def _dutch_subfields(text: str) -> dict[str, str]:
    parts = _DUTCH_CODE.split(text)
    found: dict[str, str] = {}
    for code, value in zip(parts[1::2], parts[2::2], strict=False):
        found.setdefault(code, value.strip().strip("/").strip())
    return found


def structured_details(information: str) -> dict[str, str | None]:
    """The sub-fields of a structured :86: (German `?NN` / SEPA keywords, or Dutch `/CODE/`)."""
    out: dict[str, str | None] = {"purpose": None, "counterparty_name": None, "counterparty_account": None,
                                  "end_to_end_reference": None, "payer_reference": None,
                                  "mandate_reference": None, "gv_code": None}
    flat = information.replace("\n", "")
    if _GERMAN_START.match(flat):
        parts = _GERMAN_SUBFIELD.split(flat)
        out["gv_code"] = parts[0].strip() or None
        sub: dict[str, str] = {}
        purpose_parts: list[str] = []
        for key, value in zip(parts[1::2], parts[2::2], strict=False):
            if key in _PURPOSE_KEYS:
                purpose_parts.append(value)
            else:
                sub[key] = sub.get(key, "") + value
        purpose = "".join(purpose_parts)
        keywords = _SEPA_KEYWORD.split(purpose) if "+" in purpose else [purpose]
        sepa = dict(zip(keywords[1::2], (v.strip() for v in keywords[2::2]), strict=False))
        out["purpose"] = (sepa.get("SVWZ") or (keywords[0].strip() if len(keywords) > 1 else purpose.strip())
                          or sub.get("00", "").strip() or None)
        out["end_to_end_reference"] = sepa.get("EREF")
        out["payer_reference"] = sepa.get("KREF")
        out["mandate_reference"] = sepa.get("MREF")
        out["counterparty_name"] = (sub.get("32", "") + sub.get("33", "")).strip() or None
        out["counterparty_account"] = sub.get("31", "").strip() or None
    elif _DUTCH_CODE.search(flat):
        sub = _dutch_subfields(information.replace("\n", ""))
        remittance = sub.get("REMI", "")
        remittance = re.sub(r"^(USTD|STRD/CUR)//?", "", remittance)
        counterparty = sub.get("CNTP", "").split("/")
        out["purpose"] = remittance.strip() or None
        out["counterparty_name"] = sub.get("NAME") or (counterparty[2] if len(counterparty) > 2 else None) or None
        out["counterparty_account"] = sub.get("IBAN") or counterparty[0] or None
        out["end_to_end_reference"] = sub.get("EREF")
        out["payer_reference"] = sub.get("KREF") or sub.get("PREF")
        out["mandate_reference"] = sub.get("MARF")
    for key in ("end_to_end_reference", "payer_reference", "mandate_reference"):
        if (out[key] or "").upper() in _NOT_PROVIDED:
            out[key] = None
    return out


def parse_mt940(text: str, sink: RowsSink | None = None, chunk_rows: int = 10_000) -> Mt940Rows:
    """Parse a whole file. With a `sink`, rows go to it in chunks of `chunk_rows` (see Mt940Rows);
    the result then holds the file's statements, warnings and errors, and `row_count`."""
    result = Mt940Rows(sink=sink, chunk_rows=chunk_rows)
    envelope: list[str] = []
    first_line: int | None = None
    statement: Mt940Statement | None = None
    account = reference = statement_number = currency = None
    row_number = 0
    seen_tags: set[str] = set()
    last_row: dict[str, str | None] | None = None  # the row a following :86: belongs to, not yet added
    for tag, value, line in _tagged_fields(text, envelope):
        if first_line is None:
            first_line = line
        seen_tags.add(tag)
        if last_row is not None and tag != "86":
            result.add(last_row)
            last_row = None
        if tag == "20":
            reference = value.strip()
            statement = Mt940Statement(reference=reference, line=line)
            result.statements.append(statement)
            currency = None
        elif tag == "25":
            account = value.strip()
            if statement:
                statement.account = account
        elif tag.startswith("28"):
            statement_number = value.strip()
            if statement:
                statement.number = statement_number
        elif tag in ("60F", "60M", "62F", "62M", "34F"):
            if tag == "34F":
                limit = _FLOOR_LIMIT.match(value.strip())
                currency = currency or (limit.group("currency") if limit else None)
                continue
            balance = _BALANCE.match(value.strip())
            if not balance:
                result.warnings.append(SourceWarning(f"line {line}: unreadable :{tag}: balance {value[:60]!r}",
                                                     line_number=line, kind="balance"))
                continue
            currency = currency or balance.group("currency")
            amount = _decimal(balance.group("amount"))
            signed = -amount if amount is not None and balance.group("mark") == "D" else amount
            if statement and tag.startswith("60"):
                statement.opening, statement.currency = signed, balance.group("currency")
                statement.opening_date = balance.group("date")
            elif statement:
                statement.closing = signed
        elif tag == "61":
            row_number += 1
            match = _STATEMENT_LINE.match(value.strip(" "))
            first = value.partition("\n")[0]
            if not match:
                result.errors.append(RowError(row_number=row_number, column=":61:", value=first[:200],
                                              line_number=line, reason="unreadable MT940 :61: statement line"))
                if statement:
                    statement.unreadable_rows += 1
                continue
            last_row = _statement_row(match, line, row_number, result.warnings)
            if last_row is None:
                result.errors.append(RowError(row_number=row_number, column=":61:", value=first[:200],
                                              line_number=line, reason="MT940 :61: value date has no valid month"))
                continue
            last_row.update(account=account, statement_reference=reference, statement_number=statement_number,
                            currency=currency)
            if statement:
                statement.rows += 1
                movement = _decimal(match.group("amount"))
                if movement is not None:
                    credit = match.group("mark") in ("C", "RD", "EC")
                    statement.movements += movement if credit else -movement
            result.lines.append(line)
            result.row_numbers.append(row_number)
        elif tag == "86" and last_row is not None:
            last_row["information"] = " ".join(part.strip() for part in value.split("\n") if part.strip())
            last_row.update(structured_details(value))
            result.add(last_row)
            last_row = None
    if last_row is not None:
        result.add(last_row)
    result.flush()
    if not result.row_count and not result.errors:
        raise NoDataRows("the MT940 statement has no :61: statement lines")
    if "61" in seen_tags and not result.statements:
        raise IngestionError("the MT940 file has statement lines but no :20: transaction reference; it is "
                             "not a complete statement", line=first_line)
    is_interim = "13D" in seen_tags or ("34F" in seen_tags and not {"60F", "60M"} & seen_tags)
    result.message_type = envelope[0] if envelope else ("mt942" if is_interim else "mt940")
    if result.message_type != "mt942":
        result.warnings.extend(_incomplete_warnings(result.statements))
    result.warnings.extend(continuity_warnings(result.statements))
    return result


def _statement_row(match: re.Match[str], line: int, row_number: int,
                   warnings: list[SourceWarning]) -> dict[str, str | None] | None:
    value_date = match.group("value_date")
    year, month, day = 2000 + int(value_date[0:2]), int(value_date[2:4]), int(value_date[4:6])
    valid = _valid_date(year, month, day)
    if valid is None:
        return None
    value_iso, moved = valid
    if moved:
        warnings.append(SourceWarning(f"line {line}: value date {value_date} does not exist; read as {value_iso}",
                                      line_number=line, row_number=row_number))
    entry_iso = None
    entry = (match.group("entry_date") or "").strip()
    if entry:
        entry_month, entry_day = int(entry[0:2]), int(entry[2:4])
        entry_valid = _valid_date(_entry_year(year, month, entry_month), entry_month, entry_day)
        if entry_valid is not None:
            entry_iso, entry_moved = entry_valid
            if entry_moved:
                warnings.append(SourceWarning(f"line {line}: entry date {entry} does not exist; read as {entry_iso}",
                                              line_number=line, row_number=row_number))
    details = (match.group("details") or "").strip()
    return {
        "value_date": value_iso, "entry_date": entry_iso, "dc_mark": match.group("mark"),
        "funds_code": match.group("funds"), "amount": _amount_text(match.group("amount")),
        "transaction_type": (match.group("type") or "").strip() or None,
        "customer_reference": (match.group("customer_ref") or "").strip() or None,
        "bank_reference": (match.group("bank_ref") or "").strip() or None,
        "supplementary_details": details or None, "information": None, "purpose": None,
        "counterparty_name": None, "counterparty_account": None, "end_to_end_reference": None,
        "payer_reference": None, "mandate_reference": None, "gv_code": None,
    }


def _incomplete_warnings(statements: list[Mt940Statement]) -> list[SourceWarning]:
    """A statement without its closing balance: the file may be truncated. The rows are kept, as the
    mt-940 library keeps them (the corpus has such files), and the file warning names the line."""
    return [SourceWarning(
        f"the MT940 statement starting on line {s.line} (:20:{s.reference}) has no :62F:/:62M: closing "
        "balance: the file may be truncated; check it holds the whole statement",
        line_number=s.line, kind="truncated")
        for s in statements if s.closing is None and s.rows + s.unreadable_rows]


def _sequence(number: str | None) -> tuple[int, int] | None:
    match = re.fullmatch(r"0*(\d+)(?:/0*(\d+))?", (number or "").strip())
    return (int(match.group(1)), int(match.group(2) or 1)) if match else None


def continuity_warnings(statements: list[Mt940Statement]) -> list[SourceWarning]:
    """File-level warnings: a statement whose balances do not add up, a gap in :28C: numbers or a
    closing balance that is not the next opening balance (per account), a statement given twice."""
    warnings: list[SourceWarning] = []
    previous: dict[str | None, Mt940Statement] = {}
    seen: dict[tuple[str | None, ...], Mt940Statement] = {}
    for statement in statements:
        label = f"statement :20:{statement.reference} (line {statement.line})"
        key = (statement.account, statement.reference, statement.number, statement.opening_date,
               str(statement.opening))
        if key in seen:
            warnings.append(SourceWarning(
                f"{label} repeats the statement on line {seen[key].line} (same account, reference and number)",
                line_number=statement.line, kind="duplicate_statement"))
        seen.setdefault(key, statement)
        if statement.opening is not None and statement.closing is not None and not statement.unreadable_rows:
            difference = statement.opening + statement.movements - statement.closing
            if difference:
                warnings.append(SourceWarning(
                    f"{label}: opening {statement.opening} + movements {statement.movements} = "
                    f"{statement.opening + statement.movements}, but the closing balance is {statement.closing} "
                    f"(difference {difference})", line_number=statement.line, kind="balance_mismatch"))
        before = previous.get(statement.account)
        if before is not None:
            now, then = _sequence(statement.number), _sequence(before.number)
            if now and then and (now[0] > then[0] + 1 or (now[0] == then[0] and now[1] > then[1] + 1)):
                warnings.append(SourceWarning(
                    f"{label}: statement number {statement.number} does not follow {before.number}",
                    line_number=statement.line, kind="sequence_gap"))
            if before.closing is not None and statement.opening is not None \
                    and before.closing != statement.opening:
                warnings.append(SourceWarning(
                    f"{label}: opening balance {statement.opening} is not the previous statement's closing "
                    f"balance {before.closing} (difference {statement.opening - before.closing})",
                    line_number=statement.line, kind="balance_gap"))
        previous[statement.account] = statement
    return warnings
