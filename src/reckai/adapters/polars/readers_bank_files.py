"""BAI2 (US cash management balance reporting) and OFX/QFX (1.x SGML, 2.x XML) into SourceTables,
each through its well-kept library: `bai2` and `ofxtools`. Vendor errors become IngestionErrors
naming the line (BAI2 control totals) or the problem.

BAI2: one row per 16 (transaction detail) record, with its 88 continuations in `text`; the date is
the group's as-of date (02 record); `amount` is in minor units as the file writes it, `direction`
comes from the BAI type code (the library's table). The library checks every control total and
record count; a mismatch is refused naming the trailer record's line.

OFX: one row per STMTTRN of every statement (bank and credit card); `amount` is the signed
TRNAMT.
"""

from __future__ import annotations

import io
import re
from typing import Any

import polars as pl
from bai2 import bai2 as bai2_parser
from bai2.exceptions import IntegrityException, NotSupportedYetException, ParsingException
from ofxtools.header import OFXHeaderError
from ofxtools.Parser import OFXTree, ParseError
from ofxtools.Types import OFXTypeError

from reckai.adapters.polars.source_table import LINE_NUMBER, ROW_NUMBER, SourceTable
from reckai.domain.ingestion.errors import IngestionError, NoDataRows
from reckai.domain.ingestion.sniffing import ContentInfo

BAI2_COLUMNS = ("account", "currency", "as_of_date", "type_code", "type_description", "direction", "amount",
                "funds_type", "bank_reference", "customer_reference", "text")
OFX_COLUMNS = ("account", "statement_type", "currency", "date_posted", "value_date", "transaction_type",
               "amount", "fitid", "reference_number", "check_number", "name", "memo")
# Which trailer record a control-total or record-count message of the library is about.
_TRAILER_OF = {"Account": "49", "Group": "98", "Bai2File": "99"}


def _table(rows: list[dict[str, str | None]], lines: list[int], columns: tuple[str, ...],
           info: ContentInfo, statement_count: int) -> SourceTable:
    frame = pl.DataFrame({
        ROW_NUMBER: pl.Series(range(1, len(rows) + 1), dtype=pl.Int64),
        LINE_NUMBER: pl.Series(lines, dtype=pl.Int64),
        **{c: pl.Series([row.get(c) for row in rows], dtype=pl.String) for c in columns},
    })
    return SourceTable(frame=frame, columns=list(columns), content=info, statement_count=statement_count)


def _record_lines(text: str, code: str) -> list[int]:
    return [n for n, line in enumerate(text.split("\n"), start=1) if line.strip().startswith(code + ",")]


def _control_total(account: Any) -> int:
    return sum(t.amount or 0 for t in account.children) + sum(s.amount or 0 for s in account.header.summary_items)


def _failing_trailer_line(text: str, message: str) -> int | None:
    """The line of the trailer record (49, 98 or 99) whose total or count the library refused."""
    level = next((name for name in _TRAILER_OF if f"for {name}." in message), None)
    if level is None:
        return None
    lines = _record_lines(text, _TRAILER_OF[level])
    index = 0
    if level in ("Account", "Group"):
        unchecked = bai2_parser.parse_from_string(text, check_integrity=False)
        if level == "Account":
            accounts = [a for g in unchecked.children for a in g.children]
            index = next((i for i, a in enumerate(accounts) if _control_total(a) != a.trailer.account_control_total),
                         0)
        else:
            index = next((i for i, g in enumerate(unchecked.children) if sum(
                a.trailer.account_control_total for a in g.children) != g.trailer.group_control_total), 0)
    return lines[index] if index < len(lines) else None


def read_bai2_table(text: str, info: ContentInfo) -> SourceTable:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        parsed = bai2_parser.parse_from_string(text, check_integrity=True)
    except IntegrityException as exc:
        line = _failing_trailer_line(text, str(exc))
        where = f"line {line}: " if line else ""
        raise IngestionError(f"{where}BAI2 control totals do not add up: {exc}; the file is incomplete or altered",
                             line=line) from exc
    except (ParsingException, NotSupportedYetException, ValueError, IndexError, KeyError) as exc:
        raise IngestionError(f"the BAI2 file cannot be read: {exc}") from exc
    detail_lines = iter(_record_lines(text, "16"))
    rows: list[dict[str, str | None]] = []
    lines: list[int] = []
    accounts = 0
    for group in parsed.children:
        as_of = group.header.as_of_date.isoformat() if group.header.as_of_date else None
        for account in group.children:
            accounts += 1
            currency = account.header.currency or group.header.currency or "USD"
            for detail in account.children:
                code = detail.type_code
                rows.append({
                    "account": account.header.customer_account_number, "currency": currency, "as_of_date": as_of,
                    "type_code": code.code if code else None,
                    "type_description": code.description if code else None,
                    "direction": code.transaction.value if code and code.transaction else None,
                    "amount": None if detail.amount is None else str(detail.amount),
                    "funds_type": detail.funds_type.name if detail.funds_type else None,
                    "bank_reference": detail.bank_reference, "customer_reference": detail.customer_reference,
                    "text": detail.text,
                })
                lines.append(next(detail_lines, 0))
    if not rows:
        raise NoDataRows("the BAI2 file has no transaction detail (16) records")
    return _table(rows, lines, BAI2_COLUMNS, ContentInfo(format="txt", kind="bai2", encoding=info.encoding),
                  accounts)


def _date(value: Any) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else None


def read_ofx_table(data: bytes, info: ContentInfo) -> SourceTable:
    tree = OFXTree()
    try:
        tree.parse(io.BytesIO(data))
        ofx = tree.convert()
    except (OFXHeaderError, ParseError, OFXTypeError, ValueError, KeyError) as exc:
        raise IngestionError(f"the OFX file cannot be read: {exc}") from exc
    posted_lines = [n for n, line in enumerate(data.decode("latin-1").split("\n"), start=1)
                    for _ in re.finditer(r"<STMTTRN>", line, re.IGNORECASE)]
    rows: list[dict[str, str | None]] = []
    statements = list(ofx.statements)
    for statement in statements:
        account = statement.account
        for transaction in statement.banktranlist or []:
            available = transaction.dtavail or transaction.dtposted
            rows.append({
                "account": getattr(account, "acctid", None), "statement_type": type(statement).__name__,
                "currency": (transaction.currency.cursym if transaction.currency is not None else statement.curdef),
                "date_posted": _date(transaction.dtposted),
                "value_date": available.strftime("%Y-%m-%d") if available else None,
                "transaction_type": transaction.trntype, "amount": str(transaction.trnamt),
                "fitid": transaction.fitid, "reference_number": transaction.refnum,
                "check_number": transaction.checknum, "name": transaction.name, "memo": transaction.memo,
            })
    if not rows:
        raise NoDataRows("the OFX file has no statement transactions (STMTTRN)")
    lines = posted_lines if len(posted_lines) == len(rows) else [0] * len(rows)
    kind_format = "xml" if data.lstrip()[:1] == b"<" else "txt"
    return _table(rows, lines, OFX_COLUMNS, ContentInfo(format=kind_format, kind="ofx", encoding=info.encoding),
                  len(statements))
