"""The baseline `make bench-cli` compares `reckai reconcile` with: a VLOOKUP-style polars script.

What a spreadsheet user would do with the same two files: read both CSVs as text, look each bank
line up in the switch file by reference + amount, keep one pair per row, write the pairs. No
normalization, no rules, no breaks: a floor for the wall time, not a reconciliation.

    .venv/bin/python benchmarks/vlookup_polars.py BANK.csv SWITCH.csv OUT.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl


def vlookup(bank_csv: Path, switch_csv: Path, out: Path) -> int:
    bank = pl.scan_csv(bank_csv, infer_schema=False).select(
        pl.int_range(1, pl.len() + 1).alias("left_row"), pl.col("reference").alias("key"),
        pl.col("amount").str.strip_prefix("-").alias("amount"))
    switch = pl.scan_csv(switch_csv, infer_schema=False).select(
        pl.int_range(1, pl.len() + 1).alias("right_row"), pl.col("rrn").alias("key"), pl.col("amount"))
    pairs = (bank.join(switch, on=["key", "amount"], how="inner")
             .unique(subset="left_row", keep="first", maintain_order=True)
             .unique(subset="right_row", keep="first", maintain_order=True)
             .select("left_row", "right_row").collect())
    pairs.write_csv(out)
    return pairs.height


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    found = vlookup(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
    print(f"{found} pairs; peak RSS {_peak_rss_mb():.0f} MB", file=sys.stderr)
