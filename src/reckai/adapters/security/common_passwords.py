"""Common-password check with zxcvbn: its frequency lists (common passwords, names, words) and
pattern matching (keyboard walks, dates, repeats, l33t) estimate how fast a password falls to a
guessing attack. A password scoring below `min_score` (0-4; default 3, "safely unguessable:
moderate protection from offline slow-hash scenario") is refused as too common or guessable.
"""

from __future__ import annotations

from collections.abc import Sequence

from zxcvbn import zxcvbn

from reckai.application.ports.security import CommonPasswordChecker

# zxcvbn's cost grows with length; the policy refuses longer passwords anyway.
_MAX_CHECKED_CHARS = 128


class ZxcvbnPasswordChecker:
    def __init__(self, min_score: int = 3) -> None:
        if not 0 <= min_score <= 4:
            raise ValueError("zxcvbn min_score must be between 0 and 4")
        self._min_score = min_score

    def is_common(self, password: str, user_inputs: Sequence[str] = ()) -> bool:
        if not password:
            return True  # zxcvbn raises IndexError on an empty string; nothing is more guessable
        result = zxcvbn(password[:_MAX_CHECKED_CHARS], user_inputs=[u for u in user_inputs if u])
        return int(result["score"]) < self._min_score


_check: type[CommonPasswordChecker] = ZxcvbnPasswordChecker
