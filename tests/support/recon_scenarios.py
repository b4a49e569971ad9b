"""Realistic reconciliation scenarios: bank/settlement vs switch files, a truth.json and profiles.

Each scenario writes a pair of files in one of the layouts real Nigerian exports use, the ground
truth in the format of ``tests/data/card-vs-bank-a/truth.json`` (1-based data rows, header and
preamble excluded) and two profiles: the one an analyst would write (explicit mappings) and one
whose sides say ``"mapping": "auto"``.

Truth semantics (../shared/data/README.md and the matching issue):
- a match is one card transaction the bank posted with the same RRN and amount, 0..``max_lag``
  days after the switch's transaction date, never after the period's last day (a later posting
  belongs to the next statement);
- ``timing_difference``: an approved transaction late on the period's last day that the bank posts
  in the next period (absent from this statement); an approved transaction missing from the bank
  on any other day is a ``missing_entry``;
- ``duplicate``: the second copy (higher row number) of a doubled bank debit (same reference,
  amount and posting date); the first copy is matched; the exception names the switch row;
- ``non_settlement``: the bank debited a transaction the switch declined or reversed; a declined
  or reversed transaction the bank never debited is no break (nothing moved);
- ``amount_mismatch`` / ``date_mismatch``: same transaction, amount off by a fee-sized difference /
  posted far outside the posting window;
- bank rows with no card transaction (charges, transfers, salary credits): ``missing_entry``.
In a settlement-vs-switch scenario (left = the settlement report, ``settlement_side: "left"``) an
approved transaction the settlement never paid is ``non_settlement`` instead of ``missing_entry``.

Everything is deterministic for a (scenario, seed); sizes are small enough for unit tests.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

MERCHANTS = ["SHOPRITE IKEJA", "SPAR ABUJA", "KONGA ONLINE", "JUMIA NG", "BUKKA HUT YABA", "OANDO AJAH",
             "MTN NG AIRTIME", "FILMHOUSE SURULERE", "CHICKEN REPUBLIC VI", "TOTAL ENERGIES LEKKI",
             "ERISCO FOODS", "CAFÉ NEO IKOYI", "GTB ATM OGBA", "DOMINO'S PIZZA LEKKI", "PRINCE EBEANO"]
CHANNELS = [("POS", 0.6), ("ATM", 0.2), ("WEB", 0.15), ("USSD", 0.05)]
DECLINE_CODES = ["05", "51", "91", "96", "06", "55", "61", "12"]
FEE_DIFFERENCES = [2_500, 3_500, 5_000, 10_000, 100_000, -2_500, -5_000, 1_075]  # kobo: ₦25, ₦35, ...


@dataclass(frozen=True)
class Mix:
    """Rates per switch transaction (the rest are clean matches) and absolute counts."""

    missing_in_bank: float = 0.03
    amount_mismatch: float = 0.03
    date_mismatch: float = 0.02
    duplicate: float = 0.025
    declined_debited: float = 0.015
    declined_clean: float = 0.02
    reversed_debited: float = 0.0
    reversed_clean: float = 0.0
    declined_retried: float = 0.02  # declined, then approved on a retry minutes later (new RRN)
    # approved, then reversed by a row of its own (same RRN and amount, minutes to a day later):
    # never posted (no break at all), or debited by the bank anyway (non_settlement on the approval)
    reversal_row_clean: float = 0.0
    reversal_row_debited: float = 0.0
    late_last_day: int = 10  # timing differences
    bank_only: float = 0.02  # bank rows with no card transaction, per switch transaction


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "bank-vs-switch" | "settlement-vs-switch"
    left_layout: str
    right_layout: str
    period_start: dt.date
    transactions: int = 1500
    max_lag: int = 2  # bank posting lag, days
    mix: Mix = field(default_factory=Mix)
    shuffle_left: bool = False
    shuffle_right: bool = True
    seed: int = 11

    @property
    def period_end(self) -> dt.date:
        last = calendar.monthrange(self.period_start.year, self.period_start.month)[1]
        return self.period_start.replace(day=last)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    # Pipe-delimited statement with preamble and trailer, DR/CR columns with ₦ and thousands
    # separators, dd/mm/yyyy, references only inside narrations (last 8-10 digits of the RRN);
    # switch in kobo with split date/time columns and a UTF-8 BOM. Posting lag up to 3 days.
    Scenario("pipe-drcr-kobo", "bank-vs-switch", "bank_pipe_drcr", "switch_kobo_split_bom",
             dt.date(2025, 11, 1), transactions=1600, max_lag=3, seed=21,
             mix=Mix(missing_in_bank=0.05, amount_mismatch=0.02, date_mismatch=0.015, duplicate=0.01,
                     declined_debited=0.02, declined_clean=0.03, late_last_day=14, bank_only=0.03)),
    # Semicolon + decimal comma statement in Windows-1252 with a D/C column, references partly in
    # a column and partly only in the narration; switch pipe file with ISO 8583 zero-padded minor
    # amounts and status words including reversals. Both files in random order. Lag up to 1 day.
    Scenario("semicolon-comma-1252", "bank-vs-switch", "bank_semicolon_comma_1252", "switch_pipe_iso_words",
             dt.date(2026, 2, 1), transactions=1500, max_lag=1, shuffle_left=True, seed=22,
             mix=Mix(missing_in_bank=0.02, amount_mismatch=0.04, date_mismatch=0.03, duplicate=0.04,
                     declined_debited=0.01, declined_clean=0.02, reversed_debited=0.01, reversed_clean=0.015,
                     reversal_row_clean=0.015, reversal_row_debited=0.01, late_last_day=6, bank_only=0.015)),
    # Tab-separated statement with dd-Mon-yyyy dates and bracketed debits, full references; the
    # switch in the sample's layout. A heavier break mix, same-day posting most of the time.
    Scenario("tsv-brackets", "bank-vs-switch", "bank_tsv_brackets", "switch_csv_a",
             dt.date(2025, 10, 1), transactions=1400, max_lag=2, seed=23,
             mix=Mix(missing_in_bank=0.04, amount_mismatch=0.05, date_mismatch=0.01, duplicate=0.03,
                     declined_debited=0.03, declined_clean=0.01, late_last_day=20, bank_only=0.05)),
    # A scheme settlement report (UTF-8 BOM, dd-Mon-yyyy settlement dates, amounts with
    # thousands separators) against the switch: unpaid approvals are non-settlement.
    Scenario("settlement-vs-switch", "settlement-vs-switch", "settlement_csv_bom", "switch_csv_a",
             dt.date(2025, 12, 1), transactions=1500, max_lag=1, shuffle_left=True, seed=24,
             mix=Mix(missing_in_bank=0.03, amount_mismatch=0.02, date_mismatch=0.02, duplicate=0.015,
                     declined_debited=0.01, declined_clean=0.03, late_last_day=12, bank_only=0.01)),
]}


# --- logical rows ------------------------------------------------------------------------------


@dataclass
class SwitchRow:
    key: int
    when: dt.datetime
    rrn: str
    stan: str
    pan: str
    amount: int  # kobo, positive
    terminal: str
    merchant_id: str
    merchant: str
    channel: str
    code: str  # ISO 8583 response code ("00" approved)
    status: str  # success | failed | reversed


@dataclass
class BankRow:
    key: int
    posted: dt.date
    amount: int  # kobo, signed: debits negative
    narration: str
    reference: str | None  # the full RRN or a bank reference; None when only the narration has it
    order: tuple[Any, ...] = ()


@dataclass
class Truth:
    matches: list[tuple[int, int]] = field(default_factory=list)  # (bank key, switch key)
    exceptions: list[tuple[str, int | None, int | None]] = field(default_factory=list)
    duplicates: list[tuple[int, int, int]] = field(default_factory=list)  # (bank key, copy key, switch key)
    quiet_switch: list[int] = field(default_factory=list)  # switch keys no exception may name (nothing moved)


@dataclass
class Generated:
    scenario: Scenario
    bank: list[BankRow]
    switch: list[SwitchRow]
    truth: Truth


def _channel(rng: random.Random) -> str:
    roll, total = rng.random(), 0.0
    for name, weight in CHANNELS:
        total += weight
        if roll < total:
            return name
    return CHANNELS[-1][0]


def _amount(rng: random.Random, channel: str) -> int:
    if channel == "ATM":
        return rng.choice([1_000, 2_000, 5_000, 10_000, 20_000, 40_000]) * 100 + rng.choice([0, 0, 0, 3_500])
    naira = int(rng.lognormvariate(8.6, 1.1)) + 50
    return naira * 100 + rng.choice([0, 0, 50, 99, 25, 75, 45])


def _narration(rng: random.Random, row: SwitchRow, ref: str, style: str) -> str:
    if style == "slash":
        head = {"POS": f"POS/{row.merchant}", "ATM": f"ATM WDL/{row.terminal}",
                "WEB": f"WEB/{row.merchant}", "USSD": "USSD/*737*"}[row.channel]
        return f"{head}/RRN {ref}" if row.channel != "WEB" else f"{head}/REF:{ref}"
    return {"POS": f"POS PURCHASE @ {row.merchant} RRN:{ref} TID:{row.terminal}",
            "ATM": f"ATM WDL {row.terminal} RRN:{ref}",
            "WEB": f"WEB PURCHASE {row.merchant} REF {ref}",
            "USSD": f"USSD PAYMENT *737* REF-{ref}"}[row.channel]


def generate(scenario: Scenario) -> Generated:
    rng = random.Random(f"{scenario.name}:{scenario.seed}")
    start, end = scenario.period_start, scenario.period_end
    days = (end - start).days + 1
    mix = scenario.mix
    switch: list[SwitchRow] = []
    bank: list[BankRow] = []
    truth = Truth()
    rrns: set[str] = set()
    suffixes: set[str] = set()
    narration_refs = {"bank_pipe_drcr": "suffix", "bank_semicolon_comma_1252": "mixed"}.get(
        scenario.left_layout, "full")
    narration_style = "slash" if scenario.left_layout == "bank_pipe_drcr" else "words"
    settlement = scenario.kind == "settlement-vs-switch"

    def new_rrn() -> str:
        while True:
            rrn = f"{rng.randrange(10**11, 10**12)}"
            # narrations may carry only the last 8 digits: keep those unique too (a real switch's
            # RRNs are sequential per terminal, so their suffixes do not collide within a month)
            if rrn not in rrns and rrn[-8:] not in suffixes:
                rrns.add(rrn)
                suffixes.add(rrn[-8:])
                return rrn

    def switch_row(when: dt.datetime, status: str = "success") -> SwitchRow:
        channel = _channel(rng)
        code = "00" if status == "success" else ("00" if status == "reversed" else rng.choice(DECLINE_CODES))
        row = SwitchRow(len(switch) + 1, when, new_rrn(), f"{rng.randrange(10**6):06d}",
                        f"539983******{rng.randrange(10**4):04d}", _amount(rng, channel),
                        f"2057{rng.randrange(10**4):04d}", f"MID{rng.randrange(10**6):06d}",
                        rng.choice(MERCHANTS), channel, code, status)
        switch.append(row)
        return row

    def bank_row(sw: SwitchRow, posted: dt.date, amount: int | None = None) -> BankRow:
        if narration_refs == "full" or (narration_refs == "mixed" and rng.random() < 0.5):
            ref, reference = sw.rrn, sw.rrn
        else:
            ref, reference = sw.rrn[-rng.choice([8, 9, 10]):], None
        if settlement:
            reference = sw.rrn
        row = BankRow(len(bank) + 1, posted, -(sw.amount if amount is None else amount),
                      _narration(rng, sw, ref, narration_style), reference,
                      (posted, sw.when.time(), len(bank)))
        bank.append(row)
        return row

    def lag_for(when: dt.datetime) -> int:
        room = (end - when.date()).days
        return min(rng.choice(range(scenario.max_lag + 1)), room)

    def random_when(last_day: bool = True, earliest: int = 0, latest: int | None = None) -> dt.datetime:
        top = days - 1 if last_day else days - 2
        top = min(top, days - 1 if latest is None else latest)
        day = start + dt.timedelta(days=rng.randint(earliest, top))
        return dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randrange(86_400))

    fates = [("missing", mix.missing_in_bank), ("amount", mix.amount_mismatch), ("date", mix.date_mismatch),
             ("duplicate", mix.duplicate), ("declined_debited", mix.declined_debited),
             ("declined_clean", mix.declined_clean), ("reversed_debited", mix.reversed_debited),
             ("reversed_clean", mix.reversed_clean), ("retried", mix.declined_retried),
             ("reversal_row_clean", mix.reversal_row_clean), ("reversal_row_debited", mix.reversal_row_debited)]
    for _ in range(scenario.transactions):
        roll, total, fate = rng.random(), 0.0, "clean"
        for name, rate in fates:
            total += rate
            if roll < total:
                fate = name
                break
        if fate == "missing":
            # any day, the last one too: an early approval on the last day that never reaches the bank
            # is indistinguishable from a late one still in transit (the sample's truth has both)
            sw = switch_row(random_when())
            truth.exceptions.append(("non_settlement" if settlement else "missing_entry", None, sw.key))
        elif fate == "date":
            gap = rng.randint(scenario.max_lag + 3, scenario.max_lag + 10)
            if rng.random() < 0.85:
                sw = switch_row(random_when(latest=days - 1 - gap))
                posted = sw.when.date() + dt.timedelta(days=gap)
            else:  # posted before the transaction date: a wrong date on one side
                sw = switch_row(random_when(earliest=gap))
                posted = sw.when.date() - dt.timedelta(days=gap)
            b = bank_row(sw, posted)
            truth.exceptions.append(("date_mismatch", b.key, sw.key))
        elif fate == "retried":
            declined = switch_row(random_when(), "failed")
            retry = switch_row(declined.when + dt.timedelta(seconds=rng.randint(20, 600)))
            retry.pan, retry.merchant, retry.amount = declined.pan, declined.merchant, declined.amount
            retry.terminal, retry.channel, retry.merchant_id = declined.terminal, declined.channel, declined.merchant_id
            if retry.when.date() > end:  # the retry must stay in the period
                retry.when = declined.when
            b = bank_row(retry, retry.when.date() + dt.timedelta(days=lag_for(retry.when)))
            truth.matches.append((b.key, retry.key))
        elif fate in ("reversal_row_clean", "reversal_row_debited"):
            approval = switch_row(random_when(last_day=False))
            reversal = replace(approval, key=len(switch) + 1, code="00", status="reversed",
                               stan=f"{rng.randrange(10**6):06d}",
                               when=min(approval.when + dt.timedelta(seconds=rng.randint(60, 86_400)),
                                        dt.datetime.combine(end, dt.time(23, 59))))
            switch.append(reversal)
            truth.quiet_switch.append(reversal.key)
            if fate == "reversal_row_debited":
                b = bank_row(approval, approval.when.date() + dt.timedelta(days=lag_for(approval.when)))
                truth.exceptions.append(("non_settlement", b.key, approval.key))
            else:
                truth.quiet_switch.append(approval.key)
        elif fate in ("declined_debited", "declined_clean", "reversed_debited", "reversed_clean"):
            sw = switch_row(random_when(), "failed" if fate.startswith("declined") else "reversed")
            if fate.endswith("debited"):
                b = bank_row(sw, sw.when.date() + dt.timedelta(days=lag_for(sw.when)))
                truth.exceptions.append(("non_settlement", b.key, sw.key))
        else:
            sw = switch_row(random_when())
            posted = sw.when.date() + dt.timedelta(days=lag_for(sw.when))
            if fate == "amount":
                b = bank_row(sw, posted, sw.amount + rng.choice(FEE_DIFFERENCES))
                truth.exceptions.append(("amount_mismatch", b.key, sw.key))
            else:
                b = bank_row(sw, posted)
                truth.matches.append((b.key, sw.key))
                if fate == "duplicate":
                    copy = replace(b, key=len(bank) + 1, order=(b.order[0], b.order[1], len(bank)))
                    bank.append(copy)
                    truth.duplicates.append((b.key, copy.key, sw.key))
    for _ in range(mix.late_last_day):  # approved late on the last day, posted next period
        sw = switch_row(dt.datetime.combine(end, dt.time(18)) + dt.timedelta(seconds=rng.randrange(6 * 3600 - 1)))
        truth.exceptions.append(("timing_difference", None, sw.key))
    for _ in range(int(mix.bank_only * scenario.transactions)):
        posted = start + dt.timedelta(days=rng.randrange(days))
        if settlement:
            sw_like = SwitchRow(0, dt.datetime.combine(posted, dt.time(12)), new_rrn(), "", "", 0, "", "",
                                rng.choice(MERCHANTS), "POS", "00", "success")
            amount = _amount(rng, "POS")
            row = BankRow(len(bank) + 1, posted, -amount, _narration(rng, sw_like, sw_like.rrn, "words"),
                          sw_like.rrn, (posted, dt.time(12), len(bank)))
        else:
            kind = rng.choice(["SMS ALERT CHARGES", "TRF TO CHIDI E", "NIP TRF FROM ADEBAYO O",
                               "SALARY CREDIT", "ACCOUNT MAINTENANCE FEE"])
            amount = rng.randrange(50, 500_000) * 100
            sign = 1 if kind in ("SALARY CREDIT", "NIP TRF FROM ADEBAYO O") else -1
            ref = f"{rng.randrange(10**11, 10**12)}"
            row = BankRow(len(bank) + 1, posted, sign * amount, kind,
                          ref if narration_refs == "full" else None, (posted, dt.time(12), len(bank)))
        bank.append(row)
        truth.exceptions.append(("missing_entry", row.key, None))
    return Generated(scenario, bank, switch, truth)


# --- layouts -------------------------------------------------------------------------------------


def _naira(kobo: int, thousands: str = ",", decimal: str = ".") -> str:
    whole, frac = divmod(abs(kobo), 100)
    text = f"{whole:,}".replace(",", thousands)
    return f"{text}{decimal}{frac:02d}"


def _bank_lines(layout: str, rows: list[BankRow], scenario: Scenario) -> tuple[list[str], str, str]:
    """Return (lines, encoding, newline)."""
    balance = 250_000_000_00
    lines: list[str] = []
    if layout == "bank_pipe_drcr":
        lines += ["FIRST CITY MONUMENT BANK PLC", "CUSTOMER ACCOUNT STATEMENT",
                  "Account Name|CARD SETTLEMENT GL|Account No|0123456789",
                  f"Period|{scenario.period_start:%d/%m/%Y} - {scenario.period_end:%d/%m/%Y}", "",
                  "TRAN DATE|VALUE DATE|NARRATION|DEBIT|CREDIT|BALANCE"]
        total_dr = total_cr = 0
        for r in rows:
            balance += r.amount
            debit = _naira(r.amount) if r.amount < 0 else ""
            credit = _naira(r.amount) if r.amount >= 0 else ""
            total_dr += max(-r.amount, 0)
            total_cr += max(r.amount, 0)
            lines.append(f"{r.posted:%d/%m/%Y}|{r.posted:%d/%m/%Y}|{r.narration}|"
                         f"{'₦' + debit if debit else ''}|{'₦' + credit if credit else ''}|₦{_naira(balance)}")
        lines += [f"TOTAL|||₦{_naira(total_dr)}|₦{_naira(total_cr)}|", "END OF STATEMENT"]
        return lines, "utf-8", "\r\n"
    if layout == "bank_semicolon_comma_1252":
        lines.append("Posting Date;Value Date;Reference;Description;Amount;D/C;Balance")
        for r in rows:
            balance += r.amount
            lines.append(f"{r.posted:%d/%m/%Y};{r.posted:%d/%m/%Y};{r.reference or ''};{r.narration};"
                         f"{_naira(r.amount, '.', ',')};{'D' if r.amount < 0 else 'C'};"
                         f"{'-' if balance < 0 else ''}{_naira(balance, '.', ',')}")
        return lines, "cp1252", "\r\n"
    if layout == "bank_tsv_brackets":
        lines.append("Txn Date\tValue Date\tTransaction Reference\tTransaction Details\tAmount\tBalance")
        for r in rows:
            balance += r.amount
            amount = f"({_naira(r.amount)})" if r.amount < 0 else _naira(r.amount)
            lines.append(f"{r.posted:%d-%b-%Y}\t{r.posted:%d-%b-%Y}\t{r.reference or ''}\t{r.narration}\t"
                         f"{amount}\t{_naira(balance)}")
        return lines, "utf-8", "\n"
    raise ValueError(f"unknown bank layout {layout}")


def _settlement_lines(rows: list[BankRow], switch_by_rrn: dict[str, SwitchRow]) -> list[str]:
    lines = ["SETTLEMENT DATE,TRAN DATE,RRN,STAN,TERMINAL ID,MERCHANT NAME,TRAN AMOUNT,MSC,NET AMOUNT,CURRENCY"]
    for r in rows:
        sw = switch_by_rrn.get(r.reference or "")
        stan = sw.stan if sw else "000000"
        terminal = sw.terminal if sw else "20570000"
        merchant = sw.merchant if sw else r.narration.split("@")[-1].split(" RRN")[0].strip()
        gross = -r.amount
        fee = min(gross * 5 // 1000, 120_000)
        tran = r.posted
        lines.append(f"{tran + dt.timedelta(days=1):%d-%b-%Y},{tran:%Y-%m-%d},{r.reference},{stan},{terminal},"
                     f"\"{merchant}\",\"{_naira(gross)}\",\"{_naira(fee)}\",\"{_naira(gross - fee)}\",NGN")
    return lines


def _switch_lines(layout: str, rows: list[SwitchRow]) -> tuple[list[str], str, str]:
    lines: list[str] = []
    if layout == "switch_csv_a":
        lines.append("tran_datetime,rrn,stan,pan,amount,currency,terminal_id,merchant_id,merchant_name,channel,"
                     "response_code")
        for s in rows:
            lines.append(f"{s.when:%Y-%m-%d %H:%M:%S},{s.rrn},{s.stan},{s.pan},{_naira(s.amount, '')},NGN,"
                         f"{s.terminal},{s.merchant_id},{s.merchant},{s.channel},{s.code}")
        return lines, "utf-8", "\n"
    if layout == "switch_kobo_split_bom":
        lines.append("TRAN_DATE,TRAN_TIME,RRN,STAN,MASKED_PAN,AMOUNT_KOBO,CURRENCY_CODE,TERMINAL_ID,"
                     "MERCHANT_NAME,CHANNEL,RESP_CODE")
        for s in rows:
            lines.append(f"{s.when:%d/%m/%Y},{s.when:%H:%M:%S},{s.rrn},{s.stan},{s.pan},{s.amount},566,"
                         f"{s.terminal},{s.merchant},{s.channel},{s.code}")
        return lines, "utf-8-sig", "\r\n"
    if layout == "switch_pipe_iso_words":
        lines.append("TXN_DATETIME|RRN|STAN|PAN|TXN_AMT|CCY|TERMINAL_ID|CARD_ACCEPTOR|CHANNEL|STATUS")
        words = {"success": "APPROVED", "failed": "DECLINED", "reversed": "REVERSED"}
        for s in rows:
            lines.append(f"{s.when:%d/%m/%Y %H:%M:%S}|{s.rrn}|{s.stan}|{s.pan}|{s.amount:012d}|NGN|{s.terminal}|"
                         f"{s.merchant}|{s.channel}|{words[s.status]}")
        return lines, "utf-8", "\n"
    raise ValueError(f"unknown switch layout {layout}")


# --- profiles -------------------------------------------------------------------------------------

_NARRATION_KEY = "(?:RRN|REF)[: -]*([0-9]{8,12})"


def _left_mapping(layout: str) -> dict[str, Any]:
    if layout == "bank_pipe_drcr":
        return {"parse": {"format": "csv", "delimiter": "|", "encoding": "utf-8", "header_row": 6},
                "fields": {
                    "amount": {"debit_column": "DEBIT", "credit_column": "CREDIT", "decimal_separator": ".",
                               "thousands_separator": ",", "strip": ["₦"]},
                    "currency": {"constant": "NGN"},
                    "transaction_date": {"column": "TRAN DATE", "formats": ["%d/%m/%Y"]},
                    "value_date": {"column": "VALUE DATE", "formats": ["%d/%m/%Y"]},
                    "reference": {"column": "NARRATION", "regex": "(?:RRN|REF)[: ]*([0-9]{8,12})"},
                    "description": {"column": "NARRATION"},
                    "status": {"constant": "success"}}}
    if layout == "bank_semicolon_comma_1252":
        return {"parse": {"format": "csv", "delimiter": ";", "encoding": "windows-1252", "header_row": 1},
                "fields": {
                    "amount": {"column": "Amount", "decimal_separator": ",", "thousands_separator": "."},
                    "direction": {"column": "D/C", "value_map": {"D": "debit", "C": "credit"}},
                    "currency": {"constant": "NGN"},
                    "transaction_date": {"column": "Posting Date", "formats": ["%d/%m/%Y"]},
                    "value_date": {"column": "Value Date", "formats": ["%d/%m/%Y"]},
                    "reference": {"coalesce": [{"column": "Reference"},
                                               {"column": "Description", "regex": _NARRATION_KEY}]},
                    "description": {"column": "Description"},
                    "status": {"constant": "success"}}}
    if layout == "bank_tsv_brackets":
        return {"parse": {"format": "csv", "delimiter": "TAB", "encoding": None, "header_row": 1},
                "fields": {
                    "amount": {"column": "Amount", "decimal_separator": ".", "thousands_separator": ","},
                    "direction": {"from_sign": {"negative": "debit", "positive": "credit"}},
                    "currency": {"constant": "NGN"},
                    "transaction_date": {"column": "Txn Date", "formats": ["%d-%b-%Y"]},
                    "value_date": {"column": "Value Date", "formats": ["%d-%b-%Y"]},
                    "reference": {"column": "Transaction Reference"},
                    "description": {"column": "Transaction Details"},
                    "status": {"constant": "success"}}}
    if layout == "settlement_csv_bom":
        return {"parse": {"format": "csv", "delimiter": ",", "encoding": None, "header_row": 1},
                "fields": {
                    "amount": {"column": "TRAN AMOUNT", "decimal_separator": ".", "thousands_separator": ","},
                    "direction": {"constant": "debit"},
                    "currency": {"column": "CURRENCY"},
                    "transaction_date": {"column": "TRAN DATE", "formats": ["%Y-%m-%d"]},
                    "value_date": {"column": "SETTLEMENT DATE", "formats": ["%d-%b-%Y"]},
                    "reference": {"column": "RRN"},
                    "secondary_reference": {"column": "STAN"},
                    "description": {"column": "MERCHANT NAME"},
                    "status": {"constant": "success"}}}
    raise ValueError(layout)


def _right_mapping(layout: str) -> dict[str, Any]:
    if layout == "switch_csv_a":
        return {"parse": {"format": "csv", "delimiter": ",", "encoding": None, "header_row": 1},
                "fields": {
                    "amount": {"column": "amount", "decimal_separator": ".", "thousands_separator": ",",
                               "scale": "major"},
                    "direction": {"constant": "debit"},
                    "currency": {"column": "currency", "upper": True},
                    "transaction_date": {"column": "tran_datetime", "formats": ["%Y-%m-%d %H:%M:%S"]},
                    "reference": {"column": "rrn"}, "secondary_reference": {"column": "stan"},
                    "description": {"column": "merchant_name"}, "counterparty": {"column": "merchant_name"},
                    "channel": {"column": "channel", "upper": True}, "account": {"column": "pan"},
                    "status": {"column": "response_code", "value_map": {"00": "success"}, "default": "failed"}}}
    if layout == "switch_kobo_split_bom":
        return {"parse": {"format": "csv", "delimiter": ",", "encoding": "utf-8-sig", "header_row": 1},
                "fields": {
                    "amount": {"column": "AMOUNT_KOBO", "scale": "minor", "thousands_separator": None},
                    "direction": {"constant": "debit"},
                    "currency": {"column": "CURRENCY_CODE", "value_map": {"566": "NGN"}},
                    "transaction_date": {"column": "TRAN_DATE", "formats": ["%d/%m/%Y"],
                                         "time_column": "TRAN_TIME", "time_formats": ["%H:%M:%S"]},
                    "reference": {"column": "RRN"}, "secondary_reference": {"column": "STAN"},
                    "description": {"column": "MERCHANT_NAME"}, "counterparty": {"column": "MERCHANT_NAME"},
                    "channel": {"column": "CHANNEL", "upper": True}, "account": {"column": "MASKED_PAN"},
                    "status": {"column": "RESP_CODE", "value_map": {"00": "success"}, "default": "failed"}}}
    if layout == "switch_pipe_iso_words":
        return {"parse": {"format": "csv", "delimiter": "|", "encoding": "utf-8", "header_row": 1},
                "fields": {
                    "amount": {"column": "TXN_AMT", "scale": "minor", "thousands_separator": None},
                    "direction": {"constant": "debit"},
                    "currency": {"column": "CCY"},
                    "transaction_date": {"column": "TXN_DATETIME", "formats": ["%d/%m/%Y %H:%M:%S"]},
                    "reference": {"column": "RRN"}, "secondary_reference": {"column": "STAN"},
                    "description": {"column": "CARD_ACCEPTOR"}, "counterparty": {"column": "CARD_ACCEPTOR"},
                    "channel": {"column": "CHANNEL", "upper": True}, "account": {"column": "PAN"},
                    "status": {"column": "STATUS", "value_map": {"APPROVED": "success", "DECLINED": "failed",
                                                                 "REVERSED": "reversed"}, "default": "unknown"}}}
    raise ValueError(layout)


def profile(scenario: Scenario, auto: bool = False) -> dict[str, Any]:
    """The profile an analyst writes for the scenario; `auto` leaves both mappings to detection."""
    settlement = scenario.kind == "settlement-vs-switch"
    conditions: dict[str, Any] = {"right": [{"field": "status", "op": "eq", "value": "success"}],
                                  "date_direction": "left_on_or_after_right", "auto_match_threshold": 0.9}
    window = {"date_tolerance_days": scenario.max_lag, "conditions": conditions}
    rules: list[dict[str, Any]] = [
        {"name": "rrn-exact", "rule_type": "exact", "priority": 10,
         "field_mappings": [{"left": "reference", "right": "reference"}], **window},
        {"name": "rrn-in-narration", "rule_type": "regex", "priority": 20,
         "field_mappings": [{"left": "description", "right": "reference",
                             "left_pattern": "(?:RRN|REF)[: /-]*([0-9]{8,12})"}],
         "date_tolerance_days": scenario.max_lag,
         "conditions": {**conditions, "min_suffix_length": 8}},
        {"name": "amount-date-text", "rule_type": "fuzzy", "priority": 30,
         "field_mappings": [{"left": "description", "right": "counterparty"}],
         "date_tolerance_days": scenario.max_lag,
         "conditions": {**conditions, "similarity_threshold": 0.6, "auto_match_threshold": 1.0}},
    ]
    if settlement:
        rules = rules[:1]
    return {
        "name": f"{scenario.name}{'-auto' if auto else ''}",
        "currency": "NGN",
        "reference_label": "RRN",
        "leading_side": "right",
        "settlement_side": "left" if settlement else None,
        "left": {"label": "Settlement" if settlement else "Bank", "direction": "debit",
                 "mapping": "auto" if auto else _left_mapping(scenario.left_layout)},
        "right": {"label": "Switch", "direction": "debit",
                  "mapping": "auto" if auto else _right_mapping(scenario.right_layout)},
        "rules": rules,
    }


# --- writing -------------------------------------------------------------------------------------


def _encode(lines: list[str], encoding: str, newline: str) -> bytes:
    return (newline.join(lines) + newline).encode(encoding)


def write(scenario: Scenario, out: Path) -> dict[str, Path]:
    """Write left/right files, truth.json and both profiles under `out`; return their paths."""
    generated = generate(scenario)
    rng = random.Random(f"order:{scenario.name}:{scenario.seed}")
    bank = sorted(generated.bank, key=lambda r: r.order)
    switch = sorted(generated.switch, key=lambda s: s.when)
    if scenario.shuffle_left:
        rng.shuffle(bank)
    if scenario.shuffle_right:
        rng.shuffle(switch)
    bank_row = {r.key: i + 1 for i, r in enumerate(bank)}
    switch_row = {s.key: i + 1 for i, s in enumerate(switch)}
    truth = generated.truth
    matches = {(bank_row[b], switch_row[s]) for b, s in truth.matches}
    exceptions = [{"type": t, "bank_row": bank_row[b] if b else None, "switch_row": switch_row[s] if s else None}
                  for t, b, s in truth.exceptions]
    for original, copy, s in truth.duplicates:
        first, second = sorted((bank_row[original], bank_row[copy]))
        matches.discard((bank_row[original], switch_row[s]))
        matches.add((first, switch_row[s]))
        exceptions.append({"type": "duplicate", "bank_row": second, "switch_row": switch_row[s]})
    out.mkdir(parents=True, exist_ok=True)
    if scenario.kind == "settlement-vs-switch":
        by_rrn = {s.rrn: s for s in generated.switch}
        left_lines, encoding, newline = _settlement_lines(bank, by_rrn), "utf-8-sig", "\r\n"
        left_name = "settlement.csv"
    else:
        left_lines, encoding, newline = _bank_lines(scenario.left_layout, bank, scenario)
        left_name = "bank.txt" if scenario.left_layout == "bank_pipe_drcr" else "bank.csv"
    paths = {"left": out / left_name, "right": out / "switch.csv", "truth": out / "truth.json",
             "profile": out / "profile.json", "profile_auto": out / "profile-auto.json"}
    paths["left"].write_bytes(_encode(left_lines, encoding, newline))
    right_lines, encoding, newline = _switch_lines(scenario.right_layout, switch)
    if scenario.right_layout == "switch_pipe_iso_words":
        paths["right"] = out / "switch.txt"
    paths["right"].write_bytes(_encode(right_lines, encoding, newline))
    truth_json = {"style": scenario.name,
                  "period": {"start": scenario.period_start.isoformat(), "end": scenario.period_end.isoformat()},
                  "matches": sorted(matches),
                  "exceptions": sorted(exceptions, key=lambda e: (e["bank_row"] or 0, e["switch_row"] or 0)),
                  "counts": {"switch_rows": len(switch), "bank_rows": len(bank), "matches": len(matches),
                             "exceptions": len(exceptions)},
                  # rows where nothing moved (an approval and its reversal row): no exception may name them
                  "no_break_switch_rows": sorted(switch_row[s] for s in truth.quiet_switch)}
    paths["truth"].write_text(json.dumps(truth_json) + "\n", encoding="utf-8")
    paths["profile"].write_text(json.dumps(profile(scenario), indent=2, ensure_ascii=False) + "\n",
                                encoding="utf-8")
    paths["profile_auto"].write_text(json.dumps(profile(scenario, auto=True), indent=2) + "\n", encoding="utf-8")
    return paths
