"""Which bank statement a file holds, so that the same statement uploaded again is flagged.

A statement's identity is what the bank gives it, never the file's bytes (the same file twice is
already caught by its checksum, docs/files.md): for MT940/MT942/MT950 the account (:25:), the
transaction reference (:20:), the statement and sequence number (:28C:) and the opening balance's
date and amount; for camt.052/053/054 the account and the statement's (report's, notification's)
`Id`. A statement without an account and a number (or a camt statement without an `Id`) has no
identity and is never flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

# The ISO 20022 statement messages read (camt.052 report, .053 statement, .054 notification), and
# every parse.format an XML file may be given as.
CAMT_KINDS = ("camt052", "camt053", "camt054")
XML_FORMATS = ("xml", *CAMT_KINDS)


@dataclass(frozen=True)
class StatementIdentity:
    key: str  # stable text; equal keys are the same statement
    label: str  # how a person names it: ":20:REF :28C:00012/001 account NL91…"
    line_number: int | None = None  # where the statement starts in its file


def mt940_identity(message_type: str, account: str | None, reference: str | None, number: str | None,
                   opening_date: str | None, opening: object | None, line: int | None) -> StatementIdentity | None:
    if not account or not number:
        return None
    key = "|".join((message_type, account.strip(), (reference or "").strip(), number.strip(),
                    opening_date or "", "" if opening is None else str(opening)))
    label = f":20:{reference or ''} :28C:{number.strip()} account {account.strip()}"
    return StatementIdentity(key=key, label=label, line_number=line)


def camt_identity(kind: str, account: str | None, statement_id: str | None) -> StatementIdentity | None:
    if not statement_id:
        return None
    key = "|".join((kind, (account or "").strip(), statement_id.strip()))
    label = f"{kind} statement {statement_id.strip()}" + (f" account {account.strip()}" if account else "")
    return StatementIdentity(key=key, label=label)


def duplicate_statement_message(statement: StatementIdentity, earlier_file: str, earlier_file_id: str) -> str:
    where = f" (line {statement.line_number})" if statement.line_number else ""
    return (f"the statement {statement.label}{where} was already uploaded in file {earlier_file!r} "
            f"({earlier_file_id}): its rows are loaded again; do not reconcile both files together "
            "unless the bank re-sent the statement on purpose")
