"""Statement formats benchmark (issue 18): the same transactions as MT940, camt.053 and CSV.

    .venv/bin/python benchmarks/bench_formats.py [--rows 100000] [--camt-rows 1000000] [--library]

Generates MT940 (1,000 transactions per statement, :86: with ?NN sub-fields), camt.053 and CSV
files of the same rows under benchmarks/data/ (git-ignored; reused when present), then measures
each case in a fresh subprocess so that the peak RSS is that case's alone: read + normalize
with the proposed mapping (no user input; the time of the proposal, made first, is printed
beside: an upload proposes once, then normalizes when the mapping is confirmed), from the file's
path; the last case without the `raw` column (`keep_raw=False`: the mapping preview, and
`reckai reconcile` when no rule reads `raw.*`). `--library`
also times the `mt-940` library (not a dependency: `pip install mt-940` first) on the same MT940
text, and our parser alone, for the parser comparison written in docs/file-formats.md. Goals: MT940 <= 3 s and <= 300 MB per 100k
transactions; camt.053 at 1M entries in bounded memory.
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
PER_STATEMENT = 1000
NAMES = ["ACME GMBH", "MUSTER AG", "JANSEN BV", "DUPONT SA", "ROSSI SRL", "NOWAK SP ZOO"]


def _transactions(rows: int) -> list[tuple[int, str, int, str]]:
    rng = random.Random(18)
    return [(i, "C" if rng.random() < 0.4 else "D", rng.randint(1, 5_000_000), rng.choice(NAMES))
            for i in range(rows)]


def generate_mt940(path: Path, rows: int) -> None:
    balance = 0
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, rows, PER_STATEMENT):
            number = start // PER_STATEMENT + 1
            out.write(f":20:STMT{number:07d}\n:25:DE89370400440532013000\n:28C:{number:05d}/001\n")
            out.write(f":60F:{'C' if balance >= 0 else 'D'}250101EUR{abs(balance) // 100},{abs(balance) % 100:02d}\n")
            for i, mark, cents, name in _TXNS[start:start + PER_STATEMENT]:
                day = 1 + i % 28
                balance += cents if mark == "C" else -cents
                out.write(f":61:2501{day:02d}01{day:02d}{mark}{cents // 100},{cents % 100:02d}NTRFREF{i:010d}//B{i:010d}\n")
                out.write(f":86:166?00GUTSCHRIFT?20EREF+E2E{i:010d}?21SVWZ+Invoice {i} payment?32{name}\n")
            out.write(f":62F:{'C' if balance >= 0 else 'D'}250131EUR{abs(balance) // 100},{abs(balance) % 100:02d}\n-\n")


def generate_camt053(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:'
                  'camt.053.001.08"><BkToCstmrStmt><GrpHdr><MsgId>B</MsgId></GrpHdr>\n<Stmt><Id>S1</Id>'
                  '<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>\n')
        for i, mark, cents, name in _TXNS[:rows]:
            day = 1 + i % 28
            indicator = "CRDT" if mark == "C" else "DBIT"
            party = "Dbtr" if mark == "C" else "Cdtr"
            out.write(f"<Ntry><NtryRef>N{i}</NtryRef><Amt Ccy=\"EUR\">{cents // 100}.{cents % 100:02d}</Amt>"
                      f"<CdtDbtInd>{indicator}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
                      f"<BookgDt><Dt>2025-01-{day:02d}</Dt></BookgDt><ValDt><Dt>2025-01-{day:02d}</Dt></ValDt>"
                      f"<AcctSvcrRef>B{i:010d}</AcctSvcrRef><NtryDtls><TxDtls><Refs><EndToEndId>E2E{i:010d}"
                      f"</EndToEndId></Refs><RltdPties><{party}><Nm>{name}</Nm></{party}></RltdPties>"
                      f"<RmtInf><Ustrd>Invoice {i} payment</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>\n")
        out.write("</Stmt></BkToCstmrStmt></Document>\n")


def generate_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("value_date,amount,currency,reference,counterparty,description\n")
        for i, mark, cents, name in _TXNS[:rows]:
            sign = "" if mark == "C" else "-"
            out.write(f"2025-01-{1 + i % 28:02d},{sign}{cents // 100}.{cents % 100:02d},EUR,E2E{i:010d},{name},"
                      f"Invoice {i} payment\n")


_TXNS: list[tuple[int, str, int, str]] = []


def _measure(case: str, path: Path) -> dict[str, object]:
    """Runs in the child process."""
    start = time.perf_counter()
    cpu = time.process_time()
    propose_seconds = None
    if case == "mt-940 library":
        import mt940  # type: ignore[import-not-found]

        parsed = mt940.models.Transactions()
        parsed.parse(path.read_text())
        rows = len(parsed)
    elif case == "own MT940 parser":
        from reckai.domain.ingestion.mt940 import parse_mt940

        rows = parse_mt940(path.read_text()).row_count
    else:
        from reckai.adapters.polars.normalize import normalize_file, propose_file_mapping

        # From the path, as `reckai reconcile` reads: the bytes are let go once the table is read.
        mapping = propose_file_mapping(path).mapping
        propose_seconds = round(time.perf_counter() - start, 2)
        start, cpu = time.perf_counter(), time.process_time()
        result = normalize_file(path, mapping, keep_raw=not case.endswith("no raw"))
        rows = result.row_count
        assert not result.errors, result.errors[:3]
    return {"case": case, "rows": rows, "seconds": round(time.perf_counter() - start, 2),
            "propose_seconds": propose_seconds,
            "cpu_seconds": round(time.process_time() - cpu, 2),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}  # VmHWM


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--camt-rows", type=int, default=1_000_000)
    parser.add_argument("--library", action="store_true", help="also time the mt-940 library")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.child[0], Path(args.child[1]))))
        return
    DATA.mkdir(exist_ok=True)
    files = {"mt940": DATA / f"formats_{args.rows}.sta", "camt": DATA / f"formats_{args.rows}.camt053.xml",
             "csv": DATA / f"formats_{args.rows}.csv", "camt_large": DATA / f"formats_{args.camt_rows}.camt053.xml"}
    _TXNS.extend(_transactions(max(args.rows, args.camt_rows)))
    for key, generate, count in (("mt940", generate_mt940, args.rows), ("camt", generate_camt053, args.rows),
                                 ("csv", generate_csv, args.rows), ("camt_large", generate_camt053, args.camt_rows)):
        if not files[key].exists():
            generate(files[key], count)
    cases = [("MT940", files["mt940"]), ("camt.053", files["camt"]), ("CSV", files["csv"]),
             (f"camt.053 {args.camt_rows} entries", files["camt_large"]),
             (f"camt.053 {args.camt_rows}, no raw", files["camt_large"])]
    if args.library:
        cases = [("own MT940 parser", files["mt940"]), ("mt-940 library", files["mt940"]), *cases]
    print(f"load average {os.getloadavg()[0]:.2f}")
    for case, path in cases:
        done = subprocess.run([sys.executable, __file__, "--child", case, str(path)], capture_output=True,
                              text=True, check=False)
        if done.returncode:
            print(f"{case}: failed\n{done.stderr[-2000:]}")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        size = path.stat().st_size / 1e6
        proposed = f"  (proposal before it: {result['propose_seconds']} s)" if result["propose_seconds"] else ""
        print(f"{case:<28} {result['rows']:>9} rows  {result['seconds']:>7} s  (cpu {result['cpu_seconds']} s)  "
              f"peak RSS {result['peak_rss_mb']} MB  file {size:.0f} MB{proposed}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
