"""Synthetic bank-vs-switch data for the matching benchmark, as normalized frames (and CSV text).

Switch: N card transactions (unique 12-digit RRNs, 3% declined). Bank: the customer debits, posted
0-2 days later, with the breaks real statements show: references only inside the narration (some
truncated to the last 8 digits), no reference at all (text + amount + date only), amount and date
mismatches, missing rows, doubled postings, and bank-only charges.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

MERCHANTS = ["SHOPRITE IKEJA", "SPAR ABUJA", "KONGA ONLINE", "JUMIA NG", "BUKKA HUT YABA", "OANDO AJAH",
             "MTN NG AIRTIME", "FILMHOUSE SURULERE", "CHICKEN REPUBLIC VI", "TOTAL ENERGIES LEKKI"]


def generate(rows: int, seed: int = 7) -> tuple[pl.DataFrame, pl.DataFrame]:
    start = dt.datetime(2025, 12, 1)
    index = pl.int_range(0, rows, eager=True).alias("i")
    base = pl.DataFrame(index).with_columns(
        # a permutation-like spread of RRNs: unique, 12 digits
        ((pl.col("i") * 7_919_393 + 104_729) % 900_000_000_000 + 100_000_000_000).cast(pl.String).alias("rrn"),
        (pl.col("i").hash(seed) % 5_000_000 + 100).cast(pl.Int64).alias("amount_minor"),
        (pl.col("i").hash(seed + 1) % (30 * 86_400)).cast(pl.Int64).alias("second"),
        (pl.col("i").hash(seed + 2) % 1000).cast(pl.Int64).alias("u"),  # decides each row's fate
        (pl.col("i").hash(seed + 3) % len(MERCHANTS)).cast(pl.Int64).alias("m"),
        (pl.col("i").hash(seed + 4) % 3).cast(pl.Int64).alias("lag"),
    ).with_columns(
        (pl.lit(start) + pl.duration(seconds=pl.col("second"))).alias("when"),
        pl.col("m").replace_strict(list(range(len(MERCHANTS))), MERCHANTS).alias("merchant"),
    )
    switch = base.select(
        (pl.col("i") + 1).alias("row_number"), pl.col("amount_minor"), pl.lit("debit").alias("direction"),
        pl.lit("NGN").alias("currency"), pl.col("when").alias("transaction_date"), pl.lit(True).alias("has_time"),
        pl.lit(None, pl.Date).alias("value_date"), pl.col("rrn").alias("reference"),
        pl.lit(None, pl.String).alias("secondary_reference"), pl.col("merchant").alias("description"),
        pl.lit("POS").alias("channel"), pl.lit(None, pl.String).alias("account"),
        pl.when(pl.col("u") < 30).then(pl.lit("failed")).otherwise(pl.lit("success")).alias("status"),
        pl.col("merchant").alias("counterparty"), pl.lit("{}").alias("raw"))
    u = pl.col("u")
    posted = (pl.col("when").dt.date() + pl.duration(days=pl.col("lag"))).cast(pl.Datetime("us"))
    bank = base.filter(~u.is_between(980, 989)).with_columns(  # 1% missing from the bank
        pl.when(u.is_between(950, 959)).then(pl.col("amount_minor") + 2_500)  # 1% amount mismatch
        .otherwise(pl.col("amount_minor")).alias("amount_minor"),
        pl.when(u.is_between(960, 969)).then(posted + pl.duration(days=9)).otherwise(posted).alias("posted"),
        pl.when(u.is_between(900, 929)).then(pl.lit(None, pl.String))  # ref only in narration, truncated
        .when(u.is_between(930, 939)).then(pl.lit(None, pl.String))  # no reference at all
        .otherwise(pl.col("rrn")).alias("reference"),
        pl.when(u.is_between(900, 929)).then(pl.format("POS PURCHASE @ {} RRN:{}", pl.col("merchant"),
                                                       pl.col("rrn").str.slice(4)))
        .when(u.is_between(930, 939)).then(pl.format("POS PURCHASE @ {}", pl.col("merchant")))
        .otherwise(pl.format("POS PURCHASE @ {} RRN:{}", pl.col("merchant"), pl.col("rrn"))).alias("narration"),
    )
    doubled = bank.filter(u.is_between(970, 974))  # 0.5% posted twice
    extra = pl.DataFrame(pl.int_range(0, rows // 100, eager=True).alias("i")).with_columns(
        pl.lit(5_000, pl.Int64).alias("amount_minor"), pl.lit(None, pl.String).alias("reference"),
        pl.lit("SMS ALERT CHARGES").alias("narration"),
        (pl.lit(start) + pl.duration(days=pl.col("i") % 30)).cast(pl.Datetime("us")).alias("posted"))
    columns = ["amount_minor", "reference", "narration", "posted", "i"]
    bank_all = pl.concat([bank.select(columns), doubled.select(columns),
                          extra.select(columns).with_columns(pl.col("i") + rows)])
    bank_all = bank_all.sort(pl.col("i").hash(seed + 9))  # statement order is not switch order
    bank_frame = bank_all.select(
        pl.int_range(1, bank_all.height + 1).cast(pl.Int64).alias("row_number"), pl.col("amount_minor"),
        pl.lit("debit").alias("direction"), pl.lit("NGN").alias("currency"),
        pl.col("posted").alias("transaction_date"), pl.lit(False).alias("has_time"),
        pl.col("posted").dt.date().alias("value_date"), pl.col("reference"),
        pl.lit(None, pl.String).alias("secondary_reference"), pl.col("narration").alias("description"),
        pl.lit(None, pl.String).alias("channel"), pl.lit(None, pl.String).alias("account"),
        pl.lit("success").alias("status"), pl.lit(None, pl.String).alias("counterparty"), pl.lit("{}").alias("raw"))
    return bank_frame, switch


def write_csv(bank: pl.DataFrame, switch: pl.DataFrame, folder: Path) -> tuple[Path, Path]:
    """The same rows as source files (what a bank and a switch export) for timing the normalizer."""
    bank_csv, switch_csv = folder / "bank.csv", folder / "switch.csv"
    bank.select(pl.col("transaction_date").dt.strftime("%Y-%m-%d").alias("trans_date"),
                pl.col("reference"), pl.col("description").alias("narration"),
                (pl.format("-{}.{}", pl.col("amount_minor") // 100,
                           (pl.col("amount_minor") % 100).cast(pl.String).str.zfill(2))).alias("amount"),
                pl.col("currency")).write_csv(bank_csv)
    switch.select(pl.col("transaction_date").dt.strftime("%Y-%m-%d %H:%M:%S").alias("tran_datetime"),
                  pl.col("reference").alias("rrn"),
                  (pl.format("{}.{}", pl.col("amount_minor") // 100,
                             (pl.col("amount_minor") % 100).cast(pl.String).str.zfill(2))).alias("amount"),
                  pl.col("currency"), pl.col("counterparty").alias("merchant_name"),
                  pl.when(pl.col("status") == "success").then(pl.lit("00")).otherwise(pl.lit("05"))
                  .alias("response_code")).write_csv(switch_csv)
    return bank_csv, switch_csv
