"""XML sources into SourceTables: ISO 20022 camt.052 / camt.053 / camt.054, and any XML with a row path.

camt (bank-to-customer account report 052, statement 053, debit/credit notification 054): one row
per `Ntry` (entry), the same columns for the three. Namespaces camt.05x.001.02 ... .13 read the
same; another version is refused naming the namespace and its line. An entry with several `TxDtls`
(a batch booking) gives one row carrying the entry amount, the references of its first `TxDtls` and
`tx_details_count`; with `parse.expand_transaction_details` it gives one row per `TxDtls` with the
detail's own amount and the entry's dates, and a warning when the details do not sum to the entry.
The file is streamed (`iter_xml`): each entry is dropped once read, so memory does not grow with
the number of entries.
"""

from __future__ import annotations

import bisect
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import polars as pl

from reckai.adapters.polars.source_table import LINE_NUMBER, ROW_NUMBER, SourceTable
from reckai.adapters.xml.safe_xml import (
    check_xml,
    iter_ended,
    local_name,
    parse_xml,
    plain_document,
    start_tag_lines,
)
from reckai.domain.ingestion.errors import HeaderNotFound, NoDataRows, SourceWarning, UnsupportedContent
from reckai.domain.ingestion.mapping import ParseSettings
from reckai.domain.ingestion.sniffing import ContentInfo
from reckai.domain.ingestion.statements import StatementIdentity, camt_identity

CAMT053_COLUMNS = (
    "statement_id", "account", "account_currency", "entry_reference", "amount", "currency",
    "credit_debit", "reversal", "status", "booking_date", "value_date", "account_servicer_reference",
    "bank_transaction_code", "end_to_end_id", "transaction_id", "instruction_id", "mandate_id",
    "tx_details_count", "counterparty", "remittance_info", "additional_info",
)
CAMT_KINDS = ("camt052", "camt053", "camt054")
XML_FORMATS = ("xml", *CAMT_KINDS)
# The element holding the entries: statement (053), report (052), notification (054).
_STATEMENT_ELEMENTS = {"Stmt": "camt053", "Rpt": "camt052", "Ntfctn": "camt054"}
_CAMT_NAMESPACE = re.compile(r"camt\.(05[234])\.001\.(\d{2})")
KNOWN_CAMT_VERSIONS = range(2, 14)  # 001.02 ... 001.13


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


def _texts(element: ET.Element | None, skip: str | None = None) -> dict[str, str]:
    """Path under `element` (namespaces stripped) -> the first non-empty text at that path, in one
    walk (a dict lookup per column instead of an ElementPath search); `skip`: a subtree left out."""
    found: dict[str, str] = {}

    def walk(node: ET.Element, prefix: str) -> None:
        for child in node:  # namespaces already stripped
            name = child.tag if isinstance(child.tag, str) else ""
            if not name or name == skip:
                continue
            path = prefix + name
            if len(child):
                walk(child, path + "/")
            elif child.text and (text := child.text.strip()) and path not in found:
                found[path] = text

    if element is not None:
        walk(element, "")
    return found


def _entry_row(entry: dict[str, str], detail_element: ET.Element | None,
               details_count: int, amount_of: ET.Element | None, *, expanded: bool = False) -> dict[str, str | None]:
    detail = _texts(detail_element)
    indicator = entry.get("CdtDbtInd")
    party = "Cdtr" if indicator == "DBIT" else "Dbtr"
    code = entry.get("BkTxCd/Prtry/Cd")
    domain = [entry.get(p) for p in ("BkTxCd/Domn/Cd", "BkTxCd/Domn/Fmly/Cd", "BkTxCd/Domn/Fmly/SubFmlyCd")]
    if all(domain):
        code = "/".join(d for d in domain if d)
    remittance = [u.text.strip() for u in (detail_element.iter() if detail_element is not None else [])
                  if u.tag == "Ustrd" and u.text and u.text.strip()]
    return {
        "entry_reference": entry.get("NtryRef"),
        "amount": amount_of.text.strip() if amount_of is not None and amount_of.text else None,
        "currency": amount_of.get("Ccy") if amount_of is not None else None,
        "credit_debit": (detail.get("CdtDbtInd") if expanded else None) or indicator,
        "reversal": entry.get("RvslInd"), "status": entry.get("Sts/Cd") or entry.get("Sts"),
        "booking_date": entry.get("BookgDt/Dt") or entry.get("BookgDt/DtTm"),
        "value_date": entry.get("ValDt/Dt") or entry.get("ValDt/DtTm"),
        "account_servicer_reference": entry.get("AcctSvcrRef") or detail.get("Refs/AcctSvcrRef"),
        "bank_transaction_code": code,
        "end_to_end_id": detail.get("Refs/EndToEndId"),
        "transaction_id": detail.get("Refs/TxId"),
        "instruction_id": detail.get("Refs/InstrId"),
        "mandate_id": detail.get("Refs/MndtId"),
        "tx_details_count": str(details_count),
        "counterparty": detail.get(f"RltdPties/{party}/Nm") or detail.get(f"RltdPties/{party}/Pty/Nm"),
        "remittance_info": " ".join(remittance) or None,
        "additional_info": entry.get("AddtlNtryInf") or detail.get("AddtlTxInf"),
    }


def _detail_amount(detail: ET.Element) -> ET.Element | None:
    return detail.find("Amt") if detail.find("Amt") is not None else detail.find("AmtDtls/TxAmt/Amt")


def _decimal(element: ET.Element | None) -> Decimal | None:
    try:
        return Decimal(element.text.strip()) if element is not None and element.text else None
    except InvalidOperation:
        return None


def _check_version(data: bytes, tag: str) -> None:
    """`tag`: the first element's, namespace included; the message names the root element."""
    match = _CAMT_NAMESPACE.search(tag)
    if match and int(match.group(2)) not in KNOWN_CAMT_VERSIONS:
        namespace = tag[1:].split("}", 1)[0]
        root = re.search(rb"<((?:[A-Za-z_][\w.-]*:)?[A-Za-z_][\w.-]*)", data)
        line = data.count(b"\n", 0, root.start()) + 1 if root else 1
        name = root.group(1).decode("ascii", "replace") if root else local_name(tag)
        raise UnsupportedContent(
            f"line {line}: element <{name}> is in namespace {namespace}, camt.{match.group(1)} version "
            f"001.{match.group(2)}, which is not one ReckAI reads (001.02 to 001.13)",
            line=line, namespace=namespace, element=name)


_CHUNK_ROWS = 50_000  # rows held as Python dicts before they become a (compact) polars chunk


@dataclass
class CamtEntries:
    kind: str  # camt052 | camt053 | camt054
    frame: pl.DataFrame  # __row_number, __line_number, CAMT053_COLUMNS
    warnings: list[SourceWarning] = field(default_factory=list)
    statement_count: int = 0
    statements: list[StatementIdentity] = field(default_factory=list)  # those with an Id


def _chunk(rows: list[dict[str, str | None]], lines: list[int], statement_of_row: list[int],
           first_row: int) -> pl.DataFrame:
    return pl.DataFrame({
        ROW_NUMBER: pl.Series(range(first_row, first_row + len(rows)), dtype=pl.Int64),
        LINE_NUMBER: pl.Series(lines, dtype=pl.Int64),
        "__statement": pl.Series(statement_of_row, dtype=pl.Int64),
        **{c: pl.Series([row.get(c) for row in rows], dtype=pl.String)
           for c in CAMT053_COLUMNS if c not in _STATEMENT_COLUMNS},
    })


_STATEMENT_COLUMNS = ("statement_id", "account", "account_currency")
_PRUNED = frozenset({"Ntry", *_STATEMENT_ELEMENTS})  # dropped from the tree once read


@dataclass
class _CamtDocument:
    kind: str | None = None
    statements: list[dict[str, str | None]] = field(default_factory=list)


def _statement_fields(element: ET.Element) -> dict[str, str | None]:
    _strip_namespaces(element)
    return {"statement_id": _text(element, "Id"), "account": _first(element, "Acct/Id/IBAN", "Acct/Id/Othr/Id"),
            "account_currency": _text(element, "Acct/Ccy")}


def _entries_by_tree(data: bytes, document: _CamtDocument) -> Iterator[tuple[ET.Element, int, int]]:
    """(Ntry, line, statement number) through the general streaming reader (iter_ended)."""
    entry_lines = start_tag_lines(data, "Ntry")
    entries = 0
    checked = False
    for element in iter_ended(data, prune=_PRUNED):
        if not checked:
            _check_version(data, element.tag)
            checked = True
        tag = local_name(element.tag)
        if tag == "Ntry":
            yield element, entry_lines[entries] if entries < len(entry_lines) else 0, len(document.statements)
            entries += 1
        elif tag in _STATEMENT_ELEMENTS:
            document.kind = document.kind or _STATEMENT_ELEMENTS[tag]
            document.statements.append(_statement_fields(element))


_ROOT = re.compile(rb"<(?:([A-Za-z_][\w.-]*):)?([A-Za-z_][\w.-]*)([^>]*)>")
_STATEMENT_START = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,30}:)?(Stmt|Rpt|Ntfctn)[\s>]")
_ENTRY = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?)Ntry[\s>].*?</\1Ntry\s*>", re.DOTALL)
_ACCOUNT = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?)Acct[\s>].*?</\1Acct\s*>", re.DOTALL)
_ENTRY_BATCH = 1000
_STATEMENT_ID = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?Id>([^<]*)</")


def _entries_by_fragments(data: bytes, document: _CamtDocument) -> Iterator[tuple[ET.Element, int, int]]:
    """(Ntry, line, statement number), each entry parsed on its own by expat's C parser.

    Only for documents `plain_document` accepts (no DTD: nothing a fragment could miss). The
    whole document is first checked well-formed (C parser, no tree); then each `<Ntry>...</Ntry>`
    and each statement's `<Acct>` is cut out and parsed alone, with the root's namespace
    declarations and the document's encoding around it: a tree per entry, built in C, instead of
    a Python step per element."""
    check_xml(data)
    root = _ROOT.search(data)
    if root is None:
        return
    prefix, attributes = root.group(1), root.group(3)
    declared = re.search(rb"xmlns" + (b":" + prefix if prefix else b"") + rb"=[\"']([^\"']+)", attributes)
    namespace = declared.group(1).decode("utf-8", "replace") if declared else ""
    _check_version(data, "{" + namespace + "}" + root.group(2).decode("utf-8", "replace"))
    declarations = b" ".join(re.findall(rb"xmlns(?::[\w.-]+)?=[\"'][^\"']*[\"']", attributes))
    encoding = re.match(rb"\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)", data)
    head = b'<?xml version="1.0" encoding="' + encoding.group(1) + b'"?>' if encoding else b""
    opening, closing = head + b"<fragment " + declarations + b">", b"</fragment>"

    def parse(fragment: bytes) -> ET.Element:
        return ET.fromstring(opening + fragment + closing)[0]

    starts = [m.start() for m in _STATEMENT_START.finditer(data)]
    for number, position in enumerate(starts):
        found = _STATEMENT_START.match(data, position)
        document.kind = document.kind or _STATEMENT_ELEMENTS[found.group(1).decode()] if found else document.kind
        first_entry = _ENTRY.search(data, position)
        header_end = min(first_entry.start() if first_entry else len(data),
                         starts[number + 1] if number + 1 < len(starts) else len(data))
        statement_id = _STATEMENT_ID.search(data, position, header_end)
        account_match = _ACCOUNT.search(data, position, header_end)
        account = parse(account_match.group(0)) if account_match else None
        if account is not None:
            _strip_namespaces(account)
        document.statements.append({
            "statement_id": statement_id.group(1).decode("utf-8", "replace").strip() or None
            if statement_id else None,
            "account": _first(account, "Id/IBAN", "Id/Othr/Id"), "account_currency": _text(account, "Ccy")})
    # Consecutive entries of one statement are siblings with nothing but blanks (or comments)
    # between them: they are parsed together, _ENTRY_BATCH at a time.
    line, counted = 1, 0
    batch: list[tuple[int, int]] = []  # (start, line)
    batch_statement = -1

    def flush(end: int) -> Iterator[tuple[ET.Element, int, int]]:
        parsed = ET.fromstring(opening + data[batch[0][0]:end] + closing)
        for element, (_, entry_line) in zip(parsed, batch, strict=True):
            yield element, entry_line, batch_statement

    end = 0
    for match in _ENTRY.finditer(data):
        statement = bisect.bisect_right(starts, match.start()) - 1
        if batch and (statement != batch_statement or len(batch) >= _ENTRY_BATCH
                      or data[end:match.start()].strip() and b"<!--" not in data[end:match.start()]):
            yield from flush(end)
            batch = []
        line += data.count(b"\n", counted, match.start())
        counted = match.start()
        batch.append((match.start(), line))
        batch_statement, end = statement, match.end()
    if batch:
        yield from flush(end)


def read_camt(data: bytes, expand_details: bool = False) -> CamtEntries:
    """The entries of a camt.052/053/054 document, in bounded memory: neither the document's tree
    nor the rows as Python objects grow with the file (rows become polars chunks every
    _CHUNK_ROWS); the statement's Id and account are joined to its rows by the statement's number."""
    chunks: list[pl.DataFrame] = []
    done = 0
    rows: list[dict[str, str | None]] = []
    lines: list[int] = []
    statement_of_row: list[int] = []
    warnings: list[SourceWarning] = []
    document = _CamtDocument()
    entries = _entries_by_fragments(data, document) if plain_document(data) else _entries_by_tree(data, document)
    for element, line, statement in entries:
        _strip_namespaces(element)
        entry_texts = _texts(element, skip="NtryDtls")
        details = element.findall("NtryDtls/TxDtls")
        entry_amount = element.find("Amt")
        if expand_details and len(details) > 1:
            amounts = [_decimal(_detail_amount(d)) for d in details]
            total = _decimal(entry_amount)
            if total is not None and None not in amounts and sum(a for a in amounts if a) != total:
                warnings.append(SourceWarning(
                    f"line {line}: the {len(details)} TxDtls of this Ntry sum to "
                    f"{sum(a for a in amounts if a)}, not the entry amount {total}",
                    line_number=line, kind="details_sum"))
            for detail in details:
                own = _detail_amount(detail)
                rows.append(_entry_row(entry_texts, detail, len(details),
                                       own if own is not None else entry_amount, expanded=True))
                lines.append(line)
                statement_of_row.append(statement)
        else:
            rows.append(_entry_row(entry_texts, details[0] if details else None, len(details), entry_amount))
            lines.append(line)
            statement_of_row.append(statement)
        if len(rows) >= _CHUNK_ROWS:
            chunks.append(_chunk(rows, lines, statement_of_row, done + 1))
            done += len(rows)
            rows, lines, statement_of_row = [], [], []
    chunks.append(_chunk(rows, lines, statement_of_row, done + 1))
    frame = pl.concat(chunks, rechunk=True) if len(chunks) > 1 else chunks[0]
    statements = document.statements
    known = pl.DataFrame({"__statement": pl.Series(range(len(statements)), dtype=pl.Int64),
                          **{c: pl.Series([s[c] for s in statements], dtype=pl.String) for c in _STATEMENT_COLUMNS}})
    frame = frame.join(known, on="__statement", how="left", maintain_order="left").drop("__statement")
    frame = frame.select(ROW_NUMBER, LINE_NUMBER, *CAMT053_COLUMNS)
    kind = document.kind or "camt053"
    identities = [identity for s in statements
                  if (identity := camt_identity(kind, s["account"], s["statement_id"])) is not None]
    return CamtEntries(kind, frame, warnings, len(statements), identities)


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
    if info.kind in CAMT_KINDS or settings.format in CAMT_KINDS:
        camt = read_camt(data, settings.expand_transaction_details)
        if camt.frame.height == 0:
            raise NoDataRows(f"the camt.{camt.kind[4:]} document has no entries (Ntry)")
        return SourceTable(frame=camt.frame, columns=list(CAMT053_COLUMNS),
                           content=ContentInfo(format="xml", kind=camt.kind, encoding=info.encoding),
                           warnings=camt.warnings, statement_count=camt.statement_count,
                           statements=camt.statements)
    doc = parse_xml(data)
    _strip_namespaces(doc.root)
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
