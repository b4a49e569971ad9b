"""`make bench-cli`: `reckai reconcile` against a VLOOKUP-style polars script on 1M x 1M rows.

    .venv/bin/python benchmarks/bench_cli.py [--rows 1000000] [--repeat 3]

Data: the bank statement and switch file of bench_end_to_end.py (layouts of card-vs-bank-a,
generated once under benchmarks/data/e2e_<rows>/), the shipped profile examples/profiles/
card-vs-bank-a.json, the period 2025-12-01..31. Each command runs `--repeat` times back to back
in a fresh process: `reckai reconcile` from CSV to all four outputs (matches, suggestions,
exceptions, summary.json), then benchmarks/vlookup_polars.py. Printed: every wall time, each
median, the ratio of the medians, the CLI's peak RSS (VmHWM read by the CLI process itself at
exit: not the parent's ru_maxrss, which Linux carries across fork + exec), the CLI's slowest stage
(from its summary.json), the CPU seconds of each run (user + system, all threads; steadier than
the wall time when other work shares the machine) and the load average. Gate (issue 13): ratio <= 3 and peak <= 1.5 GB; goal:
the CLI within 5 s. The machine may be shared: read the wall times next to the load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "examples" / "profiles" / "card-vs-bank-a.json"
PEAK_MARK = "cli peak rss kb: "


def _cli_child(argv: list[str]) -> int:
    """Run `reckai reconcile` in this process, then report this process's own VmHWM."""
    sys.path.insert(0, str(ROOT / "src"))
    from reckai.entrypoints.cli.main import main

    code = main(argv)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            print(PEAK_MARK + line.split()[1], file=sys.stderr)
    return code


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(command: list[str], cpu: list[float]) -> tuple[float, str]:
    """Wall seconds of one run; appends its CPU seconds (user + system, all threads) to `cpu`."""
    cpu_before, started = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    cpu.append(_children_cpu() - cpu_before)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr}")
    return seconds, done.stderr


def run(rows: int, repeat: int) -> int:
    folder = ROOT / "benchmarks" / "data" / f"e2e_{rows}"
    if not (folder / "bank.csv").exists():
        sys.path.insert(0, str(ROOT))
        from tests.support import reconciliation_jobs as rj

        started = time.perf_counter()
        rj.write_synthetic_files(rows, folder)
        print(f"generated {folder} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    bank, switch = folder / "bank.csv", folder / "switch.csv"
    scratch = Path(tempfile.mkdtemp(prefix="reckai-bench-cli-"))
    load = {"start": _load()}
    cli_seconds, peaks, stages, cli_cpu, vlookup_cpu = [], [], [], [], []
    for index in range(repeat):
        out = scratch / f"cli_{index}"
        seconds, stderr = _timed([sys.executable, __file__, "--cli-child", "reconcile", "--left", str(bank),
                                  "--right", str(switch), "--profile", str(PROFILE), "--out", str(out),
                                  "--period-start", "2025-12-01", "--period-end", "2025-12-31"], cli_cpu)
        cli_seconds.append(seconds)
        peaks.append(int(stderr.split(PEAK_MARK)[1].split()[0]) / 1024)
        stages.append(json.loads((out / "summary.json").read_text())["seconds"])
        print(f"reckai reconcile run {index + 1}: {seconds:.2f} s ({cli_cpu[-1]:.2f} s CPU), "
              f"peak RSS {peaks[-1]:,.0f} MB", file=sys.stderr)
    load["after_cli"] = _load()
    vlookup_seconds = []
    for index in range(repeat):
        seconds, _ = _timed([sys.executable, str(ROOT / "benchmarks" / "vlookup_polars.py"), str(bank), str(switch),
                             str(scratch / f"vlookup_{index}.csv")], vlookup_cpu)
        vlookup_seconds.append(seconds)
        print(f"vlookup script run {index + 1}: {seconds:.2f} s ({vlookup_cpu[-1]:.2f} s CPU)", file=sys.stderr)
    load["end"] = _load()
    cli, vlookup = statistics.median(cli_seconds), statistics.median(vlookup_seconds)
    ratio = cli / vlookup
    peak = max(peaks)
    median_run = stages[cli_seconds.index(sorted(cli_seconds)[len(cli_seconds) // 2])]
    slowest = max(median_run, key=lambda stage: median_run[stage])
    rows_bank = sum(1 for _ in bank.open("rb")) - 1
    print(json.dumps({"rows": {"bank": rows_bank, "switch": rows}, "cli_seconds": [round(s, 2) for s in cli_seconds],
                      "vlookup_seconds": [round(s, 2) for s in vlookup_seconds],
                      "cli_cpu_seconds": [round(s, 2) for s in cli_cpu],
                      "vlookup_cpu_seconds": [round(s, 2) for s in vlookup_cpu],
                      "cli_peak_rss_mb": [round(p) for p in peaks], "cli_stage_seconds (median run)": median_run,
                      "load_average (1, 5, 15 min)": load}, indent=2))
    gate = ratio <= 3 and peak <= 1536
    print(f"\nreckai reconcile median {cli:.2f} s | vlookup script median {vlookup:.2f} s | ratio {ratio:.2f}x | "
          f"CLI peak RSS {peak:,.0f} MB | slowest stage {slowest} {median_run[slowest]:.2f} s")
    cpu_ratio = statistics.median(cli_cpu) / statistics.median(vlookup_cpu)
    print(f"CPU (user + system): reckai reconcile median {statistics.median(cli_cpu):.2f} s | vlookup script "
          f"median {statistics.median(vlookup_cpu):.2f} s | ratio {cpu_ratio:.2f}x")
    print(f"gate (ratio <= 3x, peak <= 1.5 GB): {'met' if gate else 'NOT met'}; "
          f"goal (CLI <= 5 s): {'met' if cli <= 5 else 'not met'}; load {load['start']} -> {load['end']}")
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--cli-child":
        return _cli_child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    return run(args.rows, args.repeat)


if __name__ == "__main__":
    sys.exit(main())
