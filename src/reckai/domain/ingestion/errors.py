"""Errors of file ingestion: every one carries a stable `code`, a message a person can act on, and data.

File-level errors refuse the whole file (nothing is normalized). Row-level problems are not
exceptions: they are `RowError` records listed in the file's error report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class IngestionError(Exception):
    """Base of every file-level ingestion error. `code` is stable (API clients switch on it)."""

    code = "ingestion_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class EmptyFile(IngestionError):
    code = "empty_file"


class BinaryContent(IngestionError):
    """Bytes that are not text where text was expected (a PDF, image or executable renamed .csv)."""

    code = "binary_content"


class UndecodableText(IngestionError):
    code = "undecodable_text"


class InvalidWorkbook(IngestionError):
    """An .xlsx that is not a real OOXML zip, or an .xls that is not an OLE2 file, or unreadable."""

    code = "invalid_workbook"


class ArchiveTooLarge(IngestionError):
    """Zip bomb: the bytes actually inflated passed the cap (or the compression ratio is absurd)."""

    code = "archive_too_large"


class MalformedXml(IngestionError):
    code = "malformed_xml"


class ForbiddenXmlConstruct(IngestionError):
    """DTD entity declarations, entity expansion or external entities: refused, never expanded."""

    code = "forbidden_xml_construct"


class UnsupportedContent(IngestionError):
    code = "unsupported_content"


class ContentMismatch(IngestionError):
    """The file name promises one kind of file and the content is another."""

    code = "content_mismatch"


class HeaderNotFound(IngestionError):
    code = "header_not_found"


class NoDataRows(IngestionError):
    code = "no_data_rows"


class InvalidMapping(IngestionError):
    """The mapping JSON is malformed, names an unknown key, or names a column the file lacks."""

    code = "invalid_mapping"


class TooManyRowErrors(IngestionError):
    """So many rows failed that the mapping (or the delimiter) is almost certainly wrong."""

    code = "too_many_row_errors"


class InvalidAmount(ValueError):
    """Raised by the reference amount parser; the normalizer turns it into a RowError."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"{reason}: {text!r}")
        self.text = text
        self.reason = reason


@dataclass(frozen=True)
class RowError:
    """One source row that failed a transformation. It is excluded from the normalized output."""

    row_number: int  # 1-based data row (header and preamble excluded), as in the canonical frame
    column: str | None  # source column (or canonical field when no single column applies)
    value: str | None
    reason: str
    line_number: int | None = None  # 1-based physical line (text) or sheet row (Excel) of the row

    def to_dict(self) -> dict[str, Any]:
        return {"row_number": self.row_number, "line_number": self.line_number, "column": self.column,
                "value": self.value, "reason": self.reason}


@dataclass(frozen=True)
class SourceWarning:
    """Something worth a person's look that does not stop a row or the file from loading: a bank's
    impossible date read as the month's last day (a row warning), statement balances that do not
    add up, a gap in statement numbers, a statement given twice (file warnings)."""

    message: str
    line_number: int | None = None
    row_number: int | None = None  # set for a row warning
    kind: str = "row"  # row | balance_mismatch | balance_gap | sequence_gap | duplicate_statement | encoding

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "line_number": self.line_number,
                "row_number": self.row_number}
