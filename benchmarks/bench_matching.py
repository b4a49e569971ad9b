"""Matching benchmark: 1,000,000 bank x 1,000,000 switch rows (override with --rows N).

Times, on normalized frames: the duplicate pre-pass, three passes (exact reference; regex-extracted
reference with suffix matching; amount + date window with fuzzy text, blocked by amount) and the
break classification, next to one bare polars equi-join of the same frames. Parsing and normalizing
the same data from CSV is timed separately.

The machine is shared, so every figure is printed as wall seconds AND CPU seconds (user + system of
all threads of the process), with the load average at start and end. The equi-join and the matcher
each run in a fresh child process that only loads the normalized frames, so each peak RSS is that
step's own. `--data DIR` keeps the generated frames between runs.

    .venv/bin/python benchmarks/bench_matching.py [--rows N] [--skip-normalize] [--data DIR] [--repeat K]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

PROFILE = {
    "name": "bench", "currency": "NGN", "reference_label": "RRN", "leading_side": "right",
    "left": {"label": "Bank", "direction": "debit", "mapping": {"fields": {
        "amount": {"column": "amount"}, "direction": {"from_sign": {"negative": "debit", "positive": "credit"}},
        "currency": {"column": "currency"}, "transaction_date": {"column": "trans_date", "formats": ["%Y-%m-%d"]},
        "reference": {"column": "reference"}, "description": {"column": "narration"},
        "status": {"constant": "success"}}}},
    "right": {"label": "Switch", "direction": "debit", "mapping": {"fields": {
        "amount": {"column": "amount"}, "direction": {"constant": "debit"}, "currency": {"column": "currency"},
        "transaction_date": {"column": "tran_datetime", "formats": ["%Y-%m-%d %H:%M:%S"]},
        "reference": {"column": "rrn"}, "counterparty": {"column": "merchant_name"},
        "status": {"column": "response_code", "value_map": {"00": "success"}, "default": "failed"}}}},
    "rules": [
        {"name": "rrn-exact", "rule_type": "exact", "priority": 1, "date_tolerance_days": 2,
         "field_mappings": [{"left": "reference", "right": "reference"}],
         "conditions": {"date_direction": "left_on_or_after_right",
                        "right": [{"field": "status", "op": "eq", "value": "success"}]}},
        {"name": "rrn-in-narration", "rule_type": "regex", "priority": 2, "date_tolerance_days": 2,
         "field_mappings": [{"left": "description", "right": "reference", "left_pattern": "RRN:([0-9]+)"}],
         "conditions": {"date_direction": "left_on_or_after_right", "min_suffix_length": 8,
                        "right": [{"field": "status", "op": "eq", "value": "success"}]}},
        {"name": "amount-date-text", "rule_type": "fuzzy", "priority": 3, "date_tolerance_days": 2,
         "field_mappings": [{"left": "description", "right": "counterparty"}],
         "conditions": {"date_direction": "left_on_or_after_right", "similarity_threshold": 0.5,
                        "auto_match_threshold": 0.5,
                        "right": [{"field": "status", "op": "eq", "value": "success"}]}},
    ],
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    # VmHWM, not ru_maxrss: Linux carries a parent's peak RSS into ru_maxrss across fork + exec, so a
    # child started by a parent that generated the data would report the parent's peak.
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def child(folder: Path, step: str, repeat: int) -> None:
    import datetime as dt

    import polars as pl

    bank = pl.read_parquet(folder / "bank.parquet")
    switch = pl.read_parquet(folder / "switch.parquet")
    loaded_rss = _rss_mb()  # the two input frames, before any work
    runs: list[dict[str, Any]] = []
    if step == "join":
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), _cpu()
            joined = bank.join(switch, on="reference", how="inner")
            runs.append({"seconds": time.perf_counter() - wall, "cpu_seconds": _cpu() - cpu, "rows": joined.height})
            del joined
        print(json.dumps({"runs": runs, "peak_rss_mb": _peak_rss_mb(), "loaded_rss_mb": loaded_rss}))
        return

    from reckai.adapters.polars.matcher import PolarsMatcher
    from reckai.domain.reconciliation.profile import ReconciliationPeriod, parse_profile

    profile = parse_profile(PROFILE)
    period = ReconciliationPeriod(dt.date(2025, 12, 1), dt.date(2025, 12, 31))
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), _cpu()
        result = PolarsMatcher().reconcile_frames(bank, switch, profile, period)
        runs.append({"seconds": time.perf_counter() - wall, "cpu_seconds": _cpu() - cpu,
                     "stages": result.stage_seconds, "stage_cpu": result.stage_cpu_seconds})
    print(json.dumps({
        "runs": runs, "peak_rss_mb": _peak_rss_mb(), "loaded_rss_mb": loaded_rss,
        "matches": result.matches.height, "matches_by_rule": result.matches.group_by("rule").len().sort("rule").rows(),
        "suggestions": result.suggestions.height, "exceptions": result.facts.height,
        "exceptions_by_type": result.facts.group_by("type").len().sort("type").rows(),
    }))


def _run_child(folder: Path, step: str, repeat: int) -> dict[str, Any]:
    output = subprocess.run([sys.executable, __file__, "--child", str(folder), "--step", step,
                             "--repeat", str(repeat)], check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _prepare_data(folder: Path, rows: int, skip_normalize: bool) -> None:
    from generate_matching_data import generate, write_csv

    marker = folder / f"rows-{rows}"
    if marker.exists() and skip_normalize:
        print(f"reusing the frames in {folder}")
        return
    started = time.perf_counter()
    bank, switch = generate(rows)
    bank.write_parquet(folder / "bank.parquet")
    switch.write_parquet(folder / "switch.parquet")
    for old in folder.glob("rows-*"):
        old.unlink()
    marker.touch()
    print(f"generated {bank.height:,} bank x {switch.height:,} switch rows in {time.perf_counter() - started:.1f} s")
    if not skip_normalize:
        from reckai.adapters.polars.normalize import normalize_file

        bank_csv, switch_csv = write_csv(bank, switch, folder)
        for name, path, side in (("bank", bank_csv, "left"), ("switch", switch_csv, "right")):
            wall, cpu = time.perf_counter(), _cpu()
            normalized = normalize_file(path, PROFILE[side]["mapping"]).frame  # type: ignore[index]
            print(f"parse + normalize {name}.csv ({normalized.height:,} rows): "
                  f"{time.perf_counter() - wall:.2f} s wall, {_cpu() - cpu:.2f} s CPU")


def _report(join: dict[str, Any], match: dict[str, Any], load_start: str, load_end: str) -> None:
    join_best = min(join["runs"], key=lambda run: run["seconds"])
    best = min(match["runs"], key=lambda run: run["seconds"])
    cores = os.cpu_count()
    print(f"load average at start: {load_start}; at end: {load_end} (on {cores} cores: other work inflates wall time)")
    print(f"bare polars equi-join on reference ({join_best['rows']:,} rows), best of {len(join['runs'])}: "
          f"{join_best['seconds']:.3f} s wall, {join_best['cpu_seconds']:.3f} s CPU, peak RSS {join['peak_rss_mb']:,.0f} MB "
          f"(input frames {join['loaded_rss_mb']:,.0f} MB)")
    print("matching stages (best run):")
    for stage, seconds in best["stages"].items():
        print(f"  {stage:<15} {seconds:6.2f} s wall  {best['stage_cpu'].get(stage, float('nan')):6.2f} s CPU")
    all_runs = ", ".join(f"{run['seconds']:.2f}/{run['cpu_seconds']:.2f}" for run in match["runs"])
    print(f"matching total (duplicates + 3 passes + classification): {best['seconds']:.2f} s wall, "
          f"{best['cpu_seconds']:.2f} s CPU (runs wall/CPU: {all_runs}), peak RSS {match['peak_rss_mb']:,.0f} MB "
          f"(input frames {match['loaded_rss_mb']:,.0f} MB)")
    print(f"ratio to the equi-join: {best['seconds'] / join_best['seconds']:.1f}x wall, "
          f"{best['cpu_seconds'] / join_best['cpu_seconds']:.1f}x CPU")
    print(f"matches {match['matches']:,} {match['matches_by_rule']}, suggestions {match['suggestions']:,}, "
          f"exceptions {match['exceptions']:,} {match['exceptions_by_type']}")
    target = best["seconds"] <= 6 and match["peak_rss_mb"] <= 3 * 1024
    print("target (<= 6 s wall, <= 3 GB):", "met" if target else "NOT met")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-normalize", action="store_true", help="do not time CSV parsing + normalizing")
    parser.add_argument("--data", type=Path, help="folder for the generated frames (kept; reused with --skip-normalize)")
    parser.add_argument("--repeat", type=int, default=1, help="matcher runs (the best is reported)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child), args.step, args.repeat)
        return
    load_start = _load()
    with tempfile.TemporaryDirectory(prefix="reckai-bench-") as tmp:
        folder = args.data or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        _prepare_data(folder, args.rows, args.skip_normalize)
        join = _run_child(folder, "join", 3)
        match = _run_child(folder, "match", args.repeat)
    _report(join, match, load_start, _load())


if __name__ == "__main__":
    main()
