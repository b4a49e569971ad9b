"""MFA rules: TOTP replay refusal and one-time recovery codes.

TOTP codes themselves are computed by the TOTP adapter (pyotp); what the domain decides is whether
a matched time-step may be used: only a step later than the last one used, so a code is accepted
once and an older code of the window is refused after a newer one was used.

Recovery codes: `RECOVERY_CODE_COUNT` codes of 16 characters from a 31-character alphabet (79 bits
each), shown once, stored as salted SHA-256 (ASVS 2.6.2: a lookup secret under 112 bits is stored
salted and hashed with an approved one-way function; a slow hash is not needed at 79 bits and would
make checking ten codes cost seconds). Each code works once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

RECOVERY_CODE_COUNT = 10
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud or typed from paper
RECOVERY_CODE_LENGTH = 16
_SCHEME = "sha256"


def accept_totp_step(matched_step: int | None, last_used_step: int | None) -> bool:
    """May a code that matched `matched_step` be accepted, given the last step already used?"""
    if matched_step is None:
        return False
    return last_used_step is None or matched_step > last_used_step


def generate_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Fresh codes formatted `XXXX-XXXX-XXXX-XXXX`, to show the user once."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        codes.append("-".join(raw[i : i + 4] for i in range(0, RECOVERY_CODE_LENGTH, 4)))
    return codes


def normalize_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch not in "- \t")


def hash_recovery_code(code: str, salt: bytes | None = None) -> str:
    """`sha256$<salt hex>$<digest hex>` of the normalized code, with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.sha256(salt + normalize_recovery_code(code).encode("utf-8")).hexdigest()
    return f"{_SCHEME}${salt.hex()}${digest}"


def match_recovery_code(code: str, stored_hashes: Sequence[str | None]) -> int | None:
    """Index of the unused stored hash the code matches, or None.

    `stored_hashes` holds None for codes already used; the caller marks the returned index used
    (set it to None) in the same transaction that lets the user in, so the code works once. Every
    hash is compared, matched or not, so timing does not reveal which one matched.
    """
    normalized = normalize_recovery_code(code)
    found: int | None = None
    for index, stored in enumerate(stored_hashes):
        if stored is None:
            continue
        scheme, _, rest = stored.partition("$")
        salt_hex, _, digest = rest.partition("$")
        if scheme != _SCHEME or not digest:
            continue
        try:
            salt = bytes.fromhex(salt_hex)
        except ValueError:
            continue
        candidate = hashlib.sha256(salt + normalized.encode("utf-8")).hexdigest()
        if hmac.compare_digest(candidate, digest) and found is None:
            found = index
    return found
