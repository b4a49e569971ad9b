"""Ingestion benchmark: parse + normalize a 1,000,000-row CSV and a 100,000-row XLSX.

    .venv/bin/python benchmarks/bench_ingestion.py [--rows 1000000] [--xlsx-rows 100000]

Generates its own data under benchmarks/data/ (git-ignored; reused when present), then measures
each case in a fresh subprocess so peak RSS belongs to that case alone. The CSV case includes
delimiter detection, header detection, the ragged-row pre-pass, decimal amounts to minor units,
date parsing and regex reference extraction (a third of the reference cells are empty and the RRN
comes out of the narration). Targets (issue 4): CSV <= 3 s, XLSX <= 5 s, peak RSS < 1.5 GB.

Wall time depends on what else the 2-core machine runs, so each case also prints its CPU time
(user + sys; sys is mostly page faults on freshly allocated memory) and the load average at the
start and end. `--repeat N` runs each case N times and reports the fastest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
CSV_MAPPING = {
    "parse": {},
    "fields": {
        "amount": {"column": "amount", "strip": ["₦"]},
        "direction": {"from_sign": {"negative": "debit", "positive": "credit"}},
        "currency": {"column": "currency"},
        "transaction_date": {"column": "trans_date", "formats": ["%Y-%m-%d %H:%M:%S", "%d/%m/%Y"]},
        "value_date": {"column": "value_date", "formats": ["%Y-%m-%d"]},
        "reference": {"coalesce": [{"column": "reference"},
                                   {"column": "narration", "regex": "RRN:(\\d{12})"}]},
        "description": {"column": "narration"},
        "channel": {"column": "channel", "upper": True},
        "status": {"column": "response_code", "value_map": {"00": "success"}, "default": "failed"},
    },
}
XLSX_MAPPING = {
    "parse": {"format": "xlsx"},
    "fields": {
        "amount": {"column": "amount"},
        "direction": {"from_sign": {}},
        "currency": {"column": "currency"},
        "transaction_date": {"column": "trans_date"},
        "reference": {"column": "reference"},
        "description": {"column": "narration"},
    },
}
MERCHANTS = ["SHOPRITE LEKKI", "TOTAL ENERGIES", "SPAR ABUJA", "GTB ATM OGBA", "KONGA ONLINE", "MTN AIRTIME"]


def generate_csv(path: Path, rows: int) -> None:
    rng = random.Random(42)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("Account Statement for ACME LTD\n\n")
        out.write("trans_date,value_date,reference,narration,amount,currency,channel,response_code,balance\n")
        for i in range(rows):
            rrn = f"{rng.randrange(10**11, 10**12)}"
            day = 1 + i % 28
            amount = f"{'-' if rng.random() < 0.7 else ''}{rng.randrange(100, 5_000_000)}.{rng.randrange(100):02d}"
            reference = "" if i % 3 == 0 else rrn
            out.write(f"2025-12-{day:02d} {i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d},2025-12-{day:02d},"
                      f"{reference},POS PURCHASE @ {MERCHANTS[i % len(MERCHANTS)]} RRN:{rrn} TID:2057{i % 10000:04d},"
                      f"{amount},NGN,{'pos' if i % 2 else 'web'},{'00' if i % 10 else '51'},1000000.00\n")
        out.write(f"TOTAL,,,,{rows},,,,\n")


def generate_xlsx(path: Path, rows: int) -> None:
    import datetime as dt

    import openpyxl

    rng = random.Random(7)
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Statement")
    sheet.append(["trans_date", "reference", "narration", "amount", "currency"])
    start = dt.datetime(2025, 12, 1)
    for i in range(rows):
        sheet.append([start + dt.timedelta(minutes=i), f"{rng.randrange(10**11, 10**12)}",
                      f"POS PURCHASE @ {MERCHANTS[i % len(MERCHANTS)]}",
                      round(rng.randrange(-5_000_000, 5_000_000) / 100, 2), "NGN"])
    book.save(path)


def run_case(kind: str, path: Path) -> None:
    """Runs inside a fresh interpreter; prints one JSON line."""
    from reckai.adapters.polars.normalize import normalize_file

    mapping = CSV_MAPPING if kind == "csv" else XLSX_MAPPING
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = normalize_file(path, mapping)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime  # mostly page faults on fresh memory
    print(json.dumps({"case": kind, "rows": result.row_count, "errors": len(result.errors),
                      "seconds": round(elapsed, 3), "cpu_seconds": round(user + system, 3),
                      "user_seconds": round(user, 3), "sys_seconds": round(system, 3),
                      "peak_rss_mib": round(after.ru_maxrss / 1024, 1),
                      "refs_from_narration": int(result.frame["reference"].is_not_null().sum())}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the fastest is reported")
    parser.add_argument("--run", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_case(args.run[0], Path(args.run[1]))
        return
    DATA.mkdir(parents=True, exist_ok=True)
    csv_path = DATA / f"bench_{args.rows}.csv"
    xlsx_path = DATA / f"bench_{args.xlsx_rows}.xlsx"
    for path, make, rows in ((csv_path, generate_csv, args.rows), (xlsx_path, generate_xlsx, args.xlsx_rows)):
        if not path.exists():
            started = time.perf_counter()
            make(path.with_suffix(".tmp" + path.suffix), rows)
            path.with_suffix(".tmp" + path.suffix).rename(path)
            print(f"generated {path.name} ({path.stat().st_size / 1e6:.1f} MB) in "
                  f"{time.perf_counter() - started:.1f} s")
    targets = {"csv": 3.0, "xlsx": 5.0}
    print(f"load average at start: {_load()} (on {os.cpu_count()} cores; other work inflates wall time, "
          "so CPU time is printed too)")
    for kind, path in (("csv", csv_path), ("xlsx", xlsx_path)):
        runs = [_measure(kind, path) for _ in range(args.repeat)]
        figures = min(runs, key=lambda f: f["seconds"])
        verdict = "OK" if figures["seconds"] <= targets[kind] and figures["peak_rss_mib"] < 1536 else "OVER"
        cpu_all = ", ".join(f"{f['cpu_seconds']:.2f}" for f in runs)
        print(f"{kind:5} rows={figures['rows']:>9,} errors={figures['errors']} wall={figures['seconds']:.2f} s "
              f"(target {targets[kind]:.0f} s) cpu={figures['cpu_seconds']:.2f} s "
              f"(user {figures['user_seconds']:.2f} + sys {figures['sys_seconds']:.2f}) "
              f"peak_rss={figures['peak_rss_mib']:.0f} MiB (target < 1536) [{verdict}]"
              + (f" best of {len(runs)}; cpu of each run: {cpu_all}" if len(runs) > 1 else ""))
    print(f"load average at end: {_load()}")


def _load() -> str:
    path = Path("/proc/loadavg")
    return " ".join(path.read_text().split()[:3]) if path.exists() else "n/a"


def _measure(kind: str, path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--run", kind, str(path)], check=True,
                         capture_output=True, text=True)
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


if __name__ == "__main__":
    main()
