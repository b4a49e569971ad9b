"""Formula injection (issue 14, OWASP CSV-injection guidance): the one rule (domain/exports/cells.py)
and a property test over every CSV and Excel writer the product has: the exports' table writers,
a job's results.csv, the approved ledger-posting CSV, and `reckai reconcile`'s files. Whatever text
goes in, every cell that comes out is `neutralise_cell(text)`: no cell a spreadsheet would run."""

from __future__ import annotations

import csv
import io
import re
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reckai.adapters.polars.cells import neutralised
from reckai.adapters.polars.job_results import PolarsMatchRun
from reckai.adapters.polars.result_tables import tables_from_result
from reckai.adapters.spreadsheets.tables import CsvTableWriter, XlsxTableWriter
from reckai.application.approvals import jobs as workflow_jobs
from reckai.application.approvals import requests
from reckai.application.ports.exports import Column, ColumnKind
from reckai.application.reconcile import ReconcileOutcome, load_profile
from reckai.bootstrap import bootstrap_in_memory
from reckai.domain.exports.cells import NUMERIC_LITERAL, neutralise_cell
from reckai.domain.reconciliation.results import (
    BreakFacts,
    BreakType,
    ExceptionRecord,
    MatchRecord,
    MatchStatus,
    ReconciliationResult,
)
from reckai.entrypoints.cli.reconcile import write_outputs
from tests.unit.workflow_builders import memory_org

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# text that a spreadsheet may run, numbers, near-numbers, and anything else
risky = st.one_of(
    st.sampled_from(['=HYPERLINK("http://evil.test","x")', "+cmd|' /C calc'!A0", "-16704.50", "-2+3", "@SUM(A1)",
                     "\t=1", "\r=1", "+12", "-", "-.5", "5.", "-1e5", "=", "--1", "-٣", " =1", "a=1"]),
    st.builds(lambda head, tail: head + tail, st.sampled_from(TRIGGERS), st.text(max_size=12)),
    st.from_regex(r"[+-]?[0-9]{1,6}(\.[0-9]{1,3})?", fullmatch=True),
    st.text(max_size=16),
)
# what an xlsx cell can hold and give back unchanged (XML 1.0 has no control characters; \r is folded)
xlsx_text = risky.filter(lambda t: all(c in "\t" or c >= " " for c in t) and not re.search(r"_x[0-9A-Fa-f]{4}_", t)
                         and "\ud800" > max(t, default=" "))


def is_safe(cell: str) -> bool:
    return not cell.startswith(TRIGGERS) or re.fullmatch(NUMERIC_LITERAL.strip("^$"), cell) is not None


@given(risky)
def test_the_rule(text: str) -> None:
    out = neutralise_cell(text)
    assert is_safe(out)
    assert out == text or out == "'" + text  # nothing else is changed
    assert (out != text) == (text.startswith(TRIGGERS) and re.fullmatch(r"[+-]?[0-9]+(\.[0-9]+)?", text) is None)
    assert neutralise_cell(-5) == -5 and neutralise_cell(None) is None and neutralise_cell(Decimal(-1)) == Decimal(-1)


@given(st.lists(risky, max_size=20))
def test_the_polars_expression_is_the_same_rule(texts: list[str]) -> None:
    frame = pl.DataFrame({"text": texts, "number": list(range(len(texts)))},
                         schema={"text": pl.String, "number": pl.Int64})
    out = neutralised(frame)
    assert out["text"].to_list() == [neutralise_cell(t) for t in texts]
    assert out["number"].to_list() == list(range(len(texts)))


@given(st.lists(risky, min_size=1, max_size=20))
def test_job_results_csv(texts: list[str]) -> None:
    run = PolarsMatchRun.__new__(PolarsMatchRun)  # only its CSV writer is under test
    frame = pl.DataFrame({"kind": ["match"] * len(texts), "rule": texts, "explanation": texts[::-1]})
    run.tables = types.SimpleNamespace(results_table=lambda: frame, worded_columns=lambda: ["kind"])  # type: ignore[assignment]
    run._results = None
    rows = list(csv.DictReader(io.StringIO(run.results_csv().decode())))
    assert [r["rule"] for r in rows] == [neutralise_cell(t) for t in texts]
    assert [r["explanation"] for r in rows] == [neutralise_cell(t) for t in texts[::-1]]


@given(st.lists(st.tuples(risky, risky), max_size=20))
def test_export_csv_writer(rows: list[tuple[str, str]]) -> None:
    columns = [Column("a"), Column("b"), Column("amount", ColumnKind.AMOUNT)]
    data = [(a, b, Decimal("-16704.50")) for a, b in rows]
    written = b"".join(CsvTableWriter().chunks(columns, iter(data))).decode()
    back = list(csv.reader(io.StringIO(written, newline="")))
    assert back[0] == ["a", "b", "amount"]
    assert back[1:] == [[neutralise_cell(a), neutralise_cell(b), "-16704.50"] for a, b in rows]


@settings(max_examples=30, deadline=None)
@given(st.lists(xlsx_text, max_size=12))
def test_export_excel_writer(texts: list[str]) -> None:
    columns = [Column("text"), Column("amount", ColumnKind.AMOUNT)]
    written = b"".join(XlsxTableWriter().chunks(columns, iter([(t, Decimal("-16704.50")) for t in texts])))
    sheet = openpyxl.load_workbook(io.BytesIO(written)).worksheets[0]
    back = [(row[0].value, row[1]) for row in sheet.iter_rows(min_row=2)]
    assert [text or None for text, _ in back] == [neutralise_cell(t) or None for t in texts]
    for _, amount in back:
        assert amount.data_type == "n" and amount.value == -16704.5 and amount.number_format == "#,##0.00"


def test_excel_spills_to_further_sheets_each_with_the_header() -> None:
    columns = [Column("n", ColumnKind.INTEGER), Column("text")]
    written = b"".join(XlsxTableWriter(max_rows=11).chunks(columns, ((i, f"=row {i}") for i in range(25))))
    sheets = openpyxl.load_workbook(io.BytesIO(written)).worksheets
    assert [s.title for s in sheets] == ["data", "data (2)", "data (3)"]
    rows = [[c.value for c in row] for s in sheets for row in s.iter_rows()]
    assert [r for r in rows if r[0] == "n"] == [["n", "text"]] * 3
    assert [r[0] for r in rows if r[0] != "n"] == list(range(25))
    assert all(r[1] == f"'=row {r[0]}" for r in rows if r[0] != "n")


@pytest.fixture(scope="module")
def org() -> Any:
    organization = memory_org(bootstrap_in_memory())
    return organization


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(risky, risky)
def test_ledger_posting_csv(org: Any, first: str, second: str) -> None:
    entries = [{"account": "1001", "direction": "debit", "amount_minor": 2500, "narration": first or "x"},
               {"account": "2002", "direction": "credit", "amount_minor": 2500, "narration": second or "y"}]
    approval = requests.request_approval(org.services, org.p("analyst"), type="ledger_posting", title="t",
                                         description="d", metadata={"currency": "NGN", "entries": entries})
    requests.approve_request(org.services, org.p("supervisor"), approval.id)
    storage = org.container.storage
    key = workflow_jobs.export_ledger_posting(org.services, storage, org.organization_id, approval.id)
    with storage.open(key) as stream:
        rows = list(csv.DictReader(io.StringIO(stream.read().decode(), newline="")))
    stored = requests.get_approval(org.services, org.p("analyst"), approval.id).approval.metadata["entries"]
    assert [r["narration"] for r in rows] == [neutralise_cell(e.get("narration") or "") for e in stored]
    assert stored[0].get("narration") in ((first or "x"), (first or "x").strip(), None)  # as asked, trimmed


@settings(max_examples=25, deadline=None)
@given(st.lists(risky, min_size=1, max_size=6))
def test_reckai_reconcile_files(tmp_path_factory: Any, texts: list[str]) -> None:
    out = Path(tmp_path_factory.mktemp("out"))
    matches = [MatchRecord(left_row=i, right_row=i, rule=t, rule_version=1, status=MatchStatus.AUTO,
                           confidence_bp=10_000, group_id=t) for i, t in enumerate(texts)]
    exceptions = [ExceptionRecord(facts=BreakFacts(type=BreakType.MISSING_ENTRY, left_row=i + 1, right_row=None,
                                                   currency="NGN", left_amount_minor=-5),
                                  severity="high", description=t, explanation=t, ai_confidence_bp=9_000,
                                  suggested_action=t) for i, t in enumerate(texts)]
    result = ReconciliationResult(matches=matches, suggestions=[], exceptions=exceptions)
    profile = load_profile(str(Path(__file__).resolve().parents[2] / "examples/profiles/card-vs-bank-a.json"))
    write_outputs(ReconcileOutcome(result=tables_from_result(result, profile)), out)
    with (out / "matches.csv").open(newline="") as handle:
        assert [r["rule"] for r in csv.DictReader(handle)] == [neutralise_cell(t) for t in texts]
    with (out / "exceptions.csv").open(newline="") as handle:
        back = list(csv.DictReader(handle))
    assert [r["explanation"] for r in back] == [neutralise_cell(t) for t in texts]
    assert {r["amount_minor"] for r in back} == {"-5"}


@settings(max_examples=25, deadline=None)
@given(st.lists(risky, min_size=1, max_size=6), risky, st.booleans())
def test_reckai_reconcile_files_with_positions_and_references(tmp_path_factory: Any, texts: list[str], sheet: str,
                                                             in_sheet: bool) -> None:
    """The sides' texts reach the files too: references and, for a workbook, the sheet name in
    "<sheet> row N". The columns the writer words itself ("line N", status, confidence, type,
    severity) are not scanned (`worded_columns`): every cell of every file must still be one a
    spreadsheet would not run, which fails if a sheet's position text is taken for worded."""
    out = Path(tmp_path_factory.mktemp("out"))
    count = len(texts)
    matches = [MatchRecord(left_row=i + 1, right_row=i + 1, rule="r", rule_version=1, status=MatchStatus.AUTO,
                           confidence_bp=9_500) for i in range(count)]
    exceptions = [ExceptionRecord(facts=BreakFacts(type=BreakType.MISSING_ENTRY, left_row=i + 1, right_row=None,
                                                   currency="NGN", left_amount_minor=-5),
                                  severity="high", description="d", explanation="e", ai_confidence_bp=9_000,
                                  suggested_action="a") for i in range(count)]
    result = ReconciliationResult(matches=matches, suggestions=[], exceptions=exceptions)
    profile = load_profile(str(Path(__file__).resolve().parents[2] / "examples/profiles/card-vs-bank-a.json"))

    def side(references: list[str], sheet_name: str | None) -> pl.DataFrame:
        return pl.DataFrame({"row_number": range(1, count + 1), "source_line": range(2, count + 2),
                             "source_sheet": [sheet_name] * count, "reference": references,
                             "amount_minor": [-5] * count, "currency": ["NGN"] * count, "direction": ["debit"] * count},
                            schema_overrides={"source_sheet": pl.String})
    tables = tables_from_result(result, profile).with_inputs(side(texts, sheet if in_sheet else None),
                                                             side(texts[::-1], None), profile)
    write_outputs(ReconcileOutcome(result=tables), out)
    for name in ("matches", "suggestions", "exceptions"):
        with (out / f"{name}.csv").open(newline="") as handle:
            rows = list(csv.reader(handle))
        assert all(neutralise_cell(cell) == cell for row in rows for cell in row), name
    with (out / "matches.csv").open(newline="") as handle:
        back = list(csv.DictReader(handle))
    assert [r["left_reference"] for r in back] == [neutralise_cell(t) for t in texts]
    assert [r["right_source"] for r in back] == [f"line {i + 2}" for i in range(count)]
    expected_left = [neutralise_cell(f"{sheet} row {i + 2}") if in_sheet else f"line {i + 2}" for i in range(count)]
    assert [r["left_source"] for r in back] == expected_left


# --- report renderers (issue 14 §2): every table and the cover ---------------------------------

def _report_document(texts: list[str]) -> Any:
    import datetime as dt

    from reckai.application.reports.document import ReportChart, ReportCover, ReportDocument, ReportTable

    moment = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    cover = ReportCover(title="Aging", organization=texts[0] if texts else "Org", period="2026-03-01",
                        data_as_of=moment, generated_by=texts[-1] if texts else "someone", generated_at=moment,
                        jobs=texts[:2], facts=[(t, t) for t in texts[:2]])
    table = ReportTable("items", "Items", [Column("text"), Column("amount", ColumnKind.AMOUNT),
                                           Column("count", ColumnKind.INTEGER)],
                        [(t, Decimal("-16704.50"), index) for index, t in enumerate(texts)])
    counts = ReportTable("counts", "Counts", [Column("label"), Column("count", ColumnKind.INTEGER)],
                         [(t, 1) for t in texts[:3]])
    return ReportDocument(cover=cover, tables=[table, counts],
                          charts=[ReportChart("Counts", "counts", "label", ["count"])])


@given(st.lists(risky, min_size=1, max_size=12))
def test_report_csv_zip(texts: list[str]) -> None:
    import zipfile

    from reckai.adapters.reports.spreadsheets import ZippedCsvRenderer, cover_rows

    document = _report_document(texts)
    with zipfile.ZipFile(io.BytesIO(ZippedCsvRenderer().render(document))) as archive:
        items = list(csv.reader(io.StringIO(archive.read("items.csv").decode(), newline="")))
        cover = list(csv.reader(io.StringIO(archive.read("cover.csv").decode(), newline="")))
    assert items[1:] == [[neutralise_cell(t), "-16704.50", str(i)] for i, t in enumerate(texts)]
    assert cover[1:] == [[neutralise_cell(a), neutralise_cell(b)] for a, b in cover_rows(document)]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(xlsx_text, min_size=1, max_size=12))
def test_report_excel(texts: list[str]) -> None:
    from reckai.adapters.reports.spreadsheets import ExcelReportRenderer, cover_rows

    document = _report_document(texts)
    workbook = openpyxl.load_workbook(io.BytesIO(ExcelReportRenderer().render(document)))
    back = [(row[0].value, row[1]) for row in workbook["items"].iter_rows(min_row=2)]
    assert [text or None for text, _ in back] == [neutralise_cell(t) or None for t in texts]
    assert all(a.data_type == "n" and a.value == -16704.5 and a.number_format == "#,##0.00" for _, a in back)
    cover = [(r[0].value or None, r[1].value or None) for r in workbook["cover"].iter_rows(min_row=2)]
    assert cover == [(neutralise_cell(a) or None, neutralise_cell(b) or None) for a, b in cover_rows(document)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(risky, st.sampled_from(["NGN", "ngn", " usd ", "=NGN", "-NG", "@EU", "EUR"])),
                min_size=1, max_size=5))
def test_a_currency_reaches_the_outputs_only_as_three_letters(tmp_path_factory: Any, currencies: list[str]) -> None:
    """The writers do not scan `currency` for formulas (ResultTables.worded_columns): the normalizer
    must admit no other currency than three letters A-Z, whatever the file says."""
    from reckai.adapters.polars.normalize import normalize_file
    from reckai.domain.ingestion.errors import IngestionError

    cells = [c.replace('"', "").replace("\n", " ").replace("\r", " ") for c in currencies]
    path = Path(tmp_path_factory.mktemp("currency")) / "rows.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "amount", "currency"])
        writer.writerows([["2025-12-01", "10.00", cell] for cell in cells])
    try:
        result = normalize_file(path, {"parse": {"format": "csv"}, "fields": {
            "amount": {"column": "amount"}, "direction": {"constant": "debit"},
            "currency": {"column": "currency", "upper": True},
            "transaction_date": {"column": "date", "formats": ["%Y-%m-%d"]}}})
    except IngestionError:  # a file the reader refuses as a whole: nothing reaches any output
        return
    assert all(re.fullmatch("[A-Z]{3}", code) for code in result.frame.get_column("currency").to_list())
