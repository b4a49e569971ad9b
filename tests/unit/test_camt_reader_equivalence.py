"""The camt reader against an independent reading of the same document (issue 18, camt speed).

`read_camt` cuts entries out of the bytes, parses them in batches and reads known paths through
cached path trees. The oracle here parses the whole document into one tree, strips namespaces and
reads every entry with the rules the reader had before (`_texts`: the first non-empty text of a
leaf per path; the first TxDtls; every Ustrd under it; ...). Documents are generated with every
optional element, repeated and empty elements, prefixes, a second namespace, comments, text
between entries and pretty printing, so that the fast cut, its fallbacks and the regex cut all
run.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from decimal import Decimal, InvalidOperation

from hypothesis import given, settings
from hypothesis import strategies as st

from reckai.adapters.xml.safe_xml import start_tag_lines
from reckai.adapters.xml.statements import CAMT053_COLUMNS, read_camt

EXAMPLES = settings(max_examples=int(os.environ.get("RECKAI_FUZZ_EXAMPLES", "120")), deadline=None)
NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"


# --- the oracle: one tree, namespaces stripped, the former reading rules ---------------------------


def _strip(root: ET.Element) -> None:
    for element in root.iter():
        if isinstance(element.tag, str):
            element.tag = element.tag.rsplit("}", 1)[-1]


def _texts(element: ET.Element | None, skip: str | None = None) -> dict[str, str]:
    found: dict[str, str] = {}

    def walk(node: ET.Element, prefix: str) -> None:
        for child in node:
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


def _oracle_row(entry: dict[str, str], detail_element: ET.Element | None, count: int,
                amount_of: ET.Element | None, expanded: bool) -> dict[str, str | None]:
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
        "end_to_end_id": detail.get("Refs/EndToEndId"), "transaction_id": detail.get("Refs/TxId"),
        "instruction_id": detail.get("Refs/InstrId"), "mandate_id": detail.get("Refs/MndtId"),
        "tx_details_count": str(count),
        "counterparty": detail.get(f"RltdPties/{party}/Nm") or detail.get(f"RltdPties/{party}/Pty/Nm"),
        "remittance_info": " ".join(remittance) or None,
        "additional_info": entry.get("AddtlNtryInf") or detail.get("AddtlTxInf"),
    }


def _decimal(element: ET.Element | None) -> Decimal | None:
    try:
        return Decimal(element.text.strip()) if element is not None and element.text else None
    except InvalidOperation:
        return None


def _oracle(data: bytes, expand: bool) -> tuple[list[dict[str, str | None]], int]:
    root = ET.fromstring(data)
    _strip(root)
    rows: list[dict[str, str | None]] = []
    warnings = 0
    for statement in root.iter("Stmt"):
        account = statement.find("Acct")
        common = {"statement_id": (statement.findtext("Id") or "").strip() or None,
                  "account": _texts(account).get("Id/IBAN") or _texts(account).get("Id/Othr/Id"),
                  "account_currency": _texts(account).get("Ccy")}
        for entry in statement.iter("Ntry"):
            texts = _texts(entry, skip="NtryDtls")
            details = entry.findall("NtryDtls/TxDtls")
            amount = entry.find("Amt")
            if expand and len(details) > 1:
                amounts = [_decimal(d.find("Amt") if d.find("Amt") is not None else d.find("AmtDtls/TxAmt/Amt"))
                           for d in details]
                total = _decimal(amount)
                if total is not None and None not in amounts and sum(a for a in amounts if a) != total:
                    warnings += 1
                for detail in details:
                    own = detail.find("Amt") if detail.find("Amt") is not None else detail.find("AmtDtls/TxAmt/Amt")
                    rows.append({**common, **_oracle_row(texts, detail, len(details),
                                                         own if own is not None else amount, True)})
            else:
                rows.append({**common, **_oracle_row(texts, details[0] if details else None, len(details),
                                                     amount, False)})
    return rows, warnings


# --- generated documents ---------------------------------------------------------------------------

_TEXTS = st.sampled_from(["", " ", "A", " B1 ", "ACME &amp; Co", "x&lt;y", "Ünïcödé", "12.50", "BOOK", "DBIT",
                          "CRDT", "2025-01-02", "2025-01-02T10:00:00"])


@st.composite
def _element(draw: st.DrawFn, name: str, children: list[str] | None = None) -> str:
    """`<name>` with a text, or with the given children (each maybe missing, maybe twice)."""
    if children is None:
        return f"<{name}>{draw(_TEXTS)}</{name}>"
    inner = "".join(draw(_element(child)) * draw(st.sampled_from([0, 1, 1, 2])) for child in children)
    return f"<{name}>{inner}</{name}>"


def _maybe(draw: st.DrawFn, text: str, twice: bool = True) -> str:
    return text * draw(st.sampled_from([0, 1, 1, 2] if twice else [0, 1]))


@st.composite
def _detail(draw: st.DrawFn) -> str:
    parts = [
        _maybe(draw, draw(_element("CdtDbtInd"))),
        _maybe(draw, f'<Amt Ccy="{draw(st.sampled_from(["EUR", "USD"]))}">{draw(st.sampled_from(["1.00", "2.50", " 3 ", ""]))}</Amt>'),
        _maybe(draw, f'<AmtDtls><TxAmt><Amt Ccy="EUR">{draw(st.sampled_from(["4.00", "0.5"]))}</Amt></TxAmt></AmtDtls>'),
        _maybe(draw, draw(_element("Refs", ["AcctSvcrRef", "EndToEndId", "TxId", "InstrId", "MndtId", "Other"]))),
        _maybe(draw, "<RltdPties>" + draw(_element("Cdtr", ["Nm"])) + "<Dbtr><Pty>" + draw(_element("Nm"))
               + "</Pty></Dbtr>" + draw(_element("Dbtr", ["Nm"])) + "</RltdPties>"),
        _maybe(draw, "<RmtInf>" + draw(_element("Ustrd")) * draw(st.integers(0, 3))
               + "<Strd><Ustrd>" + draw(_TEXTS) + "</Ustrd></Strd></RmtInf>"),
        _maybe(draw, draw(_element("AddtlTxInf"))),
        _maybe(draw, "<SplmtryData><Envlp><Ustrd>deep</Ustrd><Refs><TxId>not here</TxId></Refs></Envlp></SplmtryData>"),
    ]
    return "<TxDtls>" + "".join(draw(st.permutations(parts))) + "</TxDtls>"


@st.composite
def _entry(draw: st.DrawFn) -> str:
    parts = [
        _maybe(draw, draw(_element("NtryRef"))),
        _maybe(draw, f'<Amt Ccy="EUR">{draw(st.sampled_from(["1.00", "7.50", "10", " ", ""]))}</Amt>'),
        _maybe(draw, draw(_element("CdtDbtInd"))),
        _maybe(draw, draw(_element("RvslInd"))),
        _maybe(draw, draw(st.one_of(_element("Sts"), _element("Sts", ["Cd"])))),
        _maybe(draw, draw(_element("BookgDt", ["Dt", "DtTm"]))),
        _maybe(draw, draw(_element("ValDt", ["Dt", "DtTm"]))),
        _maybe(draw, draw(_element("AcctSvcrRef"))),
        _maybe(draw, "<BkTxCd><Domn>" + draw(_element("Cd")) + draw(_element("Fmly", ["Cd", "SubFmlyCd"]))
               + "</Domn>" + draw(_element("Prtry", ["Cd", "Issr"])) + "</BkTxCd>"),
        _maybe(draw, draw(_element("AddtlNtryInf"))),
        _maybe(draw, "<NtryDtls>" + "".join(draw(st.lists(_detail(), max_size=3))) + "</NtryDtls>"),
        _maybe(draw, "<Unknown><NtryRef>inner</NtryRef></Unknown>"),
    ]
    return "<Ntry>" + "".join(draw(st.permutations(parts))) + "</Ntry>"


@st.composite
def camt_documents(draw: st.DrawFn) -> bytes:
    prefix = draw(st.sampled_from(["", "c:"]))
    second = draw(st.booleans())  # a second namespace declared (and maybe used) on the root
    between = draw(st.sampled_from(["", "\n", "\n    ", "<!-- between -->", "<Other/>", "text"]))
    statements = []
    for number in range(draw(st.integers(1, 3))):
        entries = [draw(_entry()) for _ in range(draw(st.integers(0, 4)))]
        if entries and draw(st.integers(0, 4)) == 0:  # an entry inside another element (not a sibling)
            wrapped = draw(st.integers(0, len(entries) - 1))
            entries[wrapped] = f"<Wrap>{entries[wrapped]}</Wrap>"
        account = draw(st.sampled_from(["<Acct><Id><IBAN>DE89</IBAN></Id><Ccy>EUR</Ccy></Acct>",
                                        "<Acct><Id><Othr><Id>12345</Id></Othr></Id></Acct>", ""]))
        statements.append(f"<Stmt><Id>S{number}</Id>{account}" + between.join(entries) + "</Stmt>")
    body = "\n".join(statements)
    if prefix:  # every element in the prefixed namespace
        body = body.replace("</", "\x00").replace("<", "<c:").replace("\x00", "</c:").replace("<c:!--", "<!--")
    if second and draw(st.booleans()):  # a Ustrd of another namespace in a TxDtls: remittance all the same
        body = body.replace(f"<{prefix}TxDtls>", f'<{prefix}TxDtls><x:Ustrd xmlns:x="urn:other">foreign</x:Ustrd>', 1)
    declarations = (f'xmlns:c="{NAMESPACE}"' if prefix else f'xmlns="{NAMESPACE}"')
    if second:
        declarations += ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    document = (f'<?xml version="1.0" encoding="UTF-8"?>\n<{prefix}Document {declarations}>'
                f"<{prefix}BkToCstmrStmt>{body}</{prefix}BkToCstmrStmt></{prefix}Document>")
    return document.encode()


@EXAMPLES
@given(data=camt_documents(), expand=st.booleans())
def test_read_camt_reads_what_the_whole_tree_reading_reads(data: bytes, expand: bool) -> None:
    expected, warnings = _oracle(data, expand)
    if not expected:
        return  # no entry: read_xml_table refuses it (NoDataRows); nothing to compare
    camt = read_camt(data, expand)
    rows = camt.frame.select(*CAMT053_COLUMNS).to_dicts()
    assert rows == expected
    assert len(camt.warnings) == warnings
    entry_lines = start_tag_lines(data, "Ntry")
    assert set(camt.frame.get_column("__line_number").to_list()) <= set(entry_lines)
    assert camt.frame.get_column("__row_number").to_list() == list(range(1, len(rows) + 1))


def test_a_pretty_printed_document_takes_the_fast_cut_and_reads_the_same() -> None:
    entry = ('<Ntry>\n  <NtryRef>N1</NtryRef>\n  <Amt Ccy="EUR">1.50</Amt>\n  <CdtDbtInd>DBIT</CdtDbtInd>\n'
             "  <NtryDtls><TxDtls><RltdPties><Cdtr><Pty><Nm>ACME</Nm></Pty></Cdtr></RltdPties>\n"
             "  <RmtInf><Ustrd>a</Ustrd><Ustrd> b </Ustrd></RmtInf></TxDtls></NtryDtls>\n</Ntry>\n")
    data = (f'<?xml version="1.0"?>\n<Document xmlns="{NAMESPACE}"><BkToCstmrStmt><Stmt><Id>S</Id>\n'
            + entry * 2500 + "</Stmt></BkToCstmrStmt></Document>").encode()
    camt = read_camt(data)
    assert camt.frame.height == 2500
    assert camt.frame.row(2499, named=True)["counterparty"] == "ACME"
    assert camt.frame.row(2499, named=True)["remittance_info"] == "a b"
    assert camt.frame.get_column("__line_number").to_list() == start_tag_lines(data, "Ntry")
    assert camt.frame.select(*CAMT053_COLUMNS).to_dicts() == _oracle(data, False)[0]
