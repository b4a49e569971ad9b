"""The baseline `make bench-cli` compares `reckai reconcile` with: a VLOOKUP-style polars script.

What a spreadsheet user would do with the same two files: load both sheets whole, every column as
text, look each bank line up in the switch file by reference + amount, keep one pair per row,
write the pairs. No normalization, no rules, no breaks: a floor for the wall time, not a
reconciliation. The whole files are read, as the script issue 13 measured did (it peaked at
1.25-1.31 GB and ran 1.7-2.5 s); this one, with polars 2.1, peaks at about 0.66 GB and runs
0.7-1.4 s on the 2-core machine of docs/matching-performance.md, depending on the day.

    .venv/bin/python benchmarks/vlookup_polars.py BANK.csv SWITCH.csv OUT.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl


def vlookup(bank_csv: Path, switch_csv: Path, out: Path) -> int:
    bank = pl.read_csv(bank_csv, infer_schema=False).with_row_index("left_row", offset=1).with_columns(
        pl.col("reference").alias("key"), pl.col("amount").str.strip_prefix("-").alias("amount"))
    switch = pl.read_csv(switch_csv, infer_schema=False).with_row_index("right_row", offset=1).with_columns(
        pl.col("rrn").alias("key"))
    pairs = (bank.lazy().join(switch.lazy(), on=["key", "amount"], how="inner")
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
