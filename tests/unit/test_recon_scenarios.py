"""`reckai reconcile` on generated files of other layouts and break mixes (tests/support/recon_scenarios.py).

Every scenario is run with the profile an analyst would write and with both mappings left to
auto-detection, and scored like ../shared/tools/score_recon.py against its truth.json.
"""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from reckai.domain.reconciliation.profile import ProfileError, parse_profile
from reckai.entrypoints.cli.main import main
from tests.support.recon_scenarios import SCENARIOS, profile, write
from tests.unit.test_reconcile_cli import score

PRECISION, RECALL, TYPE_ACCURACY = 0.995, 0.99, 0.95


@pytest.fixture(scope="module")
def scenario_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    root = tmp_path_factory.mktemp("scenarios")
    return {name: write(scenario, root / name) for name, scenario in SCENARIOS.items()}


def reconcile(paths: dict[str, Path], profile_key: str, out: Path, name: str, engine: str = "polars") -> int:
    scenario = SCENARIOS[name]
    with redirect_stdout(io.StringIO()):
        return main(["reconcile", "--engine", engine, "--left", str(paths["left"]), "--right", str(paths["right"]),
                     "--profile", str(paths[profile_key]), "--out", str(out),
                     "--period-start", scenario.period_start.isoformat(),
                     "--period-end", scenario.period_end.isoformat()])


def exceptions_on_matched_rows(out: Path, truth_path: Path) -> int:
    """Breaks reported on rows the truth matches (a duplicate names its original's partner: skipped)."""
    truth = json.loads(truth_path.read_text())
    left = {a for a, _ in truth["matches"]}
    right = {b for _, b in truth["matches"]}
    wrong = 0
    with (out / "exceptions.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["type"] == "duplicate":
                continue
            wrong += (row["left_row"] and int(row["left_row"]) in left) or bool(
                row["right_row"] and int(row["right_row"]) in right)
    return wrong


def exceptions_on_quiet_rows(out: Path, truth_path: Path) -> list[tuple[str, str]]:
    """Breaks that name a switch row where nothing moved (an approval and its own reversal row)."""
    quiet = set(json.loads(truth_path.read_text()).get("no_break_switch_rows", []))
    with (out / "exceptions.csv").open(newline="") as handle:
        return [(row["type"], row["right_row"]) for row in csv.DictReader(handle)
                if row["right_row"] and int(row["right_row"]) in quiet]


@pytest.mark.parametrize("profile_key", ["profile", "profile_auto"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_meets_quality_targets(scenario_files: dict[str, dict[str, Path]], tmp_path: Path, name: str,
                                        profile_key: str) -> None:
    paths = scenario_files[name]
    out = tmp_path / "out"
    assert reconcile(paths, profile_key, out, name) == 0
    precision, recall, type_accuracy = score(out, paths["truth"])
    assert (precision, recall, type_accuracy) >= (PRECISION, 0, 0), f"{name}/{profile_key}: precision {precision}"
    assert recall >= RECALL, f"{name}/{profile_key}: recall {recall}"
    assert type_accuracy >= TYPE_ACCURACY, f"{name}/{profile_key}: break-type accuracy {type_accuracy}"
    assert exceptions_on_matched_rows(out, paths["truth"]) == 0
    assert exceptions_on_quiet_rows(out, paths["truth"]) == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rejected_rows"] == {"left": 0, "right": 0}
    if profile_key == "profile_auto":
        assert set(summary["auto_mappings"]) == {"left", "right"}
    else:
        assert "auto_mappings" not in summary


def test_both_engines_agree_on_a_generated_scenario(scenario_files: dict[str, dict[str, Path]],
                                                    tmp_path: Path) -> None:
    paths = scenario_files["pipe-drcr-kobo"]
    outputs = []
    for engine in ("polars", "reference"):
        out = tmp_path / engine
        assert reconcile(paths, "profile_auto", out, "pipe-drcr-kobo", engine) == 0
        outputs.append([(out / name).read_text() for name in ("matches.csv", "suggestions.csv", "exceptions.csv")])
    assert outputs[0] == outputs[1]


def test_generated_files_are_deterministic_and_truth_is_consistent(tmp_path: Path) -> None:
    scenario = SCENARIOS["semicolon-comma-1252"]
    first, second = write(scenario, tmp_path / "a"), write(scenario, tmp_path / "b")
    for key in ("left", "right", "truth"):
        assert first[key].read_bytes() == second[key].read_bytes()
    first["left"].read_bytes().decode("cp1252")  # the Windows-1252 layout really is 1252
    truth = json.loads(first["truth"].read_text())
    lefts = [a for a, _ in truth["matches"]] + [e["bank_row"] for e in truth["exceptions"] if e["bank_row"]]
    rights = [b for _, b in truth["matches"]]
    assert len(set(lefts)) == len(lefts) == truth["counts"]["bank_rows"]  # every bank row judged once
    assert len(set(rights)) == len(rights)
    types = {e["type"] for e in truth["exceptions"]}
    assert types == {"missing_entry", "amount_mismatch", "date_mismatch", "duplicate", "non_settlement",
                     "timing_difference"}


@pytest.mark.parametrize("mapping", ["auto", None])
def test_a_side_without_a_mapping_is_auto_detected(mapping: str | None) -> None:
    raw = profile(SCENARIOS["tsv-brackets"], auto=True)
    if mapping is None:
        del raw["left"]["mapping"]
    parsed = parse_profile(raw)
    assert parsed.left.mapping is None and parsed.left.auto_mapping
    assert parsed.right.auto_mapping


def test_a_mapping_that_is_neither_json_nor_auto_is_refused() -> None:
    raw = profile(SCENARIOS["tsv-brackets"], auto=True)
    raw["left"]["mapping"] = "automatic"
    with pytest.raises(ProfileError, match="left.mapping"):
        parse_profile(raw)


def test_auto_mapping_without_an_amount_is_a_clear_error(tmp_path: Path) -> None:
    left = tmp_path / "left.csv"
    left.write_text("name,city\nADA,LAGOS\nOBI,ABUJA\n", encoding="utf-8")
    paths = write(SCENARIOS["tsv-brackets"], tmp_path / "s")
    paths["left"] = left
    err = io.StringIO()
    with redirect_stderr(err):
        code = reconcile(paths, "profile_auto", tmp_path / "out", "tsv-brackets")
    assert code == 2
    assert "auto-detection found no column for amount" in err.getvalue()
    assert not (tmp_path / "out").exists()
