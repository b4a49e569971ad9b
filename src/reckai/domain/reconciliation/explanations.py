"""Deterministic wording of a break: description, explanation, confidence, suggested action.

No model is involved: the text follows from the facts the matcher decided, so the same inputs
always give the same words (and both matchers give the same words).

The words are written once, here, as templates (`WORDINGS`) whose `{slot}` placeholders name
values of one break (`SLOTS`). `describe_break` fills them for one break; the polars adapter
(`adapters/polars/explanations.py`) fills the same templates for a whole column of breaks at once.
A property test holds the two to the same text.
"""

from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass

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

NOT_MOVED = ("failed", "reversed")  # statuses of a row whose money did not move
UNKNOWN = "?"  # how an absent date, direction, status or row reads in a sentence
NO_PERCENT = "n/a"  # a percentage of zero
MORE, LESS = "more", "less"  # the left amount against the right one (equal amounts say "less")
LATER, EARLIER = "later", "earlier"  # the left date against the right one


@dataclass(frozen=True)
class Wording:
    description: str
    explanation: str
    suggested_action: str

    def fields(self) -> tuple[tuple[str, str], ...]:
        return (("description", self.description), ("explanation", self.explanation),
                ("suggested_action", self.suggested_action))


# One wording per variant of a break (`wording_key`). Slots (SLOTS) are filled per break.
WORDINGS: dict[str, Wording] = {
    "amount_mismatch": Wording(
        description="Amount mismatch{ref}",
        explanation="{left} {left_direction} {left_amount} vs {right_lower} {right_amount}{ref}: "
                    "{difference} {more_or_less} ({difference_percent})",
        suggested_action="Confirm the correct amount with the {right_lower} and raise an adjustment of "
                         "{difference} on the side that is wrong."),
    "date_mismatch": Wording(
        description="Date mismatch{ref}",
        explanation="{left} {left_direction} {left_amount} dated {left_day} vs {right_lower} dated {right_day}"
                    "{ref}: {day_gap} day(s) {later_or_earlier}, beyond the rule's date tolerance",
        suggested_action="Check the posting date; correct it or confirm the late posting and match manually."),
    # both rows exist and one of them did not move money
    "non_settlement_pair": Wording(
        description="Non-settlement{ref}",
        explanation="{moved} shows {amount} moved{ref} but the {failed_lower} recorded the transaction as "
                    "{failed_status}",
        suggested_action="Refund or reverse the customer's debit, or obtain proof that the transaction "
                         "succeeded from the {failed_lower}."),
    # an approval the settlement side never paid
    "non_settlement_single": Wording(
        description="Non-settlement{ref}",
        explanation="{present} approved {amount} on {present_day}{ref} but the settlement never paid it",
        suggested_action="Claim the unpaid amount from the settling party."),
    "duplicate": Wording(
        description="Duplicate {present_lower} entry{ref}",
        explanation="{present} row {present_row} repeats row {original_row}{ref}: same amount {present_amount} "
                    "and date {first_day}",
        suggested_action="Reverse the duplicate posting (the first copy is kept and matched)."),
    "timing_difference": Wording(
        description="Timing difference{ref}",
        explanation="{right_first} {amount} on {right_first_day}{ref} falls in the cut-off window at the end of "
                    "the period; the {right_first_other_lower} is expected to post it in the next period",
        suggested_action="No action now: confirm it is posted early in the next period."),
    "missing_entry": Wording(
        description="Missing in {absent_lower}{ref}",
        explanation="{present} {present_direction} {amount} on {present_day}{ref} has no counterpart in the "
                    "{absent_lower} file",
        suggested_action="Find the entry in the {absent_lower} records or raise it with the counterparty."),
}

# What each slot holds. "Present" is the left row when there is one, else the right row;
# "right first" is the right row when there is one, else the left row. Labels are the profile's;
# "_lower" is the label lower-cased. Amounts are formatted by `format_money` (an absent amount: 0).
SLOTS: dict[str, str] = {
    "ref": '" for {reference_label} {reference}" when the break has a non-empty reference, else ""',
    "left": "the left label", "right_lower": "the right label",
    "left_direction": "the left row's direction", "left_amount": "the left amount",
    "right_amount": "the right amount", "left_day": "the left date (YYYY-MM-DD)", "right_day": "the right date",
    "difference": "|left amount - right amount|",
    "more_or_less": "MORE when left amount > right amount, else LESS",
    "difference_percent": "|left - right| / right amount, percent, 2 decimals, half-up (NO_PERCENT when 0)",
    "day_gap": "|left day - right day| (0 when a date is absent)",
    "later_or_earlier": "LATER when the left day is after the right day, else EARLIER",
    "amount": "the break's amount: the left amount when the left row exists, else the right amount",
    "moved": "the label of the side whose money moved (the left one unless the right status is NOT_MOVED)",
    "failed_lower": "the other label", "failed_status": "the other side's status",
    "present": "the present label", "present_lower": "the present label",
    "present_row": "the present row", "present_amount": "the present row's amount",
    "present_day": "the present row's date", "present_direction": "the present row's direction",
    "absent_lower": "the label of the side without a row (the right one when both exist)",
    "original_row": "the row a duplicate repeats", "first_day": "the left date, else the right date",
    "right_first": "the right-first label", "right_first_day": "the right date, else the left date",
    "right_first_other_lower": "the label of the other side than right-first",
}


def template_slots(template: str) -> list[tuple[str, str | None]]:
    """A template as (literal text, slot name or None) parts, in order."""
    return [(literal, name) for literal, name, _, _ in string.Formatter().parse(template)]


def wording_key(facts: BreakFacts) -> str:
    if facts.type is BreakType.NON_SETTLEMENT:
        both = facts.left_row is not None and facts.right_row is not None
        return "non_settlement_pair" if both else "non_settlement_single"
    return str(facts.type.value)


def format_money(amount_minor: int, currency: str) -> str:
    exponent = minor_unit_exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    units, minor = divmod(abs(amount_minor), 10 ** exponent) if exponent else (abs(amount_minor), 0)
    symbol = CURRENCY_SYMBOLS.get(currency.upper(), f"{currency.upper()} ")
    text = f"{units:,}"
    if exponent:
        text += f".{minor:0{exponent}d}"
    return f"{sign}{symbol}{text}"


def format_percent(numerator: int, denominator: int) -> str:
    if denominator == 0:
        return NO_PERCENT
    hundredths = (abs(numerator) * 10_000 + denominator // 2) // denominator  # percent, 2 decimals
    return f"{hundredths // 100}.{hundredths % 100:02d}%"


def _day(value: dt.datetime | None) -> str:
    return value.date().isoformat() if value is not None else UNKNOWN


def _text(value: object) -> str:
    return UNKNOWN if value is None else str(value)


def break_slots(facts: BreakFacts, profile: ReconciliationProfile) -> dict[str, str]:
    """Every slot's text for one break (SLOTS)."""
    left, right = profile.left.label, profile.right.label
    currency = facts.currency
    has_left, has_right = facts.left_row is not None, facts.right_row is not None
    left_amount, right_amount = facts.left_amount_minor or 0, facts.right_amount_minor or 0
    difference = left_amount - right_amount
    day_delta = facts.day_delta or 0
    right_failed = facts.right_status in NOT_MOVED
    present, absent = (left, right) if has_left else (right, left)
    right_first, right_first_other = (right, left) if has_right else (left, right)
    return {
        "ref": f" for {profile.reference_label} {facts.reference}" if facts.reference else "",
        "left": left, "right_lower": right.lower(),
        "left_direction": _text(facts.left_direction),
        "left_amount": format_money(left_amount, currency), "right_amount": format_money(right_amount, currency),
        "left_day": _day(facts.left_date), "right_day": _day(facts.right_date),
        "difference": format_money(abs(difference), currency),
        "more_or_less": MORE if difference > 0 else LESS,
        "difference_percent": format_percent(difference, right_amount),
        "day_gap": str(abs(day_delta)), "later_or_earlier": LATER if day_delta > 0 else EARLIER,
        "amount": format_money(facts.amount_minor, currency),
        "moved": right if not right_failed else left,
        "failed_lower": (left if not right_failed else right).lower(),
        "failed_status": _text(facts.right_status if right_failed else facts.left_status),
        "present": present, "present_lower": present.lower(), "absent_lower": absent.lower(),
        "present_row": _text(facts.left_row if has_left else facts.right_row),
        "present_amount": format_money((facts.left_amount_minor if has_left else facts.right_amount_minor) or 0,
                                       currency),
        "present_day": _day(facts.left_date if has_left else facts.right_date),
        "present_direction": _text(facts.left_direction if has_left else facts.right_direction),
        "original_row": _text(facts.original_row),
        "first_day": _day(facts.left_date if facts.left_date is not None else facts.right_date),
        "right_first": right_first, "right_first_other_lower": right_first_other.lower(),
        "right_first_day": _day(facts.right_date if facts.right_date is not None else facts.left_date),
    }


def severity_amount_minor(facts: BreakFacts) -> int:
    """The amount the severity bands judge: the difference of an amount mismatch, else the break's amount."""
    if facts.type is BreakType.AMOUNT_MISMATCH:
        return abs(facts.amount_difference_minor or 0)
    return facts.amount_minor


def describe_break(facts: BreakFacts, profile: ReconciliationProfile,
                   period: ReconciliationPeriod | None) -> ExceptionRecord:
    wording = WORDINGS[wording_key(facts)]
    slots = break_slots(facts, profile)
    moment = facts.left_date if facts.left_date is not None else facts.right_date
    age = severity_age_days(moment, period.end if period else None)
    return ExceptionRecord(
        facts=facts,
        severity=profile.severity.severity(facts.type.value, severity_amount_minor(facts), age),
        description=wording.description.format_map(slots),
        explanation=wording.explanation.format_map(slots),
        ai_confidence_bp=TYPE_CONFIDENCE_BP[facts.type],
        suggested_action=wording.suggested_action.format_map(slots),
    )


# Why a reversal row appears in no match and no exception (docs/matching.md, step 0). Slots: the
# side's `label`, `reversal_row`, `original_row`, the profile's `reference_label`.
REVERSAL_EXPLANATION = ("{label} row {reversal_row} reverses {label} row {original_row} (same {reference_label}, "
                        "amount and currency): the two net to nothing, so neither is matched on its own; a posting "
                        "of row {original_row} on the other side is a non-settlement.")


def describe_reversal(profile: ReconciliationProfile, side: str, reversal_row: int, original_row: int) -> str:
    return REVERSAL_EXPLANATION.format(label=profile.label(side), reversal_row=reversal_row,
                                       original_row=original_row, reference_label=profile.reference_label)
