"""Matching benchmark: 1,000,000 bank x 1,000,000 switch rows (override with --rows N).

Times, on normalized frames: the duplicate pre-pass, three passes (exact reference; regex-extracted
reference with suffix matching; amount + date window with fuzzy text, blocked by amount) and the
break classification, next to one bare polars equi-join of the same frames. Parsing and normalizing
the same data from CSV is timed separately. Peak memory is the matching process's own peak RSS
(the matching runs in a fresh child process that only loads the normalized frames).

    .venv/bin/python benchmarks/bench_matching.py [--rows N] [--skip-normalize]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def child(folder: Path) -> None:
    import datetime as dt

    import polars as pl

    from reckai.adapters.polars.matcher import PolarsMatcher
    from reckai.domain.reconciliation.profile import ReconciliationPeriod, parse_profile

    bank = pl.read_parquet(folder / "bank.parquet")
    switch = pl.read_parquet(folder / "switch.parquet")
    started = time.perf_counter()
    joined = bank.join(switch, on="reference", how="inner")
    join_seconds = time.perf_counter() - started
    profile = parse_profile(PROFILE)
    period = ReconciliationPeriod(dt.date(2025, 12, 1), dt.date(2025, 12, 31))
    started = time.perf_counter()
    result = PolarsMatcher().reconcile_frames(bank, switch, profile, period)
    match_seconds = time.perf_counter() - started
    by_type = result.facts.group_by("type").len().sort("type").rows()
    by_rule = result.matches.group_by("rule").len().sort("rule").rows()
    print(json.dumps({
        "equi_join_seconds": join_seconds, "equi_join_rows": joined.height, "match_seconds": match_seconds,
        "stages": result.stage_seconds, "matches": result.matches.height, "matches_by_rule": by_rule,
        "suggestions": result.suggestions.height, "exceptions": result.facts.height, "exceptions_by_type": by_type,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-normalize", action="store_true", help="do not time CSV parsing + normalizing")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child))
        return
    from generate_matching_data import generate, write_csv

    with tempfile.TemporaryDirectory(prefix="reckai-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        bank, switch = generate(args.rows)
        bank.write_parquet(folder / "bank.parquet")
        switch.write_parquet(folder / "switch.parquet")
        print(f"generated {bank.height:,} bank x {switch.height:,} switch rows in "
              f"{time.perf_counter() - started:.1f} s")
        if not args.skip_normalize:
            from reckai.adapters.polars.normalize import normalize_file

            bank_csv, switch_csv = write_csv(bank, switch, folder)
            for name, path, side in (("bank", bank_csv, "left"), ("switch", switch_csv, "right")):
                started = time.perf_counter()
                normalized = normalize_file(path, PROFILE[side]["mapping"]).frame  # type: ignore[index]
                print(f"parse + normalize {name}.csv ({normalized.height:,} rows): "
                      f"{time.perf_counter() - started:.2f} s")
        del bank, switch
        output = subprocess.run([sys.executable, __file__, "--child", str(folder)], check=True,
                                capture_output=True, text=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    ratio = figures["match_seconds"] / figures["equi_join_seconds"]
    print(f"bare polars equi-join on reference: {figures['equi_join_seconds']:.3f} s "
          f"({figures['equi_join_rows']:,} rows)")
    print("matching stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in figures["stages"].items()))
    print(f"matching total (duplicates + 3 passes + classification): {figures['match_seconds']:.2f} s wall, "
          f"peak RSS {figures['peak_rss_mb']:,.0f} MB, ratio to equi-join {ratio:.1f}x")
    print(f"matches {figures['matches']:,} {figures['matches_by_rule']}, suggestions {figures['suggestions']:,}, "
          f"exceptions {figures['exceptions']:,} {figures['exceptions_by_type']}")
    target = figures["match_seconds"] <= 6 and figures["peak_rss_mb"] <= 3 * 1024
    print("target (<= 6 s, <= 3 GB):", "met" if target else "NOT met")


if __name__ == "__main__":
    main()
