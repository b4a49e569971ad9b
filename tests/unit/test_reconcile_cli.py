"""`reckai reconcile` end to end on the shipped sample (../shared/data/card-vs-bank-a)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reckai.entrypoints.cli.main import main
from tests.support.sample_data import CARD_VS_BANK_A

REPO = Path(__file__).resolve().parents[2]
DATA = CARD_VS_BANK_A
PROFILE = REPO / "examples" / "profiles" / "card-vs-bank-a.json"


def score(out: Path, truth_path: Path) -> tuple[float, float, float]:
    """The same scoring as ../shared/tools/score_recon.py: precision, recall, break-type accuracy."""
    truth = json.loads(truth_path.read_text())
    true_pairs = {(int(a), int(b)) for a, b in truth["matches"]}
    with (out / "matches.csv").open(newline="") as handle:
        predicted = {(int(r["left_row"]), int(r["right_row"])) for r in csv.DictReader(handle)}
    hits = len(predicted & true_pairs)
    got: dict[tuple[str, int], list[str]] = {}
    with (out / "exceptions.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["left_row"]:
                got.setdefault(("L", int(row["left_row"])), []).append(row["type"])
            if row["right_row"]:
                got.setdefault(("R", int(row["right_row"])), []).append(row["type"])
    right = 0
    for expected in truth["exceptions"]:
        types = got.get(("L", expected["bank_row"]), []) + got.get(("R", expected["switch_row"]), [])
        right += expected["type"] in types
    return hits / len(predicted), hits / len(true_pairs), right / len(truth["exceptions"])


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    assert DATA.is_dir(), f"sample data missing at {DATA}"
    out = tmp_path_factory.mktemp("reconcile") / "out"
    code = main(["reconcile", "--left", str(DATA / "bank.csv"), "--right", str(DATA / "switch.csv"),
                 "--profile", str(PROFILE), "--out", str(out),
                 "--period-start", "2025-12-01", "--period-end", "2025-12-31"])
    assert code == 0
    yield out


def test_sample_meets_quality_targets(sample_run: Path) -> None:
    precision, recall, type_accuracy = score(sample_run, DATA / "truth.json")
    assert precision >= 0.995
    assert recall >= 0.99
    assert type_accuracy >= 0.95


def test_output_files_have_the_specified_columns(sample_run: Path) -> None:
    def header(name: str) -> list[str]:
        with (sample_run / name).open(newline="") as handle:
            return next(csv.reader(handle))

    pair_columns = ["left_row", "right_row", "group_id", "rule", "status", "confidence", "left_source",
                    "right_source", "left_reference", "right_reference", "left_amount_minor", "right_amount_minor",
                    "currency"]
    assert header("matches.csv") == pair_columns
    assert header("suggestions.csv") == pair_columns
    assert header("exceptions.csv") == ["type", "severity", "left_row", "right_row", "amount_minor", "currency",
                                        "explanation", "left_source", "right_source"]
    summary = json.loads((sample_run / "summary.json").read_text())
    assert summary["rows"] == {"left": 2022, "right": 2000}
    assert summary["matched_pairs"] == 1793
    assert set(summary["exceptions_by_type"]) == {"amount_mismatch", "date_mismatch", "missing_entry", "duplicate",
                                                  "timing_difference", "non_settlement"}
    assert 0 < summary["match_rate"] <= 100
    assert {"read_left", "read_right", "duplicates", "matching", "classification"} <= set(summary["seconds"])
    assert not list(sample_run.glob(".*.partial"))


@pytest.mark.parametrize("failing", ["matches", "suggestions", "exceptions"])
def test_a_file_that_fails_to_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str], failing: str) -> None:
    """The three files are written at once (two threads): one failing leaves no file, partial or final."""
    from reckai.adapters.polars.result_tables import ResultTables

    write = ResultTables.write_csv

    def failing_write(self: ResultTables, table: str, path: Path) -> None:
        write(self, table, path)
        if table == failing:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(ResultTables, "write_csv", failing_write)
    out = tmp_path / "out"
    code = main(["reconcile", "--left", str(DATA / "bank.csv"), "--right", str(DATA / "switch.csv"),
                 "--profile", str(PROFILE), "--out", str(out), "--period-start", "2025-12-01",
                 "--period-end", "2025-12-31"])
    assert code == 2 and "No space left on device" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_reference_engine_writes_the_same_files(sample_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "reference"
    assert main(["reconcile", "--engine", "reference", "--left", str(DATA / "bank.csv"),
                 "--right", str(DATA / "switch.csv"), "--profile", str(PROFILE), "--out", str(out),
                 "--period-start", "2025-12-01", "--period-end", "2025-12-31"]) == 0
    for name in ("matches.csv", "suggestions.csv", "exceptions.csv"):
        assert (out / name).read_text() == (sample_run / name).read_text()


def test_bad_profile_is_one_line_error_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"left": {}, "right": {}, "rules": [{"name": "x", "rule_type": "exact"}]}))
    out = tmp_path / "out"
    code = main(["reconcile", "--left", str(DATA / "bank.csv"), "--right", str(DATA / "switch.csv"),
                 "--profile", str(bad), "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("reckai reconcile: error: bad profile:")
    assert not out.exists()


def test_bad_file_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["reconcile", "--left", str(DATA / "switch.csv"), "--right", str(DATA / "switch.csv"),
                 "--profile", str(PROFILE), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and "bad file" in err and "trans_date" in err
    assert not (tmp_path / "out").exists()


def test_half_a_period_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["reconcile", "--left", str(DATA / "bank.csv"), "--right", str(DATA / "switch.csv"),
                 "--profile", str(PROFILE), "--out", str(tmp_path / "out"), "--period-start", "2025-12-01"])
    assert code != 0
    assert "period" in capsys.readouterr().err


def test_a_rule_on_a_raw_column_reads_it_from_the_files(tmp_path: Path) -> None:
    """The reader keeps the source rows only when a rule reads `raw.<column>`; this one does."""
    mapping = {"fields": {"amount": {"column": "amount"}, "direction": {"constant": "debit"},
                          "currency": {"constant": "NGN"},
                          "transaction_date": {"column": "date", "formats": ["%Y-%m-%d"]}}}
    profile = {"name": "raw", "left": {"label": "Bank", "mapping": mapping},
               "right": {"label": "Switch", "mapping": mapping},
               "rules": [{"name": "ticket", "version": 1, "rule_type": "exact",
                          "field_mappings": [{"left": "raw.ticket", "right": "raw.ticket"}]}]}
    (tmp_path / "profile.json").write_text(json.dumps(profile))
    (tmp_path / "left.csv").write_text("date,amount,ticket\n2025-12-01,10.00,T-1\n2025-12-02,20.00,T-2\n")
    (tmp_path / "right.csv").write_text("date,amount,ticket\n2025-12-02,20.00,T-2\n2025-12-01,10.00,T-1\n")
    out = tmp_path / "out"
    assert main(["reconcile", "--left", str(tmp_path / "left.csv"), "--right", str(tmp_path / "right.csv"),
                 "--profile", str(tmp_path / "profile.json"), "--out", str(out)]) == 0
    with (out / "matches.csv").open(newline="") as handle:
        pairs = {(row["left_row"], row["right_row"], row["rule"]) for row in csv.DictReader(handle)}
    assert pairs == {("1", "2", "ticket"), ("2", "1", "ticket")}


def _corrupt_amounts(tmp_path: Path, lines: tuple[int, ...]) -> Path:
    """The sample bank statement with the amount of these physical lines made unreadable."""
    rows = (DATA / "bank.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    for line in lines:
        cells = rows[line - 1].split(",")
        cells[4] = "12O45.00"  # a letter O for a zero, as a retyped statement has
        rows[line - 1] = ",".join(cells)
    corrupted = tmp_path / "bank-corrupted.csv"
    corrupted.write_text("".join(rows), encoding="utf-8")
    return corrupted


def test_rejected_rows_exit_3_and_are_named_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 16 item 7: three corrupted amounts gave exit 0 and only a count in summary.json."""
    bank = _corrupt_amounts(tmp_path, (5, 9, 40))
    out = tmp_path / "out"
    code = main(["reconcile", "--left", str(bank), "--right", str(DATA / "switch.csv"),
                 "--profile", str(PROFILE), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 3
    lines = err.splitlines()
    assert lines[0] == ("reckai reconcile: error: 3 rows rejected (left 3, right 0); they are not in the results, "
                        "so their counterparts show as missing entries")
    assert lines[1] == f"  left ({bank}): 3 rejected"
    assert [line.split(":")[0].strip() for line in lines[2:5]] == ["row 4 (line 5) column amount value '12O45.00'",
                                                                  "row 8 (line 9) column amount value '12O45.00'",
                                                                  "row 39 (line 40) column amount value '12O45.00'"]
    assert all(line.split(": ", 1)[1] for line in lines[2:5])  # each with its reason
    assert "--allow-row-errors" in lines[-1]
    summary = json.loads((out / "summary.json").read_text())  # the results are written all the same
    assert summary["rejected_rows"] == {"left": 3, "right": 0}
    assert [e["line_number"] for e in summary["rejected_row_examples"]["left"]] == [5, 9, 40]


def test_allow_row_errors_exits_0_and_still_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = _corrupt_amounts(tmp_path, tuple(range(2, 10)))
    code = main(["reconcile", "--left", str(bank), "--right", str(DATA / "switch.csv"),
                 "--profile", str(PROFILE), "--out", str(tmp_path / "out"), "--allow-row-errors"])
    err = capsys.readouterr().err
    assert code == 0
    assert err.startswith("reckai reconcile: warning: 8 rows rejected (left 8, right 0)")
    assert "    ... and 3 more" in err and "--allow-row-errors" not in err


def test_a_clean_run_lists_no_rejected_rows(sample_run: Path) -> None:
    assert "rejected_row_examples" not in json.loads((sample_run / "summary.json").read_text())


def test_an_implausible_result_is_written_with_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A side keeping credits of a file that holds none: the run completes (exit 0) and says so on
    stderr and in summary.json (issue 16; the same check a job makes)."""
    profile = json.loads(PROFILE.read_text())
    profile["right"]["direction"] = "credit"  # the switch file lists debits (its unsigned amounts)
    path = tmp_path / "credit.json"
    path.write_text(json.dumps(profile))
    out = tmp_path / "out"
    assert main(["reconcile", "--left", str(DATA / "bank.csv"), "--right", str(DATA / "switch.csv"),
                 "--profile", str(path), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [(w["code"], w["side"]) for w in summary["warnings"]] == [("DIRECTION_FILTER_EMPTY", "right"),
                                                                     ("NO_MATCHES", None)]
    err = capsys.readouterr().err
    assert "warning [DIRECTION_FILTER_EMPTY]: none of the 2000 rows of the Switch side (right) is a credit" in err
    assert "warning [NO_MATCHES]" in err


def test_a_plausible_sample_run_has_no_warnings(sample_run: Path) -> None:
    assert json.loads((sample_run / "summary.json").read_text())["warnings"] == []


def test_every_output_row_says_where_it_is_and_a_match_shows_both_sides(sample_run: Path) -> None:
    """Issue 16 item 6: data row N of a CSV file with a header is its line N + 1."""
    bank = (DATA / "bank.csv").read_text().splitlines()
    switch = (DATA / "switch.csv").read_text().splitlines()
    with (sample_run / "matches.csv").open(newline="") as handle:
        matches = list(csv.DictReader(handle))
    for row in matches[:50]:
        left_line, right_line = (int(row[f"{side}_source"].removeprefix("line ")) for side in ("left", "right"))
        assert left_line == int(row["left_row"]) + 1 and right_line == int(row["right_row"]) + 1
        assert row["right_reference"] in switch[right_line - 1] and row["left_reference"] in bank[left_line - 1]
        assert row["left_amount_minor"] and row["right_amount_minor"] and row["currency"] == "NGN"
    with (sample_run / "exceptions.csv").open(newline="") as handle:
        exceptions = list(csv.DictReader(handle))
    for row in exceptions:
        for side in ("left", "right"):
            assert (row[f"{side}_source"] == f"line {int(row[side + '_row']) + 1}") if row[f"{side}_row"] else \
                row[f"{side}_source"] == ""


@pytest.mark.parametrize("corrupted_lines", [(), (5, 77)])
def test_the_outputs_fast_paths_give_the_plain_paths_tables(corrupted_lines: tuple[int, ...], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's three tables, built with its shortcuts (side facts gathered by position when a
    side's rows are numbered 1..n, pairs ordered by one packed key, confidence worded per distinct
    value), equal the tables built the plain way (joins on the row number, a two-column sort, the
    confidence worded row by row); with rejected rows the left side is not 1..n and is joined."""
    from reckai.adapters.polars import result_tables as rt
    from reckai.adapters.polars.matcher_input import PolarsCanonicalSource
    from reckai.application.reconcile import load_profile
    from reckai.domain.reconciliation.profile import ReconciliationPeriod

    profile = load_profile(PROFILE)
    left_path = _corrupt_amounts(tmp_path, corrupted_lines) if corrupted_lines else DATA / "bank.csv"
    source = PolarsCanonicalSource()
    left, left_errors = source.read(str(left_path), profile.left.mapping or {})
    right, _ = source.read(str(DATA / "switch.csv"), profile.right.mapping or {})
    assert len(left_errors) == len(corrupted_lines)
    period = ReconciliationPeriod(dt.date(2025, 12, 1), dt.date(2025, 12, 31))
    tables = rt.PolarsTablesEngine().reconcile_tables(left, right, profile, period)
    fast = {name: tables.cli_table(name) for name in ("matches", "suggestions", "exceptions")}
    assert tables._dense("left", tables.sides["left"]) == (not corrupted_lines)
    assert tables._dense("right", tables.sides["right"])

    plain = rt.PolarsTablesEngine().reconcile_tables(left, right, profile, period)
    monkeypatch.setattr(rt.ResultTables, "_dense", lambda self, side, facts: False)
    monkeypatch.setattr(rt, "_match_order", lambda frame: frame.sort(["left_row", "right_row"], maintain_order=True))
    monkeypatch.setattr(rt, "confidence_texts", lambda frame, column="confidence_bp": rt.confidence_text(pl.col(column)))
    for name, table in fast.items():
        expected = plain.cli_table(name)
        assert table.equals(expected) and table.schema == expected.schema, name
    assert fast["matches"].height > 100 and fast["exceptions"].height > 10


def test_the_files_written_a_slice_at_a_time_are_the_whole_tables(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """write_csv builds and writes CSV_SLICE_ROWS rows at a time: with slices of 7 rows (and a
    hostile cell in one slice only), each file is byte for byte the whole table written at once."""
    from reckai.adapters.polars import result_tables as rt
    from reckai.adapters.polars.cells import neutralised
    from reckai.adapters.polars.matcher_input import PolarsCanonicalSource
    from reckai.application.reconcile import load_profile
    from reckai.domain.reconciliation.profile import ReconciliationPeriod

    profile = load_profile(PROFILE)
    source = PolarsCanonicalSource()
    left, _ = source.read(str(DATA / "bank.csv"), profile.left.mapping or {})
    right, _ = source.read(str(DATA / "switch.csv"), profile.right.mapping or {})
    left = left.with_columns(pl.when(pl.col("row_number") == 30).then(pl.lit("=HYPERLINK(1)"))
                             .otherwise(pl.col("reference")).alias("reference"))
    period = ReconciliationPeriod(dt.date(2025, 12, 1), dt.date(2025, 12, 31))
    tables = rt.PolarsTablesEngine().reconcile_tables(left, right, profile, period)
    monkeypatch.setattr(rt, "CSV_SLICE_ROWS", 7)
    for name in ("matches", "suggestions", "exceptions"):
        tables.write_csv(name, tmp_path / f"{name}.csv")
        whole = neutralised(tables.cli_table(name), tables.worded_columns()).write_csv(null_value="")
        assert (tmp_path / f"{name}.csv").read_text(encoding="utf-8") == whole, name
    assert "'=HYPERLINK(1)" in (tmp_path / "matches.csv").read_text(encoding="utf-8") + \
        (tmp_path / "exceptions.csv").read_text(encoding="utf-8") + (tmp_path / "suggestions.csv").read_text()


_ALLOCATOR_PROBE = """
import os, sys
from reckai.entrypoints.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(os.environ.get("_RJEM_MALLOC_CONF"))
"""


@pytest.mark.parametrize(("argv", "given", "expected"), [
    (["reconcile", "--help"], None, "dirty_decay_ms:10000,muzzy_decay_ms:10000,percpu_arena:percpu"),
    (["reconcile", "--help"], "narenas:3", "narenas:3"),  # the user's own setting wins
    (["db", "--help"], None, "None"),  # other commands keep polars' defaults
])
def test_reconcile_configures_polars_allocator_before_polars_is_imported(argv: list[str], given: str | None,
                                                                          expected: str) -> None:
    """`reckai reconcile`'s jemalloc settings (entrypoints/cli/main.py) act only when they are in the
    environment before polars is first imported: a fresh interpreter each."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    if given is not None:
        env["_RJEM_MALLOC_CONF"] = given
    done = subprocess.run([sys.executable, "-c", _ALLOCATOR_PROBE, *argv], env=env, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == expected


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.one_of(st.none(), st.integers(min_value=-3, max_value=60),
                               st.integers(min_value=-(2**62), max_value=2**62)), max_size=40))
def test_distinct_row_count_is_n_unique(rows: list[int | None]) -> None:
    """summary.json's matched rows: the flag count gives n_unique's figure for any column of row
    numbers (nulls, negatives and huge values take n_unique itself)."""
    from reckai.adapters.polars.result_tables import _distinct_rows

    series = pl.Series("left_row", rows, dtype=pl.Int64)
    assert _distinct_rows(series) == series.n_unique()
