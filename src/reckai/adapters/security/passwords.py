"""Password hashing: bcrypt (cost 12, the spec's default) or argon2id (OWASP parameters).

Passwords are NFKC-normalized before hashing and verifying, so the same password typed on two
keyboards (composed or decomposed accents, full-width digits) matches. Every stored hash carries
its own scheme and cost, so both kinds verify whatever is configured; `needs_rehash` says when a
login should upgrade one.
"""

from __future__ import annotations

import logging
import threading
import unicodedata

import argon2
import bcrypt

from reckai.application.ports.security import PasswordHasher, PasswordTooLong

logger = logging.getLogger(__name__)

BCRYPT = "bcrypt"
ARGON2ID = "argon2id"
SCHEMES = (BCRYPT, ARGON2ID)

BCRYPT_DEFAULT_COST = 12  # spec §2.3
BCRYPT_MAX_BYTES = 72
# OWASP Password Storage Cheat Sheet, argon2id minimum: m=19 MiB, t=2, p=1.
ARGON2_MIN_MEMORY_KIB = 19456
ARGON2_MIN_TIME_COST = 2
ARGON2_MIN_PARALLELISM = 1


def _normalized(password: str) -> bytes:
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def scheme_of(stored_hash: str) -> str | None:
    if stored_hash.startswith(("$2b$", "$2a$", "$2y$")):
        return BCRYPT
    if stored_hash.startswith("$argon2id$"):
        return ARGON2ID
    return None


class ConfiguredPasswordHasher:
    """Hashes with the configured scheme, verifies every supported one."""

    def __init__(
        self,
        scheme: str = BCRYPT,
        *,
        bcrypt_cost: int = BCRYPT_DEFAULT_COST,
        argon2_memory_kib: int = ARGON2_MIN_MEMORY_KIB,
        argon2_time_cost: int = ARGON2_MIN_TIME_COST,
        argon2_parallelism: int = ARGON2_MIN_PARALLELISM,
    ) -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"password hasher must be one of {', '.join(SCHEMES)}, not {scheme!r}")
        if not 4 <= bcrypt_cost <= 31:
            raise ValueError("bcrypt cost must be between 4 and 31")
        if (
            argon2_memory_kib < ARGON2_MIN_MEMORY_KIB
            or argon2_time_cost < ARGON2_MIN_TIME_COST
            or argon2_parallelism < ARGON2_MIN_PARALLELISM
        ):
            raise ValueError("argon2id parameters below the OWASP minimum (m=19456 KiB, t=2, p=1)")
        self._scheme = scheme
        self._bcrypt_cost = bcrypt_cost
        self._argon2 = argon2.PasswordHasher(
            time_cost=argon2_time_cost,
            memory_cost=argon2_memory_kib,
            parallelism=argon2_parallelism,
            type=argon2.Type.ID,
        )
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    @property
    def scheme(self) -> str:
        return self._scheme

    @property
    def max_password_bytes(self) -> int | None:
        return BCRYPT_MAX_BYTES if self._scheme == BCRYPT else None

    def hash(self, password: str) -> str:
        secret = _normalized(password)
        if self._scheme == BCRYPT:
            if len(secret) > BCRYPT_MAX_BYTES:
                raise PasswordTooLong(len(secret), BCRYPT_MAX_BYTES)
            return bcrypt.hashpw(secret, bcrypt.gensalt(rounds=self._bcrypt_cost)).decode("ascii")
        return self._argon2.hash(secret)

    def verify(self, password: str, stored_hash: str) -> bool:
        secret = _normalized(password)
        scheme = scheme_of(stored_hash)
        if scheme == BCRYPT:
            # An over-long password could never have been stored (hash refuses it): still spend the
            # time of a real check, then refuse, so the length does not show in the response time.
            too_long = len(secret) > BCRYPT_MAX_BYTES
            try:
                matched = bcrypt.checkpw(secret[:BCRYPT_MAX_BYTES], stored_hash.encode("ascii"))
                return matched and not too_long
            except (ValueError, UnicodeEncodeError):
                logger.error("a stored bcrypt password hash is malformed")
                return False
        if scheme == ARGON2ID:
            try:
                return self._argon2.verify(stored_hash, secret)
            except argon2.exceptions.VerifyMismatchError:
                return False
            except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
                logger.error("a stored argon2id password hash is malformed")
                return False
        logger.error("a stored password hash has an unsupported scheme")
        return False

    def needs_rehash(self, stored_hash: str) -> bool:
        scheme = scheme_of(stored_hash)
        if scheme != self._scheme:
            return True
        if scheme == BCRYPT:
            parts = stored_hash.split("$")  # ["", "2b", "12", salt+hash]
            return (
                len(parts) < 4
                or not parts[2].isdigit()
                or int(parts[2]) != self._bcrypt_cost
                or parts[1] != "2b"
            )
        try:
            return self._argon2.check_needs_rehash(stored_hash)
        except argon2.exceptions.InvalidHashError:
            return True

    def verify_dummy(self, password: str) -> bool:
        self.verify(password, self._dummy())
        return False

    def _dummy(self) -> str:
        # Built lazily (one hash costs ~0.25 s at bcrypt cost 12) and once per process.
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self.hash("reckai dummy password for unknown users")
            return self._dummy_hash


_check: type[PasswordHasher] = ConfiguredPasswordHasher
