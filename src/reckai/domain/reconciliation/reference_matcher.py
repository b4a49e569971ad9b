"""The reference matcher: the readable definition of matching and break classification.

Pure Python, indexed (hash and sorted-amount blocking), so it handles tens of thousands of rows.
The polars matcher (adapters/polars/matcher.py) must return exactly what this returns; property
tests hold the two together. docs/matching.md states the same semantics in prose.

Stages:
0. reversal netting per file: a `reversed` row with the reference, amount and currency of a
   `success` row of the same file is that approval's reversal; it leaves the run, and the approval
   counts as reversed (nothing moved) and is no duplicate copy;
1. duplicate pre-pass per file;
2. one pass per active rule, in priority order, over rows no earlier pass consumed;
3. within a pass, mutual unique-best assignment repeated until stable; ties become suggestions.
   Pairs a person declined (`excluded_pairs`, (left_row, right_row)) are never candidates, in any
   pass: a candidate whose rows include a declined pair (a group's member with the other row) is
   dropped before the assignment, so those rows may still match others or end in classification;
4. leftover rows are linked by identity (the keyed rules' keys, any amount, any date) and every
   linked pair / unlinked row is classified.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeGuard

from reckai.domain.ingestion.canonical import CanonicalTransaction, TransactionStatus
from reckai.domain.reconciliation.explanations import describe_break
from reckai.domain.reconciliation.profile import ReconciliationPeriod, ReconciliationProfile
from reckai.domain.reconciliation.results import (
    BreakFacts,
    BreakType,
    MatchRecord,
    MatchStatus,
    ReconciliationResult,
)
from reckai.domain.reconciliation.rules import (
    CONFIDENCE_SCALE,
    Condition,
    ConditionOp,
    MatchingRule,
    RuleType,
    extract_key,
    similarity_bp,
)

NOT_MOVED = ("failed", "reversed")
Cost = tuple[int, int, int, int]  # (amount difference, |day delta|, key cost, text cost): lower is better


# --- field access shared by conditions, keys and grouping -------------------------------------

def field_text(txn: CanonicalTransaction, name: str) -> str | None:
    """The text a rule compares for `name`; empty text counts as absent."""
    if name.startswith("raw."):
        value: Any = txn.raw.get(name[4:])
    elif name == "amount_minor":
        value = str(txn.amount_minor)
    elif name == "transaction_date":
        value = txn.transaction_date.date().isoformat() if txn.transaction_date else None
    elif name == "value_date":
        value = txn.value_date.isoformat() if txn.value_date else None
    else:
        value = getattr(txn, name)
        if hasattr(value, "value"):  # Direction / TransactionStatus enums
            value = value.value
    if value is None or value == "":
        return None
    return str(value)


def condition_holds(txn: CanonicalTransaction, condition: Condition) -> bool:
    value = field_text(txn, condition.field)
    op = condition.op
    if op is ConditionOp.PRESENT:
        return value is not None
    if op is ConditionOp.ABSENT:
        return value is None
    if op is ConditionOp.EQ:
        return value is not None and value == condition.value
    if op is ConditionOp.NE:
        return value is None or value != condition.value
    if op is ConditionOp.IN:
        return value is not None and value in condition.value
    if op is ConditionOp.NOT_IN:
        return value is None or value not in condition.value
    return value is not None and re.search(condition.value, value) is not None


def _status(txn: CanonicalTransaction) -> str:
    return getattr(txn.status, "value", txn.status)


def _direction(txn: CanonicalTransaction) -> str:
    return getattr(txn.direction, "value", txn.direction)


# --- candidate items: a row, or (grouped rules) a group of rows standing in for one -------------

@dataclass
class _Item:
    node: Hashable
    amount: int
    day: int  # date ordinal of transaction_date
    currency: str
    text: Callable[[str], str | None]
    members: tuple[int, ...] = ()
    fee: int = 0


def _row_item(txn: CanonicalTransaction) -> _Item:
    assert txn.transaction_date is not None
    return _Item(txn.row_number, txn.amount_minor, txn.transaction_date.toordinal(), txn.currency,
                 partial(field_text, txn), (txn.row_number,))


@dataclass
class _Candidate:
    cost: Cost
    confidence_bp: int
    evidence: tuple[tuple[str, Any], ...]


def _keys(items: Iterable[_Item], fields: Sequence[str]) -> dict[Hashable, str]:
    """Node -> key text ("a|b"), only for items where every key field is present."""
    keys = {}
    for item in items:
        parts = [item.text(name) for name in fields]
        if _all_present(parts):
            keys[item.node] = "|".join(parts)
    return keys


def _all_present(parts: list[str | None]) -> TypeGuard[list[str]]:
    return all(part is not None for part in parts)


def _regex_keys(items: Iterable[_Item], name: str, pattern: str | None) -> dict[Hashable, str]:
    keys = {}
    for item in items:
        key = extract_key(item.text(name), pattern)
        if key is not None:
            keys[item.node] = key
    return keys


def _key_pairs(rule: MatchingRule, lefts: Sequence[_Item], rights: Sequence[_Item]
               ) -> dict[tuple[Hashable, Hashable], tuple[int, str | None, str | None]]:
    """(left node, right node) -> (key cost, left key, right key) for pairs whose identity agrees."""
    pairs: dict[tuple[Hashable, Hashable], tuple[int, str | None, str | None]] = {}
    if rule.rule_type is RuleType.REGEX:
        mapping = rule.field_mappings[0]
        left_keys = _regex_keys(lefts, mapping.left, mapping.left_pattern)
        right_keys = _regex_keys(rights, mapping.right, mapping.right_pattern)
        by_right: dict[str, list[Hashable]] = defaultdict(list)
        for node, key in right_keys.items():
            by_right[key].append(node)
        for node, key in left_keys.items():
            for other in by_right.get(key, ()):
                pairs[(node, other)] = (0, key, key)
        min_len = rule.min_suffix_length
        # a left key that ends a longer right key
        for length in {len(k) for k in left_keys.values() if len(k) >= min_len}:
            suffix_index: dict[str, list[Hashable]] = defaultdict(list)
            for node, key in right_keys.items():
                if len(key) > length:
                    suffix_index[key[-length:]].append(node)
            for node, key in left_keys.items():
                if len(key) == length:
                    for other in suffix_index.get(key, ()):
                        pairs[(node, other)] = (1, key, right_keys[other])
        # a right key that ends a longer left key
        for length in {len(k) for k in right_keys.values() if len(k) >= min_len}:
            suffix_index = defaultdict(list)
            for node, key in left_keys.items():
                if len(key) > length:
                    suffix_index[key[-length:]].append(node)
            for other, key in right_keys.items():
                if len(key) == length:
                    for node in suffix_index.get(key, ()):
                        pairs[(node, other)] = (1, left_keys[node], key)
        return pairs
    left_fields = [m.left for m in rule.field_mappings]
    right_fields = [m.right for m in rule.field_mappings]
    left_keys = _keys(lefts, left_fields)
    right_index: dict[str, list[Hashable]] = defaultdict(list)
    for node, key in _keys(rights, right_fields).items():
        right_index[key].append(node)
    for node, key in left_keys.items():
        for other in right_index.get(key, ()):
            pairs[(node, other)] = (0, key, key)
    return pairs


def _amount_window_pairs(rule: MatchingRule, lefts: Sequence[_Item], rights: Sequence[_Item]
                         ) -> Iterable[tuple[Hashable, Hashable]]:
    """Blocking for rules without keys: right amounts inside a window around each left amount.

    The window is a superset of the tolerance (exact filtering follows), per currency.
    """
    by_currency: dict[str, list[tuple[int, int, Hashable]]] = defaultdict(list)
    for position, item in enumerate(rights):
        by_currency[item.currency].append((item.amount, position, item.node))
    sorted_amounts = {}
    for currency, entries in by_currency.items():
        entries.sort(key=lambda entry: (entry[0], entry[1]))
        sorted_amounts[currency] = [entry[0] for entry in entries]
    pe4 = rule.tolerance_percent_e4
    for item in lefts:
        same_currency = by_currency.get(item.currency)
        if not same_currency:
            continue
        width = _window_width(item.amount, rule.tolerance_amount_minor, pe4, rule.tolerance_of)
        amounts = sorted_amounts[item.currency]
        low = bisect.bisect_left(amounts, item.amount - width)
        high = bisect.bisect_right(amounts, item.amount + width)
        for index in range(low, high):
            yield item.node, same_currency[index][2]


def _window_width(amount: int, tolerance_minor: int, pe4: int, tolerance_of: str) -> int:
    if pe4 == 0:
        return tolerance_minor
    if tolerance_of == "left":
        return max(tolerance_minor, amount * pe4 // 1_000_000)
    if pe4 >= 1_000_000:
        return 1 << 62
    return max(tolerance_minor, amount * pe4 // (1_000_000 - pe4) + 1)


def candidates(rule: MatchingRule, lefts: Sequence[_Item], rights: Sequence[_Item]
               ) -> dict[tuple[Hashable, Hashable], _Candidate]:
    left_by_node = {item.node: item for item in lefts}
    right_by_node = {item.node: item for item in rights}
    if rule.rule_type in (RuleType.EXACT, RuleType.REGEX) or (
            rule.rule_type is RuleType.RANGE and rule.field_mappings):
        keyed = _key_pairs(rule, lefts, rights)
        raw_pairs: Iterable[tuple[Hashable, Hashable]] = keyed
    else:
        keyed = {}
        raw_pairs = _amount_window_pairs(rule, lefts, rights)
    result = {}
    for left_node, right_node in raw_pairs:
        left, right = left_by_node[left_node], right_by_node[right_node]
        if left.currency != right.currency:
            continue
        amount_diff = abs(left.amount - right.amount)
        base = left.amount if rule.tolerance_of == "left" else right.amount
        if not rule.amount_within(amount_diff, base):
            continue
        day_delta = left.day - right.day
        if not rule.date_within(day_delta):
            continue
        similarity: int | None = None
        if rule.rule_type is RuleType.FUZZY:
            similarity = min(similarity_bp(left.text(m.left), right.text(m.right)) for m in rule.field_mappings)
            if similarity < rule.similarity_threshold_bp:
                continue
        key_cost, left_key, right_key = keyed.get((left_node, right_node), (0, None, None))
        confidence = rule.confidence_bp(amount_diff, rule.allowed_difference(base), abs(day_delta),
                                        similarity if similarity is not None else CONFIDENCE_SCALE,
                                        key_cost == 1)
        text_cost = CONFIDENCE_SCALE - similarity if similarity is not None else 0
        evidence = (("amount_diff", left.amount - right.amount), ("day_delta", day_delta),
                    ("similarity_bp", similarity), ("left_key", left_key), ("right_key", right_key))
        result[(left_node, right_node)] = _Candidate(
            (amount_diff, abs(day_delta), key_cost, text_cost), confidence, evidence)
    return result


def assign(costs: dict[tuple[Hashable, Hashable], Any]
           ) -> tuple[list[tuple[Hashable, Hashable]], list[tuple[Hashable, Hashable]]]:
    """Mutual unique-best assignment, repeated until stable.

    A pair is accepted when each side is the other's unique best (lowest cost) candidate; accepted
    rows leave, and bests are recomputed until no new pair is accepted. Returns (accepted, ties):
    ties are the remaining pairs that are a best candidate of at least one of their rows.
    """
    remaining = dict(costs)
    accepted: list[tuple[Hashable, Hashable]] = []
    while True:
        best_left: dict[Hashable, list[Any]] = {}
        best_right: dict[Hashable, list[Any]] = {}
        for (left, right), cost in remaining.items():
            for best, node in ((best_left, left), (best_right, right)):
                current = best.get(node)
                if current is None or cost < current[0]:
                    best[node] = [cost, 1]
                elif cost == current[0]:
                    current[1] += 1
        new = [(left, right) for (left, right), cost in remaining.items()
               if best_left[left][1] == 1 and best_left[left][0] == cost
               and best_right[right][1] == 1 and best_right[right][0] == cost]
        if not new:
            ties = [(left, right) for (left, right), cost in remaining.items()
                    if best_left[left][0] == cost or best_right[right][0] == cost]
            return accepted, ties
        accepted.extend(new)
        used_left = {left for left, _ in new}
        used_right = {right for _, right in new}
        remaining = {pair: cost for pair, cost in remaining.items()
                     if pair[0] not in used_left and pair[1] not in used_right}


# --- the matcher ------------------------------------------------------------------------------

@dataclass
class _State:
    left: dict[int, CanonicalTransaction]
    right: dict[int, CanonicalTransaction]
    consumed_left: set[int] = field(default_factory=set)
    consumed_right: set[int] = field(default_factory=set)


def reversal_pairs(rows: Iterable[CanonicalTransaction]) -> dict[int, int]:
    """Reversal row -> the approval it reverses, within one file.

    A switch extract may list an approval and, as a row of its own, its reversal: same reference,
    amount and currency, status `reversed`. Within each (reference, amount, currency), the k-th
    reversed row (by row number) reverses the k-th success row; extra rows of either kind stay
    as they are. Dates and directions do not count (a reversal may be dated later, and signed
    either way)."""
    successes: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    reversals: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for txn in rows:
        status = _status(txn)
        if txn.reference and status in ("success", "reversed"):
            key = (txn.reference, txn.amount_minor, txn.currency)
            (successes if status == "success" else reversals)[key].append(txn.row_number)
    pairs = {}
    for key, reversed_rows in reversals.items():
        originals = sorted(successes.get(key, ()))
        for reversal, original in zip(sorted(reversed_rows), originals, strict=False):
            pairs[reversal] = original
    return pairs


def _netted(rows: Sequence[CanonicalTransaction], pairs: dict[int, int]) -> list[CanonicalTransaction]:
    """The file without its reversal rows, the approvals they reverse marked reversed."""
    if not pairs:
        return list(rows)
    reversed_originals = set(pairs.values())
    return [replace(txn, status=TransactionStatus.REVERSED) if txn.row_number in reversed_originals else txn
            for txn in rows if txn.row_number not in pairs]


def duplicate_copies(rows: Iterable[CanonicalTransaction]) -> dict[int, int]:
    """Copy row -> the row that stays (the lowest row number of its set)."""
    sets: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for txn in rows:
        if txn.reference and txn.transaction_date is not None:
            key = (txn.reference, txn.amount_minor, _direction(txn), txn.currency, txn.transaction_date.date())
            sets[key].append(txn.row_number)
    copies = {}
    for members in sets.values():
        members.sort()
        for copy in members[1:]:
            copies[copy] = members[0]
    return copies


class ReferenceMatcher:
    """MatchingEngine over sequences of CanonicalTransaction (see application/ports/matching.py)."""

    def reconcile(self, left: Sequence[CanonicalTransaction], right: Sequence[CanonicalTransaction],
                  profile: ReconciliationProfile, period: ReconciliationPeriod | None = None,
                  excluded_pairs: Collection[tuple[int, int]] = ()) -> ReconciliationResult:
        clock = time.perf_counter()
        stage_seconds: dict[str, float] = {}

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            stage_seconds[stage] = now - clock
            clock = now

        left_count, right_count = len(left), len(right)
        left_reversals, right_reversals = reversal_pairs(left), reversal_pairs(right)
        left, right = _netted(left, left_reversals), _netted(right, right_reversals)
        # A reversed approval is no copy of the rows that share its key (a retry under the same RRN).
        left_reversed, right_reversed = set(left_reversals.values()), set(right_reversals.values())
        left_dups = duplicate_copies(t for t in left if t.row_number not in left_reversed)
        right_dups = duplicate_copies(t for t in right if t.row_number not in right_reversed)
        state = _State({t.row_number: t for t in left if t.row_number not in left_dups},
                       {t.row_number: t for t in right if t.row_number not in right_dups})
        lap("duplicates")

        matches: list[MatchRecord] = []
        low_confidence: list[MatchRecord] = []
        tie_records: list[MatchRecord] = []
        excluded = frozenset(excluded_pairs)
        for rule in profile.passes:
            self._run_pass(rule, profile, state, matches, low_confidence, tie_records, excluded)
        lap("matching")

        suggestions = list(low_confidence)
        seen = {(m.left_row, m.right_row) for m in suggestions}
        for record in tie_records:
            pair = (record.left_row, record.right_row)
            if (pair not in seen and record.left_row not in state.consumed_left
                    and record.right_row not in state.consumed_right):
                seen.add(pair)
                suggestions.append(record)

        facts = self._classify(profile, period, state, left_dups, right_dups, matches,
                               {t.row_number: t for t in left}, {t.row_number: t for t in right})
        exceptions = [describe_break(f, profile, period) for f in facts]
        lap("classification")
        return ReconciliationResult(
            matches=sorted(matches, key=_match_order),
            suggestions=sorted(suggestions, key=_match_order),
            exceptions=sorted(exceptions, key=lambda e: _break_order(e.facts)),
            left_row_count=left_count,
            right_row_count=right_count,
            stage_seconds=stage_seconds,
            reversals=sorted([("left", r, o) for r, o in left_reversals.items()]
                             + [("right", r, o) for r, o in right_reversals.items()]),
        )

    # -- passes --

    def _eligible(self, rows: dict[int, CanonicalTransaction], consumed: set[int], direction: str | None,
                  conditions: Sequence[Condition]) -> list[CanonicalTransaction]:
        return [txn for number, txn in rows.items()
                if number not in consumed and txn.transaction_date is not None
                and (direction is None or _direction(txn) == direction)
                and all(condition_holds(txn, c) for c in conditions)]

    def _run_pass(self, rule: MatchingRule, profile: ReconciliationProfile, state: _State,
                  matches: list[MatchRecord], low_confidence: list[MatchRecord],
                  tie_records: list[MatchRecord], excluded: frozenset[tuple[int, int]] = frozenset()) -> None:
        left_rows = self._eligible(state.left, state.consumed_left, profile.left.direction, rule.left_conditions)
        right_rows = self._eligible(state.right, state.consumed_right, profile.right.direction,
                                    rule.right_conditions)
        if rule.group is not None:
            grouped_side = rule.group.side
            groups = _group_items(rule, left_rows if grouped_side == "left" else right_rows)
            singles = [_row_item(t) for t in (right_rows if grouped_side == "left" else left_rows)]
            lefts, rights = (groups, singles) if grouped_side == "left" else (singles, groups)
        else:
            lefts = [_row_item(t) for t in left_rows]
            rights = [_row_item(t) for t in right_rows]
        found = candidates(rule, lefts, rights)
        left_members = {item.node: item for item in lefts}
        right_members = {item.node: item for item in rights}
        if excluded:
            found = {pair: candidate for pair, candidate in found.items()
                     if not any((left_row, right_row) in excluded
                                for left_row in left_members[pair[0]].members
                                for right_row in right_members[pair[1]].members)}
        accepted, ties = assign({pair: candidate.cost for pair, candidate in found.items()})

        def records(pair: tuple[Hashable, Hashable], status: MatchStatus) -> list[MatchRecord]:
            candidate = found[pair]
            left_item, right_item = left_members[pair[0]], right_members[pair[1]]
            group_id = None
            evidence = candidate.evidence
            if rule.group is not None:
                single = right_item if rule.group.side == "left" else left_item
                group_id = f"{rule.name}:{'R' if rule.group.side == 'left' else 'L'}{single.node}"
                grouped = left_item if rule.group.side == "left" else right_item
                evidence = evidence + (("members", len(grouped.members)), ("fee_minor", grouped.fee))
            return [MatchRecord(left_row, right_row, rule.name, rule.version, status,
                                candidate.confidence_bp, group_id, evidence)
                    for left_row in left_item.members for right_row in right_item.members]

        for pair in accepted:
            auto = found[pair].confidence_bp >= rule.auto_match_threshold_bp
            (matches if auto else low_confidence).extend(
                records(pair, MatchStatus.AUTO if auto else MatchStatus.SUGGESTED))
            state.consumed_left.update(left_members[pair[0]].members)
            state.consumed_right.update(right_members[pair[1]].members)
        for pair in ties:
            tie_records.extend(records(pair, MatchStatus.SUGGESTED))

    # -- classification --

    def _classify(self, profile: ReconciliationProfile, period: ReconciliationPeriod | None, state: _State,
                  left_dups: dict[int, int], right_dups: dict[int, int], matches: list[MatchRecord],
                  all_left: dict[int, CanonicalTransaction], all_right: dict[int, CanonicalTransaction]
                  ) -> list[BreakFacts]:
        facts: list[BreakFacts] = []
        partners_of_left: dict[int, int] = {}
        partners_of_right: dict[int, int] = {}
        for record in matches:
            partners_of_left[record.left_row] = min(partners_of_left.get(record.left_row, record.right_row),
                                                    record.right_row)
            partners_of_right[record.right_row] = min(partners_of_right.get(record.right_row, record.left_row),
                                                      record.left_row)
        for copy, original in left_dups.items():
            txn = all_left[copy]
            facts.append(BreakFacts(BreakType.DUPLICATE, copy, partners_of_left.get(original), txn.currency,
                                    left_amount_minor=txn.amount_minor, left_date=txn.transaction_date,
                                    left_direction=_direction(txn), left_status=_status(txn),
                                    reference=txn.reference, original_row=original))
        for copy, original in right_dups.items():
            txn = all_right[copy]
            facts.append(BreakFacts(BreakType.DUPLICATE, partners_of_right.get(original), copy, txn.currency,
                                    right_amount_minor=txn.amount_minor, right_date=txn.transaction_date,
                                    right_direction=_direction(txn), right_status=_status(txn),
                                    reference=txn.reference, original_row=original))

        # Keyed by node (a row item's node is its row number), as _key_pairs and assign hand them back.
        leftover_left: dict[Hashable, CanonicalTransaction] = {
            n: t for n, t in state.left.items()
            if n not in state.consumed_left and t.transaction_date is not None}
        leftover_right: dict[Hashable, CanonicalTransaction] = {
            n: t for n, t in state.right.items()
            if n not in state.consumed_right and t.transaction_date is not None}
        linked: list[tuple[CanonicalTransaction, CanonicalTransaction, MatchingRule]] = []
        for rule in profile.passes:
            if not rule.keyed or rule.group is not None:
                continue
            lefts = [_row_item(t) for t in leftover_left.values()]
            rights = [_row_item(t) for t in leftover_right.values()]
            keyed = _key_pairs(rule, lefts, rights)
            costs = {}
            for (l_node, r_node), (key_cost, _, _) in keyed.items():
                l_txn, r_txn = leftover_left[l_node], leftover_right[r_node]
                if l_txn.currency != r_txn.currency:
                    continue
                # Leftovers were kept only with a date.
                assert l_txn.transaction_date is not None and r_txn.transaction_date is not None
                day_delta = l_txn.transaction_date.toordinal() - r_txn.transaction_date.toordinal()
                costs[(l_node, r_node)] = (abs(l_txn.amount_minor - r_txn.amount_minor), abs(day_delta), key_cost, 0)
            accepted, _ = assign(costs)
            for l_node, r_node in accepted:
                linked.append((leftover_left.pop(l_node), leftover_right.pop(r_node), rule))

        for l_txn, r_txn, rule in linked:
            break_type = _linked_break(rule, l_txn, r_txn)
            if break_type is None:
                if _status(l_txn) in NOT_MOVED and _status(r_txn) in NOT_MOVED:
                    continue  # nothing moved on either side
                leftover_left[l_txn.row_number] = l_txn  # agrees within tolerance: judged one by one
                leftover_right[r_txn.row_number] = r_txn
                continue
            facts.append(BreakFacts(
                break_type, l_txn.row_number, r_txn.row_number, l_txn.currency,
                left_amount_minor=l_txn.amount_minor, right_amount_minor=r_txn.amount_minor,
                left_date=l_txn.transaction_date, right_date=r_txn.transaction_date,
                left_direction=_direction(l_txn), right_direction=_direction(r_txn),
                left_status=_status(l_txn), right_status=_status(r_txn),
                reference=r_txn.reference or l_txn.reference, rule=rule.name))

        window = profile.cutoff.window(period.end) if period is not None else None
        for side, rows in (("left", leftover_left), ("right", leftover_right)):
            for txn in rows.values():
                break_type = _unlinked_break(profile, side, txn, window)
                if break_type is None:
                    continue
                if side == "left":
                    facts.append(BreakFacts(break_type, txn.row_number, None, txn.currency,
                                            left_amount_minor=txn.amount_minor, left_date=txn.transaction_date,
                                            left_direction=_direction(txn), left_status=_status(txn),
                                            reference=txn.reference))
                else:
                    facts.append(BreakFacts(break_type, None, txn.row_number, txn.currency,
                                            right_amount_minor=txn.amount_minor, right_date=txn.transaction_date,
                                            right_direction=_direction(txn), right_status=_status(txn),
                                            reference=txn.reference))
        return facts


def _linked_break(rule: MatchingRule, left: CanonicalTransaction, right: CanonicalTransaction
                  ) -> BreakType | None:
    left_moved = _status(left) not in NOT_MOVED
    right_moved = _status(right) not in NOT_MOVED
    if left_moved != right_moved:
        return BreakType.NON_SETTLEMENT
    if not left_moved:
        return None
    diff = abs(left.amount_minor - right.amount_minor)
    base = left.amount_minor if rule.tolerance_of == "left" else right.amount_minor
    if not rule.amount_within(diff, base):
        return BreakType.AMOUNT_MISMATCH
    assert left.transaction_date is not None and right.transaction_date is not None
    if not rule.date_within(left.transaction_date.toordinal() - right.transaction_date.toordinal()):
        return BreakType.DATE_MISMATCH
    return None


def _unlinked_break(profile: ReconciliationProfile, side: str, txn: CanonicalTransaction,
                    window: tuple[dt.datetime, dt.datetime] | None) -> BreakType | None:
    status = _status(txn)
    if status in NOT_MOVED:
        return None
    if (window is not None and side == profile.leading_side and status == "success"
            and txn.transaction_date is not None and window[0] <= txn.transaction_date < window[1]):
        return BreakType.TIMING_DIFFERENCE
    if profile.settlement_side is not None and side != profile.settlement_side and status == "success":
        return BreakType.NON_SETTLEMENT
    return BreakType.MISSING_ENTRY


def _day(txn: CanonicalTransaction) -> int:
    assert txn.transaction_date is not None  # grouped rows are eligible rows: they have a date
    return txn.transaction_date.toordinal()


def _group_items(rule: MatchingRule, rows: Sequence[CanonicalTransaction]) -> list[_Item]:
    assert rule.group is not None
    by_key: dict[tuple[str, ...], list[CanonicalTransaction]] = defaultdict(list)
    for txn in rows:
        parts = [field_text(txn, name) for name in rule.group.by]
        if _all_present(parts):
            by_key[(txn.currency, *parts)].append(txn)
    schedule = rule.group.fee_schedule
    items = []
    for key, members in by_key.items():
        fee = sum(schedule.fee(t.amount_minor) for t in members) if schedule else 0
        values = dict(zip(rule.group.by, key[1:], strict=True))
        items.append(_Item(
            node=("G", min(t.row_number for t in members)),
            amount=sum(t.amount_minor for t in members) - fee,
            day=max(_day(t) for t in members),
            currency=key[0],
            text=values.get,
            members=tuple(sorted(t.row_number for t in members)),
            fee=fee,
        ))
    return items


def _match_order(record: MatchRecord) -> tuple[int, int, str]:
    return (record.left_row, record.right_row, record.rule)


def _break_order(facts: BreakFacts) -> tuple[int, int, str]:
    big = 1 << 62
    return (facts.left_row if facts.left_row is not None else big,
            facts.right_row if facts.right_row is not None else big, facts.type.value)


def transactions_to_json_raw(raw: dict[str, str | None]) -> str:
    """The `raw` column text of a normalized frame for one row (stable key order)."""
    return json.dumps(raw, ensure_ascii=False, sort_keys=True)
