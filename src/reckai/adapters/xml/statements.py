"""XML sources into SourceTables: ISO 20022 camt.053 statements, and any XML with a row path.

camt.053: one row per `Ntry` (booked entry). Namespaces (camt.053.001.02 ... .13) are ignored, so every
version reads the same. An entry with several `TxDtls` (a batch booking) gives one row carrying the
entry amount; the references of its first `TxDtls` are used and `tx_details_count` says how many.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

import polars as pl

from reckai.adapters.polars.source_table import LINE_NUMBER, ROW_NUMBER, SourceTable
from reckai.adapters.xml.safe_xml import XmlDocument, local_name, parse_xml
from reckai.domain.ingestion.errors import HeaderNotFound, NoDataRows
from reckai.domain.ingestion.mapping import ParseSettings
from reckai.domain.ingestion.sniffing import ContentInfo

CAMT053_COLUMNS = (
    "statement_id", "account", "account_currency", "entry_reference", "amount", "currency",
    "credit_debit", "reversal", "status", "booking_date", "value_date", "account_servicer_reference",
    "bank_transaction_code", "end_to_end_id", "transaction_id", "instruction_id", "mandate_id",
    "tx_details_count", "counterparty", "remittance_info", "additional_info",
)


def _strip_namespaces(root: ET.Element) -> None:
    for element in root.iter():
        if isinstance(element.tag, str):
            element.tag = local_name(element.tag)


def _text(element: ET.Element | None, path: str) -> str | None:
    if element is None:
        return None
    found = element.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _first(element: ET.Element | None, *paths: str) -> str | None:
    for path in paths:
        if (value := _text(element, path)) is not None:
            return value
    return None


def _camt_rows(doc: XmlDocument) -> tuple[list[dict[str, str | None]], list[int]]:
    rows: list[dict[str, str | None]] = []
    lines: list[int] = []
    for statement in doc.root.iter("Stmt"):
        account = _first(statement, "Acct/Id/IBAN", "Acct/Id/Othr/Id")
        for entry in statement.iter("Ntry"):
            amount = entry.find("Amt")
            details = entry.findall("NtryDtls/TxDtls")
            first = details[0] if details else None
            indicator = _text(entry, "CdtDbtInd")
            party = "Cdtr" if indicator == "DBIT" else "Dbtr"
            status = _first(entry, "Sts/Cd", "Sts")
            code = _first(entry, "BkTxCd/Prtry/Cd")
            domain = [_text(entry, p) for p in ("BkTxCd/Domn/Cd", "BkTxCd/Domn/Fmly/Cd",
                                                  "BkTxCd/Domn/Fmly/SubFmlyCd")]
            if all(domain):
                code = "/".join(d for d in domain if d)
            remittance = [u.text.strip() for u in (first.iter("Ustrd") if first is not None else [])
                          if u.text and u.text.strip()]
            rows.append({
                "statement_id": _text(statement, "Id"), "account": account,
                "account_currency": _text(statement, "Acct/Ccy"),
                "entry_reference": _text(entry, "NtryRef"),
                "amount": amount.text.strip() if amount is not None and amount.text else None,
                "currency": amount.get("Ccy") if amount is not None else None,
                "credit_debit": indicator, "reversal": _text(entry, "RvslInd"), "status": status,
                "booking_date": _first(entry, "BookgDt/Dt", "BookgDt/DtTm"),
                "value_date": _first(entry, "ValDt/Dt", "ValDt/DtTm"),
                "account_servicer_reference": _first(entry, "AcctSvcrRef", "NtryDtls/TxDtls/Refs/AcctSvcrRef"),
                "bank_transaction_code": code,
                "end_to_end_id": _text(first, "Refs/EndToEndId"),
                "transaction_id": _text(first, "Refs/TxId"),
                "instruction_id": _text(first, "Refs/InstrId"),
                "mandate_id": _text(first, "Refs/MndtId"),
                "tx_details_count": str(len(details)),
                "counterparty": _first(first, f"RltdPties/{party}/Nm", f"RltdPties/{party}/Pty/Nm"),
                "remittance_info": " ".join(remittance) or None,
                "additional_info": _first(entry, "AddtlNtryInf", "NtryDtls/TxDtls/AddtlTxInf"),
            })
            lines.append(doc.line_of(entry) or 0)
    return rows, lines


def _flatten(row: ET.Element) -> dict[str, str | None]:
    """A row element's attributes and descendant texts, named by their path under the row."""
    cells: dict[str, str | None] = {f"@{k}": v for k, v in row.attrib.items()}

    def walk(element: ET.Element, prefix: str) -> None:
        seen: Counter[str] = Counter()
        for child in element:
            if not isinstance(child.tag, str):
                continue
            seen[child.tag] += 1
            name = prefix + child.tag + (f"[{seen[child.tag]}]" if seen[child.tag] > 1 else "")
            for key, value in child.attrib.items():
                cells.setdefault(f"{name}/@{key}", value)
            if len(child):
                walk(child, name + "/")
            else:
                text = (child.text or "").strip()
                cells.setdefault(name, text)

    walk(row, "")
    return cells


def _find_rows(root: ET.Element, row_path: str | None) -> list[ET.Element]:
    if row_path:
        path = row_path.strip()
        if path.startswith("//"):
            return list(root.iter(path[2:].split("/")[-1]))
        parts = [p for p in path.split("/") if p]
        if parts and parts[0] == root.tag:
            parts = parts[1:]
        return root.findall("/".join(parts)) if parts else [root]
    # No row path: the element name repeated most often (with children) under one parent.
    counts: Counter[tuple[int, str]] = Counter()
    parents: dict[int, ET.Element] = {}
    for parent in root.iter():
        for child in parent:
            if isinstance(child.tag, str) and (len(child) or child.attrib):
                counts[(id(parent), child.tag)] += 1
                parents[id(parent)] = parent
    if not counts:
        return []
    (parent_id, tag), _ = counts.most_common(1)[0]
    return parents[parent_id].findall(tag)


def read_xml_table(data: bytes, info: ContentInfo, settings: ParseSettings) -> SourceTable:
    doc = parse_xml(data)
    _strip_namespaces(doc.root)
    if info.kind == "camt053" or settings.format == "camt053":
        rows, lines = _camt_rows(doc)
        columns = list(CAMT053_COLUMNS)
        info = ContentInfo(format="xml", kind="camt053", encoding=info.encoding)
        if not rows:
            raise NoDataRows("the camt.053 statement has no entries (Ntry)")
    else:
        elements = _find_rows(doc.root, settings.row_path)
        if not elements:
            raise HeaderNotFound(f"no repeating row element found{' at ' + settings.row_path if settings.row_path else ''}"
                                 "; give parse.row_path (e.g. \"Statement/Txn\")", row_path=settings.row_path)
        rows = [_flatten(e) for e in elements]
        lines = [doc.line_of(e) or 0 for e in elements]
        columns = list(dict.fromkeys(name for row in rows for name in row))
    frame = pl.DataFrame({
        ROW_NUMBER: pl.Series(range(1, len(rows) + 1), dtype=pl.Int64),
        LINE_NUMBER: pl.Series(lines, dtype=pl.Int64),
        **{c: pl.Series([row.get(c) for row in rows], dtype=pl.String) for c in columns},
    })
    return SourceTable(frame=frame, columns=columns, content=info)
