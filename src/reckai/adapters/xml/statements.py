"""XML sources into SourceTables: ISO 20022 camt.052 / camt.053 / camt.054, and any XML with a row path.

camt (bank-to-customer account report 052, statement 053, debit/credit notification 054): one row
per `Ntry` (entry), the same columns for the three. Namespaces camt.05x.001.02 ... .13 read the
same; another version is refused naming the namespace and its line. An entry with several `TxDtls`
(a batch booking) gives one row carrying the entry amount, the references of its first `TxDtls` and
`tx_details_count`; with `parse.expand_transaction_details` it gives one row per `TxDtls` with the
detail's own amount and the entry's dates, and a warning when the details do not sum to the entry.
Entries are cut out of the bytes and parsed by expat's C parser a batch at a time (a document with
a DTD, or UTF-16, is streamed through defusedxml instead), then read through cached path trees
(`_EntryReader`); rows become polars chunks every _CHUNK_ROWS, so neither a tree nor Python rows
grow with the number of entries (docs/file-formats.md, "Bounded memory, and how it is read").
"""

from __future__ import annotations

import bisect
import gc
import operator
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
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
from reckai.domain.ingestion.statements import CAMT_KINDS, StatementIdentity, camt_identity

CAMT053_COLUMNS = (
    "statement_id", "account", "account_currency", "entry_reference", "amount", "currency",
    "credit_debit", "reversal", "status", "booking_date", "value_date", "account_servicer_reference",
    "bank_transaction_code", "end_to_end_id", "transaction_id", "instruction_id", "mandate_id",
    "tx_details_count", "counterparty", "remittance_info", "additional_info",
)
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


class _PathNode:
    """One step of the camt paths read, by local name. `step` finds a child's node from the child's
    full tag (namespace included) once per distinct tag and caches it in `by_tag`, so no tag is
    stripped of its namespace or split per element."""

    __slots__ = ("by_tag", "children", "path")

    def __init__(self, path: str | None = None) -> None:
        self.path = path  # the key a leaf here fills, or None (only a step on the way)
        self.children: dict[str, _PathNode] = {}
        self.by_tag: dict[object, _PathNode | None] = {}

    def step(self, tag: object) -> _PathNode | None:
        found = self.children.get(local_name(tag)) if isinstance(tag, str) else None
        self.by_tag[tag] = found
        return found


_UNSEEN = _PathNode()


def _path_tree(paths: tuple[str, ...]) -> _PathNode:
    root = _PathNode()
    for path in paths:
        node = root
        for name in path.split("/"):
            node = node.children.setdefault(name, _PathNode())
        node.path = path
    return root


# What is read of an entry (outside its NtryDtls) and of a TxDtls: paths of local names under it.
_ENTRY_PATHS = ("NtryRef", "CdtDbtInd", "RvslInd", "Sts", "Sts/Cd", "BookgDt/Dt", "BookgDt/DtTm", "ValDt/Dt",
                "ValDt/DtTm", "AcctSvcrRef", "BkTxCd/Prtry/Cd", "BkTxCd/Domn/Cd", "BkTxCd/Domn/Fmly/Cd",
                "BkTxCd/Domn/Fmly/SubFmlyCd", "AddtlNtryInf")
_DETAIL_PATHS = ("CdtDbtInd", "Refs/AcctSvcrRef", "Refs/EndToEndId", "Refs/TxId", "Refs/InstrId", "Refs/MndtId",
                 "RltdPties/Cdtr/Nm", "RltdPties/Cdtr/Pty/Nm", "RltdPties/Dbtr/Nm", "RltdPties/Dbtr/Pty/Nm",
                 "AddtlTxInf")


def _collect(element: ET.Element, node: _PathNode, found: dict[str, str]) -> None:
    """Per path under `node`: the first non-empty (stripped) text of a leaf (an element without
    children) at that path, in document order, into `found`. Only the subtrees on a wanted path are
    visited; no recursion below them."""
    by_tag = node.by_tag
    for child in element:
        tag = child.tag
        sub = by_tag.get(tag, _UNSEEN)
        if sub is _UNSEEN:
            sub = node.step(tag)
        if sub is None:
            continue
        if len(child):
            if sub.children:
                _collect(child, sub, found)
        elif (path := sub.path) is not None and path not in found:
            text = child.text
            if text and (text := text.strip()):
                found[path] = text


_ROW_COLUMNS = ("entry_reference", "amount", "currency", "credit_debit", "reversal", "status", "booking_date",
                "value_date", "account_servicer_reference", "bank_transaction_code", "end_to_end_id",
                "transaction_id", "instruction_id", "mandate_id", "tx_details_count", "counterparty",
                "remittance_info", "additional_info")  # CAMT053_COLUMNS less the statement's own
_Row = tuple[str | None, ...]  # one value per _ROW_COLUMNS


class _EntryReader:
    """Reads `Ntry` elements (as the C parser built them) into rows, comparing full tags through
    the `_PathNode` caches. `ustrd_tag`: the full tag every `Ustrd` of the document has, when the
    document is known to use one namespace (then C's `iter(tag)` finds them); None: each element
    of a TxDtls is compared by local name."""

    def __init__(self, ustrd_tag: str | None = None) -> None:
        self.entry_paths = _path_tree(_ENTRY_PATHS)
        self.amount = self.entry_paths.children["Amt"] = _PathNode()
        self.entry_details = self.entry_paths.children["NtryDtls"] = _PathNode()
        self.detail = self.entry_details.children["TxDtls"] = _PathNode()
        self.detail_paths = _path_tree(_DETAIL_PATHS)
        self.ustrd_tag = ustrd_tag

    def entry(self, element: ET.Element) -> tuple[dict[str, str], ET.Element | None, list[ET.Element]]:
        """The entry's texts (its NtryDtls left out), its first `Amt`, its `NtryDtls/TxDtls`."""
        found: dict[str, str] = {}
        amount: ET.Element | None = None
        details: list[ET.Element] = []
        node = self.entry_paths
        by_tag = node.by_tag
        for child in element:
            tag = child.tag
            sub = by_tag.get(tag, _UNSEEN)
            if sub is _UNSEEN:
                sub = node.step(tag)
            if sub is None:
                continue
            if sub is self.amount:
                if amount is None:
                    amount = child
            elif sub is self.entry_details:
                holder = self.entry_details
                for detail in child:
                    found_detail = holder.by_tag.get(detail.tag, _UNSEEN)
                    if found_detail is _UNSEEN:
                        found_detail = holder.step(detail.tag)
                    if found_detail is not None:
                        details.append(detail)
            elif len(child):
                if sub.children:
                    _collect(child, sub, found)
            elif (path := sub.path) is not None and path not in found:
                text = child.text
                if text and (text := text.strip()):
                    found[path] = text
        return found, amount, details

    def remittance(self, detail: ET.Element) -> str | None:
        """Every `Ustrd` under the TxDtls, at any depth, joined by a space."""
        if self.ustrd_tag is not None:
            candidates: Iterator[ET.Element] = detail.iter(self.ustrd_tag)
        else:
            candidates = (u for u in detail.iter() if isinstance(u.tag, str) and local_name(u.tag) == "Ustrd")
        texts = [text for u in candidates if u.text and (text := u.text.strip())]
        return " ".join(texts) or None

    def row(self, entry: dict[str, str], detail_element: ET.Element | None, details_count: int,
            amount_of: ET.Element | None, *, expanded: bool = False) -> _Row:
        detail: dict[str, str] = {}
        remittance = None
        if detail_element is not None:
            _collect(detail_element, self.detail_paths, detail)
            remittance = self.remittance(detail_element)
        indicator = entry.get("CdtDbtInd")
        code = entry.get("BkTxCd/Prtry/Cd")
        domain, family, sub_family = (entry.get("BkTxCd/Domn/Cd"), entry.get("BkTxCd/Domn/Fmly/Cd"),
                                      entry.get("BkTxCd/Domn/Fmly/SubFmlyCd"))
        if domain and family and sub_family:
            code = f"{domain}/{family}/{sub_family}"
        name, party_name = _PARTY_PATHS[indicator == "DBIT"]
        return (
            entry.get("NtryRef"),
            amount_of.text.strip() if amount_of is not None and amount_of.text else None,
            amount_of.get("Ccy") if amount_of is not None else None,
            (detail.get("CdtDbtInd") if expanded else None) or indicator,
            entry.get("RvslInd"), entry.get("Sts/Cd") or entry.get("Sts"),
            entry.get("BookgDt/Dt") or entry.get("BookgDt/DtTm"),
            entry.get("ValDt/Dt") or entry.get("ValDt/DtTm"),
            entry.get("AcctSvcrRef") or detail.get("Refs/AcctSvcrRef"),
            code,
            detail.get("Refs/EndToEndId"), detail.get("Refs/TxId"), detail.get("Refs/InstrId"),
            detail.get("Refs/MndtId"),
            str(details_count),
            detail.get(name) or detail.get(party_name),
            remittance,
            entry.get("AddtlNtryInf") or detail.get("AddtlTxInf"),
        )


# The counterparty: the creditor of a debit, the debtor of anything else.
_PARTY_PATHS = {True: ("RltdPties/Cdtr/Nm", "RltdPties/Cdtr/Pty/Nm"),
                False: ("RltdPties/Dbtr/Nm", "RltdPties/Dbtr/Pty/Nm")}


def _first_child(element: ET.Element | None, name: str) -> ET.Element | None:
    """The first child whose local name is `name` (what `find(name)` gave on stripped tags)."""
    if element is None:
        return None
    for child in element:
        if isinstance(child.tag, str) and local_name(child.tag) == name:
            return child
    return None


def _detail_amount(detail: ET.Element) -> ET.Element | None:
    """`Amt`, else the first `AmtDtls/TxAmt/Amt`."""
    if (own := _first_child(detail, "Amt")) is not None:
        return own
    for holder in detail:
        if isinstance(holder.tag, str) and local_name(holder.tag) == "AmtDtls":
            for amount in holder:
                if (isinstance(amount.tag, str) and local_name(amount.tag) == "TxAmt"
                        and (found := _first_child(amount, "Amt")) is not None):
                    return found
    return None


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


_CHUNK_ROWS = 20_000  # rows held as Python tuples before they become a (compact) polars chunk


@dataclass
class CamtEntries:
    kind: str  # camt052 | camt053 | camt054
    frame: pl.DataFrame  # __row_number, __line_number, CAMT053_COLUMNS
    warnings: list[SourceWarning] = field(default_factory=list)
    statement_count: int = 0
    statements: list[StatementIdentity] = field(default_factory=list)  # those with an Id


def _chunk(rows: list[_Row], lines: list[int], statement_of_row: list[int], first_row: int) -> pl.DataFrame:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in _ROW_COLUMNS]
    return pl.DataFrame({
        ROW_NUMBER: pl.Series(range(first_row, first_row + len(rows)), dtype=pl.Int64),
        LINE_NUMBER: pl.Series(lines, dtype=pl.Int64),
        "__statement": pl.Series(statement_of_row, dtype=pl.Int64),
        **{c: pl.Series(values, dtype=pl.String) for c, values in zip(_ROW_COLUMNS, columns, strict=True)},
    })


_STATEMENT_COLUMNS = ("statement_id", "account", "account_currency")
_PRUNED = frozenset({"Ntry", *_STATEMENT_ELEMENTS})  # dropped from the tree once read


@dataclass
class _CamtDocument:
    kind: str | None = None
    statements: list[dict[str, str | None]] = field(default_factory=list)
    # The full tag of `Ustrd` when every element of the document is in one namespace (known before
    # the first entry is handed over), else None.
    ustrd_tag: str | None = None


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


def _uniform_ustrd_tag(data: bytes, prefix: bytes | None, attributes: bytes, declarations: bytes) -> str | None:
    """`Ustrd`'s full tag when every element of the document is in the root's (default) namespace:
    the root has no prefix, no namespace is declared anywhere but on the root, and no element
    start tag uses a prefix the root declares (`<p:`, searched in C). Else None (then each TxDtls
    element is compared by local name)."""
    if prefix or data.count(b"xmlns") != attributes.count(b"xmlns"):
        return None
    default = re.search(rb"(?<![\w:.-])xmlns=([\"'])([^\"']*)\1", declarations)
    namespace = default.group(2) if default else b""
    if not namespace.isascii() or b"&" in namespace:
        return None  # as written, not necessarily as the parser reads it
    for declared in (b"xml", *re.findall(rb"xmlns:([\w.-]+)=", declarations)):
        if data.find(b"<" + declared + b":") != -1:
            return None
    return "{" + namespace.decode() + "}Ustrd" if namespace else "Ustrd"


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
    document.ustrd_tag = _uniform_ustrd_tag(data, prefix, attributes, declarations)
    encoding = re.match(rb"\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)", data)
    head = b'<?xml version="1.0" encoding="' + encoding.group(1) + b'"?>' if encoding else b""
    opening, closing = head + b"<fragment " + declarations + b">", b"</fragment>"

    def parse(fragment: bytes) -> ET.Element:
        return ET.fromstring(opening + fragment + closing)[0]

    cut = _plain_cut(data, prefix)
    if cut is not None:
        starts, entry_starts, entry_ends = cut
    else:
        starts, entry_starts, entry_ends = [m.start() for m in _STATEMENT_START.finditer(data)], [], []
    for number, position in enumerate(starts):
        found = _STATEMENT_START.match(data, position)
        document.kind = document.kind or _STATEMENT_ELEMENTS[found.group(1).decode()] if found else document.kind
        if cut is not None:
            following = bisect.bisect_left(entry_starts, position)
            first_entry_at = entry_starts[following] if following < len(entry_starts) else len(data)
        else:
            first_entry = _ENTRY.search(data, position)
            first_entry_at = first_entry.start() if first_entry else len(data)
        header_end = min(first_entry_at, starts[number + 1] if number + 1 < len(starts) else len(data))
        statement_id = _STATEMENT_ID.search(data, position, header_end)
        account_match = _ACCOUNT.search(data, position, header_end)
        account = parse(account_match.group(0)) if account_match else None
        if account is not None:
            _strip_namespaces(account)
        document.statements.append({
            "statement_id": statement_id.group(1).decode("utf-8", "replace").strip() or None
            if statement_id else None,
            "account": _first(account, "Id/IBAN", "Id/Othr/Id"), "account_currency": _text(account, "Ccy")})
    if cut is not None:
        yield from _cut_entries(data, starts, entry_starts, entry_ends, opening, closing)
        return
    # Consecutive entries of one statement are siblings with nothing but blanks (or comments)
    # between them: they are parsed together, _ENTRY_BATCH at a time.
    line, counted = 1, 0
    batch: list[tuple[int, int, int]] = []  # (start, end, line)
    batch_statement = -1

    def flush(end: int) -> Iterator[tuple[ET.Element, int, int]]:
        parsed = _parsed_together(opening + data[batch[0][0]:end] + closing, len(batch))
        if parsed is None:  # not siblings after all (an entry inside another element): each alone
            parsed = [ET.fromstring(opening + data[start:stop] + closing)[0] for start, stop, _ in batch]
        for element, (_, _, entry_line) in zip(parsed, batch, strict=True):
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
        batch.append((match.start(), match.end(), line))
        batch_statement, end = statement, match.end()
    if batch:
        yield from flush(end)


_XML_DECLARATION = re.compile(rb"(?:\xef\xbb\xbf)?\s*<\?xml[\s?]")


def _tag_names(data: bytes, name: bytes) -> int:
    """How often `name` stands after `<`, `</` or a prefix's `:` and before a blank or `>`. The
    literal first, the lookbehind after it: a search in C at memchr speed. The empty group makes
    findall list one shared empty bytes object per match."""
    return len(re.findall(name + b"(?<=[<:/]" + name + rb")[\s>]()", data))


def _plain_cut(data: bytes, prefix: bytes | None) -> tuple[list[int], list[int], list[int]] | None:
    """(statement starts, entry starts, entry ends) found by plain search in C, when the document
    allows it, else None (then `_ENTRY` cuts entries one by one, as before).

    It allows it when every `<` begins a tag: no comment, CDATA section or processing instruction
    (the XML declaration aside; the document has no DTD, and `<` is never raw in text or an
    attribute). Then the start tags `<p:Ntry` (p: the root's prefix, if any) and the end tags
    `</p:Ntry>` are the entries, provided that `Ntry` followed by a blank or `>` occurs nowhere
    else (no other prefix, nothing in a text; `BkToCstmrStmt` is not `Stmt`) and that starts and ends alternate (no entry inside
    another); the same for the statement elements. The document is well-formed (checked first), so
    each start tag has its end tag."""
    declaration = _XML_DECLARATION.match(data)
    processing = data.find(b"<?", declaration.end() if declaration else 0)
    if b"<!--" in data or b"<![CDATA[" in data or processing != -1:
        return None
    name = re.escape(prefix + b":" if prefix else b"")
    statements: list[int] = []
    for element in _STATEMENT_ELEMENTS:
        named = _tag_names(data, element.encode())
        found = [m.start() for m in re.finditer(b"<" + name + element.encode() + rb"[\s>]", data)] if named else []
        if named != 2 * len(found):
            return None
        statements.extend(found)
    starts = [m.start() for m in re.finditer(b"<" + name + rb"Ntry[\s>]", data)]
    ends = [m.end() for m in re.finditer(b"</" + name + rb"Ntry\s*>", data)]
    if (len(ends) != len(starts) or _tag_names(data, b"Ntry") != 2 * len(starts)
            or not all(map(operator.lt, starts, ends)) or not all(map(operator.lt, ends, starts[1:]))):
        return None
    return sorted(statements), starts, ends


def _parsed_together(wrapped: bytes, count: int) -> list[ET.Element] | None:
    """The entries of a batch parsed at once, or None unless it parses to exactly `count` children,
    each an `Ntry` (then the entries were not consecutive siblings: the caller parses each alone)."""
    try:
        parsed = list(ET.fromstring(wrapped))
    except ET.ParseError:
        return None
    if len(parsed) != count or any(local_name(element.tag) != "Ntry" for element in parsed):
        return None
    return parsed


def _cut_entries(data: bytes, statements: list[int], starts: list[int], ends: list[int], opening: bytes,
                 closing: bytes) -> Iterator[tuple[ET.Element, int, int]]:
    """(Ntry, line, statement number) for entries cut by `_plain_cut`: the entries of one statement
    parsed together, _ENTRY_BATCH at a time, when they are consecutive siblings (the batch then
    parses to exactly its entries, each an `Ntry`); else each alone."""
    line, counted, first, total = 1, 0, 0, len(starts)
    while first < total:
        statement = bisect.bisect_right(statements, starts[first]) - 1
        limit = statements[statement + 1] if statement + 1 < len(statements) else len(data)
        last = min(first + _ENTRY_BATCH, bisect.bisect_left(starts, limit, first))
        lines = []
        for start in starts[first:last]:
            line += data.count(b"\n", counted, start)
            counted = start
            lines.append(line)
        parsed = _parsed_together(opening + data[starts[first]:ends[last - 1]] + closing, last - first)
        if parsed is None:
            parsed = [ET.fromstring(opening + data[starts[k]:ends[k]] + closing)[0] for k in range(first, last)]
        for element, entry_line in zip(parsed, lines, strict=True):
            yield element, entry_line, statement
        first = last


@contextmanager
def _collection_paused() -> Iterator[None]:
    """The cyclic garbage collector off while entries are read: every element the C parser builds
    is a tracked container, so the collector ran thousands of times over the rows held, about a
    quarter of the reading time. Reading makes no reference cycles; the collector is restored
    (if it was on) when done."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_camt(data: bytes, expand_details: bool = False) -> CamtEntries:
    """The entries of a camt.052/053/054 document, in bounded memory: neither the document's tree
    nor the rows as Python objects grow with the file (rows become polars chunks every
    _CHUNK_ROWS); the statement's Id and account are joined to its rows by the statement's number."""
    with _collection_paused():
        return _read_camt(data, expand_details)


def _read_camt(data: bytes, expand_details: bool) -> CamtEntries:
    chunks: list[pl.DataFrame] = []
    done = 0
    rows: list[_Row] = []
    lines: list[int] = []
    statement_of_row: list[int] = []
    warnings: list[SourceWarning] = []
    document = _CamtDocument()
    entries = _entries_by_fragments(data, document) if plain_document(data) else _entries_by_tree(data, document)
    reader: _EntryReader | None = None
    for element, line, statement in entries:
        if reader is None:
            reader = _EntryReader(document.ustrd_tag)
        entry_texts, entry_amount, details = reader.entry(element)
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
                rows.append(reader.row(entry_texts, detail, len(details),
                                       own if own is not None else entry_amount, expanded=True))
                lines.append(line)
                statement_of_row.append(statement)
        else:
            rows.append(reader.row(entry_texts, details[0] if details else None, len(details), entry_amount))
            lines.append(line)
            statement_of_row.append(statement)
        if len(rows) >= _CHUNK_ROWS:
            chunks.append(_chunk(rows, lines, statement_of_row, done + 1))
            done += len(rows)
            rows, lines, statement_of_row = [], [], []
    chunks.append(_chunk(rows, lines, statement_of_row, done + 1))
    # Chunks kept as they are (no copy into one buffer per column); the statement's columns are
    # looked up by its number (a join would copy every column of the rows).
    frame = pl.concat(chunks, rechunk=False) if len(chunks) > 1 else chunks[0]
    del chunks
    statements = document.statements
    number = pl.col("__statement")
    frame = frame.select(ROW_NUMBER, LINE_NUMBER, *[
        number.replace_strict(list(range(len(statements))), [s[c] for s in statements], default=None,
                              return_dtype=pl.String).alias(c) if c in _STATEMENT_COLUMNS else pl.col(c)
        for c in CAMT053_COLUMNS])
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
