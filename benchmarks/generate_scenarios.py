"""Write the generated reconciliation scenarios (tests/support/recon_scenarios.py) to a folder.

    .venv/bin/python benchmarks/generate_scenarios.py OUT_DIR [--scenario NAME] [--transactions N] [--seed S]

Each scenario folder gets the left file, switch file, truth.json, profile.json (explicit
mappings) and profile-auto.json (mappings detected); score a run with ../shared/tools/score_recon.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.recon_scenarios import SCENARIOS, write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--transactions", type=int)
    parser.add_argument("--seed", type=int)
    args = parser.parse_args()
    for name in args.scenario or sorted(SCENARIOS):
        scenario = SCENARIOS[name]
        changes = {k: v for k, v in (("transactions", args.transactions), ("seed", args.seed)) if v is not None}
        scenario = dataclasses.replace(scenario, **changes)
        paths = write(scenario, args.out / name)
        print(f"{name}: {paths['left'].name} {paths['right'].name} period {scenario.period_start}.."
              f"{scenario.period_end} -> {args.out / name}")


if __name__ == "__main__":
    main()
