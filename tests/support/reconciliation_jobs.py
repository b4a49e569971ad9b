"""Shared set-up for reconciliation-job tests: the card-vs-bank-a files, profile, rules, and what
`reckai reconcile` says about them (the reference the job's counts must agree with)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from reckai.application.ports.reconciliations import RuleVersion

ROOT = Path(__file__).resolve().parents[2]
_SHIPPED = ROOT / "tests" / "data" / "card-vs-bank-a"
DATA = _SHIPPED if _SHIPPED.is_dir() else ROOT.parent / "shared" / "data" / "card-vs-bank-a"
PROFILE_PATH = ROOT / "examples" / "profiles" / "card-vs-bank-a.json"
PERIOD = (dt.date(2025, 12, 1), dt.date(2025, 12, 31))


def profile() -> dict[str, Any]:
    return json.loads(PROFILE_PATH.read_text())  # type: ignore[no-any-return]


def bank_bytes() -> bytes:
    return (DATA / "bank.csv").read_bytes()


def switch_bytes() -> bytes:
    return (DATA / "switch.csv").read_bytes()


def rule_versions() -> list[RuleVersion]:
    """The profile's rules as approved rule versions for bank (left) against switch (right)."""
    versions = []
    for rule in profile()["rules"]:
        definition = {k: v for k, v in rule.items() if k not in ("name", "version")}
        versions.append(RuleVersion(rule_id=uuid.uuid4(), version=int(rule.get("version", 1)), name=rule["name"],
                                    definition=definition, applies_to=("bank", "switch")))
    return versions


def seed_rules(database: Any, organization_id: uuid.UUID, user_id: uuid.UUID) -> list[RuleVersion]:
    versions = rule_versions()
    with database.unit_of_work(organization_id) as uow:
        for rule, raw in zip(versions, profile()["rules"], strict=True):
            uow.matching_rules.add_version(rule, created_by=user_id, priority=int(raw.get("priority", 0)))
        uow.commit()
    return versions


def start_body(left_file_id: uuid.UUID, right_file_id: uuid.UUID, name: str = "December card vs bank",
               force: bool = False) -> dict[str, Any]:
    """The POST /api/reconciliations body equivalent to running the profile (`force`: the same two
    files again, issue 15)."""
    raw = profile()
    return {**({"force": True} if force else {}),
        "name": name, "left_file_id": str(left_file_id), "right_file_id": str(right_file_id),
        "leading_side": raw.get("leading_side"),
        "period_start": PERIOD[0].isoformat(), "period_end": PERIOD[1].isoformat(),
        "options": {"currency": raw.get("currency", "NGN"), "reference_label": raw.get("reference_label", "reference"),
                    "left_label": raw["left"]["label"], "right_label": raw["right"]["label"],
                    "left_direction": raw["left"].get("direction"), "right_direction": raw["right"].get("direction"),
                    **({"cutoff": raw["cutoff"]} if "cutoff" in raw else {}),
                    **({"settlement_side": raw["settlement_side"]} if "settlement_side" in raw else {})},
    }


@cache
def cli_summary() -> dict[str, Any]:
    """`reckai reconcile` on the same files and profile (its code path, in process)."""
    from reckai.adapters.polars.matcher_input import PolarsCanonicalSource
    from reckai.adapters.polars.result_tables import PolarsTablesEngine, ResultTables
    from reckai.application.reconcile import load_profile, reconcile_files
    from reckai.domain.reconciliation.profile import ReconciliationPeriod

    outcome = reconcile_files(str(DATA / "bank.csv"), str(DATA / "switch.csv"), load_profile(PROFILE_PATH),
                              ReconciliationPeriod(*PERIOD), PolarsCanonicalSource(), PolarsTablesEngine())
    summary = outcome.summary()
    assert isinstance(outcome.result, ResultTables)
    matches, exceptions = outcome.result.matches, outcome.result.exceptions
    summary["match_pairs"] = sorted(matches.select("left_row", "right_row").iter_rows())
    summary["exception_keys"] = sorted((kind, left or 0, right or 0) for kind, left, right
                                       in exceptions.select("type", "left_row", "right_row").iter_rows())
    return summary


def write_synthetic_files(rows: int, folder: Path, seed: int = 7) -> tuple[Path, Path]:
    """`rows` switch transactions and the matching bank statement (with the usual breaks), written
    in the layouts of card-vs-bank-a (so its profile maps them): bank.csv and switch.csv."""
    import sys

    import polars as pl

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generate_matching_data import generate  # benchmarks/generate_matching_data.py (matching engine)

    bank, switch = generate(rows, seed)
    folder.mkdir(parents=True, exist_ok=True)

    def amount(sign: str) -> pl.Expr:
        return pl.format(sign + "{}.{}", pl.col("amount_minor") // 100,
                         (pl.col("amount_minor") % 100).cast(pl.String).str.zfill(2))

    bank_csv, switch_csv = folder / "bank.csv", folder / "switch.csv"
    bank.select(pl.col("transaction_date").dt.strftime("%Y-%m-%d").alias("trans_date"),
                pl.col("value_date").dt.strftime("%Y-%m-%d").alias("value_date"),
                pl.col("reference").fill_null(""), pl.col("description").alias("narration"),
                amount("-").alias("amount"), pl.col("currency")).write_csv(bank_csv)
    switch.select(pl.col("transaction_date").dt.strftime("%Y-%m-%d %H:%M:%S").alias("tran_datetime"),
                  pl.col("reference").alias("rrn"),
                  (pl.col("row_number") % 1_000_000).cast(pl.String).str.zfill(6).alias("stan"),
                  pl.format("539983******{}", (pl.col("row_number") % 10_000).cast(pl.String).str.zfill(4)).alias("pan"),
                  amount("").alias("amount"), pl.col("currency"),
                  pl.lit("20570464").alias("terminal_id"), pl.lit("MID101371").alias("merchant_id"),
                  pl.col("counterparty").alias("merchant_name"), pl.col("channel"),
                  pl.when(pl.col("status") == "success").then(pl.lit("00")).otherwise(pl.lit("05"))
                  .alias("response_code")).write_csv(switch_csv)
    return bank_csv, switch_csv
