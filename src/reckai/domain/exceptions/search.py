"""Search keys of an exception (issue 16 item 3; docs/workflow.md, "Search").

A reconciliation job stores, with each exception, the search keys of the rows it is about: the
reference (RRN), the secondary reference (STAN), the account and the channel. They are the rows'
values made comparable, so a search finds what an analyst types whatever case or spacing either
side used:

- `search_key`: trimmed, upper-cased, at most `MAX_SEARCH_KEY` characters (longer values keep
  their beginning: a prefix search still finds them); empty is none.
- `masked_account`: the account as a search key in which **a card number never appears whole**
  (PCI DSS: only masked PANs are stored). Spaces and dashes go; a masked PAN written with `X` or
  `#` (`539983XXXXXX1234`) is written with `*`; and every run of 13 to 19 digits (a full PAN) keeps
  its first six and last four digits, the others become `*` (`5399831234567890` ->
  `539983******7890`). A search value goes through the same function, so a pasted full PAN finds
  the masked row and is itself never stored or audited whole.

The polars adapter computes the same keys column-wise when a job persists its exceptions
(`adapters/polars/result_tables.py`); a property test holds the two to the same answers.
"""

from __future__ import annotations

import re

MAX_SEARCH_KEY = 255
PAN_DIGITS = (13, 19)  # ISO/IEC 7812 card numbers
SEPARATORS = r"[\s\-]+"
WRITTEN_MASK = r"^[0-9]{4,8}[*X#]{2,13}[0-9]{3,4}$"
_SEPARATORS = re.compile(SEPARATORS)
_WRITTEN_MASK = re.compile(WRITTEN_MASK)
_FULL_PAN = re.compile(rf"(?<![0-9])[0-9]{{{PAN_DIGITS[0]},{PAN_DIGITS[1]}}}(?![0-9])")


def search_key(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.strip().upper()[:MAX_SEARCH_KEY]
    return key or None


def mask_pan_runs(value: str) -> str:
    """Every run of 13 to 19 digits as its first six digits, `*`s and its last four digits."""
    return _FULL_PAN.sub(lambda m: m[0][:6] + "*" * (len(m[0]) - 10) + m[0][-4:], value)


def masked_account(value: str | None) -> str | None:
    if value is None:
        return None
    compact = _SEPARATORS.sub("", value.strip().upper())
    if _WRITTEN_MASK.match(compact):
        compact = compact.replace("X", "*").replace("#", "*")
    # masked again after the cut: cutting a longer digit run could leave a PAN-long one at the end
    key = mask_pan_runs(mask_pan_runs(compact)[:MAX_SEARCH_KEY])
    return key or None


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string starting with `prefix` in code-point (and so UTF-8 byte,
    COLLATE "C") order: the prefix with its last character moved one up (past the surrogates,
    which no stored text holds; a last character U+10FFFF goes, and the one before moves up).
    None when there is no such string (every character is U+10FFFF). A prefix search is then the
    range `prefix <= key < bound`, which a b-tree reads whatever plan a prepared statement gets
    (`LIKE $1` cannot use the index in a generic plan)."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code == 0xD800:
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None
