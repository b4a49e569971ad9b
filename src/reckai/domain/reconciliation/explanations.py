"""Deterministic wording of a break: description, explanation, confidence, suggested action.

No model is involved: the text follows from the facts the matcher decided, so the same inputs
always give the same words (and both matchers give the same words).
"""

from __future__ import annotations

import datetime as dt

from reckai.domain.ingestion.canonical import minor_unit_exponent
from reckai.domain.reconciliation.profile import ReconciliationPeriod, ReconciliationProfile
from reckai.domain.reconciliation.results import BreakFacts, BreakType, ExceptionRecord
from reckai.domain.reconciliation.severity import severity_age_days

CURRENCY_SYMBOLS = {"NGN": "₦", "USD": "$", "EUR": "€", "GBP": "£", "GHS": "GH₵", "KES": "KSh ", "ZAR": "R"}

# How sure the rule is that it named the break correctly (exceptions.ai_confidence), in basis points.
TYPE_CONFIDENCE_BP = {
    BreakType.DUPLICATE: 9500,
    BreakType.NON_SETTLEMENT: 9000,
    BreakType.AMOUNT_MISMATCH: 9000,
    BreakType.DATE_MISMATCH: 8500,
    BreakType.TIMING_DIFFERENCE: 8000,
    BreakType.MISSING_ENTRY: 7000,
}


def format_money(amount_minor: int, currency: str) -> str:
    exponent = minor_unit_exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    units, minor = divmod(abs(amount_minor), 10 ** exponent) if exponent else (abs(amount_minor), 0)
    symbol = CURRENCY_SYMBOLS.get(currency.upper(), f"{currency.upper()} ")
    text = f"{units:,}"
    if exponent:
        text += f".{minor:0{exponent}d}"
    return f"{sign}{symbol}{text}"


def _percent(numerator: int, denominator: int) -> str:
    if denominator == 0:
        return "n/a"
    hundredths = (abs(numerator) * 10_000 + denominator // 2) // denominator  # percent, 2 decimals
    return f"{hundredths // 100}.{hundredths % 100:02d}%"


def _day(value: dt.datetime | None) -> str:
    return value.date().isoformat() if value is not None else "?"


def describe_break(facts: BreakFacts, profile: ReconciliationProfile,
                   period: ReconciliationPeriod | None) -> ExceptionRecord:
    left, right = profile.left.label, profile.right.label
    currency = facts.currency
    ref = f" for {profile.reference_label} {facts.reference}" if facts.reference else ""
    t = facts.type
    if t is BreakType.AMOUNT_MISMATCH:
        diff = facts.amount_difference_minor or 0
        more_less = "more" if diff > 0 else "less"
        explanation = (f"{left} {facts.left_direction} {format_money(facts.left_amount_minor or 0, currency)} vs "
                       f"{right.lower()} {format_money(facts.right_amount_minor or 0, currency)}{ref}: "
                       f"{format_money(abs(diff), currency)} {more_less} "
                       f"({_percent(diff, facts.right_amount_minor or 0)})")
        description = f"Amount mismatch{ref}"
        action = (f"Confirm the correct amount with the {right.lower()} and raise an adjustment of "
                  f"{format_money(abs(diff), currency)} on the side that is wrong.")
    elif t is BreakType.DATE_MISMATCH:
        days = facts.day_delta or 0
        explanation = (f"{left} {facts.left_direction} {format_money(facts.left_amount_minor or 0, currency)} "
                       f"dated {_day(facts.left_date)} vs {right.lower()} dated {_day(facts.right_date)}{ref}: "
                       f"{abs(days)} day(s) {'later' if days > 0 else 'earlier'}, beyond the rule's date tolerance")
        description = f"Date mismatch{ref}"
        action = "Check the posting date; correct it or confirm the late posting and match manually."
    elif t is BreakType.NON_SETTLEMENT:
        if facts.left_row is not None and facts.right_row is not None:
            moved, failed = ((left, right) if facts.right_status in ("failed", "reversed") else (right, left))
            failed_status = facts.right_status if failed == right else facts.left_status
            explanation = (f"{moved} shows {format_money(facts.amount_minor, currency)} moved{ref} but the "
                           f"{failed.lower()} recorded the transaction as {failed_status}")
            action = ("Refund or reverse the customer's debit, or obtain proof that the transaction "
                      "succeeded from the " + failed.lower() + ".")
        else:
            side, row_date = ((left, facts.left_date) if facts.left_row is not None else (right, facts.right_date))
            explanation = (f"{side} approved {format_money(facts.amount_minor, currency)} on {_day(row_date)}{ref} "
                           f"but the settlement never paid it")
            action = "Claim the unpaid amount from the settling party."
        description = f"Non-settlement{ref}"
    elif t is BreakType.DUPLICATE:
        side = left if facts.left_row is not None else right
        row = facts.left_row if facts.left_row is not None else facts.right_row
        amount = facts.left_amount_minor if facts.left_row is not None else facts.right_amount_minor
        explanation = (f"{side} row {row} repeats row {facts.original_row}{ref}: same amount "
                       f"{format_money(amount or 0, currency)} and date {_day(facts.left_date or facts.right_date)}")
        description = f"Duplicate {side.lower()} entry{ref}"
        action = "Reverse the duplicate posting (the first copy is kept and matched)."
    elif t is BreakType.TIMING_DIFFERENCE:
        explanation = (f"{right if facts.right_row is not None else left} "
                       f"{format_money(facts.amount_minor, currency)} on {_day(facts.right_date or facts.left_date)}"
                       f"{ref} falls in the cut-off window at the end of the period; the "
                       f"{(left if facts.right_row is not None else right).lower()} is expected to post it "
                       f"in the next period")
        description = f"Timing difference{ref}"
        action = "No action now: confirm it is posted early in the next period."
    else:
        present, absent = ((left, right) if facts.left_row is not None else (right, left))
        row_date = facts.left_date if facts.left_row is not None else facts.right_date
        direction = facts.left_direction if facts.left_row is not None else facts.right_direction
        explanation = (f"{present} {direction} {format_money(facts.amount_minor, currency)} on {_day(row_date)}"
                       f"{ref} has no counterpart in the {absent.lower()} file")
        description = f"Missing in {absent.lower()}{ref}"
        action = f"Find the entry in the {absent.lower()} records or raise it with the counterparty."
    severity_amount = (abs(facts.amount_difference_minor or 0) if t is BreakType.AMOUNT_MISMATCH
                       else facts.amount_minor)
    age = severity_age_days(facts.left_date or facts.right_date, period.end if period else None)
    return ExceptionRecord(
        facts=facts,
        severity=profile.severity.severity(t.value, severity_amount, age),
        description=description,
        explanation=explanation,
        ai_confidence_bp=TYPE_CONFIDENCE_BP[t],
        suggested_action=action,
    )


def describe_reversal(profile: ReconciliationProfile, side: str, reversal_row: int, original_row: int) -> str:
    """Why a reversal row appears in no match and no exception (docs/matching.md, step 0)."""
    label = profile.label(side)
    return (f"{label} row {reversal_row} reverses {label} row {original_row} (same {profile.reference_label}, "
            f"amount and currency): the two net to nothing, so neither is matched on its own; a posting of "
            f"row {original_row} on the other side is a non-settlement.")
