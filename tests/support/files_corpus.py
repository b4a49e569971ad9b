"""The bad-file corpus of issue 4 and a few good files, shared by the file feature's unit and
integration tests. Every entry says what an upload of it must answer."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

GOOD_CSV = (b"date,amount,currency,reference,narration\n"
            b"2024-01-02,1250.50,NGN,123456789012,POS PURCHASE RRN:123456789012\n"
            b"2024-01-03,0.29,NGN,123456789013,POS PURCHASE RRN:123456789013\n")

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Statement><Txn><Amt>&lol9;</Amt></Txn></Statement>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE s [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Statement><Txn><Amt>&xxe;</Amt></Txn></Statement>"""


def zip_bomb(inflated_mib: int = 64) -> bytes:
    """An OOXML-looking zip whose sheet inflates to `inflated_mib` MiB of zeros (~70 KiB on disk)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(inflated_mib):
                member.write(block)
    return buffer.getvalue()


@dataclass(frozen=True)
class BadFile:
    name: str
    filename: str
    data: bytes
    code: str  # the error code the upload answers


def refused_at_upload() -> list[BadFile]:
    """Files refused by content before they are accepted: no row, no object, quota unchanged."""
    return [
        BadFile("zero_bytes", "statement.csv", b"", "EMPTY_FILE"),
        BadFile("blank_lines_only", "statement.csv", b"\n\n   \n\r\n", "EMPTY_FILE"),
        BadFile("header_only", "statement.csv", b"date,amount,currency,reference\n", "NO_DATA_ROWS"),
        BadFile("png_renamed_csv", "statement.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(300),
                "BINARY_CONTENT"),
        BadFile("zip_bomb_renamed_xlsx", "statement.xlsx", zip_bomb(64), "ARCHIVE_TOO_LARGE"),
        BadFile("xml_bomb", "statement.xml", BILLION_LAUGHS, "FORBIDDEN_XML_CONSTRUCT"),
        BadFile("external_entity", "statement.xml", EXTERNAL_ENTITY, "FORBIDDEN_XML_CONSTRUCT"),
        BadFile("wrong_encoding", "statement.csv",
                b"date,amount,currency\n2024-01-02,\x81\x8d\x8f\x90,NGN\n2024-01-03,1.00,NGN\n", "UNDECODABLE_TEXT"),
        BadFile("text_named_xlsx", "statement.xlsx", b"date,amount\n2024-01-02,1.00\n", "CONTENT_MISMATCH"),
    ]


# Accepted at upload (the original is always kept), refused at normalization with a report.
RAGGED_CSV = (b"date,amount,currency,reference\n"
              b"2024-01-02,100.00,NGN,123456789012\n"
              b"2024-01-03,200.00\n"
              b"2024-01-04,300.00,NGN,123456789014,EXTRA\n"
              b"2024-01-05,400.00,NGN,123456789015\n")
UNPARSEABLE_CSV = (b"date,amount,currency,reference\n"
                   b"2024-01-02,100.00,NGN,123456789012\n"
                   b"not a date,12abc,NGN,123456789013\n"
                   b"2024-01-04,300.00,NGN,123456789014\n")
EXPLICIT_MAPPING = {
    "parse": {"format": "csv", "delimiter": ","},
    "fields": {
        "amount": {"column": "amount"},
        "direction": {"constant": "debit"},
        "currency": {"column": "currency"},
        "transaction_date": {"column": "date", "formats": ["%Y-%m-%d"]},
        "reference": {"column": "reference"},
    },
}
