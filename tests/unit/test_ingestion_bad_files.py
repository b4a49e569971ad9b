"""The bad-file corpus: every file gets a typed error with a code and a message a person can act on."""

from __future__ import annotations

import io
import zipfile

import pytest

from reckai.adapters.polars.normalize import normalize_file
from reckai.adapters.polars.readers import inspect_content, read_table
from reckai.bootstrap import bootstrap_in_memory
from reckai.domain.ingestion.errors import (
    ArchiveTooLarge,
    BinaryContent,
    ContentMismatch,
    EmptyFile,
    ForbiddenXmlConstruct,
    IngestionError,
    InvalidMapping,
    InvalidWorkbook,
    MalformedXml,
    NoDataRows,
    UndecodableText,
)
from reckai.domain.ingestion.mapping import ParseSettings, parse_mapping
from reckai.domain.ingestion.sniffing import DEFAULT_MAX_INFLATED_BYTES, check_ooxml_workbook, decode_text

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


def zip_bomb(inflated_mib: int, name: str = "xl/worksheets/sheet1.xml") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open(name, "w", force_zip64=inflated_mib >= 4096) as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(inflated_mib):
                member.write(block)
    return buffer.getvalue()


def assert_actionable(error: IngestionError) -> None:
    assert error.code and error.code != "ingestion_error"
    assert len(error.message) > 20
    assert error.to_dict()["code"] == error.code


@pytest.mark.parametrize(("data", "filename", "error_type"), [
    (b"", "statement.csv", EmptyFile),
    (b"\n\n  \n", "statement.csv", EmptyFile),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "statement.csv", BinaryContent),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj" + bytes(100), "statement.csv", BinaryContent),
    (bytes(range(256)) * 4, "statement.csv", BinaryContent),
    (b"date,amount\n2025-12-01,1.00\n", "statement.xlsx", ContentMismatch),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(20), "statement.xls", InvalidWorkbook),
    (b"PK\x03\x04 this is not really a zip", "statement.xlsx", InvalidWorkbook),
    (BILLION_LAUGHS, "statement.xml", ForbiddenXmlConstruct),
    (EXTERNAL_ENTITY, "statement.xml", ForbiddenXmlConstruct),
    (b"<Statement><Txn><Amt>1</Amt></Statement>", "statement.xml", MalformedXml),
])
def test_bad_files_are_refused_at_inspection(data: bytes, filename: str, error_type: type) -> None:
    with pytest.raises(error_type) as caught:
        inspect_content(data, filename)
    assert_actionable(caught.value)


def test_zip_bomb_renamed_xlsx_is_refused_by_counting_inflated_bytes() -> None:
    bomb = zip_bomb(64)  # 64 MiB of zeros in a ~70 KiB file: ratio far past 200:1
    assert len(bomb) < 1024 * 1024
    with pytest.raises(ArchiveTooLarge) as caught:
        inspect_content(bomb, "statement.xlsx")
    assert "zip bomb" in caught.value.message
    # an absolute cap applies too, whatever the ratio
    with pytest.raises(ArchiveTooLarge):
        check_ooxml_workbook(zip_bomb(3), max_inflated_bytes=2 * 1024 * 1024)


def test_the_file_parser_bootstrap_builds_honours_its_inflated_bytes_limit() -> None:
    container = bootstrap_in_memory()
    try:
        built = container.file_parser
    finally:
        container.close()
    bomb = zip_bomb(3)  # 3 MiB inflated: under the ratio floor, so only the absolute cap refuses it
    assert built.max_inflated_bytes == DEFAULT_MAX_INFLATED_BYTES
    assert built.inspect(bomb, "statement.xlsx").kind == "xlsx"
    limited = type(built)(max_inflated_bytes=2 * 1024 * 1024)
    mapping = limited.parse_mapping({"fields": {
        "amount": {"column": "amount"}, "direction": {"constant": "debit"},
        "currency": {"constant": "NGN"}, "transaction_date": {"column": "date"}}})
    with pytest.raises(ArchiveTooLarge):
        limited.inspect(bomb, "statement.xlsx")
    with pytest.raises(ArchiveTooLarge):
        limited.propose(bomb, "statement.xlsx")
    with pytest.raises(ArchiveTooLarge):
        limited.normalize(bomb, mapping, "statement.xlsx")


def test_zip_whose_header_lies_about_sizes_is_refused() -> None:
    honest = zip_bomb(1)
    # Shrink the declared uncompressed size in the local and central headers: reading stops short
    # and the CRC check fails, so the workbook is refused as corrupt rather than trusted.
    lying = honest.replace((1024 * 1024).to_bytes(4, "little"), (10).to_bytes(4, "little"))
    assert lying != honest
    with pytest.raises((InvalidWorkbook, ArchiveTooLarge)):
        check_ooxml_workbook(lying)


def test_zip_that_is_not_a_workbook() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(InvalidWorkbook) as caught:
        inspect_content(buffer.getvalue(), "statement.xlsx")
    assert "not an Excel workbook" in caught.value.message


def test_text_that_is_no_known_encoding() -> None:
    # 0x81 and 0x8d are undefined in windows-1252 and invalid as UTF-8 here
    with pytest.raises(UndecodableText) as caught:
        decode_text(b"date,amount\n2025-12-01,\x81\x8d\n")
    assert "offset" in caught.value.message and caught.value.details["offset"] == 23
    assert_actionable(caught.value)


def test_wrong_declared_encoding() -> None:
    latin = "date,amount,narration\n2025-12-01,1.00,Caf\xe9\n".encode("cp1252")
    with pytest.raises(UndecodableText):
        read_table(latin, ParseSettings(encoding="utf-8"))


def test_header_only_and_blank_body() -> None:
    with pytest.raises(NoDataRows) as caught:
        read_table(b"date,amount,reference\n\n\n")
    assert_actionable(caught.value)


def test_unknown_mapping_keys_and_bad_values_are_refused() -> None:
    good = {"amount": {"column": "a"}, "direction": {"constant": "debit"}, "currency": {"constant": "NGN"},
            "transaction_date": {"column": "d"}}
    cases = [
        {"parse": {"delimeter": ","}, "fields": good},
        {"fields": {**good, "amount": {"column": "a", "scale": "kobo"}}},
        {"fields": {**good, "direction": {"constant": "out"}}},
        {"fields": {**good, "reference": {"column": "n", "regex": "RRN:\\d+"}}},
        {"fields": {**good, "status": {"column": "rc", "value_map": {"00": "ok"}}}},
        {"fields": {k: v for k, v in good.items() if k != "currency"}},
        {"fields": {**good, "amount": {"column": "a", "decimal_separator": ".", "thousands_separator": "."}}},
    ]
    for case in cases:
        with pytest.raises(InvalidMapping) as caught:
            parse_mapping(case)
        assert caught.value.message.startswith("mapping ")


def test_every_bad_value_row_is_listed_and_nothing_half_normalized() -> None:
    text = "date,amount\n2025-12-01,1.00\n2025-12-02,1..0\n2025-02-30,2.00\n2025-12-04,(3.00)\n"
    mapping = {"parse": {}, "fields": {
        "amount": {"column": "amount"}, "direction": {"from_sign": {}},
        "currency": {"constant": "NGN"}, "transaction_date": {"column": "date", "formats": ["%Y-%m-%d"]}}}
    result = normalize_file(text.encode(), mapping)
    assert result.frame["row_number"].to_list() == [1, 4]
    assert result.frame["direction"].to_list() == ["credit", "debit"]
    assert [(e.row_number, e.column, e.value) for e in result.errors] == [
        (2, "amount", "1..0"), (3, "date", "2025-02-30")]
    assert result.error_report()["failed_rows"] == 2
